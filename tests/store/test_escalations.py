"""The SLA sweep, the queue, the history and the export columns, on SQLite and PostgreSQL.

Every test drives a controlled clock (``now``) through the upgrade paths: reminders, each
rung of the ladder up to the manager, the final breach, pauses while pending, weekends,
idempotent passes and conflicts with an agent's edit.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from listenwell import store
from listenwell.crm import rules as cr
from listenwell.crm.sla import Screen, assess
from listenwell.store import escalations as se
from listenwell.store.models import AuditRow, ConversationRow, EscalationEventRow, MentionRow

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC

RULES = """
rules:
  - {name: legal, priority: urgent, when: {keywords: [lawyer]}}
sla:
  timezone: UTC
  hours: {mon: 09:00-17:00, tue: 09:00-17:00, wed: 09:00-17:00, thu: 09:00-17:00,
          fri: 09:00-17:00}
  holidays: [2024-05-09]
  reminder_at: 0.8
  targets:
    urgent: {first_response_minutes: 15, resolution_minutes: 60}
    high: {first_response_minutes: 30, resolution_minutes: 120}
    normal: {first_response_minutes: 60, resolution_minutes: 240}
    low: {first_response_minutes: 120, resolution_minutes: 480}
  upgrades: {raise_priority: true, supervisor_minutes: 30, manager_minutes: 60}
"""


@pytest.fixture
def policy():
    return cr.RuleSet(cr.parse_rules(RULES, "test"), RULES).policy


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


_ids = itertools.count()


def conversation(engine, text: str = "hello", **kw) -> int:
    """A mention and its conversation (inserted directly: the inbox is not needed here)."""
    opened = kw.get("opened_at", T0)
    store.upsert_mentions(
        engine,
        [
            store.Mention(
                source="x",
                external_id=f"m{next(_ids)}",
                created_at=opened,
                text=text,
                author_handle="@cust",
            )
        ],
    )
    with engine.begin() as conn:
        mid = conn.execute(select(MentionRow.id).order_by(MentionRow.id.desc()).limit(1)).scalar()
        values = {"mention_id": mid, "status": "open", "opened_at": T0, **kw}
        return int(
            conn.execute(insert(ConversationRow.__table__).values(**values)).inserted_primary_key[0]
        )


def row(engine, cid: int):
    with engine.connect() as conn:
        return conn.execute(select(ConversationRow).where(ConversationRow.id == cid)).one()


def kinds(engine, cid: int) -> list[tuple]:
    return [
        (e.kind, e.from_level, e.to_level, e.priority) for e in se.escalation_history(engine, cid)
    ]


def swept(engine, minutes: float, policy) -> dict:
    r = se.sweep(engine, at(minutes), policy)
    return {"reminded": r.reminded, "upgraded": r.upgraded, "breached": r.breached}


NOTHING = {"reminded": 0, "upgraded": 0, "breached": 0}


def test_reminder_then_every_upgrade_up_to_the_manager(engine, policy):
    cid = conversation(engine)
    steps = [
        (47, NOTHING),
        (48, {"reminded": 1, "upgraded": 0, "breached": 0}),  # 80 % of 60 minutes
        (48, NOTHING),  # the same now again: nothing
        (59, NOTHING),
        (60, {"reminded": 0, "upgraded": 1, "breached": 0}),  # normal -> high
        (60, NOTHING),
        (84, {"reminded": 1, "upgraded": 0, "breached": 0}),  # high: 80 % of 30 minutes
        (90, {"reminded": 0, "upgraded": 1, "breached": 0}),  # high -> urgent
        (105, {"reminded": 0, "upgraded": 1, "breached": 0}),  # urgent (15) -> supervisor
        (135, {"reminded": 0, "upgraded": 1, "breached": 0}),  # supervisor (30) -> manager
        (135, NOTHING),
        (195, {"reminded": 0, "upgraded": 0, "breached": 1}),  # manager (60): final breach
        (195, NOTHING),
        (400, NOTHING),
    ]
    for minutes, expected in steps:
        assert swept(engine, minutes, policy) == expected, minutes
    assert kinds(engine, cid) == [
        ("reminded", 0, 0, "normal"),
        ("upgraded", 0, 1, "high"),
        ("reminded", 1, 1, "high"),
        ("upgraded", 1, 1, "urgent"),
        ("upgraded", 1, 2, "urgent"),
        ("upgraded", 2, 3, "urgent"),
        ("breached", 3, 3, "urgent"),
    ]
    r = row(engine, cid)
    assert (r.priority, r.escalation_level, r.status) == ("urgent", 3, "open")
    assert r.escalation["sla"]["final"] is True
    assert r.reminded_at == at(84)
    assert r.version == 5  # one bump per upgrade; reminders and the final breach do not bump
    first = se.escalation_history(engine, cid)[1]
    assert first.at == at(60) and first.actor == "system:sla"
    assert first.detail["metric"] == "first_response"
    assert first.detail["target_minutes"] == 60 and first.detail["elapsed_minutes"] == 60
    assert (first.detail["from_priority"], first.detail["to_priority"]) == ("normal", "high")
    assert first.detail["due_at"] == at(60).isoformat()


def test_out_of_hours_weekends_and_holidays_do_not_count(engine, policy):
    friday = datetime(2024, 5, 10, 16, 30, tzinfo=UTC)
    conversation(engine, opened_at=friday)
    for now in (
        datetime(2024, 5, 10, 16, 59, tzinfo=UTC),
        datetime(2024, 5, 11, 12, 0, tzinfo=UTC),  # Saturday
        datetime(2024, 5, 13, 9, 17, tzinfo=UTC),  # Monday: 47 business minutes
    ):
        assert se.sweep(engine, now, policy).reminded == 0
    assert se.sweep(engine, datetime(2024, 5, 13, 9, 18, tzinfo=UTC), policy).reminded == 1
    assert se.sweep(engine, datetime(2024, 5, 13, 9, 29, tzinfo=UTC), policy).upgraded == 0
    assert se.sweep(engine, datetime(2024, 5, 13, 9, 30, tzinfo=UTC), policy).upgraded == 1
    # Thursday 2024-05-09 is a holiday: opened Wednesday 16:30, due Friday 09:30.
    wed = conversation(engine, "holiday", opened_at=datetime(2024, 5, 8, 16, 30, tzinfo=UTC))
    assert se.sweep(engine, datetime(2024, 5, 9, 16, 0, tzinfo=UTC), policy).upgraded == 0
    assert row(engine, wed).priority == "normal"
    se.sweep(engine, datetime(2024, 5, 10, 9, 30, tzinfo=UTC), policy)
    assert row(engine, wed).priority == "high"


def test_the_clock_stops_while_pending_and_resumes_without_the_pause(engine, policy):
    cid = conversation(engine, status="pending", pending_since=at(20))
    for minutes in (60, 300, 24 * 60):
        assert swept(engine, minutes, policy) == NOTHING
    # The customer answers the next day at 10:00; the inbox closes the spell (wall seconds)
    # and audits it; the business time pending was 09:20-17:00 plus 09:00-10:00.
    resumed = datetime(2024, 5, 7, 10, 0, tzinfo=UTC)
    wall = (resumed - at(20)).total_seconds()
    with engine.begin() as conn:
        conn.execute(
            update(ConversationRow)
            .where(ConversationRow.id == cid)
            .values(status="open", pending_since=None, paused_s=wall, version=3)
        )
        for changes in (
            {"status": ["open", "pending"], "pending_since": at(20).isoformat()},
            {"status": ["pending", "open"], "paused_s": [0.0, wall]},
        ):
            conn.execute(
                insert(AuditRow.__table__).values(
                    actor="agent",
                    action="conversation.update",
                    entity="conversation",
                    entity_id=str(cid),
                    detail={"changes": changes, "version": 2},
                )
            )
    assert se.pending_spells(engine, [cid]) == {cid: [(at(20), resumed)]}
    # 20 minutes ran before the pause: the reminder is due 28 business minutes after 10:00.
    assert se.sweep(engine, resumed + timedelta(minutes=27), policy).reminded == 0
    assert se.sweep(engine, resumed + timedelta(minutes=28), policy).reminded == 1
    assert se.sweep(engine, resumed + timedelta(minutes=39), policy).upgraded == 0
    assert se.sweep(engine, resumed + timedelta(minutes=40), policy).upgraded == 1


def test_a_pause_known_only_as_a_total_counts_as_paused_time(engine, policy):
    # No audit trail (imported data): paused_s is then taken as paused business seconds.
    conversation(engine, paused_s=30 * 60.0)
    assert se.sweep(engine, at(59), policy).upgraded == 0
    assert se.sweep(engine, at(89), policy).upgraded == 0
    assert se.sweep(engine, at(90), policy).upgraded == 1


def test_a_breach_before_going_pending_upgrades_and_the_new_stage_waits(engine, policy):
    cid = conversation(engine, status="pending", pending_since=at(90))
    assert swept(engine, 120, policy)["upgraded"] == 1  # breached at 60, while running
    r = row(engine, cid)
    assert (r.priority, r.escalation["sla"]["since"]) == ("high", at(120).isoformat())
    for minutes in (121, 400):  # still pending: the high stage has not started to run
        assert swept(engine, minutes, policy) == NOTHING


def test_the_first_response_switches_to_the_resolution_target(engine, policy):
    cid = conversation(engine, first_response_at=at(30))
    assert swept(engine, 60, policy) == NOTHING  # answered in time
    assert swept(engine, 191, policy) == NOTHING
    assert swept(engine, 192, policy)["reminded"] == 1  # 80 % of 240
    assert swept(engine, 240, policy)["upgraded"] == 1
    detail = se.escalation_history(engine, cid)[-1].detail
    assert detail["metric"] == "resolution" and detail["target_minutes"] == 240


def test_resolved_and_closed_conversations_are_left_alone(engine, policy):
    done = conversation(engine, status="resolved")
    gone = conversation(engine, "closed", status="closed")
    r = se.sweep(engine, at(600), policy)
    assert (r.open, r.upgraded) == (0, 0)
    assert kinds(engine, done) == [] and kinds(engine, gone) == []


def test_a_conversation_changed_meanwhile_is_skipped(engine, policy, monkeypatch):
    cid = conversation(engine)
    real = se._fetch_open

    def read_then_agent_edits(conn):
        out = real(conn)
        with engine.begin() as c:
            c.execute(update(ConversationRow).where(ConversationRow.id == cid).values(version=9))
        return out

    monkeypatch.setattr(se, "_fetch_open", read_then_agent_edits)
    r = se.sweep(engine, at(60), policy)
    assert (r.upgraded, r.conflicts) == (0, 1)
    assert kinds(engine, cid) == []
    monkeypatch.setattr(se, "_fetch_open", real)
    assert se.sweep(engine, at(61), policy).upgraded == 1


def test_the_screen_passes_every_conversation_that_needs_an_action(engine, policy):
    for i, minutes in enumerate((10, 40, 47, 48, 60, 61, 200)):
        conversation(engine, f"c{i}", opened_at=at(300 - minutes))
    now = at(300)
    screen = Screen(policy, now)
    with engine.connect() as conn:
        rows = se._fetch_open(conn)
        open_count, passed = len(rows), se._screen_open(conn, screen, rows)
    assert open_count == 7
    acting = {o.id for o in passed if assess(policy, o.clock, now).action}
    assert len(acting) == 4  # 48, 60, 61 and 200 minutes old
    assert len(passed) <= 5  # the screen lets through little more than that


def test_queue_orders_by_priority_level_and_time_left(engine, policy):
    b = conversation(engine, "b", escalated=True, priority="high", opened_at=at(115))
    a = conversation(engine, "a", escalated=True, priority="high", opened_at=at(95))
    c = conversation(engine, "c", escalated=True, priority="urgent", opened_at=at(119))
    d = conversation(engine, "d", priority="normal")  # not escalated
    e = conversation(engine, "e", priority="high", escalation_level=2, opened_at=at(119))
    conversation(engine, "f", escalated=True, status="resolved")
    now = at(120)
    queue = se.escalation_queue(engine, policy, now)
    assert [i.conversation_id for i in queue] == [c, e, a, b]
    assert queue[2].sla.remaining_s == 5 * 60 and queue[3].sla.remaining_s == 25 * 60
    assert queue[0].sla.due_at == at(134)
    assert queue[1].sla.stage == "supervisor"
    everything = se.escalation_queue(engine, policy, now, everything=True)
    assert d in [i.conversation_id for i in everything]
    assert len(se.escalation_queue(engine, policy, now, limit=2)) == 2


def test_show_reads_the_breakdown_clock_and_history(engine, policy):
    cid = conversation(engine, "my lawyer")
    rs = cr.RuleSet(cr.parse_rules(RULES), RULES)
    cr.apply_rules(engine, rs, now=at(0))
    se.sweep(engine, at(15), policy)
    c = se.conversation_escalation(engine, cid)
    assert (c.priority, c.escalated, c.level) == ("urgent", True, 2)
    assert c.escalation["reasons"][0]["condition"] == "keywords"
    assert c.clock.stage_since == at(15)
    assert [e.kind for e in se.escalation_history(engine, cid)] == ["escalated", "upgraded"]
    with pytest.raises(store.NotFoundError):
        se.conversation_escalation(engine, 999)


def test_export_columns_and_flags(engine):
    cid = conversation(engine, "x", escalated=True, priority="urgent")
    with engine.connect() as conn:
        mid = conn.execute(
            select(ConversationRow.mention_id).where(ConversationRow.id == cid)
        ).scalar_one()
    store.upsert_mentions(
        engine, [store.Mention(source="x", external_id="lonely", created_at=T0, text="hi")]
    )
    m = MentionRow.__table__
    escalated, priority = se.escalation_columns(m.c.id)
    with engine.connect() as conn:
        got = conn.execute(
            select(m.c.external_id, escalated.label("e"), priority.label("p")).order_by(m.c.id)
        ).all()
    assert [tuple(g)[1:] for g in got] == [(True, "urgent"), (None, None)]
    assert se.escalation_flags(engine, [mid, 12345]) == {mid: (True, "urgent")}


def test_events_are_stamped_with_the_sweep_time(engine, policy):
    cid = conversation(engine)
    se.sweep(engine, at(60), policy)
    with engine.connect() as conn:
        ev = conn.execute(
            select(EscalationEventRow).where(EscalationEventRow.conversation_id == cid)
        ).one()
    assert ev.at == at(60) and ev.kind == "upgraded"
    assert row(engine, cid).updated_at == at(60)
    assert row(engine, cid).updated_by == "system:sla"


def test_pauses_made_through_the_inbox_are_left_out_exactly(engine, policy):
    inbox = pytest.importorskip("listenwell.store.inbox")
    if not hasattr(inbox, "update_conversation"):
        pytest.skip("the inbox has no update_conversation yet")
    cid = conversation(engine)
    # Pending from 09:20 Monday to 10:00 Tuesday: 7h40 wall-clock of it is business time
    # (09:20-17:00) plus 1h on Tuesday; the 16 hours overnight were never on the clock.
    c = inbox.update_conversation(
        engine, cid, expected_version=1, actor="ann", status="pending", now=at(20)
    )
    resumed = datetime(2024, 5, 7, 10, 0, tzinfo=UTC)
    inbox.update_conversation(
        engine, cid, expected_version=c.version, actor="ann", status="open", now=resumed
    )
    assert row(engine, cid).paused_s == (resumed - at(20)).total_seconds()  # wall seconds
    assert se.pending_spells(engine, [cid]) == {cid: [(at(20), resumed)]}
    assert se.sweep(engine, resumed + timedelta(minutes=27), policy).reminded == 0
    assert se.sweep(engine, resumed + timedelta(minutes=28), policy).reminded == 1
    assert se.sweep(engine, resumed + timedelta(minutes=40), policy).upgraded == 1
