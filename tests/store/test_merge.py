"""Merging duplicate customers and setting consent, on both databases."""

from __future__ import annotations

import pytest
from crm_seed import (
    at,
    conversation,
    customer,
    decide,
    enrich,
    escalation,
    handle,
    mention,
    survey,
)
from sqlalchemy import select

from listenwell.store import NotFoundError
from listenwell.store.customer360 import customer_360
from listenwell.store.links import effective_links
from listenwell.store.merge import MergeError, merge_customers, set_consent
from listenwell.store.models import (
    AuditRow,
    CustomerRow,
    EnrichmentRow,
    HandleRow,
    LinkDecisionRow,
)
from listenwell.store.privacy import can_contact

A = AuditRow.__table__
C = CustomerRow.__table__
H = HandleRow.__table__
D = LinkDecisionRow.__table__
E = EnrichmentRow.__table__


@pytest.fixture
def pair(engine):
    """C1 (survivor) and C1-dup (the same person) with activity each; C9 is someone else."""
    with engine.begin() as c:
        surv = customer(
            c,
            "C1",
            name="Jo Doe",
            email=None,
            segment="gold",
            attributes={"country": "FR", "lifetime_value": "100"},
            consent_contact=True,
            consent_marketing=None,
        )
        dup = customer(
            c,
            "C1-dup",
            name="Joanna Doe",
            email="jo@example.com",
            phone="+33 6 12 34 56 78",
            segment="standard",
            attributes={"country": "BE", "order_id": "A-77"},
            consent_contact=True,
            consent_marketing=False,
        )
        other = customer(c, "C9", name="Someone Else")
        handle(c, surv, "x", "@JoDoe")
        handle(c, dup, "reddit", "u/joanna")
        handle(c, dup, "x", "@JoannaD")
        ids: dict[str, int] = {}
        # The duplicate's conversation, with an escalation, and a survey answer.
        ids["conv_mention"] = mention(c, at(1), "my parcel is late")
        ids["conv"] = conversation(c, ids["conv_mention"], at(1), customer_pk=dup)
        escalation(c, ids["conv"], at(1, 13))
        ids["survey"] = survey(c, "nps", 3, at(2), customer_pk=dup)
        # A strong link naming the duplicate, with the survivor among its suggestions.
        ids["strong"] = mention(c, at(3), "still waiting")
        enrich(
            c,
            ids["strong"],
            "links",
            "C1-dup",
            strength="strong",
            customer_pk=dup,
            suggestions=[
                {"customer_id": "C1", "customer_pk": surv, "confidence": 0.4},
                {"customer_id": "C9", "customer_pk": other, "confidence": 0.2},
            ],
        )
        # A weak link to someone else that suggests the duplicate.
        ids["weak"] = mention(c, at(4), "hello")
        enrich(
            c,
            ids["weak"],
            "links",
            "C9",
            strength="weak",
            customer_pk=other,
            suggestions=[{"customer_id": "C1-dup", "customer_pk": dup, "confidence": 0.5}],
        )
        # A confirmed decision for the duplicate, and a clash on one mention.
        ids["confirmed"] = mention(c, at(5), "thanks")
        decide(c, ids["confirmed"], dup, "confirmed")
        ids["clash"] = mention(c, at(6), "which one?")
        decide(c, ids["clash"], surv, "rejected")
        decide(c, ids["clash"], dup, "confirmed")
        for pk, when in ((surv, at(6, 13)), (dup, at(6, 14))):  # the duplicate's is newer
            c.execute(
                D.update()
                .where(D.c.mention_id == ids["clash"], D.c.customer_pk == pk)
                .values(decided_at=when)
            )
    return {"surv": surv, "dup": dup, "other": other, **ids}


def test_merge_moves_everything_to_the_survivor(engine, pair):
    before = customer_360(engine, "C1-dup")
    assert before.counts["mention"] >= 3 and before.counts["survey"] == 1

    report = merge_customers(engine, "C1", "C1-dup", actor="user:ann")

    assert report.handles == 2 and report.conversations == 1 and report.surveys == 1
    assert report.link_decisions == 2 and report.link_decisions_dropped == 1
    assert report.link_results == 2
    assert set(report.filled) == {"email", "phone"}
    with engine.connect() as c:
        assert c.execute(select(C.c.id).where(C.c.customer_id == "C1-dup")).first() is None
        row = c.execute(select(C).where(C.c.customer_id == "C1")).one()
        handles = {
            (h.platform, h.handle) for h in c.execute(select(H).where(H.c.customer_pk == row.id))
        }
        decisions = {
            (d.mention_id, d.decision)
            for d in c.execute(select(D).where(D.c.customer_pk == row.id))
        }
        links = {
            r.mention_id: (r.label, r.data)
            for r in c.execute(select(E).where(E.c.stage == "links"))
        }
        audit = c.execute(select(A).where(A.c.action == "customer.merge")).one()
    # The survivor's values win; blanks are filled from the duplicate; attributes merged.
    assert (row.name, row.segment) == ("Jo Doe", "gold")
    assert (row.email, row.phone) == ("jo@example.com", "+33 6 12 34 56 78")
    assert row.attributes == {"country": "FR", "lifetime_value": "100", "order_id": "A-77"}
    # Consent: refused by either is refused; given stays given.
    assert (row.consent_contact, row.consent_marketing) == (True, False)
    assert handles == {("x", "jodoe"), ("reddit", "u/joanna"), ("x", "joannad")}
    # The newer decision (the duplicate's confirmation) won the clash.
    assert decisions == {(pair["confirmed"], "confirmed"), (pair["clash"], "confirmed")}
    # Link results now name the survivor; it is no longer its own suggestion.
    label, data = links[pair["strong"]]
    assert label == "C1" and data["customer_pk"] == row.id
    assert [s["customer_id"] for s in data["suggestions"]] == ["C9"]
    label, data = links[pair["weak"]]
    assert label == "C9" and data["suggestions"][0]["customer_id"] == "C1"
    assert effective_links(engine, [pair["strong"]])[pair["strong"]].customer_id == "C1"
    assert (audit.actor, audit.entity_id) == ("user:ann", "C1")
    assert audit.detail["duplicate_id"] == "C1-dup" and audit.detail["handles"] == 2
    # Everything that was the duplicate's is in the survivor's 360 now.
    after = customer_360(engine, "C1")
    assert after.counts["survey"] == 1 and after.counts["escalation"] == 1
    assert after.counts["mention"] >= before.counts["mention"]
    kinds = {e.kind for e in after.timeline}
    assert {"mention", "survey", "escalation"} <= kinds
    with pytest.raises(NotFoundError):
        customer_360(engine, "C1-dup")


def test_merge_refuses_itself_unknown_and_empty_actor(engine, pair):
    with pytest.raises(MergeError):
        merge_customers(engine, "C1", "C1", actor="ann")
    with pytest.raises(NotFoundError):
        merge_customers(engine, "C1", "nobody", actor="ann")
    with pytest.raises(ValueError):
        merge_customers(engine, "C1", "C1-dup", actor="  ")
    with engine.connect() as c:
        assert c.execute(select(C.c.id).where(C.c.customer_id == "C1-dup")).first() is not None


def test_merge_is_one_transaction(engine, pair, monkeypatch):
    """A failure half way leaves both customers exactly as they were."""
    from listenwell.store import merge

    def boom(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(merge, "_relabel_links", boom)
    with pytest.raises(RuntimeError):
        merge_customers(engine, "C1", "C1-dup", actor="ann")
    with engine.connect() as c:
        dup = c.execute(select(C.c.id).where(C.c.customer_id == "C1-dup")).one()
        assert len(c.execute(select(H).where(H.c.customer_pk == dup.id)).all()) == 2
        assert c.execute(select(A).where(A.c.action == "customer.merge")).first() is None


def test_merge_refuses_an_erased_customer(engine, pair):
    from listenwell.store.models import utcnow

    with engine.begin() as c:
        c.execute(C.update().where(C.c.customer_id == "C1-dup").values(erased_at=utcnow()))
    with pytest.raises(MergeError, match="erased"):
        merge_customers(engine, "C1", "C1-dup", actor="ann")


def test_set_consent_changes_flags_and_audits(engine, pair):
    changes = set_consent(engine, "C1", {"marketing": True, "contact": True}, actor="user:admin")
    assert changes == {"marketing": (None, True)}  # contact was already given
    assert can_contact(engine, pair["surv"], "marketing")[0] is True
    assert set_consent(engine, "C1", {"marketing": True}, actor="user:admin") == {}
    changes = set_consent(engine, "C1", {"contact": False, "profiling": None}, actor="user:admin")
    assert changes == {"contact": (True, False)}
    assert can_contact(engine, pair["surv"], "survey")[0] is False
    with engine.connect() as c:
        entries = c.execute(
            select(A).where(A.c.action == "customer.consent").order_by(A.c.id)
        ).all()
        row = c.execute(select(C).where(C.c.customer_id == "C1")).one()
    assert [e.detail["changes"] for e in entries] == [
        {"marketing": [None, True]},
        {"contact": [True, False]},
    ]
    assert {e.actor for e in entries} == {"user:admin"}
    assert row.consent_updated_at is not None


@pytest.mark.parametrize(
    ("consent", "error"),
    [({"newsletter": True}, ValueError), ({"contact": "yes"}, ValueError)],
)
def test_set_consent_rejects_bad_input(engine, pair, consent, error):
    with pytest.raises(error):
        set_consent(engine, "C1", consent, actor="ann")


def test_set_consent_unknown_customer(engine, pair):
    with pytest.raises(NotFoundError):
        set_consent(engine, "nobody", {"contact": True}, actor="ann")


def test_merge_keeps_the_survivors_newer_decision(engine, pair):
    with engine.begin() as c:
        c.execute(
            D.update()
            .where(D.c.mention_id == pair["clash"], D.c.customer_pk == pair["surv"])
            .values(decided_at=at(7))
        )
    report = merge_customers(engine, "C1", "C1-dup", actor="ann")
    assert report.link_decisions == 1 and report.link_decisions_dropped == 1
    with engine.connect() as c:
        kept = c.execute(select(D.c.decision).where(D.c.mention_id == pair["clash"])).all()
    assert [k.decision for k in kept] == ["rejected"]
