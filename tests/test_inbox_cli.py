"""`listenwell inbox ...`: the real CLI, a real database, replies to the fake Reddit and X."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cli_helpers import run

from listenwell.demo.fakes.reddit import FakeReddit
from listenwell.demo.fakes.x import FakeX

TWEET = "1800000000000000042"


def assert_one_line_error(code: int, err: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeReddit, FakeX]]:
    reddit, x = FakeReddit(), FakeX()
    reddit.server.start()
    x.server.start()
    yield reddit, x
    reddit.server.stop()
    x.server.stop()


@pytest.fixture
def cfg(tmp_path: Path, fakes, capsys, monkeypatch) -> str:
    """A config with a migrated SQLite database, sources on the fakes, and two mentions."""
    reddit, x = fakes
    reddit.reset()
    x.reset()
    # The replying Reddit account, as praw reads it from the environment.
    monkeypatch.setenv("praw_username", reddit.username)
    monkeypatch.setenv("praw_password", reddit.password)
    path = tmp_path / "listenwell.yaml"
    config = {
        "database_url": f"sqlite:///{tmp_path / 'inbox.db'}",
        "sources": {
            "reddit": {
                "client_id": reddit.client_id,
                "client_secret": reddit.client_secret,
                "oauth_url": reddit.server.base_url,
                "reddit_url": reddit.server.base_url,
            },
            "x": {"bearer_token": x.user_token, "api_base_url": x.server.base_url},
            "timeout_s": 2.0,
        },
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert run(capsys, "--config", str(path), "db", "upgrade")[0] == 0
    mentions = tmp_path / "m.jsonl"
    rows = [
        {
            "source": "x",
            "external_id": TWEET,
            "created_at": "2024-05-01T10:00:00Z",
            "author_handle": "@jdoe",
            "text": "My Acme order never came",
        },
        {
            "source": "reddit",
            "external_id": "t1_c00002",
            "created_at": "2024-05-01T11:00:00Z",
            "author_handle": "u/kim",
            "text": "Acme app crashes on start",
        },
    ]
    mentions.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert run(capsys, "--config", str(path), "import", "mentions", str(mentions))[0] == 0
    return str(path)


def test_every_inbox_command_has_help(capsys):
    code, out, _ = run(capsys, "inbox", "--help")
    assert code == 0
    commands = ("sync", "list", "show", "assign", "status", "tag", "note", "reply", "replies")
    for name in (*commands, "retry", "templates"):
        assert name in out
        code, text, _ = run(capsys, "inbox", name, "--help")
        assert code == 0 and "Usage" in text
    _, text, _ = run(capsys, "inbox", "assign", "--help")
    assert "--version" in text and "last writer" in text.replace("\n", " ")


def test_sync_list_show_and_change_a_conversation(cfg, capsys):
    code, out, _ = run(capsys, "--config", cfg, "inbox", "sync", "--json")
    assert code == 0 and json.loads(out) == {"created": 2, "linked": 0}
    code, out, _ = run(capsys, "--config", cfg, "inbox", "sync")
    assert code == 0 and "0 new conversations" in out

    code, out, _ = run(capsys, "--config", cfg, "inbox", "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].startswith("#1") and "x:@jdoe" in lines[0] and "order never came" in lines[0]

    code, out, err = run(capsys, "--config", cfg, "inbox", "assign", "1", "alice", "--by", "bo")
    assert code == 0, err
    assert out.strip() == "conversation 1: assigned to alice (version 2)"
    code, out, _ = run(
        capsys,
        "--config",
        cfg,
        "inbox",
        "tag",
        "1",
        "Refund",
        "vip",
        "--by",
        "bo",
        "--version",
        "2",
    )
    assert code == 0 and "tags refund, vip (version 3)" in out
    code, out, _ = run(capsys, "--config", cfg, "inbox", "tag", "1", "vip", "--remove")
    assert code == 0 and "tags refund (version 4)" in out
    code, out, _ = run(capsys, "--config", cfg, "inbox", "note", "1", "Called them", "--by", "bo")
    assert code == 0 and "note 1 added by bo" in out

    # A stale version is refused with who changed it; the change is not made.
    code, _, err = run(
        capsys, "--config", cfg, "inbox", "status", "1", "pending", "--by", "al", "--version", "2"
    )
    assert_one_line_error(code, err)
    assert "conversation 1 was changed by" in err and "now version 4" in err
    code, out, _ = run(capsys, "--config", cfg, "inbox", "status", "1", "pending", "--version", "4")
    assert code == 0 and "status pending (version 5)" in out
    code, _, err = run(capsys, "--config", cfg, "inbox", "status", "1", "new")
    assert_one_line_error(code, err)
    assert "is pending: it can become open or resolved or closed, not new" in err

    code, out, _ = run(capsys, "--config", cfg, "inbox", "list", "--assignee", "alice", "--json")
    data = json.loads(out)
    assert [c["id"] for c in data["items"]] == [1] and data["items"][0]["tags"] == ["refund"]
    code, out, _ = run(capsys, "--config", cfg, "inbox", "list", "--status", "closed")
    assert code == 0 and out.startswith("no conversations match (1 new, 1 pending)")

    code, out, _ = run(capsys, "--config", cfg, "inbox", "show", "1")
    assert code == 0
    assert "conversation 1 (version 5): pending, normal priority" in out
    assert "assignee: alice" in out and "tags: refund" in out and "Called them" in out
    code, out, _ = run(capsys, "--config", cfg, "inbox", "show", "1", "--json")
    shown = json.loads(out)
    assert [i["kind"] for i in shown["thread"]] == ["mention", "note"]
    code, _, err = run(capsys, "--config", cfg, "inbox", "show", "99")
    assert_one_line_error(code, err)
    assert "no conversation with id 99" in err
    code, _, err = run(capsys, "--config", cfg, "inbox", "tag", "1", "two words")
    assert_one_line_error(code, err)


def test_reply_sends_through_the_real_clients_and_failures_stay_visible(cfg, capsys, fakes):
    reddit, x = fakes
    run(capsys, "--config", cfg, "inbox", "sync")
    code, out, err = run(
        capsys, "--config", cfg, "inbox", "reply", "1", "--text", "Sorry! DM us.", "--by", "alice"
    )
    assert code == 0, err
    assert out.strip() == f"reply 1 sent on x as {x.posted[0]['id']}"
    assert x.posted[0]["in_reply_to_tweet_id"] == TWEET

    code, out, err = run(
        capsys, "--config", cfg, "inbox", "reply", "2", "--template", "acknowledge", "--by", "bo"
    )
    assert code == 0, err
    assert out.strip() == "reply 2 sent on reddit as t1_r00001"
    assert reddit.posted[0]["thing_id"] == "t1_c00002"
    assert reddit.posted[0]["text"].startswith("Hi there, thanks for reaching out.")
    assert reddit.posted[0]["text"].endswith("(case 2). - bo")

    # X refuses a duplicate: one-line error, and the reply is kept as a failed draft.
    code, _, err = run(capsys, "--config", cfg, "inbox", "reply", "1", "--text", "Sorry! DM us.")
    assert_one_line_error(code, err)
    assert "reply 3 failed: X refused the reply (403): You are not allowed" in err
    assert "`listenwell inbox retry 3`" in err
    code, out, _ = run(capsys, "--config", cfg, "inbox", "replies", "--failed")
    assert code == 0 and out.startswith("reply 3 ") and "duplicate content" in out

    # A draft saved for later, then sent with retry.
    code, out, _ = run(
        capsys, "--config", cfg, "inbox", "reply", "1", "--text", "Any news?", "--draft-only"
    )
    assert code == 0 and "reply 4 saved as a draft (x)" in out
    x.fail_next_post("503")
    code, _, err = run(capsys, "--config", cfg, "inbox", "retry", "4")
    assert_one_line_error(code, err)
    assert "X had a server error (HTTP 503)" in err
    code, out, _ = run(capsys, "--config", cfg, "inbox", "retry", "4", "--by", "carol")
    assert code == 0 and "reply 4 sent on x" in out

    code, out, _ = run(capsys, "--config", cfg, "inbox", "replies", "--json")
    statuses = {r["id"]: (r["status"], r["attempts"]) for r in json.loads(out)}
    assert statuses == {1: ("sent", 1), 2: ("sent", 1), 3: ("failed", 1), 4: ("sent", 2)}
    code, out, _ = run(capsys, "--config", cfg, "inbox", "replies", "--stuck")
    assert code == 0 and out.strip() == "no replies"
    code, out, _ = run(capsys, "--config", cfg, "inbox", "show", "1", "--json")
    assert json.loads(out)["conversation"]["status"] == "open"

    code, _, err = run(capsys, "--config", cfg, "inbox", "reply", "1")
    assert_one_line_error(code, err)
    assert "exactly one of --text and --template" in err
    code, _, err = run(capsys, "--config", cfg, "inbox", "reply", "1", "--template", "nope")
    assert_one_line_error(code, err)
    assert "no template 'nope'" in err


def test_stuck_replies_are_listed_and_need_force(cfg, capsys, engine_for):
    from listenwell.store import inbox

    run(capsys, "--config", cfg, "inbox", "sync")
    run(capsys, "--config", cfg, "inbox", "reply", "1", "--text", "Hello", "--draft-only")
    engine = engine_for(cfg)
    inbox.claim_reply(engine, 1, actor="alice")  # a send that crashed before its outcome
    code, out, _ = run(capsys, "--config", cfg, "inbox", "replies", "--stuck")
    assert code == 0 and out.startswith("reply 1 ") and " sending " in out
    code, _, err = run(capsys, "--config", cfg, "inbox", "retry", "1")
    assert_one_line_error(code, err)
    assert "--force" in err
    code, out, _ = run(capsys, "--config", cfg, "inbox", "retry", "1", "--force")
    assert code == 0 and "reply 1 sent on x" in out


def test_user_templates_file(cfg, capsys, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("ship: 'Hi {handle}, shipped! (case {case_id})'\n", encoding="utf-8")
    code, out, _ = run(capsys, "--config", cfg, "inbox", "templates", "--templates", str(path))
    assert code == 0 and "ship (yours)" in out and "acknowledge (built-in)" in out
    run(capsys, "--config", cfg, "inbox", "sync")
    code, out, _ = run(
        capsys,
        "--config",
        cfg,
        "inbox",
        "reply",
        "1",
        "--template",
        "ship",
        "--templates",
        str(path),
        "--draft-only",
    )
    assert code == 0
    code, out, _ = run(capsys, "--config", cfg, "inbox", "replies", "--drafts", "--json")
    assert json.loads(out)[0]["body"] == "Hi @jdoe, shipped! (case 1)"
    path.write_text("bad: 'Hi {email}'\n", encoding="utf-8")
    code, _, err = run(capsys, "--config", cfg, "inbox", "templates", "--templates", str(path))
    assert_one_line_error(code, err)
    assert "unknown placeholder {email}" in err


@pytest.fixture
def engine_for():
    from listenwell import store
    from listenwell.config import load_settings

    engines = []

    def make(cfg: str):
        eng = store.connect(load_settings(cfg).database_url)
        engines.append(eng)
        return eng

    yield make
    for eng in engines:
        eng.dispose()
