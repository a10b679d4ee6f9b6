"""The runner's cursor rules, the retry policy and the registry, in isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from listenwell import store
from listenwell.collectors.base import (
    AuthError,
    Collector,
    FatalError,
    Page,
    RetriableError,
    RetryPolicy,
)
from listenwell.collectors.registry import (
    UnknownSourceError,
    create,
    default_registry,
    register,
)
from listenwell.collectors.runner import CursorState, run_collector
from listenwell.config import Settings
from listenwell.demo.fakes.harness import Sleeps, make_x
from listenwell.demo.fakes.x import FakeX

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "state",
    [
        CursorState(),
        CursorState(since=T0),
        CursorState(since=T0, started=T0 + timedelta(hours=1), running_max=T0, resume="n10"),
        CursorState(since=None, started=T0, running_max=None, resume=None),
    ],
)
def test_cursor_state_round_trips(state: CursorState) -> None:
    assert CursorState.load(state.dump()) == state


@pytest.mark.parametrize(
    ("value", "since"),
    [(None, None), ("", None), ("2026-11-20T12:00:00+00:00", T0), ("[1, 2]", None)],
)
def test_cursor_state_reads_plain_values(value: str | None, since: datetime | None) -> None:
    assert CursorState.load(value) == CursorState(since=since)


def test_promoted_cursor_is_capped_at_the_run_start(
    x: FakeX, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    x.add_posts(3)
    newest = datetime.fromisoformat(x.tweets[0]["created_at"].replace("Z", "+00:00"))
    started = newest - timedelta(minutes=1)  # posts dated after the run began (clock skew)
    run_collector(sqlite_engine, make_x(x, retry), now=started)
    state = CursorState.load(store.load_cursor(sqlite_engine, "x", "search:Acme"))
    assert state.since == started and not state.in_progress


def test_max_pages_ends_the_pass_and_the_next_pass_resumes(
    x: FakeX, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    ids = x.add_posts(25)
    first = run_collector(sqlite_engine, make_x(x, retry, max_pages=1))
    assert (first.pages, first.new) == (1, 10) and first.ok
    state = CursorState.load(store.load_cursor(sqlite_engine, "x", "search:Acme"))
    assert state.in_progress and state.resume == "n10"
    second = run_collector(sqlite_engine, make_x(x, retry))
    assert second.new == len(ids) - 10 and second.duplicates == 0


def test_should_stop_ends_after_the_current_page(
    x: FakeX, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    x.add_posts(25)
    pages: list[object] = []
    result = run_collector(
        sqlite_engine,
        make_x(x, retry),
        on_page=lambda *page: pages.append(page),
        should_stop=lambda: bool(pages),  # Ctrl-C arrives during the first page
    )
    assert result.pages == 1 and result.ok
    assert CursorState.load(store.load_cursor(sqlite_engine, "x", "search:Acme")).in_progress


def test_an_expired_resume_token_restarts_from_the_newest_page(
    x: FakeX, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    ids = x.add_posts(12)
    stale = CursorState(started=datetime.now(UTC), resume="expired-token")
    store.save_cursor(sqlite_engine, "x", stale.dump(), stream="search:Acme")
    result = run_collector(sqlite_engine, make_x(x, retry))
    assert result.ok and result.new == len(ids)
    assert "next_token" not in x.server.log[1].query


def test_retry_policy_waits() -> None:
    policy = RetryPolicy(attempts=4, max_wait=2.0, backoff=0.5, sleep=Sleeps())
    assert policy.wait_for(RetriableError("x", retry_after=1.5), 1) == 1.5
    assert 0.5 <= policy.wait_for(RetriableError("x"), 1) <= 1.0
    assert policy.wait_for(RetriableError("x"), 10) == 2.0  # capped
    assert not policy.should_retry(FatalError("x"))
    assert not policy.should_retry(RetriableError("x", retry_after=3))  # beyond max_wait
    assert policy.should_retry(RetriableError("x", retry_after=2))


def test_retry_policy_call_counts_and_stops() -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(attempts=3, backoff=0.01, sleep=sleeps)
    calls: list[int] = []
    retried: list[RetriableError] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RetriableError("flaky", endpoint="GET /x")
        return "ok"

    assert policy.call(flaky, retried.append) == "ok"
    assert len(calls) == 3 and len(retried) == 2 and len(sleeps.waits) == 2

    def refused() -> None:
        calls.append(1)
        raise AuthError("no", endpoint="GET /x")

    calls.clear()
    with pytest.raises(AuthError, match=r"no \(GET /x\)"):
        policy.call(refused, retried.append)
    assert len(calls) == 1


def test_registry() -> None:
    registry = default_registry()
    assert list(registry) == ["reddit", "x", "appstore"]
    with pytest.raises(ValueError, match="already registered"):
        register(registry, type("Other", (), {"name": "x"}))
    with pytest.raises(UnknownSourceError, match="unknown source 'myspace'"):
        create("myspace", Settings())
    settings = Settings(
        brand={"name": "Acme", "keywords": ["acme", "#acme"]},
        sources={"x": {"bearer_token": "t"}, "reddit": {"subreddits": ["acme"]}},
    )
    x = create("x", settings)
    assert x.streams() == ['search:"acme" OR "#acme"'] and x.missing() is None
    reddit = create("reddit", settings)
    assert reddit.streams() == ["search:acme:acme", "search:acme:#acme", "comments:acme"]
    assert "client_id" in (reddit.missing() or "")
    assert create("appstore", settings).streams() == []


def test_settings_proposed_for_config_are_read() -> None:
    """The settings fields listed for config/settings.py are the ones the collectors read."""
    from types import SimpleNamespace as NS

    settings = NS(
        brand=NS(name="Acme", keywords=[]),
        sources=NS(
            timeout_s=3.0,
            retries=2,
            max_wait_s=1.0,
            max_pages=5,
            appstore=NS(app_ids=["id42"], countries=["GB"], base_url="http://127.0.0.1:9/"),
            reddit=NS(
                client_id="c",
                client_secret=None,
                user_agent="ua",
                oauth_url="o",
                reddit_url="r",
                queries=[],
                subreddits=[],
                include_comments=False,
                overlap_s=60.0,
            ),
            x=NS(
                bearer_token=None, api_base_url="http://127.0.0.1:9", queries=["q"], max_results=20
            ),
        ),
    )
    appstore = create("appstore", settings)
    assert appstore.streams() == ["gb:42"]
    assert (appstore.base_url, appstore.timeout) == ("http://127.0.0.1:9", 3.0)
    reddit = create("reddit", settings)
    assert reddit.streams() == ["search:all:Acme"]  # no comments; brand name as the query
    assert (reddit.overlap, reddit.max_pages) == (timedelta(seconds=60), 5)
    x = create("x", settings)
    assert (x.page_size, x.timeout) == (20, 3.0)
    policy = RetryPolicy.from_settings(settings)
    assert (policy.attempts, policy.max_wait) == (2, 1.0)


class ListCollector(Collector):
    """An extension-style collector over in-memory pages: ``{"id", "t", "text"}`` items."""

    name = "memo"

    def __init__(self, pages: list[list[dict[str, Any]]], **kw: Any) -> None:
        super().__init__(**kw)
        self.data = pages

    def streams(self) -> list[str]:
        return ["all"]

    def fetch_page(self, stream: str, since: datetime | None, token: str | None) -> Page:
        i = int(token or 0)
        nxt = str(i + 1) if i + 1 < len(self.data) else None
        return Page(self.data[i], nxt, f"memory page {i}")

    def normalize(self, raw: Any) -> store.Mention:
        if raw["text"] == "boom":
            raise ValueError("a normaliser bug")
        return store.Mention("memo", str(raw["id"]), T0 + timedelta(minutes=raw["t"]), raw["text"])


def test_an_extension_collector_registers_and_runs(sqlite_engine: Engine) -> None:
    registry = default_registry()
    register(registry, ListCollector)
    assert registry["memo"] is ListCollector
    # Newest first but not strictly: page 1 holds an item older than one on page 2.
    pages = [
        [{"id": 5, "t": 50, "text": "e"}, {"id": 2, "t": 20, "text": "b"}],
        [{"id": 4, "t": 40, "text": "d"}, {"id": 6, "t": 1, "text": "boom"}],
    ]
    now = T0 + timedelta(days=1)
    result = run_collector(sqlite_engine, ListCollector(pages), now=now)
    assert (result.new, result.quarantined, result.pages) == (3, 1, 2)
    q = store.quarantine_frame(sqlite_engine)
    assert q["reason"][0] == "cannot normalise (ValueError: a normaliser bug)"
    assert q["origin"][0] == "memory page 1 item 6"
    state = CursorState.load(store.load_cursor(sqlite_engine, "memo", "all"))
    assert state.since == T0 + timedelta(minutes=50)  # the running maximum, not the last page's
