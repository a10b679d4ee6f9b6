"""Customer 360 (timeline, links, satisfaction trend, paging) and reminders, on both databases."""

from __future__ import annotations

from datetime import date

import pytest
from crm_seed import (
    at,
    conversation,
    correct,
    customer,
    decide,
    enrich,
    escalation,
    handle,
    mention,
    note,
    reply,
    status_change,
    survey,
)

from listenwell.store import NotFoundError
from listenwell.store.customer360 import customer_360, linked_mentions, reminders


@pytest.fixture
def seeded(engine):
    """Customer C1 linked four ways, plus an unrelated customer and noise."""
    with engine.begin() as c:
        pk = customer(
            c,
            "C1",
            name="Jo Doe",
            email="jo@example.com",
            segment="gold",
            attributes={"lifetime_value": "1200.50", "country": "FR"},
            consent_contact=True,
        )
        other = customer(c, "C2", name="Other")
        handle(c, pk, "x", "@JoDoe")
        ids = {}
        # 1. via the conversation's customer
        ids["conv"] = mention(c, at(1), "my parcel is late")
        conv = conversation(c, ids["conv"], at(1), customer_pk=pk, status="resolved")
        enrich(c, ids["conv"], "sentiment", "negative")
        reply(c, conv, at(1, 13), "sorry about that")
        note(c, conv, at(1, 14), "called the courier")
        escalation(c, conv, at(1, 15))
        status_change(c, conv, at(1, 16), "open", "resolved")
        # 2. a confirmed decision
        ids["confirmed"] = mention(c, at(2), "thanks!")
        decide(c, ids["confirmed"], pk, "confirmed")
        enrich(c, ids["confirmed"], "sentiment", "negative")
        correct(c, ids["confirmed"], "sentiment", "positive")  # the label in force
        # 3. a strong link result; and one rejected, one weak
        ids["strong"] = mention(c, at(3), "ok")
        enrich(c, ids["strong"], "links", "C1", strength="strong", customer_pk=pk)
        enrich(c, ids["strong"], "sentiment", "neutral")
        ids["rejected"] = mention(c, at(4), "not me")
        enrich(c, ids["rejected"], "links", "C1", strength="strong", customer_pk=pk)
        decide(c, ids["rejected"], pk, "rejected")
        ids["weak"] = mention(c, at(5), "maybe")
        enrich(c, ids["weak"], "links", "C1", strength="weak", customer_pk=pk)
        # 4. the author handle, same platform, any case and with @
        ids["handle"] = mention(c, at(6, month=6), "love it", source="x", author="@jodoe")
        enrich(c, ids["handle"], "sentiment", "positive")
        ids["other_platform"] = mention(c, at(7), "hmm", source="reddit", author="jodoe")
        ids["other_customer"] = mention(c, at(8), "x")
        conversation(c, ids["other_customer"], at(8), customer_pk=other)
        survey(c, "csat", 4, at(2, 9), customer_pk=pk, conversation_id=conv, comment="quick")
        survey(c, "nps", 10, at(3, 9), customer_pk=pk)
        survey(c, "nps", 5, at(4, 9), customer_pk=pk)
        survey(c, "csat", 1, at(4, 9), customer_pk=other)
    return pk, ids


def test_linked_mentions_follow_every_kind_of_link(engine, seeded):
    pk, ids = seeded
    with engine.connect() as c:
        got = {r.mention_id for r in c.execute(linked_mentions([pk]))}
    assert got == {ids["conv"], ids["confirmed"], ids["strong"], ids["handle"]}


def test_profile_and_timeline(engine, seeded):
    pk, ids = seeded
    view = customer_360(engine, "C1")
    assert view.name == "Jo Doe" and view.segment == "gold"
    assert view.lifetime_value == 1200.5
    assert view.consent == {"contact": True, "marketing": None, "profiling": None}
    assert view.handles == ["x:@JoDoe"]
    assert view.counts == {
        "mention": 4,
        "reply": 1,
        "note": 1,
        "survey": 3,
        "escalation": 1,
        "status": 1,
    }
    kinds = [(e.kind, e.at) for e in view.timeline]
    assert kinds == sorted(kinds, key=lambda k: k[1], reverse=True)  # newest first
    assert view.timeline[0].kind == "mention" and view.timeline[0].mention_id == ids["handle"]
    by_kind = {e.kind: e for e in view.timeline}
    assert by_kind["reply"].text == "sorry about that"
    assert by_kind["note"].platform == "x"
    assert by_kind["status"].text == "status open → resolved"
    assert by_kind["escalation"].text.startswith("escalated")
    surveys = [e.text for e in view.timeline if e.kind == "survey"]
    assert "CSAT 4/5: quick" in surveys and "NPS 5/10" in surveys
    confirmed = next(e for e in view.timeline if e.mention_id == ids["confirmed"])
    assert confirmed.detail["sentiment"] == "positive"
    assert view.next_before is None


def test_satisfaction_trend_per_month(engine, seeded):
    view = customer_360(engine, "C1")
    may, june = view.satisfaction
    assert may.month == date(2024, 5, 1) and june.month == date(2024, 6, 1)
    # May: negative (-1), corrected positive (+1), neutral (0) -> mean 0
    assert may.mentions == 3 and may.sentiment == 0.0
    assert may.csat_answers == 1 and may.csat_mean == 4.0
    # NPS: one promoter (10) and one detractor (5) of two -> 0
    assert may.nps_answers == 2 and may.nps == 0.0
    assert june.mentions == 1 and june.sentiment == 1.0 and june.csat_mean is None


def test_paging_walks_the_whole_timeline_once(engine, seeded):
    seen = []
    before = None
    while True:
        view = customer_360(engine, "C1", limit=3, before=before, trend=False)
        seen.extend((e.kind, e.id) for e in view.timeline)
        if view.next_before is None:
            break
        before = view.next_before
    assert len(seen) == len(set(seen)) == 11
    full = customer_360(engine, "C1", limit=100)
    assert seen == [(e.kind, e.id) for e in full.timeline]


def test_unknown_customer_and_bad_cursor(engine, seeded):
    with pytest.raises(NotFoundError):
        customer_360(engine, "nobody")
    with pytest.raises(ValueError, match="cursor"):
        customer_360(engine, "C1", before="yesterday")


def test_erased_customer_is_not_shown(engine, seeded):
    pk, _ = seeded
    from sqlalchemy import update

    from listenwell.store.models import CustomerRow

    with engine.begin() as c:
        c.execute(update(CustomerRow.__table__).values(erased_at=at(9)).where(CustomerRow.id == pk))
    with pytest.raises(NotFoundError, match="erased"):
        customer_360(engine, "C1")


def test_reminders_three_kinds(engine):
    today = date(2024, 5, 20)
    with engine.begin() as c:
        due = customer(c, "DUE", attributes={"next_contact": "2024-05-20"})
        customer(c, "LATER", attributes={"next_contact": "2024-05-21"})
        pend = customer(c, "PEND")
        m = mention(c, at(1))
        conversation(c, m, at(1), customer_pk=pend, status="pending", pending_since=at(17, 9))
        stale = customer(c, "STALE")
        m = mention(c, at(2))
        conv = conversation(c, m, at(2), customer_pk=stale, status="open")
        reply(c, conv, at(10))  # last activity 10 May: overdue after 3 days
        fresh = customer(c, "FRESH")
        m = mention(c, at(18))
        conversation(c, m, at(18), customer_pk=fresh, status="open")
        done = customer(c, "DONE")
        m = mention(c, at(2))
        conversation(c, m, at(2), customer_pk=done, status="resolved")
        quiet = customer(c, "QUIET")
        m = mention(c, at(1, month=1))
        conversation(c, m, at(1, month=1), customer_pk=quiet, status="closed")
        assert due
    df = reminders(engine, today=today, silent_days=90, follow_up_days=3)
    got = list(zip(df["kind"], df["customer_id"], strict=True))
    assert got == [
        ("due_today", "PEND"),
        ("due_today", "DUE"),
        ("overdue_follow_up", "STALE"),
        ("silent", "QUIET"),
    ]
    stale_row = df[df["customer_id"] == "STALE"].iloc[0]
    assert stale_row["days"] == 10 and str(stale_row["since"]) == "2024-05-10"
    quiet_row = df[df["customer_id"] == "QUIET"].iloc[0]
    assert quiet_row["days"] == (today - date(2024, 1, 1)).days
    # With a longer silence threshold nobody is silent yet
    df = reminders(engine, today=today, silent_days=200)
    assert "silent" not in set(df["kind"])
