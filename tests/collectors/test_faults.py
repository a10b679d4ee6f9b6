"""Faults: what each collector does when its API misbehaves, through the real clients.

These are about HTTP behaviour, so they run on SQLite only (the contract
suite covers PostgreSQL). Waits are recorded, not slept (see ``retry``).
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine

from listenwell import store
from listenwell.collectors.base import RetryPolicy
from listenwell.collectors.runner import CursorState, collect, run_collector
from listenwell.demo.fakes.harness import SLOW, Case, Sleeps, make_reddit, make_x, stored
from listenwell.demo.fakes.reddit import FakeReddit
from listenwell.demo.fakes.server import Reply, fault
from listenwell.demo.fakes.x import FakeX
from listenwell.store import runs

FAULTS = ["429", "500", "slow", "malformed", "truncated", "html"]


@pytest.mark.parametrize("kind", FAULTS)
def test_one_fault_is_retried_and_nothing_is_lost(
    case: Case, sqlite_engine: Engine, sleeps: Sleeps, kind: str
) -> None:
    ids = case.seed(case.page_size + 2)
    case.fake.server.fail_next(case.listing_path, fault(kind, delay=SLOW, retry_after=1))
    result = run_collector(sqlite_engine, case.make())
    assert result.ok, result.errors
    assert sorted(r["external_id"] for r in stored(sqlite_engine)) == sorted(ids)
    listing = case.fake.server.requests_to(case.listing_path)
    assert len(listing) == 3  # the failed try, its retry, the second page
    assert listing[0].query == listing[1].query
    if kind == "429":
        assert sleeps.waits == [1.0]  # the server's Retry-After, honoured
        assert result.retries == 1


def test_persistent_5xx_fails_the_stream_within_its_tries(
    x: FakeX, sqlite_engine: Engine, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    ids = x.add_posts(12)
    x.server.fail_next(r"/2/tweets/", *[fault("500")] * retry.attempts)
    result = run_collector(sqlite_engine, make_x(x, retry))
    assert not result.ok and "HTTP 500" in result.errors[0]
    assert len(x.server.requests_to(r"/2/tweets/")) == retry.attempts
    assert len(sleeps.waits) == retry.attempts - 1
    assert all(w <= retry.max_wait for w in sleeps.waits)
    assert stored(sqlite_engine) == []
    assert runs.last_runs(sqlite_engine)["x"].status == "failed"
    # The server is back: the next run stores everything.
    assert run_collector(sqlite_engine, make_x(x, retry)).new == len(ids)


def test_later_page_down_then_resume(x: FakeX, sqlite_engine: Engine, retry: RetryPolicy) -> None:
    ids = x.add_posts(25)
    seen: list[str] = []

    def fail_from_now_on(source: str, stream: str, page: object) -> None:
        seen.append(stream)
        x.server.fail_next(r"/2/tweets/", *[fault("500")] * retry.attempts)

    result = run_collector(sqlite_engine, make_x(x, retry), on_page=fail_from_now_on)
    assert result.pages == 1 and result.new == 10
    assert "HTTP 500" in result.errors[0]
    state = CursorState.load(store.load_cursor(sqlite_engine, "x", "search:Acme"))
    assert state.resume == "n10" and state.since is None
    x.server.reset()
    again = run_collector(sqlite_engine, make_x(x, retry))
    assert again.ok and again.new == len(ids) - 10 and again.duplicates == 0
    assert x.server.log[0].query.get("next_token") == "n10"


def test_retry_after_beyond_max_wait_is_not_waited_for(
    x: FakeX, sqlite_engine: Engine, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    x.add_posts(3)
    x.server.fail_next(r"/2/tweets/", fault("429", retry_after=3600))
    result = run_collector(sqlite_engine, make_x(x, retry))
    assert sleeps.waits == []
    assert "rate limited" in result.errors[0]
    assert len(x.server.log) == 1


def test_x_rate_limit_reset_header_sets_the_wait(
    x: FakeX, sqlite_engine: Engine, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    x.add_posts(3)
    reset = int(time.time()) + 3
    x.server.fail_next(
        r"/2/tweets/",
        Reply(429, {"title": "Too Many Requests"}, {"x-rate-limit-reset": str(reset)}),
    )
    result = run_collector(sqlite_engine, make_x(x, retry))
    assert result.ok and result.new == 3
    assert len(sleeps.waits) == 1 and 0 < sleeps.waits[0] <= retry.max_wait


def test_bad_credentials_stop_that_source_only(
    reddit: FakeReddit, x: FakeX, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    reddit.add_posts(3)
    x.add_posts(4)
    bad_reddit = make_reddit(reddit, retry, client_secret="wrong", include_comments=True)
    bad_x = make_x(x, retry, bearer_token="wrong")
    good_x = make_x(x, retry)
    results = collect(sqlite_engine, [bad_reddit, bad_x, good_x])
    assert "Reddit refused the credentials" in results[0].errors[0]
    assert len(results[0].errors) == 1  # the comments stream was not tried after the auth error
    assert "X refused the bearer token" in results[1].errors[0]
    assert results[2].ok and results[2].new == 4
    assert {r["source"] for r in stored(sqlite_engine)} == {"x"}


def test_missing_credentials_are_a_clear_error(sqlite_engine: Engine, retry: RetryPolicy) -> None:
    from listenwell.collectors.reddit import RedditCollector
    from listenwell.collectors.x import XCollector

    results = collect(
        sqlite_engine,
        [
            RedditCollector(client_id=None, client_secret=None, queries=["Acme"], retry=retry),
            XCollector(bearer_token=None, queries=["Acme"], retry=retry),
        ],
    )
    assert "sources.reddit.client_id" in results[0].errors[0]
    assert "sources.x.bearer_token" in results[1].errors[0]


def test_reddit_expired_token_is_renewed(
    reddit: FakeReddit, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    reddit.add_posts(3)
    expired = Reply(
        401,
        {"message": "Unauthorized", "error": 401},
        {"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'},
    )
    reddit.server.fail_next(r"/r/.+/search", expired)
    result = run_collector(sqlite_engine, make_reddit(reddit, retry))
    assert result.ok and result.new == 3
    assert len(reddit.server.requests_to(r"/access_token")) == 2


def test_reddit_forbidden_subreddit_stops_only_its_stream(
    reddit: FakeReddit, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    reddit.add_posts(2)
    reddit.server.fail_next(r"/r/.+/search", Reply(403, {"message": "Forbidden", "error": 403}))
    collector = make_reddit(reddit, retry, queries=["Acme", "acme"])
    result = run_collector(sqlite_engine, collector)
    assert len(result.errors) == 1 and "HTTP 403" in result.errors[0]
    assert result.new == 2  # the second query's stream still ran
