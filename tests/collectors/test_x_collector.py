"""X specifics: the request tweepy sends, long posts, authors, start_time, the adapter."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

import pytest
import requests
from sqlalchemy import Engine

from listenwell.collectors.base import RetryPolicy
from listenwell.collectors.http import TimeoutAdapter
from listenwell.collectors.runner import run_collector
from listenwell.collectors.x import normalize_x
from listenwell.demo.fakes.harness import SLOW, TIMEOUT, make_x, stored
from listenwell.demo.fakes.server import fault
from listenwell.demo.fakes.x import FakeX
from listenwell.store import RecordError

TWEET = {
    "id": "1800000000000000001",
    "text": "Acme short…",
    "note_tweet": {"text": "Acme short and then the whole long post"},
    "author_id": "7",
    "created_at": "2026-11-20T10:00:00.000Z",
    "referenced_tweets": [{"type": "replied_to", "id": "1799"}],
}
AUTHOR = {"id": "7", "username": "jdoe", "name": "Jane Doe"}


@pytest.mark.parametrize(
    ("raw", "expect"),
    [
        ({"tweet": TWEET, "author": AUTHOR}, nullcontext()),
        ({"tweet": TWEET, "author": None}, nullcontext()),
        ({"tweet": {**TWEET, "id": None}}, pytest.raises(RecordError, match="id is missing")),
        ({"tweet": {**TWEET, "created_at": "x"}}, pytest.raises(RecordError, match="ISO 8601")),
        (
            {"tweet": {**TWEET, "text": None, "note_tweet": None}},
            pytest.raises(RecordError, match="text must be a string"),
        ),
        ({"tweet": "1800"}, pytest.raises(RecordError, match="not a post")),
    ],
)
def test_normalize(raw: Any, expect: AbstractContextManager[Any]) -> None:
    with expect:
        normalize_x(raw)


def test_normalize_fields() -> None:
    m = normalize_x({"tweet": {**TWEET, "id": 1800000000000000001}, "author": AUTHOR})
    assert m.external_id == "1800000000000000001"  # stored as a string even when an int
    assert m.text == "Acme short and then the whole long post"  # note_tweet, not the cut text
    assert (m.author_handle, m.author_name) == ("@jdoe", "Jane Doe")
    assert m.in_reply_to == "1799"
    assert m.url == "https://x.com/jdoe/status/1800000000000000001"


def test_search_request_long_posts_and_authors(
    x: FakeX, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    x.add_posts(6, long_every=3)
    result = run_collector(sqlite_engine, make_x(x, retry))
    assert result.ok and result.new == 6
    req = x.server.log[0]
    assert req.headers["authorization"] == f"Bearer {x.bearer_token}"
    assert req.query["query"] == "Acme"
    assert "author_id" in req.query["expansions"].split(",")
    assert "note_tweet" in req.query["tweet.fields"].split(",")
    assert "start_time" not in req.query  # first run: no lower bound
    rows = stored(sqlite_engine)
    longs = [r for r in rows if len(r["text"]) > 280]
    assert len(longs) == 2 and not any(r["text"].endswith("…") for r in longs)
    assert all(r["author_handle"] and r["author_handle"].startswith("@fan_") for r in rows)
    assert result.quota == {"limit": "450", "remaining": "449", "reset": result.quota["reset"]}


def test_second_run_sends_the_cursor_as_start_time(
    x: FakeX, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    x.add_posts(3)
    run_collector(sqlite_engine, make_x(x, retry))
    newest = max(datetime.fromisoformat(t["created_at"].replace("Z", "+00:00")) for t in x.tweets)
    x.server.reset()
    run_collector(sqlite_engine, make_x(x, retry))
    assert x.server.log[0].query["start_time"] == newest.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_adapter_redirects_and_sets_a_timeout(x: FakeX) -> None:
    session = requests.Session()
    session.mount("https://api.twitter.com/", TimeoutAdapter(TIMEOUT, x.server.base_url))
    try:
        ok = session.get(
            "https://api.twitter.com/2/tweets/search/recent?query=a&max_results=10",
            headers={"Authorization": f"Bearer {x.bearer_token}"},
        )
        assert ok.status_code == 200 and ok.json()["meta"]["result_count"] == 0
        assert x.server.log[-1].path == "/2/tweets/search/recent"
        x.server.fail_next(r"/2/", fault("slow", delay=SLOW))
        with pytest.raises(requests.exceptions.ReadTimeout):
            session.get("https://api.twitter.com/2/tweets/search/recent")
    finally:
        session.close()
