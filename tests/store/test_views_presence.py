"""Saved views and presence (store.views, store.presence), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crm_seed import at, conversation, mention
from sqlalchemy import select

from listenwell.store import inbox
from listenwell.store.errors import NotFoundError
from listenwell.store.links import decide_link
from listenwell.store.models import AuditRow
from listenwell.store.presence import activity, describe, leave, prune, touch, viewers
from listenwell.store.views import ViewError, delete_view, get_view, list_views, save_view


def _audit(engine, action: str) -> list[tuple[str, str | None, dict | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditRow.actor, AuditRow.entity_id, AuditRow.detail)
            .where(AuditRow.action == action)
            .order_by(AuditRow.id)
        ).all()
    return [tuple(r) for r in rows]


# ------------------------------------------------------------------------------ saved views


def test_save_list_replace_and_delete_views(engine):
    mine = save_view(
        engine,
        owner="ann",
        page="inbox",
        name="  My   urgent ",
        filters={"status": ["new", "open"], "priority": ["urgent"]},
        actor="user:ann",
    )
    assert mine.name == "My urgent" and not mine.shared
    team = save_view(
        engine,
        owner="bo",
        page="inbox",
        name="Team VIP",
        filters={"tag": "vip"},
        shared=True,
        actor="user:bo",
    )
    save_view(engine, owner="bo", page="inbox", name="Bo only", filters={}, actor="user:bo")
    save_view(engine, owner="ann", page="escalations", name="All", filters={}, actor="user:ann")

    # Own views first, then others' shared ones; private views of others never show.
    assert [(v.owner, v.name) for v in list_views(engine, owner="ann", page="inbox")] == [
        ("ann", "My urgent"),
        ("bo", "Team VIP"),
    ]
    assert [v.name for v in list_views(engine, owner="bo", page="inbox")] == ["Bo only", "Team VIP"]
    assert get_view(engine, team.id, viewer="ann").filters == {"tag": "vip"}
    private = list_views(engine, owner="bo", page="inbox")[0]
    with pytest.raises(NotFoundError):
        get_view(engine, private.id, viewer="ann")

    # The same name replaces the filters (and the shared flag) of that one view.
    again = save_view(
        engine,
        owner="ann",
        page="inbox",
        name="My urgent",
        filters={"priority": ["urgent", "high"]},
        shared=True,
        actor="user:ann",
    )
    assert again.id == mine.id
    stored = get_view(engine, mine.id, viewer="bo")
    assert stored.filters == {"priority": ["urgent", "high"]} and stored.shared

    # Only the owner deletes a view, shared or not.
    with pytest.raises(NotFoundError):
        delete_view(engine, team.id, owner="ann", actor="user:ann")
    delete_view(engine, mine.id, owner="ann", actor="user:ann")
    assert [v.name for v in list_views(engine, owner="ann", page="inbox")] == ["Team VIP"]

    saves = _audit(engine, "view.save")
    assert [s[0] for s in saves] == ["user:ann", "user:bo", "user:bo", "user:ann", "user:ann"]
    assert saves[0][2] == {"owner": "ann", "page": "inbox", "name": "My urgent", "shared": False}
    assert _audit(engine, "view.delete") == [
        ("user:ann", str(mine.id), {"owner": "ann", "page": "inbox", "name": "My urgent"})
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "   "}, "give the view a name"),
        ({"name": "x" * 101}, "at most 100 characters"),
        ({"page": "Inbox!"}, "invalid page"),
        ({"owner": " "}, "needs an owner"),
        ({"filters": ["not", "a", "dict"]}, "must be a mapping"),
        ({"filters": {"when": object()}}, "plain JSON values"),
        ({"filters": {"q": "x" * 10_001}}, "at most 10,000 characters"),
    ],
)
def test_invalid_views_are_refused_with_the_reason(engine, kwargs, message):
    args = {"owner": "ann", "page": "inbox", "name": "v", "filters": {}, **kwargs}
    with pytest.raises(ViewError, match=message):
        save_view(engine, actor="user:ann", **args)
    assert list_views(engine, owner="ann", page="inbox") == []


def test_hostile_view_names_and_filters_round_trip_verbatim(engine):
    name = '<script>alert("x")</script> **b**'
    filters = {"search": "'; DROP TABLE saved_views; --", "tag": "<b>"}
    view = save_view(engine, owner="ann", page="inbox", name=name, filters=filters, actor="t")
    back = get_view(engine, view.id, viewer="ann")
    assert back.name == name and back.filters == filters


# ------------------------------------------------------------------------------ presence


@pytest.fixture
def two_conversations(engine) -> tuple[int, int]:
    with engine.begin() as conn:
        m1 = mention(conn, at(1), "first")
        m2 = mention(conn, at(2), "second")
        return conversation(conn, m1, at(1)), conversation(conn, m2, at(2))


def test_touch_viewers_and_leave(engine, two_conversations):
    c1, c2 = two_conversations
    now = at(10, 12)
    touch(engine, c1, "ann", now=now - timedelta(minutes=1))
    touch(engine, c1, "bo", now=now - timedelta(minutes=3))
    touch(engine, c1, "cy", now=now - timedelta(minutes=9))  # gone for a while
    touch(engine, c2, "dee", now=now)

    seen = viewers(engine, c1, now=now)
    assert [v.username for v in seen] == ["ann", "bo"]
    assert seen[0].seen_at == now - timedelta(minutes=1)
    assert [v.username for v in viewers(engine, c1, exclude="ann", now=now)] == ["bo"]
    assert [v.username for v in viewers(engine, c1, within=timedelta(minutes=10), now=now)] == [
        "ann",
        "bo",
        "cy",
    ]

    # Touching again refreshes the same row (one row per conversation and user).
    touch(engine, c1, "cy", now=now)
    assert [v.username for v in viewers(engine, c1, now=now)] == ["cy", "ann", "bo"]

    leave(engine, c1, "ann")
    leave(engine, c1, "nobody")  # not an error
    assert [v.username for v in viewers(engine, c1, now=now)] == ["cy", "bo"]
    assert [v.username for v in viewers(engine, c2, now=now)] == ["dee"]


def test_touch_an_unknown_conversation_is_not_found(engine, two_conversations):
    with pytest.raises(NotFoundError, match="no conversation with id 999"):
        touch(engine, 999, "ann")
    with pytest.raises(ValueError, match="username"):
        touch(engine, two_conversations[0], "  ")


def test_prune_drops_stale_presence(engine, two_conversations):
    c1, c2 = two_conversations
    now = at(10, 12)
    touch(engine, c1, "ann", now=now - timedelta(days=2))
    touch(engine, c2, "ann", now=now - timedelta(hours=1))
    assert prune(engine, now=now) == 1
    assert viewers(engine, c1, within=timedelta(days=7), now=now) == []
    assert [v.username for v in viewers(engine, c2, within=timedelta(days=1), now=now)] == ["ann"]


def test_activity_lists_changes_replies_and_link_decisions(engine, two_conversations):
    from listenwell.store.records import Customer
    from listenwell.store.writes import upsert_customers

    c1, c2 = two_conversations
    conv = inbox.get_conversation(engine, c1)
    conv = inbox.update_conversation(
        engine, c1, expected_version=conv.version, actor="user:ann", assignee="ann"
    )
    inbox.update_conversation(
        engine,
        c1,
        expected_version=conv.version,
        actor="user:bo",
        status="pending",
        add_tags=["vip"],
    )
    inbox.add_note(engine, c1, author="user:bo", body="called")
    reply = inbox.create_reply(engine, c1, body="Hi", actor="user:ann")
    inbox.claim_reply(engine, reply.id, actor="user:ann")
    inbox.mark_reply(engine, reply.id, status="failed", actor="user:ann", error="X said no")
    upsert_customers(engine, [("1", Customer("C1", "Jo"))])
    decide_link(engine, conv.mention_id, "C1", "confirmed", "user:cy")
    inbox.update_conversation(  # another conversation's change is not listed
        engine, c2, expected_version=1, actor="user:zed", status="open"
    )

    items = activity(engine, c1, mention_id=conv.mention_id)
    assert [(a.actor, a.action) for a in items] == [
        ("user:cy", "link.confirmed"),
        ("user:ann", "reply.failed"),
        ("user:ann", "reply.sending"),
        ("user:ann", "reply.draft"),
        ("user:bo", "conversation.note"),
        ("user:bo", "conversation.update"),
        ("user:ann", "conversation.update"),
    ]
    assert [a.summary for a in items] == [
        "link confirmed (customer C1)",
        "reply failed: X said no",
        "sending a reply",
        "drafted a reply",
        "added a note",
        "status new -> pending; tags +vip",
        "assignee - -> ann",
    ]
    assert len(activity(engine, c1, limit=2)) == 2
    assert [a.action for a in activity(engine, c1)][0] == "reply.failed"  # no mention: no links


def test_describe_unknown_and_sparse_entries():
    assert describe("conversation.update", None) == "updated"
    assert describe(
        "conversation.update", {"changes": {"status": ["new", "open"]}, "cause": "reply sent"}
    ) == ("status new -> open (reply sent)")
    assert describe("something.else", {}) == "something.else"
