"""Escalation rules: every condition kind, the breakdown, validation errors, versions,
preview and backtest, and applying the rules to conversations (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from listenwell import store
from listenwell.crm import rules as cr
from listenwell.store import escalations as se
from listenwell.store.corrections import correct
from listenwell.store.models import (
    AuditRow,
    ConversationRow,
    CustomerRow,
    EscalationEventRow,
    MentionRow,
    RuleSetRow,
)

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)  # a Monday

SLA = """
sla:
  timezone: UTC
  hours: {mon: 09:00-17:00, tue: 09:00-17:00, wed: 09:00-17:00, thu: 09:00-17:00,
          fri: 09:00-17:00}
  targets:
    urgent: {first_response_minutes: 15, resolution_minutes: 60}
    high: {first_response_minutes: 30, resolution_minutes: 120}
    normal: {first_response_minutes: 60, resolution_minutes: 240}
    low: {first_response_minutes: 120, resolution_minutes: 480}
"""


def ruleset(rules_yaml: str, default: str = "normal") -> cr.RuleSet:
    text = f"default_priority: {default}\nrules:\n{rules_yaml}\n{SLA}"
    return cr.RuleSet(cr.parse_rules(text, "test"), text)


def facts(**kw) -> se.MentionFacts:
    base = {"mention_id": 1, "source": "x", "text": "hello", "created_at": T0}
    return se.MentionFacts(**{**base, **kw})


def one_rule(when: str, priority: str = "high", escalate: bool = True) -> cr.RuleSet:
    return ruleset(
        f"  - name: r\n    priority: {priority}\n    escalate: {str(escalate).lower()}\n"
        f"    when: {when}\n"
    )


# --------------------------------------------------------------------------- conditions

CASES = [
    # (when, facts that fire, facts that do not, condition, value, threshold)
    (
        "{keywords: [lawyer*, sue, legal action]}",
        {"text": "My LAWYERS will hear about this"},
        {"text": "this is an issue, nice suede"},
        "keywords",
        "lawyers",
        "any of lawyer*, sue, legal action",
    ),
    (
        "{keywords: [legal action]}",
        {"text": "we will take legal\n  action"},
        {"text": "legal actionable"},
        "keywords",
        "legal\n  action",
        "any of legal action",
    ),
    (
        "{not_keywords: [cancel culture], keywords: [cancel*]}",
        {"text": "I will cancel my plan"},
        {"text": "cancel culture is everywhere, cancel it"},
        "not_keywords",
        "none found",
        "none of cancel culture",
    ),
    (
        "{sentiment: negative, min_probability: 0.7}",
        {"sentiment": "negative", "sentiment_p": 0.83},
        {"sentiment": "negative", "sentiment_p": 0.69},
        "sentiment",
        "negative (p=0.83)",
        "negative, p >= 0.7",
    ),
    (
        "{sentiment: [negative, neutral]}",
        {"sentiment": "neutral", "sentiment_p": None},
        {"sentiment": None},
        "sentiment",
        "neutral",
        "negative or neutral",
    ),
    (
        "{intent: complaint}",
        {"intent": "complaint"},
        {"intent": "question"},
        "intent",
        "complaint",
        "complaint",
    ),
    (
        "{min_followers: 10000}",
        {"followers": 25_000},
        {"followers": None},
        "min_followers",
        25_000,
        ">= 10000",
    ),
    (
        "{min_followers: 10000}",
        {"followers": 10_000},
        {"followers": 9_999},
        "min_followers",
        10_000,
        ">= 10000",
    ),
    ("{segment: [VIP]}", {"segment": "vip"}, {"segment": None}, "segment", "vip", "VIP"),
    (
        "{min_lifetime_value: 5000}",
        {"lifetime_value": 7500.0},
        {"lifetime_value": None},
        "min_lifetime_value",
        7500.0,
        ">= 5000",
    ),
    (
        "{repeat_contact: {count: 3, days: 7}}",
        {"contacts": {7: 3}},
        {"contacts": {7: 2}},
        "repeat_contact",
        "3 in 7 days",
        ">= 3 in 7 days",
    ),
    ("{max_rating: 2}", {"rating": 1}, {"rating": None}, "max_rating", 1, "<= 2"),
    ("{max_rating: 2}", {"rating": 2}, {"rating": 3}, "max_rating", 2, "<= 2"),
    (
        "{source: [appstore]}",
        {"source": "appstore"},
        {"source": "x"},
        "source",
        "appstore",
        "appstore",
    ),
]


@pytest.mark.parametrize(("when", "hit", "miss", "condition", "value", "threshold"), CASES)
def test_each_condition_kind_fires_with_its_breakdown(when, hit, miss, condition, value, threshold):
    rs = one_rule(when)
    d = cr.evaluate(rs, facts(**hit))
    assert (d.priority, d.escalated, d.rules) == ("high", True, ("r",))
    reason = next(r for r in d.reasons if r["condition"] == condition)
    assert reason == {
        "rule": "r",
        "condition": condition,
        "value": value,
        "threshold": threshold,
        "contribution": "priority high, escalates (decides the priority)",
    }
    d = cr.evaluate(rs, facts(**miss))
    assert (d.priority, d.escalated, d.rules, d.reasons) == ("normal", False, (), ())


def test_all_conditions_must_hold_and_each_gets_a_reason():
    rs = one_rule("{keywords: [refund*], sentiment: negative, min_probability: 0.7}")
    d = cr.evaluate(rs, facts(text="refund now", sentiment="negative", sentiment_p=0.9))
    assert [r["condition"] for r in d.reasons] == ["keywords", "sentiment"]
    assert not cr.evaluate(
        rs, facts(text="refund now", sentiment="positive", sentiment_p=0.9)
    ).rules
    assert not cr.evaluate(rs, facts(text="thanks", sentiment="negative", sentiment_p=0.9)).rules


def test_highest_priority_wins_and_any_rule_escalates():
    rs = ruleset(
        "  - {name: complaint, priority: normal, escalate: false, when: {intent: complaint}}\n"
        "  - {name: legal, priority: urgent, escalate: false, when: {keywords: [lawyer]}}\n"
        "  - {name: churn, priority: high, escalate: true, when: {keywords: [cancel]}}\n"
        "  - {name: unused, priority: urgent, enabled: false, when: {keywords: [cancel]}}\n",
        default="low",
    )
    d = cr.evaluate(rs, facts(text="cancel or my lawyer calls", intent="complaint"))
    assert (d.priority, d.escalated) == ("urgent", True)
    assert d.rules == ("complaint", "legal", "churn")
    contributions = {r["rule"]: r["contribution"] for r in d.reasons}
    assert contributions == {
        "complaint": "priority normal",
        "legal": "priority urgent (decides the priority)",
        "churn": "priority high, escalates",
    }
    assert cr.evaluate(rs, facts(text="all good")).priority == "low"
    many = cr.evaluate_many(
        rs, [facts(mention_id=i, text=t) for i, t in enumerate(["cancel", "hi"])]
    )
    assert [d.priority for d in many] == ["high", "low"]


def test_breakdown_is_json_ready():
    rs = one_rule("{keywords: [lawyer]}", priority="urgent")
    d = cr.evaluate(rs, facts(text="lawyer"))
    stored = d.breakdown(3, T0)
    assert json.loads(json.dumps(stored)) == stored
    assert stored["rule_version"] == 3 and stored["rules"] == ["r"]
    assert stored["evaluated_at"] == T0.isoformat()


def test_the_shipped_rules_are_valid_and_fire_as_documented():
    text = cr.shipped_rules_text()
    rs = cr.RuleSet(cr.parse_rules(text, "shipped"), text)
    assert {r.name for r in rs.spec.rules} >= {
        "legal_threat",
        "churn_risk",
        "outage",
        "vip_unhappy",
        "repeated_contact",
        "bad_review",
        "high_reach_negative",
    }
    cases = [
        (facts(text="I am going to sue you"), "urgent", ("legal_threat",)),
        (
            facts(text="I want a refund", sentiment="negative", sentiment_p=0.8),
            "high",
            ("churn_risk",),
        ),
        (facts(text="I want a refund", sentiment="negative", sentiment_p=0.5), "normal", ()),
        (facts(text="the app is down again", sentiment="negative"), "urgent", ("outage",)),
        (facts(segment="VIP", sentiment="negative"), "high", ("vip_unhappy",)),
        (facts(followers=50_000, sentiment="negative"), "high", ("high_reach_negative",)),
        (facts(contacts={7: 4}), "high", ("repeated_contact",)),
        (facts(rating=1, source="appstore"), "high", ("bad_review",)),
    ]
    for f, priority, fired in cases:
        d = cr.evaluate(rs, f)
        assert (d.priority, d.rules) == (priority, fired), f
    policy = rs.policy
    assert policy.calendar.tz == "Europe/Berlin"
    assert date(2031, 12, 25) in policy.calendar.holidays  # MM-DD repeats every year
    assert date(2026, 4, 6) in policy.calendar.holidays
    assert policy.targets["urgent"].first_response_s == 30 * 60
    assert policy.reminder_at == 0.8


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("rules_yaml", "expected"),
    [
        (
            "  - {name: a, priority: high, when: {keywrds: [x]}}",
            "rules[a].when.keywrds: unknown key",
        ),
        ("  - {name: a, priority: hi, when: {keywords: [x]}}", "rules[a].priority"),
        ("  - {name: a, priority: high, when: {}}", "at least one condition"),
        ("  - {name: a, priority: high, when: {sentiment: angry}}", "unknown label angry"),
        ("  - {name: a, priority: high, when: {intent: rant}}", "unknown label rant"),
        ("  - {name: a, priority: high, when: {min_probability: 0.5}}", "needs a sentiment"),
        ("  - {name: a, priority: high, when: {keywords: ['']}}", "non-empty"),
        ("  - {name: a, priority: high, when: {max_rating: 9}}", "rules[a].when.max_rating"),
        (
            "  - {name: a, priority: high, when: {repeat_contact: {count: 1, days: 7}}}",
            "rules[a].when.repeat_contact.count",
        ),
        (
            "  - {name: a, priority: high, when: {keywords: [x]}}\n"
            "  - {name: a, priority: low, when: {keywords: [y]}}",
            "rule names must be unique: a",
        ),
        ("  - {name: 'bad name', priority: high, when: {keywords: [x]}}", "rules[bad name].name"),
        ("  - {priority: high, when: {keywords: [x]}}", "rules[0].name: missing"),
        (
            "  - {name: a, priority: high, when: {keywords: [x]}, colour: red}",
            "rules[a].colour: unknown key",
        ),
    ],
)
def test_bad_rules_are_one_line_errors_naming_the_key(rules_yaml, expected):
    text = f"rules:\n{rules_yaml}\n{SLA}"
    with pytest.raises(cr.RulesError) as info:
        cr.parse_rules(text, "bad.yaml")
    message = str(info.value)
    assert expected in message
    assert message.startswith("invalid rules (bad.yaml): ")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("sla_yaml", "expected"),
    [
        ("timezone: Mars/Olympus", "sla.timezone: unknown time zone"),
        ("hours: {funday: 09:00-17:00}", "unknown weekday 'funday'"),
        ("hours: {mon: 17:00-09:00}", "must end after it starts"),
        ("hours: {sat: []}", "no opening hours"),
        ("holidays: ['13-45']", "not a day of the year"),
        ("holidays: ['christmas']", "not a date"),
        ("reminder_at: 1.5", "sla.reminder_at"),
        ("upgrades: {supervisor_minutes: 0}", "sla.upgrades.supervisor_minutes"),
        ("upgrades: {ladder: []}", "sla.upgrades.ladder: unknown key"),
    ],
)
def test_bad_sla_settings_are_named(sla_yaml, expected):
    targets = SLA.split("  targets:", 1)[1]
    text = f"rules: []\nsla:\n  {sla_yaml}\n  targets:{targets}"
    with pytest.raises(cr.RulesError, match=expected):
        cr.parse_rules(text, "bad.yaml")


LOW_BAD = "    low: {first_response_minutes: 60, resolution_minutes: 30}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: [\n", "not YAML at line"),
        ("- a\n- b\n", "expected a mapping"),
        ("rules: []\n", "sla: missing"),
        ("format: 2\nrules: []\n" + SLA, "format"),
        (
            "rules: []\nsla:\n  targets:\n"
            "    low: {first_response_minutes: 1, resolution_minutes: 2}\n",
            "targets missing for normal, high, urgent",
        ),
        (
            "rules: []\nsla:\n  targets:\n"
            + LOW_BAD
            + "    normal: {first_response_minutes: 1, resolution_minutes: 2}\n"
            "    high: {first_response_minutes: 1, resolution_minutes: 2}\n"
            "    urgent: {first_response_minutes: 1, resolution_minutes: 2}\n",
            "sla.targets.low: resolution_minutes cannot be shorter",
        ),
    ],
)
def test_bad_documents_are_refused(text, expected):
    with pytest.raises(cr.RulesError, match=expected):
        cr.parse_rules(text)


def test_every_problem_is_reported_at_once():
    text = (
        "rules:\n  - {name: a, priority: hi, when: {keywrds: [x]}}\n"
        "sla:\n  timezone: Nowhere/Land\n  targets: {}\n"
    )
    with pytest.raises(cr.RulesError) as info:
        cr.parse_rules(text)
    message = str(info.value)
    for key in ("rules[a].priority", "rules[a].when.keywrds", "sla.timezone", "sla.targets"):
        assert key in message


def test_load_rules_reports_an_unreadable_file(tmp_path):
    with pytest.raises(cr.RulesError, match="cannot read"):
        cr.load_rules(tmp_path / "missing.yaml")
    path = tmp_path / "r.yaml"
    path.write_text(f"rules: []\n{SLA}", encoding="utf-8")
    rs = cr.load_rules(path)
    assert (rs.version, rs.origin) == (0, str(path))


# --------------------------------------------------------------------------- the store side


def seed(engine, rows: list[dict]) -> list[int]:
    store.upsert_mentions(
        engine,
        [
            store.Mention(
                source=r.get("source", "x"),
                external_id=str(i),
                created_at=r.get("at", T0),
                text=r.get("text", "hello"),
                author_handle=r.get("author", f"@a{i}"),
                rating=r.get("rating"),
                raw=r.get("raw"),
            )
            for i, r in enumerate(rows)
        ],
    )
    with engine.connect() as conn:
        ids = dict(conn.execute(select(MentionRow.external_id, MentionRow.id)).all())
    return [ids[str(i)] for i in range(len(rows))]


def enrich(engine, mid: int, stage: str, label: str, score: float | None = 0.9, data=None):
    store.upsert_enrichments(
        engine,
        [
            store.EnrichmentResult(
                mention_id=mid,
                stage=stage,
                label=label,
                score=score,
                model_name="m",
                model_version="1",
                data=data or {},
            )
        ],
    )


def open_conversation(engine, mid: int, **kw) -> int:
    values = {"mention_id": mid, "status": "open", "opened_at": T0, **kw}
    with engine.begin() as conn:
        return int(
            conn.execute(insert(ConversationRow.__table__).values(**values)).inserted_primary_key[0]
        )


def add_customer(engine, customer_id: str, segment: str | None, ltv=None) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(CustomerRow.__table__).values(
                    customer_id=customer_id,
                    segment=segment,
                    attributes={"lifetime_value": ltv} if ltv is not None else {},
                )
            ).inserted_primary_key[0]
        )


def all_facts(engine, ids, days=(7,)) -> dict[int, se.MentionFacts]:
    out = {}
    for batch in se.iter_facts(engine, mention_ids=ids, repeat_days=days):
        out.update({f.mention_id: f for f in batch})
    return out


def test_facts_come_from_labels_in_force_raw_posts_customers_and_history(engine):
    raw = json.dumps(
        {"tweet": {"id": "1"}, "author": {"public_metrics": {"followers_count": 12345}}}
    )
    ids = seed(
        engine,
        [
            {"text": "refund please", "raw": raw, "author": "@loud"},
            {"text": "again", "author": "@loud", "at": T0 - timedelta(days=2)},
            {"text": "and again", "author": "@loud", "at": T0 - timedelta(days=6)},
            {"text": "old", "author": "@loud", "at": T0 - timedelta(days=9)},
            {"text": "review", "source": "appstore", "rating": 2, "raw": '{"followers": "x"}'},
            {"text": "linked by the linker"},
            {"text": "weak link"},
        ],
    )
    enrich(engine, ids[0], "sentiment", "positive", 0.8)
    enrich(engine, ids[0], "intent", "question", 0.7)
    correct(engine, ids[0], "sentiment", "negative", "agent-ann")
    vip = add_customer(engine, "C1", "vip", ltv="12,000")
    add_customer(engine, "C2", "smb", ltv=50)
    open_conversation(engine, ids[0], customer_pk=vip)
    enrich(engine, ids[5], "links", "C2", 0.95, {"customer_pk": 2, "strength": "strong"})
    enrich(engine, ids[6], "links", "C1", 0.4, {"customer_pk": vip, "strength": "weak"})
    f = all_facts(engine, ids)
    first = f[ids[0]]
    assert (first.sentiment, first.sentiment_p) == ("negative", 1.0)  # the agent wins
    assert first.intent == "question"
    assert first.followers == 12345
    assert (first.customer_id, first.segment, first.lifetime_value) == ("C1", "vip", 12000.0)
    assert first.contacts == {7: 3}  # itself and two within a week; the 9-day-old one is out
    assert first.conversation_id is not None
    assert f[ids[4]].rating == 2 and f[ids[4]].followers is None
    assert f[ids[4]].contacts == {7: 1}
    assert (f[ids[5]].customer_id, f[ids[5]].segment) == ("C2", "smb")
    assert f[ids[6]].customer_id is None  # a weak link is a suggestion, not a link


def test_save_rules_versions_audit_and_history(engine):
    assert cr.rules_in_force(engine).version == 0  # the shipped default
    text = f"rules:\n  - {{name: a, priority: high, when: {{keywords: [x]}}}}\n{SLA}"
    v1 = cr.save_rules(engine, text, "ann", "first")
    v2 = cr.save_rules(engine, text.replace("priority: high", "priority: urgent"), "bob", None)
    assert (v1.version, v2.version) == (1, 2)
    in_force = cr.rules_in_force(engine)
    assert (in_force.version, in_force.spec.rules[0].priority) == (2, "urgent")
    history = se.list_rule_sets(engine)
    assert [(r.version, r.created_by, r.note) for r in history] == [
        (2, "bob", None),
        (1, "ann", "first"),
    ]
    assert se.rule_set(engine, 1).text == text
    with pytest.raises(store.NotFoundError):
        se.rule_set(engine, 9)
    with pytest.raises(cr.RulesError):
        cr.save_rules(engine, "rules: [", "ann")
    with pytest.raises(cr.RulesError, match="who saves"):
        cr.save_rules(engine, text, "  ")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RuleSetRow)).scalar_one() == 2
        audits = conn.execute(
            select(AuditRow.action, AuditRow.entity_id, AuditRow.actor).order_by(AuditRow.id)
        ).all()
    assert [tuple(a) for a in audits] == [("rules.save", "1", "ann"), ("rules.save", "2", "bob")]


def test_preview_and_backtest_count_without_saving(engine):
    ids = seed(
        engine,
        [
            {"text": "my lawyer will call", "at": T0},
            {"text": "cancel my plan", "at": T0 + timedelta(days=1)},
            {"text": "cancel it", "at": T0 + timedelta(days=1)},
            {"text": "nice", "at": T0 - timedelta(days=30)},
        ],
    )
    open_conversation(engine, ids[0], priority="urgent", escalated=True)
    open_conversation(engine, ids[3], priority="low")
    candidate = (
        "rules:\n"
        "  - {name: legal, priority: urgent, when: {keywords: [lawyer]}}\n"
        "  - {name: churn, priority: high, when: {keywords: [cancel]}}\n" + SLA
    )
    p = cr.preview(engine, candidate, samples=1)
    assert p.evaluated == 4 and p.escalated == 3
    assert p.by_priority == {"low": 0, "normal": 1, "high": 2, "urgent": 1}
    assert p.by_rule == {"legal": 1, "churn": 2}
    assert [s.mention_id for s in p.samples["churn"]] == [ids[1]]
    assert p.samples["churn"][0].reasons[0]["value"] == "cancel"
    assert p.escalated_per_day == {"2024-05-06": 1, "2024-05-07": 2}
    since = cr.preview(engine, candidate, since=date(2024, 5, 7))
    assert since.evaluated == 2
    assert cr.preview(engine, candidate, limit=1).evaluated == 1
    baseline = ruleset("  - {name: legal, priority: urgent, when: {keywords: [lawyer]}}")
    bt = cr.backtest(engine, candidate, baseline=baseline)
    assert bt.changes["newly_escalated"] == 2 and bt.changes["raised"] == 2
    assert bt.changes["matrix"]["normal"]["high"] == 2
    assert bt.inbox == {
        "conversations": 2,
        "both": 1,
        "rules_only": 0,
        "inbox_only": 0,
        "neither": 1,
    }
    assert json.loads(json.dumps(bt.as_dict()))["changes"]["no_longer_escalated"] == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RuleSetRow)).scalar_one() == 0
    with pytest.raises(cr.RulesError):
        cr.preview(engine, "rules: nope")


def conv_row(engine, cid):
    with engine.connect() as conn:
        return conn.execute(select(ConversationRow).where(ConversationRow.id == cid)).one()


def events(engine, cid):
    with engine.connect() as conn:
        return conn.execute(
            select(EscalationEventRow.kind, EscalationEventRow.priority, EscalationEventRow.detail)
            .where(EscalationEventRow.conversation_id == cid)
            .order_by(EscalationEventRow.id)
        ).all()


def test_apply_rules_writes_breakdown_events_and_versions(engine):
    ids = seed(engine, [{"text": "my lawyer!"}, {"text": "all fine"}, {"text": "cancel"}])
    legal = open_conversation(engine, ids[0])
    fine = open_conversation(engine, ids[1])
    closed = open_conversation(engine, ids[2], status="closed")
    v0 = ruleset(
        "  - {name: legal, priority: urgent, when: {keywords: [lawyer]}}\n"
        "  - {name: churn, priority: high, when: {keywords: [cancel]}}",
        default="low",
    )
    report = cr.apply_rules(engine, v0, now=T0)
    assert report.as_dict() == {
        "rule_version": 0,
        "evaluated": 2,
        "written": 2,
        "escalated": 1,
        "reprioritised": 1,
        "conflicts": 0,
    }
    row = conv_row(engine, legal)
    assert (row.priority, row.escalated, row.rule_version, row.version) == ("urgent", True, 0, 2)
    assert row.escalation["rules"] == ["legal"]
    assert row.escalation["reasons"][0]["value"] == "lawyer"
    assert conv_row(engine, fine).priority == "low"  # untouched first evaluation: default low
    assert conv_row(engine, closed).rule_version is None  # closed ones are left alone
    kinds = [e.kind for e in events(engine, legal)]
    assert kinds == ["escalated"]
    assert events(engine, legal)[0].detail["reasons"][0]["rule"] == "legal"
    assert [e.kind for e in events(engine, fine)] == ["prioritised"]
    # Nothing left to evaluate under this version.
    assert cr.apply_rules(engine, v0, now=T0).evaluated == 0
    # A new version re-evaluates, and never lowers a priority.
    saved = cr.save_rules(
        engine,
        "rules:\n  - {name: fine, priority: high, escalate: false, when: {keywords: [fine]}}\n"
        + SLA,
        "ann",
    )
    report = cr.apply_rules(engine, now=T0 + timedelta(minutes=1))
    assert (report.rule_version, report.evaluated, report.reprioritised) == (1, 2, 1)
    row = conv_row(engine, legal)
    assert (row.priority, row.escalated, row.rule_version) == ("urgent", True, saved.version)
    assert row.escalation["rules"] == []  # the breakdown is the new version's
    assert conv_row(engine, fine).priority == "high"


def test_apply_keeps_the_sla_stage_state_and_skips_changed_conversations(engine):
    ids = seed(engine, [{"text": "lawyer"}, {"text": "lawyer"}])
    state = {"sla": {"since": T0.isoformat(), "paused_s": 0.0, "final": False}}
    a = open_conversation(engine, ids[0], escalation=state, escalation_level=1)
    b = open_conversation(engine, ids[1])
    rs = ruleset("  - {name: legal, priority: urgent, when: {keywords: [lawyer]}}")
    todo = se.conversations_to_evaluate(engine, 0)
    with engine.begin() as conn:  # an agent edits b after it was read
        conn.execute(update(ConversationRow).where(ConversationRow.id == b).values(version=5))
    outcomes = [
        se.RuleOutcome(
            conversation_id=t.id,
            version=t.version,
            priority="urgent",
            escalated=True,
            rule_version=0,
            escalation=cr.evaluate(rs, facts(text="lawyer")).breakdown(0, T0),
            changed=True,
            event="escalated",
            detail={},
        )
        for t in todo
    ]
    written = se.write_rule_outcomes(engine, outcomes, now=T0)
    assert written == {a}
    row = conv_row(engine, a)
    assert row.escalation["sla"] == state["sla"] and row.escalation["rules"] == ["legal"]
    assert conv_row(engine, b).rule_version is None
    assert [e.kind for e in events(engine, b)] == []
    # The next apply picks b up again.
    assert cr.apply_rules(engine, rs, now=T0).written == 1
