"""Test harness around the fakes: collectors pointed at them, and a contract-suite case.

Kept apart from ``conftest.py`` so that test modules can import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from listenwell import store
from listenwell.collectors.appstore import AppStoreCollector
from listenwell.collectors.base import Collector, RetryPolicy
from listenwell.collectors.reddit import RedditCollector
from listenwell.collectors.x import XCollector

from .appstore import FakeAppStore
from .reddit import FakeReddit
from .x import FakeX

# A request slower than this is a timeout in the tests; slow fault replies take longer.
TIMEOUT = 0.5
SLOW = 1.2


@dataclass
class Sleeps:
    """Records waits instead of sleeping: retries are instant and their waits checkable."""

    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def sources_settings(
    reddit: FakeReddit | None = None,
    x: FakeX | None = None,
    appstore: FakeAppStore | None = None,
    *,
    queries: tuple[str, ...] = ("Acme",),
) -> dict[str, Any]:
    """The ``sources:`` settings that point the real clients at these running fakes."""
    sources: dict[str, Any] = {}
    if reddit is not None:
        sources["reddit"] = {
            "client_id": reddit.client_id,
            "client_secret": reddit.client_secret,
            "oauth_url": reddit.server.base_url,
            "reddit_url": reddit.server.base_url,
            "queries": list(queries),
        }
    if x is not None:
        sources["x"] = {
            "bearer_token": x.bearer_token,
            "api_base_url": x.server.base_url,
            "queries": list(queries),
        }
    if appstore is not None:
        sources["appstore"] = {
            "app_ids": ["123456789"],
            "countries": ["us"],
            "base_url": appstore.server.base_url,
        }
    return sources


def make_reddit(fake: FakeReddit, retry: RetryPolicy, **kw: Any) -> RedditCollector:
    """A Reddit collector on the fake, posts only unless ``include_comments`` is given."""
    args: dict[str, Any] = {
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "queries": ["Acme"],
        "oauth_url": fake.server.base_url,
        "reddit_url": fake.server.base_url,
        "include_comments": False,
        "timeout": TIMEOUT,
        "page_size": 5,
        "overlap": timedelta(0),
        "retry": retry,
    }
    args.update(kw)
    return RedditCollector(**args)


def make_x(fake: FakeX, retry: RetryPolicy, **kw: Any) -> XCollector:
    """An X collector on the fake (pages of 10, the API's minimum)."""
    args: dict[str, Any] = {
        "bearer_token": fake.bearer_token,
        "queries": ["Acme"],
        "api_base_url": fake.server.base_url,
        "timeout": TIMEOUT,
        "page_size": 10,
        "retry": retry,
    }
    args.update(kw)
    return XCollector(**args)


def make_appstore(fake: FakeAppStore, retry: RetryPolicy, **kw: Any) -> AppStoreCollector:
    """An App Store collector on the fake (pages of 5)."""
    args: dict[str, Any] = {
        "app_ids": ["123456789"],
        "countries": ["us"],
        "base_url": fake.server.base_url,
        "timeout": TIMEOUT,
        "page_size": fake.page_size,
        "retry": retry,
    }
    args.update(kw)
    return AppStoreCollector(**args)


@dataclass
class Case:
    """One collector and its fake, as the contract suite sees them."""

    name: str
    fake: Any
    page_size: int
    listing_path: str
    _make: Callable[..., Collector]
    _seed: Callable[[int], list[str]]
    _malformed: Callable[[], Any]
    retry: RetryPolicy

    def make(self, **kw: Any) -> Collector:
        """A collector pointed at the fake."""
        return self._make(self.fake, self.retry, **kw)

    def seed(self, n: int) -> list[str]:
        """Add ``n`` valid items, newer than all before; their external ids, newest first."""
        return self._seed(n)

    def add_malformed(self) -> None:
        """Add one malformed item, newer than all before."""
        self._malformed()


def stored(engine: Engine, source: str | None = None) -> list[dict[str, Any]]:
    """Every stored mention (of ``source``), as export rows."""
    return [r for r in store.iter_export_rows(engine) if source is None or r["source"] == source]
