"""The inbox in the store (SQLite and PostgreSQL): sync, transitions, audit, locking, clocks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update

from listenwell import store
from listenwell.store import inbox
from listenwell.store.links import decide_link
from listenwell.store.models import AuditRow, ConversationRow, ReplyRow

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)


def add_mentions(engine, *rows: dict) -> dict[str, int]:
    """Store mentions (``source`` x unless given); returns external_id -> mention id."""
    store.upsert_mentions(
        engine,
        [
            store.Mention(
                source=r.get("source", "x"),
                external_id=r["id"],
                created_at=r.get("at", T0),
                text=r.get("text", f"post {r['id']}"),
                author_handle=r.get("author"),
                in_reply_to=r.get("in_reply_to"),
            )
            for r in rows
        ],
    )
    with engine.connect() as conn:
        from listenwell.store.models import MentionRow

        return dict(conn.execute(select(MentionRow.external_id, MentionRow.id)).all())


def conv_of(engine, mention_id: int) -> inbox.Conversation:
    with engine.connect() as conn:
        cid = conn.execute(
            select(ConversationRow.id).where(ConversationRow.mention_id == mention_id)
        ).scalar_one()
    return inbox.get_conversation(engine, cid)


def audit(engine, action: str) -> list[AuditRow]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.id))
        )


def one_conversation(engine, **mention) -> inbox.Conversation:
    ids = add_mentions(engine, {"id": "m1", **mention})
    inbox.ensure_conversations(engine)
    return conv_of(engine, ids["m1"])


def force_status(engine, conv_id: int, status: str) -> int:
    """Test setup only: put a conversation in ``status``; returns its version."""
    with engine.begin() as conn:
        conn.execute(
            update(ConversationRow)
            .where(ConversationRow.id == conv_id)
            .values(status=status, pending_since=None, resolved_at=None)
        )
    return inbox.get_conversation(engine, conv_id).version


# -- sync ---------------------------------------------------------------------------------


def test_sync_creates_one_conversation_per_mention_and_is_idempotent(engine):
    ids = add_mentions(
        engine, *({"id": f"m{i}", "at": T0 + timedelta(minutes=i)} for i in range(5))
    )
    batches: list[tuple[int, int]] = []
    assert (
        inbox.ensure_conversations(engine, batch_size=2, on_batch=lambda *b: batches.append(b)) == 5
    )
    assert batches == [(2, 2), (2, 2), (1, 1)]
    assert inbox.ensure_conversations(engine, batch_size=2) == 0
    c = conv_of(engine, ids["m3"])
    assert (c.status, c.priority, c.version, c.tags, c.assignee) == ("new", "normal", 1, (), None)
    assert c.opened_at == T0 + timedelta(minutes=3)
    assert c.first_response_at is None and c.customer_pk is None
    created = audit(engine, "conversation.create")
    assert sum(a.detail["created"] for a in created) == 5
    assert {a.actor for a in created} == {"system"}
    # A new mention later gets its conversation on the next sync.
    add_mentions(engine, {"id": "m9"})
    assert inbox.ensure_conversations(engine) == 1


def test_sync_links_customers_only_through_a_strong_or_confirmed_link(engine):
    store.upsert_customers(
        engine,
        [
            ("l1", store.Customer(customer_id="C1", name="Jane Doe")),
            ("l2", store.Customer(customer_id="C2", name="Bo Li")),
        ],
    )
    with engine.connect() as conn:
        from listenwell.store.models import CustomerRow

        pks = dict(conn.execute(select(CustomerRow.customer_id, CustomerRow.id)).all())
    ids = add_mentions(engine, {"id": "strong"}, {"id": "weak"})
    for ext, cust, strength in (("strong", "C1", "strong"), ("weak", "C2", "weak")):
        store.upsert_enrichments(
            engine,
            [
                store.EnrichmentResult(
                    mention_id=ids[ext],
                    stage="links",
                    label=cust,
                    score=0.9,
                    model_name="linker",
                    model_version="1",
                    data={"strength": strength, "customer_pk": pks[cust], "evidence": []},
                )
            ],
        )
    inbox.ensure_conversations(engine)
    strong, weak = conv_of(engine, ids["strong"]), conv_of(engine, ids["weak"])
    assert (strong.customer_pk, strong.customer_id, strong.customer_name) == (
        pks["C1"],
        "C1",
        "Jane Doe",
    )
    assert weak.customer_pk is None
    # An agent confirms the weak one: the conversation has the customer at once (without
    # bumping its version), so the sync has nothing left to do.
    decide_link(engine, ids["weak"], "C2", "confirmed", "alice")
    weak_now = conv_of(engine, ids["weak"])
    assert weak_now.customer_id == "C2" and weak_now.version == weak.version
    assert inbox.link_customers(engine) == 0
    # A conversation created before its mention was linked is filled in by the sync.
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE conversations SET customer_pk = NULL WHERE mention_id = :m"),
            {"m": ids["strong"]},
        )
    assert inbox.link_customers(engine) == 1
    assert conv_of(engine, ids["strong"]).customer_id == "C1"
    assert audit(engine, "conversation.link")[0].detail["linked"] == 1


# -- changes, audit, locking ------------------------------------------------------------


def test_every_allowed_transition_works_and_the_others_are_refused(engine):
    c = one_conversation(engine)
    for start in inbox.STATUSES:
        for target in inbox.STATUSES:
            if target == start:
                continue
            version = force_status(engine, c.id, start)
            if target in inbox.TRANSITIONS[start]:
                after = inbox.update_conversation(
                    engine, c.id, expected_version=version, actor="alice", status=target
                )
                assert (after.status, after.version) == (target, version + 1)
            else:
                with pytest.raises(inbox.InvalidTransitionError, match=f"is {start}: it can"):
                    inbox.update_conversation(
                        engine, c.id, expected_version=version, actor="alice", status=target
                    )
                assert inbox.get_conversation(engine, c.id).version == version
    assert "new" not in set().union(*inbox.TRANSITIONS.values())
    with pytest.raises(ValueError, match="unknown status"):
        inbox.update_conversation(engine, c.id, expected_version=1, actor="a", status="done")


def test_a_change_is_audited_with_who_what_and_when(engine):
    c = one_conversation(engine)
    before = store.models.utcnow()
    after = inbox.update_conversation(
        engine, c.id, expected_version=1, actor="alice", status="open", assignee="bob"
    )
    assert (after.status, after.assignee, after.updated_by, after.version) == (
        "open",
        "bob",
        "alice",
        2,
    )
    (row,) = audit(engine, "conversation.update")
    assert (row.actor, row.entity, row.entity_id) == ("alice", "conversation", str(c.id))
    assert row.detail == {
        "changes": {"status": ["new", "open"], "assignee": [None, "bob"]},
        "version": 2,
    }
    assert row.at >= before
    # Unassigning is a change too; KEEP (the default) is not.
    un = inbox.update_conversation(engine, c.id, expected_version=2, actor="bob", assignee="")
    assert un.assignee is None and un.version == 3
    same = inbox.update_conversation(engine, c.id, expected_version=3, actor="bob")
    assert same.version == 3 and len(audit(engine, "conversation.update")) == 2


def test_a_stale_version_is_a_conflict_naming_who_changed_it(engine):
    c = one_conversation(engine)
    seen_by_alice = inbox.get_conversation(engine, c.id).version
    seen_by_bob = inbox.get_conversation(engine, c.id).version
    inbox.update_conversation(
        engine, c.id, expected_version=seen_by_bob, actor="bob", status="pending"
    )
    with pytest.raises(inbox.ConflictError) as info:
        inbox.update_conversation(
            engine, c.id, expected_version=seen_by_alice, actor="alice", status="resolved"
        )
    message = str(info.value)
    assert f"conversation {c.id} was changed by bob at " in message
    assert "(now version 2, you had version 1); reload and try again" in message
    assert (info.value.version, info.value.changed_by) == (2, "bob")
    now = inbox.get_conversation(engine, c.id)
    assert (now.status, now.version) == ("pending", 2)  # bob's change stands
    assert [a.actor for a in audit(engine, "conversation.update")] == ["bob"]


def test_two_agents_at_once_exactly_one_wins(engine):
    c = one_conversation(engine)
    for round_ in range(3):
        version = inbox.get_conversation(engine, c.id).version
        barrier = threading.Barrier(2)
        outcomes: dict[str, object] = {}

        def change(who, tag, version=version, barrier=barrier, outcomes=outcomes) -> None:
            barrier.wait()
            try:
                inbox.update_conversation(
                    engine, c.id, expected_version=version, actor=who, add_tags=[tag]
                )
                outcomes[who] = "ok"
            except inbox.ConflictError as exc:
                outcomes[who] = exc

        threads = [
            threading.Thread(target=change, args=(who, f"{who}{round_}"))
            for who in ("alice", "bob")
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(str(type(o).__name__) for o in outcomes.values()) == [
            "ConflictError",
            "str",
        ]
        now = inbox.get_conversation(engine, c.id)
        assert now.version == version + 1
        winner = next(who for who, o in outcomes.items() if o == "ok")
        assert f"{winner}{round_}" in now.tags and now.updated_by == winner


def test_tags_are_normalised_added_and_removed(engine):
    c = one_conversation(engine)
    c = inbox.update_conversation(
        engine, c.id, expected_version=1, actor="a", add_tags=["Billing", " refund ", "billing"]
    )
    assert c.tags == ("billing", "refund") and c.version == 2
    c = inbox.update_conversation(
        engine, c.id, expected_version=2, actor="a", add_tags=["vip"], remove_tags=["REFUND"]
    )
    assert c.tags == ("billing", "vip")
    (last,) = audit(engine, "conversation.update")[-1:]
    assert last.detail["changes"]["tags"] == {"added": ["vip"], "removed": ["refund"]}
    # Adding a tag it has, or removing one it lacks, changes nothing.
    same = inbox.update_conversation(
        engine, c.id, expected_version=3, actor="a", add_tags=["vip"], remove_tags=["nope"]
    )
    assert same.version == 3
    for bad in ("", "two words", "x" * 51, "semi;colon"):
        with pytest.raises(ValueError, match="tag"):
            inbox.update_conversation(engine, c.id, expected_version=3, actor="a", add_tags=[bad])


def test_pending_time_is_added_to_paused_s_and_resolved_at_follows_reopening(engine):
    c = one_conversation(engine)

    def go(status: str, at: datetime) -> inbox.Conversation:
        current = inbox.get_conversation(engine, c.id)
        return inbox.update_conversation(
            engine, c.id, expected_version=current.version, actor="a", status=status, now=at
        )

    t1 = T0 + timedelta(hours=1)
    p = go("pending", t1)
    assert p.pending_since == t1 and p.paused_s == 0
    o = go("open", t1 + timedelta(seconds=90))
    assert o.pending_since is None and o.paused_s == pytest.approx(90)
    t2 = t1 + timedelta(hours=2)
    go("pending", t2)
    r = go("resolved", t2 + timedelta(seconds=30))
    assert r.paused_s == pytest.approx(120) and r.pending_since is None
    assert r.resolved_at == t2 + timedelta(seconds=30)
    reopened = go("open", t2 + timedelta(hours=1))
    assert reopened.resolved_at is None and reopened.paused_s == pytest.approx(120)
    closed = go("closed", t2 + timedelta(hours=2))
    assert closed.resolved_at == t2 + timedelta(hours=2)
    changes = [a.detail["changes"] for a in audit(engine, "conversation.update")]
    assert changes[1]["paused_s"] == [0.0, 90.0]


# -- listing ------------------------------------------------------------------------------


def test_list_filters_and_keyset_pages_in_priority_and_newest_order(engine):
    rows = [
        {"id": f"m{i}", "at": T0 + timedelta(minutes=i), "author": f"@u{i % 3}", "text": f"t{i}"}
        for i in range(12)
    ]
    rows[4]["text"] = "my Refund never came"
    ids = add_mentions(engine, *rows)
    inbox.ensure_conversations(engine)
    convs = {ext: conv_of(engine, mid) for ext, mid in ids.items()}
    # The escalation rules own priorities; set some directly as they would.
    with engine.begin() as conn:
        for ext, prio in (("m7", "urgent"), ("m2", "high"), ("m9", "high"), ("m5", "low")):
            conn.execute(
                update(ConversationRow)
                .where(ConversationRow.id == convs[ext].id)
                .values(priority=prio, escalated=prio == "urgent")
            )
    c3 = convs["m3"]
    inbox.update_conversation(
        engine, c3.id, expected_version=1, actor="a", status="resolved", add_tags=["billing"]
    )
    inbox.update_conversation(engine, convs["m6"].id, expected_version=1, actor="a", assignee="bo")

    pages, after = [], None
    while True:
        page = inbox.list_conversations(engine, limit=5, after=after)
        pages.append([c.external_id for c in page.items])
        if page.next_after is None:
            break
        after = page.next_after
    flat = [e for p in pages for e in p]
    assert flat[:3] == ["m7", "m2", "m9"]  # urgent, then high by waiting time
    assert flat[-1] == "m5"  # low last
    assert sorted(flat) == sorted(ids) and len(pages) == 3

    newest = inbox.list_conversations(engine, order="newest", limit=4)
    assert [c.external_id for c in newest.items] == ["m11", "m10", "m9", "m8"]
    more = inbox.list_conversations(engine, order="newest", limit=20, after=newest.next_after)
    assert [c.external_id for c in more.items][:2] == ["m7", "m6"] and more.next_after is None

    def ext(**kw) -> list[str]:
        return sorted(c.external_id for c in inbox.list_conversations(engine, **kw).items)

    assert ext(status="resolved") == ["m3"]
    assert "m3" not in ext(status=inbox.ACTIVE_STATUSES)
    assert ext(tag="Billing") == ["m3"]
    assert ext(assignee="bo") == ["m6"]
    assert len(ext(assignee="")) == 11
    assert ext(escalated=True) == ["m7"]
    assert ext(priority=["high"]) == ["m2", "m9"]
    assert ext(search="refund") == ["m4"]
    assert ext(search="@U1") == ["m1", "m10", "m4", "m7"]
    assert ext(search="100%") == []
    with pytest.raises(ValueError, match="invalid page cursor"):
        inbox.list_conversations(engine, after="n|bad")
    with pytest.raises(ValueError, match="unknown status"):
        inbox.list_conversations(engine, status="done")
    assert inbox.inbox_counts(engine) == {
        "new": 11,
        "open": 0,
        "pending": 0,
        "resolved": 1,
        "closed": 0,
    }
    frame = inbox.list_conversations(engine, limit=3).frame()
    assert list(frame["external_id"]) == ["m7", "m2", "m9"] and "version" in frame


# -- notes, thread, replies ---------------------------------------------------------------


def test_thread_has_parents_earlier_posts_notes_and_replies_in_time_order(engine):
    ids = add_mentions(
        engine,
        {"id": "100", "at": T0, "author": "@brand", "text": "We launched"},
        {"id": "101", "at": T0 + timedelta(minutes=5), "author": "@jdoe", "text": "old gripe"},
        {
            "id": "102",
            "at": T0 + timedelta(minutes=10),
            "author": "@jdoe",
            "text": "It broke",
            "in_reply_to": "100",
        },
        {"id": "200", "at": T0 + timedelta(minutes=1), "author": "@other", "text": "unrelated"},
    )
    inbox.ensure_conversations(engine)
    c = conv_of(engine, ids["102"])
    note = inbox.add_note(engine, c.id, author="alice", body="  VIP, be quick  ")
    assert note.body == "VIP, be quick"
    draft = inbox.create_reply(engine, c.id, body="Sorry! DM us", actor="alice")
    inbox.claim_reply(engine, draft.id, actor="alice")
    sent = inbox.mark_reply(
        engine,
        draft.id,
        status="sent",
        actor="alice",
        external_id="900",
        now=T0 + timedelta(hours=1),
    )
    # The customer answers our reply later.
    later = add_mentions(
        engine,
        {
            "id": "103",
            "at": T0 + timedelta(hours=2),
            "author": "@jdoe",
            "text": "thanks",
            "in_reply_to": "900",
        },
    )
    items = inbox.thread(engine, c.id)
    kinds = [(i.kind, i.relation) for i in items if i.kind == "mention"]
    assert kinds == [
        ("mention", "parent"),
        ("mention", "earlier"),
        ("mention", "this"),
        ("mention", "later"),
    ]
    assert [i.ref for i in items if i.kind == "mention"] == [
        ids["100"],
        ids["101"],
        ids["102"],
        later["103"],
    ]
    assert [i.at for i in items] == sorted(i.at for i in items)
    # The note was written now, long after the 2024 posts.
    assert [i.kind for i in items][-3:] == ["reply", "mention", "note"]
    reply_item = next(i for i in items if i.kind == "reply")
    assert (reply_item.ref, reply_item.relation, reply_item.at) == (sent.id, "sent", sent.sent_at)
    assert any(i.kind == "note" and i.text == "VIP, be quick" for i in items)
    assert (a := audit(engine, "conversation.note")) and a[0].actor == "alice"
    with pytest.raises(ValueError, match="empty"):
        inbox.add_note(engine, c.id, author="alice", body="  ")
    with pytest.raises(store.NotFoundError):
        inbox.thread(engine, 99_999)


def test_reply_lifecycle_keeps_failures_and_sets_the_first_response(engine):
    c = one_conversation(engine, source="x")
    with pytest.raises(ValueError, match="at most 280"):
        inbox.create_reply(engine, c.id, body="x" * 281, actor="alice")
    with pytest.raises(ValueError, match="empty"):
        inbox.create_reply(engine, c.id, body=" ", actor="alice")
    r = inbox.create_reply(engine, c.id, body="Hello {agent}", actor="alice", template=None)
    assert (r.status, r.platform, r.attempts, r.body) == ("draft", "x", 0, "Hello {agent}")
    target = inbox.claim_reply(engine, r.id, actor="alice")
    assert (target.attempt, target.in_reply_to, target.platform) == (1, "m1", "x")
    with pytest.raises(inbox.ReplyStateError, match="being sent"):
        inbox.claim_reply(engine, r.id, actor="bob")
    assert [x.id for x in inbox.list_replies(engine, status="sending")] == [r.id]
    failed = inbox.mark_reply(
        engine, r.id, status="failed", actor="alice", error="X refused\nthe reply (403)"
    )
    assert (failed.status, failed.error, failed.attempts) == (
        "failed",
        "X refused the reply (403)",
        1,
    )
    assert inbox.get_conversation(engine, c.id).first_response_at is None
    assert inbox.claim_reply(engine, r.id, actor="alice").attempt == 2
    t = T0 + timedelta(hours=3)
    sent = inbox.mark_reply(engine, r.id, status="sent", actor="alice", external_id="77", now=t)
    assert (sent.status, sent.error, sent.external_id, sent.sent_at) == ("sent", None, "77", t)
    conv = inbox.get_conversation(engine, c.id)
    assert (conv.status, conv.first_response_at, conv.version, conv.updated_by) == (
        "open",
        t,
        2,
        "alice",
    )
    with pytest.raises(inbox.ReplyStateError, match="already sent"):
        inbox.claim_reply(engine, r.id, actor="alice")
    with pytest.raises(inbox.ReplyStateError, match="not sending"):
        inbox.mark_reply(engine, r.id, status="failed", actor="alice", error="late")
    # A second reply leaves the first response time alone.
    r2 = inbox.create_reply(engine, c.id, body="More", actor="bob")
    inbox.claim_reply(engine, r2.id, actor="bob")
    inbox.mark_reply(engine, r2.id, status="sent", actor="bob", external_id="78")
    again = inbox.get_conversation(engine, c.id)
    assert again.first_response_at == t and again.version == 2
    actions = [a.action for a in audit(engine, "reply.sent")] + [
        a.action for a in audit(engine, "reply.failed")
    ]
    assert actions == ["reply.sent", "reply.sent", "reply.failed"]
    with engine.connect() as conn:  # replies are never deleted
        assert conn.execute(select(func.count()).select_from(ReplyRow)).scalar_one() == 2
