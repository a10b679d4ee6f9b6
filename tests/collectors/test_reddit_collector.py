"""Reddit specifics: the requests praw sends, comments, and the pure normaliser."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from listenwell.collectors.base import RetryPolicy
from listenwell.collectors.reddit import normalize_reddit
from listenwell.collectors.runner import run_collector
from listenwell.demo.fakes.harness import make_reddit, stored
from listenwell.demo.fakes.reddit import FakeReddit
from listenwell.store import RecordError

POST = {
    "kind": "t3",
    "data": {
        "id": "abc",
        "name": "t3_abc",
        "title": "Acme broke",
        "selftext": "again",
        "author": "jdoe",
        "created_utc": 1_700_000_000.0,
        "permalink": "/r/acme/comments/abc/x/",
    },
}
COMMENT = {
    "kind": "t1",
    "data": {
        "id": "def",
        "body": "Acme is fine",
        "author": "[deleted]",
        "parent_id": "t3_abc",
        "created_utc": 1_700_000_100,
    },
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, "data": {**base["data"], **changes}}


@pytest.mark.parametrize(
    ("raw", "expect"),
    [
        (POST, nullcontext()),
        (COMMENT, nullcontext()),
        (_with(POST, id=None, name=None), pytest.raises(RecordError, match="id is missing")),
        (_with(POST, title=""), pytest.raises(RecordError, match="title is empty")),
        (_with(COMMENT, body=None), pytest.raises(RecordError, match="body must be a string")),
        (_with(POST, created_utc=None), pytest.raises(RecordError, match="created_at")),
        (_with(POST, created_utc="soon"), pytest.raises(RecordError, match="ISO 8601")),
        ({"kind": "t5", "data": {}}, pytest.raises(RecordError, match="unexpected kind")),
        ({"kind": "t3"}, pytest.raises(RecordError, match="data is missing")),
        ("t3_abc", pytest.raises(RecordError, match="must be an object")),
    ],
)
def test_normalize(raw: Any, expect: AbstractContextManager[Any]) -> None:
    with expect:
        normalize_reddit(raw)


def test_normalize_fields() -> None:
    post = normalize_reddit(POST)
    assert (post.external_id, post.author_handle) == ("t3_abc", "u/jdoe")
    assert post.text == "Acme broke\n\nagain"
    assert post.url == "https://www.reddit.com/r/acme/comments/abc/x/"
    assert post.created_at.timestamp() == 1_700_000_000
    comment = normalize_reddit(COMMENT)
    assert comment.external_id == "t1_def"  # the fullname, derived from the id
    assert comment.in_reply_to == "t3_abc"
    assert comment.author_handle is None  # [deleted]


def test_search_request_and_subreddits(
    reddit: FakeReddit, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    reddit.add_posts(2)
    collector = make_reddit(reddit, retry, subreddits=["r/acme", "gadgets"])
    run_collector(sqlite_engine, collector)
    search = reddit.server.requests_to(r"/search")[0]
    assert search.path == "/r/acme+gadgets/search"
    assert search.query["restrict_sr"] == "true"
    assert (search.query["q"], search.query["sort"], search.query["limit"]) == ("Acme", "new", "5")
    assert search.headers["user-agent"].startswith("listenwell/")
    token = reddit.server.requests_to(r"/access_token")[0]
    assert token.body == b"grant_type=client_credentials"


def test_comments_keep_only_those_mentioning_a_query(
    reddit: FakeReddit, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    kept = reddit.add_comments(3, text="ACME")
    reddit.add_comments(4, text="other brand")
    collector = make_reddit(reddit, retry, include_comments=True)
    assert collector.streams() == ["search:all:Acme", "comments:all"]
    result = run_collector(sqlite_engine, collector)
    assert result.ok, result.errors
    assert sorted(r["external_id"] for r in stored(sqlite_engine)) == sorted(kept)
    # The comments cursor covers what was scanned, matching or not.
    reddit.server.reset()
    reddit.add_comments(1, text="other brand")
    again = run_collector(sqlite_engine, collector)
    assert again.new == 0
    assert len(reddit.server.requests_to(r"/comments")) == 1


def test_overlap_rereads_late_indexed_posts(
    reddit: FakeReddit, sqlite_engine: Engine, retry: RetryPolicy
) -> None:
    reddit.add_posts(8)
    run_collector(sqlite_engine, make_reddit(reddit, retry))
    # Search indexes late: a post from 30 minutes before the cursor appears only now,
    # below a full page of posts already stored.
    oldest = reddit.posts[-1][1]["data"]
    late = {**oldest, "id": "late", "name": "t3_late", "created_utc": oldest["created_utc"] - 1800}
    reddit.posts.append(("t3_late", {"kind": "t3", "data": late}))
    no_overlap = run_collector(sqlite_engine, make_reddit(reddit, retry))
    assert no_overlap.new == 0  # control: it stops on the first page, older than the cursor
    with_overlap = run_collector(
        sqlite_engine, make_reddit(reddit, retry, overlap=timedelta(hours=1))
    )
    assert with_overlap.new == 1
    assert "t3_late" in {r["external_id"] for r in stored(sqlite_engine)}
