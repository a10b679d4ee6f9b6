"""App Store specifics: the feed URL, one-review pages, ratings, the pure normaliser."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest
from sqlalchemy import Engine

from listenwell.collectors.appstore import normalize_appstore
from listenwell.collectors.base import RetryPolicy
from listenwell.collectors.runner import run_collector
from listenwell.demo.fakes.appstore import FakeAppStore
from listenwell.demo.fakes.harness import make_appstore, stored
from listenwell.store import RecordError

ENTRY = {
    "id": {"label": "9001"},
    "updated": {"label": "2026-11-20T05:12:00-07:00"},
    "im:rating": {"label": "4"},
    "title": {"label": "Nice"},
    "content": {"label": "Works well", "attributes": {"type": "text"}},
    "author": {"name": {"label": "jane"}},
}


@pytest.mark.parametrize(
    ("raw", "expect"),
    [
        (ENTRY, nullcontext()),
        ({**ENTRY, "title": {"label": ""}}, nullcontext()),
        ({**ENTRY, "im:rating": {"label": "6"}}, pytest.raises(RecordError, match="1 to 5")),
        ({**ENTRY, "im:rating": None}, pytest.raises(RecordError, match="im:rating")),
        ({**ENTRY, "id": {}}, pytest.raises(RecordError, match="id is missing")),
        ({**ENTRY, "updated": {"label": "yesterday"}}, pytest.raises(RecordError, match="ISO")),
        ([ENTRY], pytest.raises(RecordError, match="must be an object")),
    ],
)
def test_normalize(raw: Any, expect: AbstractContextManager[Any]) -> None:
    with expect:
        normalize_appstore(raw)


def test_normalize_fields() -> None:
    m = normalize_appstore(ENTRY)
    assert (m.source, m.external_id, m.rating, m.author_name) == ("appstore", "9001", 4, "jane")
    assert m.text == "Nice\n\nWorks well"
    assert m.created_at.isoformat() == "2026-11-20T12:12:00+00:00"


def test_feed_url_countries_and_ratings(
    appstore: FakeAppStore, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    us = appstore.add_reviews(3, country="us")
    gb = appstore.add_reviews(2, country="gb")
    collector = make_appstore(appstore, retry, countries=["us", "GB"], app_ids=["id123456789"])
    assert collector.streams() == ["us:123456789", "gb:123456789"]
    result = run_collector(sqlite_engine, collector)
    assert result.ok and result.new == 5
    paths = [r.path for r in appstore.server.log]
    assert "/us/rss/customerreviews/page=1/id=123456789/sortby=mostrecent/json" in paths
    rows = stored(sqlite_engine)
    assert sorted(r["external_id"] for r in rows) == sorted(us + gb)
    assert all(1 <= r["rating"] <= 5 for r in rows)


def test_a_page_with_one_review_is_an_object(
    appstore: FakeAppStore, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    ids = appstore.add_reviews(1)
    result = run_collector(sqlite_engine, make_appstore(appstore, retry))
    assert result.ok and result.new == 1 and result.quarantined == 0
    assert [r["external_id"] for r in stored(sqlite_engine)] == ids


def test_unknown_app_is_empty_not_an_error(
    appstore: FakeAppStore, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    result = run_collector(sqlite_engine, make_appstore(appstore, retry, app_ids=["42"]))
    assert result.ok and result.new == 0 and result.pages == 1
