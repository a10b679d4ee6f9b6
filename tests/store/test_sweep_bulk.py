"""The sweep's bulk path on SQLite and PostgreSQL: many conversations in one pass.

The catch-up pass reads every open conversation once, screens it, builds its clock in
place and writes all the changes in a few set-based statements. These tests hold that
path to the slow, obvious one: the clock each conversation gets equals the one
``conversation_escalation`` builds for it alone, every conversation that needs an action
is acted on, a concurrent edit between the read and the write is never overwritten, and
every change has its event. The screen's shortcut and the calendar's memo are checked
against the plain calendar arithmetic, to the microsecond.
"""

from __future__ import annotations

import dataclasses
import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from listenwell import store
from listenwell.crm import rules as cr
from listenwell.crm.sla import PRIORITIES, BusinessCalendar, Screen, assess
from listenwell.store import escalations as se
from listenwell.store.models import AuditRow, ConversationRow, EscalationEventRow, MentionRow

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)  # a Monday
NOW = datetime(2024, 5, 8, 13, 7, 30, tzinfo=UTC)  # the Wednesday after

RULES = """
rules:
  - {name: legal, priority: urgent, when: {keywords: [lawyer]}}
sla:
  timezone: Europe/Berlin
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


def _audit(cid: int, changes: dict) -> dict:
    return {
        "at": NOW,
        "actor": "agent",
        "action": "conversation.update",
        "entity": "conversation",
        "entity_id": str(cid),
        "detail": {"changes": changes, "version": 2},
    }


def populate(engine, n: int, seed: int = 3) -> None:
    """``n`` open conversations with a seeded mix of every field the clock reads."""
    rng = random.Random(seed)
    store.upsert_mentions(
        engine,
        [
            store.Mention(source="x", external_id=f"b{i}", created_at=T0, text=f"m{i}")
            for i in range(n)
        ],
    )
    with engine.connect() as conn:
        mids = conn.execute(select(MentionRow.id).order_by(MentionRow.id)).scalars().all()
    convs, audits = [], []
    for cid, mid in enumerate(mids, start=1):
        opened = NOW - timedelta(minutes=rng.randint(1, 3 * 24 * 60))
        status = rng.choice(["new", "open", "open", "pending"])
        row = {
            "id": cid,
            "mention_id": mid,
            "status": status,
            "priority": rng.choice(PRIORITIES),
            "escalation_level": 0,
            "escalation": None,
            "opened_at": opened,
            "first_response_at": None,
            "pending_since": None,
            "paused_s": 0.0,
            "reminded_at": None,
            "version": rng.randint(1, 4),
        }
        if rng.random() < 0.3:
            row["first_response_at"] = opened + timedelta(minutes=rng.randint(1, 300))
        if status == "pending":
            row["pending_since"] = opened + timedelta(minutes=rng.randint(1, 600))
        if rng.random() < 0.2:
            began = opened + timedelta(minutes=rng.randint(1, 200))
            wall = float(rng.randint(60, 20_000))
            row["paused_s"] = wall + rng.choice([0.0, 0.0, 125.5])  # some of it unexplained
            audits.append(_audit(cid, {"status": ["open", "pending"], "pending_since": began}))
            audits.append(_audit(cid, {"status": ["pending", "open"], "paused_s": [0.0, wall]}))
        elif rng.random() < 0.1:
            row["paused_s"] = float(rng.randint(60, 5000))  # a total the log cannot explain
        if rng.random() < 0.25:
            level = rng.randint(1, 3)
            since = NOW - timedelta(minutes=rng.randint(1, 900))
            row["escalation_level"] = level
            state = {"since": since.isoformat(), "paused_s": rng.choice([0.0, 30.0])}
            if level == 3 and rng.random() < 0.5:
                state["final"] = True
            row["escalation"] = {"rules": ["legal"], "sla": state}
        if rng.random() < 0.15:
            row["reminded_at"] = NOW - timedelta(minutes=rng.randint(1, 2000))
        convs.append(row)
    for a in audits:
        a["detail"]["changes"] = {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in a["detail"]["changes"].items()
        }
    with engine.begin() as conn:
        conn.execute(insert(ConversationRow.__table__), convs)
        conn.execute(insert(AuditRow.__table__), audits)


def test_bulk_read_builds_the_same_clock_as_one_conversation_alone(engine, policy):
    populate(engine, 300)
    with engine.connect() as conn:
        rows = se._fetch_open(conn)
        n_open, items = len(rows), se._screen_open(conn, Screen(policy, NOW), rows)
    assert n_open == 300
    passed = {item.id: item for item in items}
    assert 0 < len(passed) < 300
    for cid in range(1, 301):
        alone = se.conversation_escalation(engine, cid).clock
        if cid in passed:
            assert passed[cid].clock == alone, cid
        else:  # the screen only drops conversations that need nothing
            assert assess(policy, alone, NOW).action is None, cid


def test_a_concurrent_edit_between_read_and_write_is_never_overwritten(engine, policy, monkeypatch):
    populate(engine, 200)
    real = se._fetch_open
    edited: list[int] = []

    def read_then_agents_edit(conn):
        rows = real(conn)
        with engine.begin() as c:
            for row in rows[::5]:  # an agent changes every fifth one meanwhile
                c.execute(
                    update(ConversationRow)
                    .where(ConversationRow.id == row[0])
                    .values(version=ConversationRow.version + 1, priority="low")
                )
                edited.append(int(row[0]))
        return rows

    before = {r.id: r for r in _rows(engine)}
    monkeypatch.setattr(se, "_fetch_open", read_then_agents_edit)
    report = se.sweep(engine, NOW, policy)
    monkeypatch.setattr(se, "_fetch_open", real)

    after = {r.id: r for r in _rows(engine)}
    events = _events(engine)
    acted = report.reminded + report.upgraded + report.breached
    assert edited and report.conflicts > 0
    for cid in edited:
        # The agent's edit stands: the sweep wrote nothing and recorded nothing.
        assert after[cid].version == before[cid].version + 1
        assert after[cid].priority == "low"
        assert after[cid].escalation == before[cid].escalation
        assert after[cid].reminded_at == before[cid].reminded_at
        assert cid not in events
    # Every other change has exactly one event, stamped with the sweep's time.
    assert len(events) == acted
    assert all(len(evs) == 1 and evs[0].at == NOW for evs in events.values())
    changed = {c for c in after if c not in edited and _changed(before[c], after[c])}
    assert changed == set(events)
    # The next pass at the same moment acts on the edited ones only (if they need it).
    again = se.sweep(engine, NOW, policy)
    assert again.conflicts == 0
    later = _events(engine)
    for cid in set(later) - set(edited):
        assert len(later[cid]) == len(events[cid]), cid


def test_one_event_per_change_and_the_same_now_twice_changes_nothing(engine, policy):
    populate(engine, 250, seed=8)
    first = se.sweep(engine, NOW, policy)
    assert first.upgraded > 0 and first.reminded > 0 and first.conflicts == 0
    kinds = _events(engine)
    counted = {"upgraded": 0, "reminded": 0, "breached": 0}
    for evs in kinds.values():
        assert len(evs) == 1
        counted[evs[0].kind] += 1
    assert counted == {
        "upgraded": first.upgraded,
        "reminded": first.reminded,
        "breached": first.breached,
    }
    before = _rows(engine)
    second = se.sweep(engine, NOW, policy)
    assert (second.reminded, second.upgraded, second.breached, second.conflicts) == (0, 0, 0, 0)
    assert _rows(engine) == before
    assert sum(len(v) for v in _events(engine).values()) == len(kinds)


def test_each_event_detail_and_clock_state_is_the_assessment_written_as_json(engine, policy):
    # The bulk write builds the JSON text itself (no json.dumps per row); what is read
    # back must be the assessment the sweep made, field by field, on both databases.
    populate(engine, 150, seed=5)
    before = {r.id: r for r in _rows(engine)}
    with engine.connect() as conn:
        items = se._screen_open(conn, Screen(policy, NOW), se._fetch_open(conn))
    expected = {}
    for item in items:
        a = assess(policy, item.clock, NOW, with_times=False)
        if a.action is not None:
            expected[item.id] = (a, item.clock)
    report = se.sweep(engine, NOW, policy)
    after = {r.id: r for r in _rows(engine)}
    events = _events(engine)
    assert report.upgraded and set(events) == set(expected)
    for cid, (a, clock) in expected.items():
        (e,) = events[cid]
        d = e.detail
        assert isinstance(d, dict)
        assert (d["metric"], d["stage"], d["paused"]) == (a.metric, a.stage, a.paused)
        assert datetime.fromisoformat(d["stage_since"]) == a.stage_since
        assert d["target_minutes"] == round(a.window_s / 60, 2)
        assert d["elapsed_minutes"] == round(a.elapsed_s / 60, 2)
        assert d["from_priority"] == before[cid].priority == clock.priority
        if a.action == "upgrade":
            due = a.breach_at(policy.calendar)
            assert datetime.fromisoformat(d["due_at"]) == due
            assert d["to_priority"] == e.priority == after[cid].priority == a.to_priority
            sla = after[cid].escalation["sla"]
            assert sla == {"since": NOW.isoformat(), "paused_s": clock.paused_s, "final": False}
            assert after[cid].version == before[cid].version + 1
        else:
            assert "to_priority" not in d
            assert after[cid].version == before[cid].version


def test_json_pieces_stay_valid_for_odd_values():
    import json
    import math

    assert json.loads(se._sla_json(None, 0.0, True)) == {
        "since": None,
        "paused_s": 0.0,
        "final": True,
    }
    assert json.loads(se._sla_json('2024-05-06"x', math.inf, False))["since"] == '2024-05-06"x'
    assert (
        json.loads(se._sla_json("2024-05-06T09:00:00+00:00", math.nan, False))["paused_s"] is None
    )
    event = {
        "cid": 1,
        "kind": "reminded",
        "from_level": 0,
        "to_level": None,
        "priority": 'nor"mal\\',
        "detail": se._sla_json(None, math.nan, False),
    }
    doc = se._pg_sweep_doc([{"id": 1, "version": 2, "reminded": 1, "bump": 0}], {1: event})
    assert json.loads(doc) == [
        {
            "id": 1,
            "version": 2,
            "priority": None,
            "level": None,
            "sla": None,
            "reminded": 1,
            "bump": 0,
            "kind": "reminded",
            "from_level": 0,
            "to_level": None,
            "event_priority": 'nor"mal\\',
            "detail": {"since": None, "paused_s": None, "final": False},
        }
    ]


def test_many_small_ranges_give_the_same_pass_as_one(engine, policy, monkeypatch):
    # The same data swept in ranges of 7 (on PostgreSQL the writer thread gets ~36
    # statements while the next ranges are assessed) and in one range: the same rows and
    # the same events.
    populate(engine, 250, seed=8)
    snapshot = _rows(engine)
    monkeypatch.setattr(se, "_SWEEP_CHUNK", 7)
    small = se.sweep(engine, NOW, policy)
    rows_small, events_small = _rows(engine), _events(engine)
    assert small.open == 250 and small.upgraded and small.reminded and small.conflicts == 0
    with engine.begin() as conn:  # put the data back
        conn.execute(EscalationEventRow.__table__.delete())
        for r in snapshot:
            conn.execute(
                update(ConversationRow)
                .where(ConversationRow.id == r.id)
                .values({c: getattr(r, c) for c in _WRITTEN})
            )
    assert _rows(engine) == snapshot
    monkeypatch.setattr(se, "_SWEEP_CHUNK", 10_000)
    whole = se.sweep(engine, NOW, policy)
    counts = ("open", "upgraded", "reminded", "breached", "conflicts")
    assert [getattr(whole, k) for k in counts] == [getattr(small, k) for k in counts]
    assert _rows(engine) == rows_small

    def key(evs):
        return {c: [(e.kind, e.priority, e.to_level, e.detail) for e in v] for c, v in evs.items()}

    assert key(_events(engine)) == key(events_small)


_WRITTEN = (
    "priority",
    "escalation_level",
    "escalation",
    "reminded_at",
    "version",
    "updated_at",
    "updated_by",
)


@pytest.mark.parametrize("fail_in", ["write", "assess"])
def test_a_pass_that_fails_halfway_writes_nothing(engine, policy, monkeypatch, fail_in):
    # Ranges of 20. On PostgreSQL the ranges the writer thread already wrote are rolled back
    # when a later statement fails, or when the assessing thread fails. SQLite assesses
    # everything before it writes: a failure after its statements ran rolls them back, and a
    # failing assessment stops the pass before any write.
    sqlite = engine.dialect.name == "sqlite"
    populate(engine, 200, seed=6)
    before = _rows(engine)
    monkeypatch.setattr(se, "_SWEEP_CHUNK", 20)
    calls = {"n": 0}
    if sqlite and fail_in == "write":
        real = se._run_sweep_sqlite

        def flaky(*args):
            real(*args)
            raise RuntimeError("disk on fire")  # after the rows were written

        monkeypatch.setattr(se, "_run_sweep_sqlite", flaky)
    elif fail_in == "write":
        real_doc = se._pg_sweep_doc

        def broken_third(plan, events):
            calls["n"] += 1
            doc = real_doc(plan, events)
            return doc if calls["n"] != 3 else doc.replace('"version":', '"version":"x', 1)

        monkeypatch.setattr(se, "_pg_sweep_doc", broken_third)
    else:
        real_plan = se._plan_changes

        def flaky_plan(items, policy_, now):
            calls["n"] += 1
            if calls["n"] == 5:
                time.sleep(0.3)  # let the writer get the first ranges into the database
                raise RuntimeError("assessment failed")
            return real_plan(items, policy_, now)

        monkeypatch.setattr(se, "_plan_changes", flaky_plan)
    with pytest.raises(Exception, match="disk on fire|assessment failed|invalid input"):
        se.sweep(engine, NOW, policy)
    assert calls["n"] >= (0 if sqlite and fail_in == "write" else 3)
    assert _rows(engine) == before
    assert _events(engine) == {}
    monkeypatch.undo()
    assert se.sweep(engine, NOW, policy).upgraded > 0  # and nothing was left locked


def test_sqlite_cache_is_put_back_after_the_write(engine, policy):
    if engine.dialect.name != "sqlite":
        pytest.skip("the page cache is a SQLite setting")
    populate(engine, 50)
    with engine.connect() as conn:
        default = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    se.sweep(engine, NOW, policy)
    # The pool hands out the same connection again; its cache is back where it was.
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar_one() == default


# ------------------------------------------------------------------ the calendar shortcuts


@pytest.fixture
def berlin() -> BusinessCalendar:
    # Spans the spring-forward night (2024-03-31) and a holiday.
    hours = {d: ["09:00-12:00", "13:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    hours["sun"] = ["01:30-03:30"]  # partly in the skipped hour on 2024-03-31
    return BusinessCalendar("Europe/Berlin", hours, holidays=[datetime(2024, 4, 1).date()])


@pytest.mark.parametrize("now", [datetime(2024, 4, 2, 10, 0, tzinfo=UTC), NOW, T0])
def test_screen_agrees_with_the_plain_position_arithmetic(policy, berlin, now):
    policy = dataclasses.replace(policy, calendar=berlin)
    screen = Screen(policy, now)
    cal = _twin(berlin)  # a fresh one
    now_pos = cal.position(now)
    rng = random.Random(5)
    us = timedelta(microseconds=1)
    checked = 0
    for (priority, level, responded), limit in screen._limits.items():
        # The instants around each threshold, to the microsecond, and a random spread.
        cut = screen._latest.get((priority, level, responded))
        probes = [now - timedelta(seconds=rng.randint(0, 9 * 86400)) for _ in range(40)]
        if cut is not None:
            probes += [cut - us, cut, cut + us, cut + timedelta(hours=1)]
        first = now - timedelta(days=30) if responded else None
        for since in probes:
            expected = now_pos - cal.position(since) >= limit
            assert screen.may_act(priority, level, since, first, None, False) is expected
            checked += 1
    assert checked > 32 * 40


def test_calendar_keeps_positions_when_the_end_is_reused_across_a_rebuild(berlin):
    fresh = _twin(berlin)
    rng = random.Random(2)
    b = datetime(2024, 4, 3, 15, 0, tzinfo=UTC)
    for _ in range(200):
        # Far-away starts grow the timeline; the kept position of ``b`` must stay true.
        a = b - timedelta(seconds=rng.randint(0, 400 * 86400))
        got = berlin.business_seconds_between(a, b)
        assert got == fresh.business_seconds_between(a, b)
        assert got == -berlin.business_seconds_between(b, a)


# ------------------------------------------------------------------ helpers


def _twin(cal: BusinessCalendar) -> BusinessCalendar:
    """A fresh calendar with the same hours (no timeline built, nothing remembered)."""
    return BusinessCalendar(cal.tz, dict(enumerate(cal.hours)), cal.holidays)


def _rows(engine):
    with engine.connect() as conn:
        return conn.execute(select(ConversationRow).order_by(ConversationRow.id)).all()


def _events(engine) -> dict[int, list]:
    out: dict[int, list] = {}
    with engine.connect() as conn:
        for e in conn.execute(select(EscalationEventRow).order_by(EscalationEventRow.id)):
            out.setdefault(e.conversation_id, []).append(e)
        assert conn.execute(select(func.count()).select_from(EscalationEventRow)).scalar() == sum(
            len(v) for v in out.values()
        )
    return out


def _changed(a, b) -> bool:
    fields = ("priority", "escalation_level", "escalation", "reminded_at", "version")
    return any(getattr(a, f) != getattr(b, f) for f in fields)
