"""The fake APIs themselves: X's query language and filters, served records, pacing, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import nullcontext
from types import SimpleNamespace

import pytest
import requests

from listenwell.collectors.runner import Timings, run_collector
from listenwell.config import Settings
from listenwell.demo.fakes import server as server_module
from listenwell.demo.fakes.harness import make_x
from listenwell.demo.fakes.query import Doc, QueryError, compile_query
from listenwell.demo.fakes.x import FakeX, tweets_from_mentions, user_id

DOC = Doc(
    text="@acmehelp my acme-phone broke, #fail. support is slow",
    author="jdoe",
    reply_to="acmehelp",
    conversation_id="42",
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("acme", True),  # a whole word, case-insensitive
        ("ACME", True),
        ("acm", False),
        ('"support is slow"', True),
        ('"is support"', False),
        ("@AcmeHelp", True),
        ("@acme", False),
        ("#fail", True),
        ("from:jdoe", True),
        ("from:@JDoe", True),
        ("from:acmehelp", False),
        ("to:AcmeHelp", True),
        ("conversation_id:42", True),
        ("conversation_id:4", False),
        ("nothing OR slow", True),
        ("acme nothing", False),  # juxtaposition is AND
        ("acme -nothing", True),
        ("acme -slow", False),
        ("(nothing OR broke) from:jdoe", True),
        ("nothing OR broke from:other", False),  # AND binds tighter than OR
    ],
)
def test_query_language(query, expected):
    assert compile_query(query)(DOC) is expected


@pytest.mark.parametrize(
    ("query", "outcome"),
    [
        ("", pytest.raises(QueryError)),
        ("(acme", pytest.raises(QueryError)),
        ("acme OR", pytest.raises(QueryError)),
        ("acme)", pytest.raises(QueryError)),
        ('""', pytest.raises(QueryError)),
        ("acme OR (slow -fast)", nullcontext()),
    ],
)
def test_malformed_queries_are_refused(query, outcome):
    with outcome:
        compile_query(query)


RECORDS = [
    {
        "external_id": "1000",
        "created_at": "2024-03-01T10:00:00Z",
        "author_handle": "@Cust_1",
        "author_name": "Cust One",
        "text": "@AcmeHelp my phone broke",
        "in_reply_to": None,
    },
    {
        "external_id": "1001",
        "created_at": "2024-03-01T10:05:00Z",
        "author_handle": "@AcmeHelp",
        "author_name": None,
        "text": "@Cust_1 " + "sorry to hear that " * 20,
        "in_reply_to": "1000",
    },
    {
        "external_id": "1002",
        "created_at": "2024-03-01T10:09:00Z",
        "author_handle": "@Cust_1",
        "author_name": "Cust One",
        "text": "@AcmeHelp thanks",
        "in_reply_to": "1001",
    },
]


def test_records_become_x_wire_format():
    tweets, users = tweets_from_mentions(RECORDS)
    assert [t["id"] for t in tweets] == ["1002", "1001", "1000"]  # newest first
    first, reply, long_post = tweets[2], tweets[0], tweets[1]
    assert first["created_at"] == "2024-03-01T10:00:00.000Z"
    assert "referenced_tweets" not in first and first["conversation_id"] == "1000"
    assert reply["referenced_tweets"] == [{"type": "replied_to", "id": "1001"}]
    assert reply["conversation_id"] == "1000"  # the thread's first post
    assert reply["in_reply_to_user_id"] == user_id("AcmeHelp")
    assert len(long_post["text"]) == 280 and long_post["note_tweet"]["text"] == RECORDS[1]["text"]
    assert users[user_id("Cust_1")] == {
        "id": user_id("Cust_1"),
        "username": "Cust_1",
        "name": "Cust One",
    }
    assert users[user_id("AcmeHelp")]["name"] == "AcmeHelp"


def search(fake: FakeX, **params: str) -> requests.Response:
    return requests.get(
        fake.server.base_url + "/2/tweets/search/recent",
        params=params,
        headers={"Authorization": f"Bearer {fake.bearer_token}"},
        timeout=5,
    )


ACME = "@acmehelp OR from:acmehelp"


def test_search_honours_query_filters_and_pages(x):
    x.add_mentions(RECORDS)
    x.add_posts(25, text="Other")
    body = search(x, query="@acmehelp OR from:AcmeHelp", max_results="10").json()
    assert [t["id"] for t in body["data"]] == ["1002", "1001", "1000"]
    assert {u["username"] for u in body["includes"]["users"]} == {"Cust_1", "AcmeHelp"}
    assert "next_token" not in body["meta"]
    assert [t["id"] for t in search(x, query="to:acmehelp").json()["data"]] == ["1002"]
    assert [t["id"] for t in search(x, query=ACME, since_id="1000").json()["data"]] == [
        "1002",
        "1001",
    ]
    assert [t["id"] for t in search(x, query=ACME, until_id="1002").json()["data"]] == [
        "1001",
        "1000",
    ]
    window = search(
        x, query=ACME, start_time="2024-03-01T10:05:00Z", end_time="2024-03-01T10:09:00Z"
    )
    assert [t["id"] for t in window.json()["data"]] == ["1001"]  # start inclusive, end not
    assert search(x, query="nobody").json() == {"meta": {"result_count": 0}}
    assert search(x, query="(broken").status_code == 400
    # Paging: every generated post once, newest first, in pages of max_results.
    seen, token = [], None
    while True:
        params = {"query": "other", "max_results": "10"} | ({"next_token": token} if token else {})
        body = search(x, **params).json()
        seen += [t["id"] for t in body["data"]]
        token = body["meta"].get("next_token")
        if token is None:
            break
    assert len(seen) == len(set(seen)) == 25 and seen == sorted(seen, reverse=True)


def test_served_records_arrive_through_the_real_collector(x, retry, sqlite_engine):
    x.add_mentions(RECORDS)
    x.add_posts(30, text="Other")
    timings = Timings()
    result = run_collector(
        sqlite_engine, make_x(x, retry, queries=["@AcmeHelp OR from:AcmeHelp"]), timings=timings
    )
    assert (result.new, result.quarantined, result.errors) == (3, 0, [])
    assert {r.query["query"] for r in x.server.requests_to("/2/tweets")} == {
        "@AcmeHelp OR from:AcmeHelp"
    }
    assert timings.pages == result.pages == 1
    assert timings.fetch > 0 and timings.normalize > 0 and timings.store > 0


def test_timings_add_up_over_pages(x, retry, sqlite_engine):
    x.add_posts(25)
    timings = Timings()
    result = run_collector(sqlite_engine, make_x(x, retry), timings=timings)
    assert result.pages == timings.pages == 3
    before = (timings.fetch, timings.normalize, timings.store)
    run_collector(sqlite_engine, make_x(x, retry), timings=timings)
    assert timings.pages == 4 and timings.fetch > before[0] and timings.store > before[2]


def test_latency_paces_every_answer(x, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(server_module, "time", SimpleNamespace(sleep=waits.append))
    x.server.latency = 0.25
    try:
        search(x, query="acme")
        search(x, query="acme")
    finally:
        x.server.latency = 0.0
    assert waits == [0.25, 0.25]


def test_a_connection_the_client_closes_is_answered_with_connection_close(reddit):
    # prawcore asks for its token with "Connection: close"; an answer that does not say it
    # closes lets urllib3 reuse the dead socket (RemoteDisconnected on the next request).
    resp = requests.post(
        reddit.server.base_url + "/api/v1/access_token",
        auth=(reddit.client_id, reddit.client_secret),
        headers={"Connection": "close"},
        timeout=5,
    )
    assert resp.status_code == 200 and resp.headers["Connection"] == "close"
    kept = requests.get(reddit.server.base_url + "/r/all/search", timeout=5)
    assert "Connection" not in kept.headers  # keep-alive stays the default


def test_the_fakes_run_as_a_command_and_print_their_settings():
    with subprocess.Popen(
        [sys.executable, "-m", "listenwell.demo.fakes", "--mentions", "100"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if line.rstrip() == "}":
                    break
            settings = Settings.model_validate(json.loads("".join(lines)))
            x = settings.sources.x
            token = x.bearer_token.get_secret_value() if x.bearer_token else ""
            resp = requests.get(
                x.api_base_url + "/2/tweets/search/recent",
                params={"query": x.queries[0], "max_results": "100"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            assert resp.json()["meta"]["result_count"] == 100
        finally:
            proc.terminate()
            proc.wait(10)
