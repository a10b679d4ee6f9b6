"""Export, erasure and consent (listenwell.store.privacy) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from typing import Any

import crm_seed as s
import pytest
from sqlalchemy import JSON, Engine, String, Text, insert, select

from listenwell.store.errors import NotFoundError
from listenwell.store.models import AuditRow, EnrichmentRow, QuarantineRow, metadata
from listenwell.store.privacy import can_contact, customer_hash, erase_person, export_person

CID = "CUST-ZQ-77"
NAME = "Zelda Quimby"
EMAIL = "zelda.quimby@example.com"
PHONE = "+12125550987"
NEEDLES = [CID, NAME, EMAIL, PHONE, "zquimby", "zq_reviews", "2125550987", "555-0987"]


def _seed(engine: Engine) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    with engine.begin() as c:
        pk = s.customer(
            c,
            CID,
            name=NAME,
            email=EMAIL,
            phone=PHONE,
            attributes={"order": "A-1"},
            consent_contact=True,
            consent_marketing=False,
        )
        other = s.customer(c, "OTHER-1", name="Bob Other", email="bob@other.org")
        s.handle(c, pk, "x", "@zquimby")
        s.handle(c, pk, "trustpilot", "zq_reviews")
        s.handle(c, other, "x", "@bobo")
        by_handle = s.mention(c, s.at(1), f"my email is {EMAIL}", author="@ZQuimby")
        by_review = s.mention(c, s.at(2), "great", source="trustpilot", author="zq_reviews")
        confirmed = s.mention(c, s.at(3), "call me on (212) 555-0987", author="anon1")
        strong = s.mention(c, s.at(4), "order A-1 is late", author="anon2")
        by_conv = s.mention(c, s.at(5), "still waiting", author="anon3")
        theirs_other = s.mention(c, s.at(6), "bob here", author="@bobo")
        weak = s.mention(c, s.at(7), "someone called zelda?", author="anon4")
        s.decide(c, confirmed, pk, "confirmed")
        s.decide(c, theirs_other, pk, "rejected")
        s.enrich(c, strong, "links", CID, strength="strong", customer_pk=pk)
        s.enrich(c, weak, "links", CID, strength="weak", customer_pk=pk)
        s.enrich(c, by_handle, "sentiment", "negative")
        s.enrich(c, theirs_other, "sentiment", "positive")
        s.correct(c, by_handle, "sentiment", "neutral")
        conv = s.conversation(c, by_conv, s.at(5), customer_pk=pk)
        conv2 = s.conversation(c, by_handle, s.at(1))
        other_conv = s.conversation(c, theirs_other, s.at(6), customer_pk=other)
        s.note(c, conv, s.at(5, 13), body=f"{NAME} is upset")
        s.reply(c, conv, s.at(5, 14), body="Sorry Zelda Quimby, we are on it")
        s.escalation(c, conv2, s.at(1, 13))
        s.status_change(c, conv, s.at(5, 15), "new", "open")
        s.survey(c, "csat", 2, s.at(6), customer_pk=pk, comment="slow")
        s.survey(c, "nps", 9, s.at(6), conversation_id=conv2)
        s.survey(c, "csat", 5, s.at(7), customer_pk=other, comment="fine")
        c.execute(
            insert(AuditRow.__table__).values(
                actor="ann",
                action="link.confirmed",
                entity="mention",
                entity_id=str(confirmed),
                detail={"customer_id": CID, "note": "same person"},
            )
        )
        c.execute(
            insert(AuditRow.__table__).values(
                actor="ann",
                action="customer.note",
                entity="segment",
                entity_id="vip",
                detail={"text": f"asked {EMAIL} about it"},
            )
        )
        c.execute(
            insert(AuditRow.__table__).values(
                actor="ann", action="segment.define", entity="segment", entity_id="vip", detail={}
            )
        )
        c.execute(
            insert(QuarantineRow.__table__),
            [
                {"source": "x", "reason": "bad date", "raw": '{"text": "ring (212) 555 0987"}'},
                {"source": "x", "reason": "bad date", "raw": '{"author": "@ZQUIMBY"}'},
                {"source": "x", "reason": "bad date", "raw": '{"author": "@bobo"}'},
            ],
        )
        ids.update(
            pk=pk,
            other=other,
            mentions={by_handle, by_review, confirmed, strong, by_conv},
            other_mention=theirs_other,
            weak=weak,
            conv=conv,
            other_conv=other_conv,
        )
    return ids


def _traces(engine: Engine) -> list[tuple[str, str, Any]]:
    """``(table, column, value)`` of every text or JSON value holding a needle."""
    found = []
    patterns = [n.lower() for n in NEEDLES]
    with engine.connect() as c:
        for table in metadata.sorted_tables:
            cols = [col for col in table.c if isinstance(col.type, String | Text | JSON)]
            if not cols:
                continue
            for row in c.execute(select(*cols)):
                for col, value in zip(cols, row, strict=True):
                    if value is None:
                        continue
                    text = (
                        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    )
                    low = text.lower()
                    digits = re.sub(r"\D", "", text)
                    if any(p in low for p in patterns) or "2125550987" in digits:
                        found.append((table.name, col.name, value))
    return found


def test_export_holds_everything(engine: Engine) -> None:
    ids = _seed(engine)
    data = export_person(engine, CID)
    json.dumps(data)  # serialisable
    assert data["customer"]["customer_id"] == CID
    assert data["customer"]["email"] == EMAIL
    assert data["customer"]["attributes"] == {"order": "A-1"}
    assert data["customer"]["consent"]["contact"] is True
    assert data["customer"]["consent"]["marketing"] is False
    assert {h["display"] for h in data["handles"]} == {"@zquimby", "zq_reviews"}
    assert {m["id"] for m in data["mentions"]} == ids["mentions"]
    by_id = {m["id"]: m for m in data["mentions"]}
    handle_mention = next(m for m in data["mentions"] if m["author_handle"] == "@ZQuimby")
    assert [e["stage"] for e in handle_mention["enrichments"]] == ["sentiment"]
    assert [c["label"] for c in handle_mention["corrections"]] == ["neutral"]
    assert any(m["link_decisions"] for m in by_id.values())
    assert {d["decision"] for d in data["link_decisions"]} == {"confirmed", "rejected"}
    convs = {c["id"]: c for c in data["conversations"]}
    assert ids["conv"] in convs and ids["other_conv"] not in convs
    assert convs[ids["conv"]]["notes"][0]["body"] == f"{NAME} is upset"
    assert convs[ids["conv"]]["replies"][0]["body"].startswith("Sorry")
    assert any(c["escalation_events"] for c in convs.values())
    assert sorted(x["kind"] for x in data["surveys"]) == ["csat", "nps"]
    actions = {a["action"] for a in data["audit"]}
    assert {"link.confirmed", "conversation.update", "customer.note"} <= actions
    assert "segment.define" not in actions


def test_export_unknown_customer(engine: Engine) -> None:
    with pytest.raises(NotFoundError):
        export_person(engine, "nobody")


def test_erase_leaves_no_trace(engine: Engine) -> None:
    ids = _seed(engine)
    assert _traces(engine)  # the needles are there to be found
    report = erase_person(engine, CID, "dpo")
    assert report.mentions == 5
    assert report.conversations == 2
    assert report.surveys == 2
    assert report.handles == 2
    assert report.link_results == 1
    assert report.quarantine == 2
    assert report.audit_scrubbed >= 3
    assert _traces(engine) == []
    with engine.connect() as c:
        audit = c.execute(select(AuditRow.__table__)).all()
        erasure = [a for a in audit if a.action == "customer.erase"]
        assert len(erasure) == 1
        assert erasure[0].entity_id == customer_hash(CID)
        assert erasure[0].actor == "dpo"
        assert erasure[0].detail["mentions"] == 5
        # Who did what and when stays; the untouched entry keeps its detail.
        assert {a.action for a in audit} >= {"link.confirmed", "segment.define"}
        assert next(a for a in audit if a.action == "segment.define").detail == {}
        # The other customer is untouched.
        data = export_person(c, "OTHER-1")
        assert data["customer"]["email"] == "bob@other.org"
        assert [m["id"] for m in data["mentions"]] == [ids["other_mention"]]
        assert [x["comment"] for x in data["surveys"]] == ["fine"]
        weak = c.execute(
            select(EnrichmentRow.__table__).where(EnrichmentRow.mention_id == ids["weak"])
        ).all()
        assert weak == []
        assert len(c.execute(select(QuarantineRow.__table__)).all()) == 1
    with pytest.raises(NotFoundError):
        export_person(engine, CID)


def test_erase_unknown_customer_changes_nothing(engine: Engine) -> None:
    with pytest.raises(NotFoundError):
        erase_person(engine, "nobody", "dpo")
    with pytest.raises(ValueError, match="actor"):
        erase_person(engine, "nobody", " ")
    with engine.connect() as c:
        assert c.execute(select(AuditRow.__table__)).all() == []


def test_consent(engine: Engine) -> None:
    with engine.begin() as c:
        yes = s.customer(c, "Y", consent_contact=True, consent_marketing=True)
        no = s.customer(c, "N", consent_contact=False, consent_marketing=False)
        unknown = s.customer(c, "U")
        erased = s.customer(c, "E", consent_contact=True, erased_at=s.at(1))
    assert can_contact(engine, yes, "survey")[0] is True
    assert can_contact(engine, yes, "marketing")[0] is True
    allowed, reason = can_contact(engine, no, "survey")
    assert not allowed and "refused" in reason
    assert can_contact(engine, no, "marketing")[0] is False
    assert can_contact(engine, no, "service")[0] is True
    allowed, reason = can_contact(engine, unknown, "marketing")
    assert not allowed and "unknown" in reason
    assert can_contact(engine, erased, "service")[0] is False
    assert can_contact(engine, 10_000, "service")[0] is False
    with pytest.raises(ValueError, match="purpose"):
        can_contact(engine, yes, "spam")
