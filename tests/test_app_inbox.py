"""The Inbox page through Streamlit's AppTest: a real database, replies to the fake X and Reddit.

Each test signs in as a user of some role (``app_helpers.app_test``), opens the
inbox and works a conversation the way an agent would; what the page did is
then read back from the database (the conversation, the replies, the audit
log), and replies are checked on the fake platform that received them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import streamlit as st
import yaml
from app_helpers import app_test
from sqlalchemy import Engine, select
from streamlit.testing.v1 import AppTest

from listenwell import store
from listenwell.crm import auth
from listenwell.demo.fakes.reddit import FakeReddit
from listenwell.demo.fakes.x import FakeX
from listenwell.store import inbox, presence, views
from listenwell.store.links import list_decisions
from listenwell.store.models import AuditRow
from listenwell.store.users import User

PAGE = "app_pages/inbox.py"
TWEET = "1800000000000000042"
HOSTILE = '<script>alert("x")</script> **bold** [link](javascript:alert(1)) <img src=x onerror=1>'
AGENT = "test-agent"


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeReddit, FakeX]]:
    reddit, x = FakeReddit(), FakeX()
    reddit.server.start()
    x.server.start()
    yield reddit, x
    reddit.server.stop()
    x.server.stop()


@pytest.fixture
def db(tmp_path: Path, fakes, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A migrated database with three conversations; the config's sources are the fakes.

    Conversation 1: an X post by @jdoe. Conversation 2: a Reddit comment by u/kim,
    whose linker result is a weak suggestion of customer C2. Conversation 3: a
    Reddit post with hostile text and handle.
    """
    reddit, x = fakes
    reddit.reset()
    x.reset()
    monkeypatch.setenv("praw_username", reddit.username)
    monkeypatch.setenv("praw_password", reddit.password)
    url = f"sqlite:///{tmp_path / 'inbox.db'}"
    config = {
        "database_url": url,
        "brand": {"name": "Acme"},
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
    path = tmp_path / "listenwell.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("LISTENWELL_CONFIG", str(path))
    engine = store.connect(url)
    store.upgrade(engine)
    t0 = store.parse_timestamp("2024-05-01T10:00:00Z")
    store.upsert_mentions(
        engine,
        [
            store.Mention("x", TWEET, t0, "My Acme order never came", author_handle="@jdoe"),
            store.Mention(
                "reddit",
                "t1_c00002",
                t0 + timedelta(hours=1),
                "Acme app crashes on start",
                author_handle="u/kim",
                author_name="Kim",
            ),
            store.Mention(
                "reddit", "t3_h", t0 + timedelta(hours=2), HOSTILE, author_handle="<b>evil</b>"
            ),
        ],
    )
    store.upsert_customers(
        engine, [("1", store.Customer("C1", "Jo Doe")), ("2", store.Customer("C2", "Kim Lee"))]
    )
    kim = _mention_id(engine, "t1_c00002")
    store.upsert_enrichments(
        engine,
        [
            store.EnrichmentResult(
                kim,
                "links",
                "C2",
                0.55,
                "listenwell-evidence-linker",
                "1",
                data={
                    "strength": "weak",
                    "evidence": [{"kind": "name", "value": "Kim", "weight": 0.55}],
                    "suggestions": [],
                },
            )
        ],
    )
    assert inbox.ensure_conversations(engine) == 3
    try:
        yield engine
    finally:
        engine.dispose()


def _mention_id(engine, external_id: str) -> int:
    frame = store.mentions_frame(engine, limit=100)
    return int(frame.loc[frame["external_id"] == external_id, "id"].iloc[0])


def open_inbox(role: str = "agent") -> AppTest:
    at = app_test(role)
    at.run()
    assert not at.exception, at.exception
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    return at


def open_conversation(at: AppTest, cid: int) -> AppTest:
    at.selectbox(key="inbox_pick").set_value(cid).run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def messages(at: AppTest) -> list[str]:
    return [str(e.value) for e in (*at.error, *at.success, *at.warning)]


def markup(at: AppTest) -> str:
    """Everything a page drew as markdown (where text could be interpreted)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    return "\n".join(str(p) for p in parts)


# How to tell the page's tables apart (only a selectable table carries its key).
TABLES = {
    "inbox_table": lambda df: "mentioned_at" in df.columns,
    "inbox_thread": lambda df: "relation" in df.columns,
    "inbox_replies": lambda df: "attempts" in df.columns,
    "inbox_author": lambda df: "field" in df.columns and "handle" in set(df["field"]),
    "inbox_link": lambda df: "field" in df.columns and "linked customer" in set(df["field"]),
    "inbox_evidence": lambda df: list(df.columns) == ["kind", "value", "weight"],
    "inbox_activity": lambda df: list(df.columns) == ["when", "who", "what"],
}


def frame(at: AppTest, key: str):
    found = [df.value for df in at.dataframe if TABLES[key](df.value)]
    assert len(found) == 1, f"{len(found)} tables {key!r} on the page"
    return found[0]


def audit(engine, action: str) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditRow.actor, AuditRow.entity_id)
            .where(AuditRow.action == action)
            .order_by(AuditRow.id)
        ).all()
    return [(r.actor, r.entity_id) for r in rows]


# ------------------------------------------------------------------------------ roles


def test_an_analyst_cannot_see_the_inbox(db):
    at = app_test("analyst")
    at.run()
    assert not at.exception
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)  # not in an analyst's navigation
    # Run directly, the page itself refuses before reading anything.
    page = AppTest.from_file(str(Path(__file__).resolve().parents[1] / PAGE), default_timeout=60)
    page.session_state["listenwell_user"] = User("ana", "analyst")
    page.run()
    assert not page.exception
    assert [e.value for e in page.error] == [
        "Your role (analyst) cannot see the inbox. Ask an admin if you need to."
    ]
    assert not page.dataframe and not page.title


def test_the_list_pages_by_keyset_and_filters(db):
    at = open_inbox()
    listed = frame(at, "inbox_table")
    assert sorted(listed["id"]) == [1, 2, 3]
    assert set(listed["status"]) == {"new"}
    at.text_input(key="inbox_f_search").input("crashes").run()
    assert frame(at, "inbox_table")["id"].tolist() == [2]
    at.text_input(key="inbox_f_search").input("").run()
    inbox.update_conversation(db, 2, expected_version=1, actor="user:bob", assignee=AGENT)
    at.selectbox(key="inbox_f_assignee").set_value("*me").run()
    assert frame(at, "inbox_table")["id"].tolist() == [2]
    at.selectbox(key="inbox_f_assignee").set_value("*unassigned").run()
    assert frame(at, "inbox_table")["id"].tolist() == [1, 3]
    at.selectbox(key="inbox_f_assignee").set_value("*anyone").run()
    at.multiselect(key="inbox_f_status").set_value(["closed"]).run()
    assert any("No conversations match" in i.value for i in at.info)


def test_next_and_previous_page(db):
    t0 = store.parse_timestamp("2024-06-01T00:00:00Z")
    store.upsert_mentions(
        db,
        [
            store.Mention("x", f"9{i:03d}", t0 + timedelta(minutes=i), f"more {i}")
            for i in range(55)
        ],
    )
    inbox.ensure_conversations(db)
    at = open_inbox()
    first = frame(at, "inbox_table")["id"].tolist()
    assert len(first) == 50 and first[:3] == [1, 2, 3]  # the longest waiting first
    assert at.button(key="inbox_prev").disabled
    click(at, "inbox_next")
    second = frame(at, "inbox_table")["id"].tolist()
    assert second == list(range(51, 59)) and at.button(key="inbox_next").disabled
    assert "Page 2, 8 conversations, 50 per page." in [c.value for c in at.caption]
    click(at, "inbox_prev")
    assert frame(at, "inbox_table")["id"].tolist() == first
    # Changing a filter starts again from the first page.
    click(at, "inbox_next")
    at.checkbox(key="inbox_f_escalated").check().run()
    assert any("No conversations match" in i.value for i in at.info)
    assert "Page 1, 0 conversations, 50 per page." in [c.value for c in at.caption]


def test_edit_widgets_are_hidden_and_never_write_without_the_permission(db, monkeypatch):
    monkeypatch.setitem(
        auth.PERMISSIONS, "inbox.edit", (frozenset({"admin"}), "Assign, tag, add notes")
    )
    monkeypatch.setitem(auth.PERMISSIONS, "inbox.reply", (frozenset({"admin"}), "Reply"))
    at = open_conversation(open_inbox("agent"), 1)
    keys = {b.key for b in at.button}
    assert not {"inbox_assign", "inbox_send", "inbox_add_note", "inbox_set_status"} & keys
    assert "Your role can read the inbox but not change it." in [c.value for c in at.caption]
    assert inbox.get_conversation(db, 1).version == 1


# ------------------------------------------------------------------------------ working it


def test_assign_tag_status_and_note_are_audited_as_the_user(db):
    at = open_conversation(open_inbox(), 1)
    at.selectbox(key="inbox_assign_to_1").set_value(AGENT)
    click(at, "inbox_assign")
    assert any("assigned to test-agent (version 2)" in m for m in messages(at)), messages(at)
    c = inbox.get_conversation(db, 1)
    assert (c.assignee, c.updated_by, c.version) == (AGENT, f"user:{AGENT}", 2)

    at.text_input(key="inbox_tags_add").input("Refund, vip")
    click(at, "inbox_tag")
    assert inbox.get_conversation(db, 1).tags == ("refund", "vip")
    at.selectbox(key="inbox_status_to").set_value("pending")
    click(at, "inbox_set_status")
    at.text_area(key="inbox_note_1").input("Called them")
    click(at, "inbox_add_note")
    c = inbox.get_conversation(db, 1)
    assert (c.status, c.version) == ("pending", 4)
    assert [n.body for n in inbox.list_notes(db, 1)] == ["Called them"]
    assert audit(db, "conversation.update") == [(f"user:{AGENT}", "1")] * 3
    assert audit(db, "conversation.note") == [(f"user:{AGENT}", "1")]
    # The activity panel says who did what.
    log = frame(at, "inbox_activity")
    assert log["who"].tolist()[:2] == [f"user:{AGENT}", f"user:{AGENT}"]
    assert "status new -> pending" in log["what"].tolist()


def test_a_stale_version_is_a_one_line_message_naming_who_changed_it(db):
    at = open_conversation(open_inbox(), 1)
    # Someone else assigns it while the agent has it open (the page shows version 1).
    inbox.update_conversation(db, 1, expected_version=1, actor="user:bob", assignee="bob")
    at.selectbox(key="inbox_assign_to_1").set_value(AGENT)
    click(at, "inbox_assign")
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert "was changed by user:bob" in errors[0] and "now version 2, you saw 1" in errors[0]
    c = inbox.get_conversation(db, 1)
    assert (c.assignee, c.version) == ("bob", 2)  # the stale change was not written
    # The page now shows the latest version: the same change goes through.
    at.selectbox(key="inbox_assign_to_1").set_value(AGENT)
    click(at, "inbox_assign")
    assert inbox.get_conversation(db, 1).assignee == AGENT


def test_reply_goes_out_through_the_real_client_and_a_failure_stays_a_failed_draft(db, fakes):
    reddit, x = fakes
    at = open_conversation(open_inbox(), 1)
    # A canned reply, filled in for this conversation and the signed-in agent.
    at.selectbox(key="inbox_template").set_value("acknowledge")
    click(at, "inbox_use_template")
    body = at.text_area(key="inbox_reply_1").value
    assert body.startswith("Hi there, thanks for reaching out.") and "(case 1)" in body
    assert body.endswith("- Test agent")
    at.text_area(key="inbox_reply_1").input("Sorry! DM us.")
    click(at, "inbox_send")
    assert x.posted[-1]["text"] == "Sorry! DM us."
    assert x.posted[-1]["in_reply_to_tweet_id"] == TWEET
    [sent] = inbox.list_replies(db, conversation_id=1)
    assert (sent.status, sent.actor, sent.external_id) == (
        "sent",
        f"user:{AGENT}",
        x.posted[-1]["id"],
    )
    assert any(f"Reply {sent.id} sent on x" in m for m in messages(at))
    assert inbox.get_conversation(db, 1).status == "open"  # the first reply opens it
    assert at.text_area(key="inbox_reply_1").value == ""

    # X fails: the reply stays as a failed draft with the reason, then goes out on a retry.
    x.fail_next_post("503")
    at.text_area(key="inbox_reply_1").input("Any news?")
    click(at, "inbox_send")
    failed = inbox.list_replies(db, conversation_id=1, status="failed")
    assert [r.body for r in failed] == ["Any news?"]
    assert failed[0].error == "X had a server error (HTTP 503)"
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "X had a server error (HTTP 503)" in errors[0]
    assert "failed draft" in errors[0]
    shown = frame(at, "inbox_replies")
    assert shown.loc[shown["reply"] == failed[0].id, "error"].tolist() == [failed[0].error]
    at.selectbox(key="inbox_retry_pick").set_value(failed[0].id)
    click(at, "inbox_retry")
    assert inbox.get_reply(db, failed[0].id).status == "sent"
    assert x.posted[-1]["text"] == "Any news?"
    assert audit(db, "reply.sent") == [(f"user:{AGENT}", "1"), (f"user:{AGENT}", "2")]


def test_reply_on_reddit_goes_through_praw(db, fakes):
    reddit, _ = fakes
    at = open_conversation(open_inbox(), 2)
    at.text_area(key="inbox_reply_2").input("We are on it")
    click(at, "inbox_send")
    assert reddit.posted[-1]["thing_id"] == "t1_c00002"
    assert inbox.list_replies(db, conversation_id=2)[0].status == "sent"


def test_confirm_a_suggested_link_with_its_evidence(db):
    at = open_conversation(open_inbox(), 2)
    link = frame(at, "inbox_link").set_index("field")["value"]
    assert link["linker's candidate"] == "C2" and link["linker's strength"] == "weak"
    assert link["linked customer"] == "-"  # a weak suggestion is not a link
    assert frame(at, "inbox_evidence").to_dict("records") == [
        {"kind": "name", "value": "Kim", "weight": 0.55}
    ]
    assert at.selectbox(key="inbox_link_customer").value == "C2"
    at.text_input(key="inbox_link_note").input("same name, asked in DM")
    click(at, "inbox_link_confirm")
    mention = inbox.get_conversation(db, 2).mention_id
    [decision] = list_decisions(db, mention)
    assert (decision.customer_id, decision.decision, decision.actor) == (
        "C2",
        "confirmed",
        f"user:{AGENT}",
    )
    assert decision.note == "same name, asked in DM"
    link = frame(at, "inbox_link").set_index("field")["value"]
    assert link["linked customer"] == "C2" and link["link confidence"] == "1.00"
    assert link["link evidence"].startswith(f"agent user:{AGENT} (confirmed)")
    assert audit(db, "link.confirmed") == [(f"user:{AGENT}", str(mention))]


# ------------------------------------------------------------------------------ views, presence


def test_saved_view_round_trip_and_sharing(db):
    at = open_inbox()
    at.multiselect(key="inbox_f_status").set_value(["new", "pending"])
    at.multiselect(key="inbox_f_priority").set_value(["normal"])
    at.text_input(key="inbox_f_search").input("Acme")
    at.run()
    at.text_input(key="inbox_view_name").input("My Acme queue")
    at.checkbox(key="inbox_view_shared").check()
    click(at, "inbox_view_save")
    [view] = views.list_views(db, owner=AGENT, page="inbox")
    assert view.shared and view.filters["search"] == "Acme"
    assert view.filters["status"] == ["new", "pending"] and view.filters["priority"] == ["normal"]
    assert audit(db, "view.save") == [(f"user:{AGENT}", str(view.id))]

    # Change the filters, then pick the view: they come back.
    at.selectbox(key="inbox_view").set_value(None).run()
    at.text_input(key="inbox_f_search").input("")
    at.multiselect(key="inbox_f_status").set_value(["closed"]).run()
    at.selectbox(key="inbox_view").set_value(view.id).run()
    assert not at.exception
    assert at.text_input(key="inbox_f_search").value == "Acme"
    assert at.multiselect(key="inbox_f_status").value == ["new", "pending"]
    assert frame(at, "inbox_table")["id"].tolist() == [1, 2]  # the two posts naming Acme

    # A manager sees the shared view, but only its owner may delete it.
    other = open_inbox("manager")
    assert other.selectbox(key="inbox_view").options == [
        "(none)",
        f"My Acme queue (shared by {AGENT})",
    ]
    other.selectbox(key="inbox_view").set_value(view.id).run()
    assert not [b for b in other.button if b.key == "inbox_view_delete"]
    click(at, "inbox_view_delete")
    assert views.list_views(db, owner=AGENT, page="inbox") == []


def test_presence_shows_who_else_has_it_open(db):
    presence.touch(db, 1, "bob")
    presence.touch(db, 1, "old", now=store.parse_timestamp("2024-01-01T00:00:00Z"))
    at = open_conversation(open_inbox(), 1)
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("Also open by bob (0 min ago)") for w in warnings), warnings
    assert not any("old" in w for w in warnings)
    # The page said the agent has it open, so bob sees the agent.
    assert [v.username for v in presence.viewers(db, 1, exclude="bob")] == [AGENT]
    # Moving to another conversation leaves the first one.
    open_conversation(at, 2)
    assert [v.username for v in presence.viewers(db, 1)] == ["bob"]
    assert [v.username for v in presence.viewers(db, 2)] == [AGENT]


# ------------------------------------------------------------------------------ hostile text


def test_hostile_text_is_data_not_markup(db):
    at = open_conversation(open_inbox(), 3)
    listed = frame(at, "inbox_table")
    assert HOSTILE in listed["text"].tolist() and "<b>evil</b>" in listed["author_handle"].tolist()
    assert HOSTILE in frame(at, "inbox_thread")["text"].tolist()
    profile = frame(at, "inbox_author").set_index("field")["value"]
    assert profile["handle"] == "<b>evil</b>"
    # A hostile tag and a hostile actor name come back as escaped text in messages.
    inbox.update_conversation(db, 3, expected_version=1, actor="<b>evil</b>", assignee="x")
    at.selectbox(key="inbox_assign_to_3").set_value(AGENT)
    click(at, "inbox_assign")
    drawn = markup(at)
    assert "<script>" not in drawn and "<b>" not in drawn and "[link](" not in drawn
    assert "changed by \\<b\\>evil\\</b\\>" in drawn
