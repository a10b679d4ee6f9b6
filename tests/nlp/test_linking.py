"""The ``links`` stage: evidence, strength, decisions, and its use through the database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from listenwell import store
from listenwell.nlp.base import MentionContext, NlpError, Stage
from listenwell.nlp.linking import EvidenceLinker
from listenwell.nlp.matching import CustomerIndex
from listenwell.store.links import (
    CustomerCard,
    LinkDecision,
    decide_link,
    effective_links,
)
from listenwell.store.models import CustomerRow
from listenwell.store.records import parse_handles

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def card(pk: int, name: str, **kw) -> CustomerCard:
    handles = tuple((h.platform, h.handle) for h in parse_handles(kw.pop("handles", "")))
    return CustomerCard(pk=pk, customer_id=f"C{pk}", name=name, handles=handles, **kw)


CARDS = [
    card(
        1,
        "Jude Gomez",
        email="jude.gomez@example.com",
        phone="+1-919-555-0196",
        handles="x:@JudeGomez69;reddit:u/jude_g",
        attributes={"order_ids": "A-100234-77"},
    ),
    card(2, "Elena Nair", email="elena@gmail.com", attributes={"account_number": "AC7654321"}),
    card(3, "Anna Kowalski", phone="+1-212-555-0101"),
    card(4, "Piotr Kowalski", phone="(212) 555-0101"),  # household: same phone
    card(5, "Ines Yates", email="ines.yates@example.com", phone="+1-503-555-0176"),
    card(6, "Ines Ytaes", email="ines.yates@example.com", phone="503 555 0176"),  # duplicate
    card(7, "Gone Person", email="gone@example.com", handles="x:@GoneP", erased=True),
]


def ctx(source="x", handle="@someone", name=None, mid=1) -> MentionContext:
    return MentionContext(
        id=mid, source=source, author_handle=handle, author_name=name, created_at=T0
    )


@pytest.fixture(scope="module")
def index() -> CustomerIndex:
    return CustomerIndex(CARDS)


@pytest.fixture
def linker(index) -> EvidenceLinker:
    return EvidenceLinker(index)


def kinds(result) -> list[str]:
    return [e["kind"] for e in result.data["evidence"]]


def test_follows_the_stage_protocol(linker):
    assert isinstance(linker, Stage)
    assert (linker.name, linker.needs_embeddings, linker.needs_context, linker.off) == (
        "links",
        False,
        True,
        False,
    )
    assert "7 customers" not in repr(linker) and "6 customers" in repr(linker)


@pytest.mark.parametrize(
    ("source", "handle"),
    [
        ("x", "@JudeGomez69"),
        ("x", "@judegomez69"),
        ("twitter", "JUDEGOMEZ69"),
        ("reddit", "u/Jude_G"),
    ],
)
def test_author_handle_is_strong_evidence(linker, source, handle):
    [r] = linker.run(["hello"], contexts=[ctx(source, handle)])
    assert (r.label, r.data["strength"], kinds(r)) == ("C1", "strong", ["handle"])
    assert r.score == pytest.approx(0.95)
    assert r.data["customer_pk"] == 1 and r.data["ambiguous"] is False


def test_handle_quoted_in_the_text_is_not_evidence(linker):
    [r] = linker.run(["@JudeGomez69 did you get a reply?"], contexts=[ctx("x", "@other")])
    assert r.label is None and r.score is None
    assert r.data == {
        "customer_pk": None,
        "strength": None,
        "ambiguous": False,
        "evidence": [],
        "suggestions": [],
    }


def test_same_handle_on_another_platform_is_not_evidence(linker):
    [r] = linker.run(["hi"], contexts=[ctx("reddit", "u/judegomez69")])
    assert r.label is None


@pytest.mark.parametrize(
    ("text", "kind", "customer"),
    [
        ("reach me at JUDE.GOMEZ@example.com", "email", "C1"),
        ("e.l.e.n.a+help@gmail.com is my login", "email", "C2"),
        ("call me back on (919) 555-0196", "phone", "C1"),
        ("call me back on 919.555.0196", "phone", "C1"),
        ("order a 100234 77 never arrived", "account", "C1"),
        ("account AC-765-4321 locked", "account", "C2"),
    ],
)
def test_text_evidence_is_strong(linker, text, kind, customer):
    [r] = linker.run([text], contexts=[ctx()])
    assert (r.label, r.data["strength"]) == (customer, "strong")
    assert kinds(r) == [kind]


def test_evidence_values_are_masked(linker):
    [r] = linker.run(["mail jude.gomez@example.com or call +1 919 555 0196"], contexts=[ctx()])
    values = {e["kind"]: e["value"] for e in r.data["evidence"]}
    assert values == {"email": "j***z@example.com", "phone": "***0196"}
    assert r.score == pytest.approx(1 - 0.03 * 0.1)  # 1 - prod(1 - weight)


def test_a_name_alone_is_weak_and_only_a_suggestion(linker):
    [r] = linker.run(["love it"], contexts=[ctx(name="Jude Gomez")])
    assert (r.label, r.data["strength"], kinds(r)) == ("C1", "weak", ["name"])
    assert r.score <= 0.5


def test_name_agreeing_with_a_handle_adds_to_its_evidence(linker):
    [r] = linker.run(["hi"], contexts=[ctx("x", "@JudeGomez69", name="Jude Gomez")])
    assert kinds(r) == ["handle", "name"] and r.data["strength"] == "strong"
    assert r.score > 0.95


def test_no_context_means_text_only(linker):
    [a, b] = linker.run(["call (919) 555-0196", "nothing here"])
    assert a.label == "C1" and b.label is None


def test_household_phone_is_ambiguous_and_weak(linker):
    [r] = linker.run(["call 212-555-0101"], contexts=[ctx()])
    assert r.data["strength"] == "weak" and r.data["ambiguous"] is True
    assert {r.label, r.data["suggestions"][0]["customer_id"]} == {"C3", "C4"}
    assert r.score == pytest.approx(0.5)


def test_duplicate_records_of_one_person_still_link(linker):
    [r] = linker.run(["ines.yates@example.com"], contexts=[ctx()])
    assert r.data["strength"] == "strong" and r.data["ambiguous"] is False
    assert r.label == "C5" and r.data["possible_duplicates"] == ["C6"]


def test_erased_customers_are_never_linked(linker):
    [r] = linker.run(["gone@example.com"], contexts=[ctx("x", "@GoneP")])
    assert r.label is None


def decision(mid: int, pk: int, what: str, actor: str = "alice") -> LinkDecision:
    return LinkDecision(
        mention_id=mid,
        customer_pk=pk,
        customer_id=f"C{pk}",
        decision=what,
        actor=actor,
        decided_at=T0,
    )


def test_rejected_customer_is_never_proposed_again(index):
    linker = EvidenceLinker(index, decisions={1: [decision(1, 3, "rejected")]})
    [r] = linker.run(["call 212-555-0101"], contexts=[ctx(mid=1)])
    # C3 is gone, so C4 is the only one with the evidence: a strong link.
    assert (r.label, r.data["strength"]) == ("C4", "strong")
    assert all(s["customer_id"] != "C3" for s in r.data["suggestions"])
    [other] = linker.run(["call 212-555-0101"], contexts=[ctx(mid=2)])
    assert other.data["ambiguous"] is True  # the decision is about mention 1 only


def test_confirmed_customer_wins_with_agent_evidence(index):
    decided = {1: [decision(1, 2, "confirmed", "bob"), decision(1, 1, "confirmed", "old")]}
    linker = EvidenceLinker(index, decisions=decided)
    [r] = linker.run(["my email is jude.gomez@example.com"], contexts=[ctx(mid=1)])
    assert (r.label, r.score, r.data["strength"]) == ("C2", 1.0, "strong")
    assert r.data["evidence"][0] == {"kind": "agent", "value": "bob", "weight": 1.0}
    assert r.data["suggestions"][0]["customer_id"] == "C1"


def test_confirmed_but_erased_customer_is_not_linked(index):
    linker = EvidenceLinker(index, decisions={1: [decision(1, 7, "confirmed")]})
    [r] = linker.run(["hi"], contexts=[ctx(mid=1)])
    assert r.label is None


def test_run_needs_an_index_and_matching_contexts(index):
    with pytest.raises(NlpError, match="prepare"):
        EvidenceLinker().run(["x"])
    with pytest.raises(NlpError, match="contexts"):
        EvidenceLinker(index).run(["a", "b"], contexts=[ctx()])


def test_prepare_loads_customers_and_decisions_from_the_database(engine):
    store.upsert_customers(
        engine,
        [
            ("1", store.Customer("C1", name="Jo Doe", handles=store.parse_handles("x:@JoDoe"))),
            ("2", store.Customer("C2", name="Al Roe", email="al@example.com")),
            ("3", store.Customer("C3", name="Gone", email="gone@example.com")),
        ],
    )
    with engine.begin() as conn:
        conn.execute(
            update(CustomerRow).where(CustomerRow.customer_id == "C3").values(erased_at=T0)
        )
    store.upsert_mentions(
        engine,
        [
            store.Mention("x", "a", T0, "hi from me", author_handle="@jodoe"),
            store.Mention("x", "b", T0, "mail al@example.com", author_handle="@x1"),
            store.Mention("x", "c", T0, "mail gone@example.com", author_handle="@x2"),
        ],
    )
    frame = store.mentions_frame(engine)
    ids = dict(zip(frame["external_id"], frame["id"], strict=True))
    decide_link(engine, int(ids["a"]), "C1", "rejected", "alice")
    decide_link(engine, int(ids["c"]), "C2", "confirmed", "bob")
    linker = EvidenceLinker()
    linker.prepare(engine)
    texts = {"a": "hi from me", "b": "mail al@example.com", "c": "mail gone@example.com"}
    results = {}
    for ext, text in texts.items():
        handle = {"a": "@jodoe", "b": "@x1", "c": "@x2"}[ext]
        [results[ext]] = linker.run([text], contexts=[ctx("x", handle, mid=int(ids[ext]))])
    assert results["a"].label is None  # rejected
    assert (results["b"].label, results["b"].data["strength"]) == ("C2", "strong")
    assert (results["c"].label, results["c"].score) == ("C2", 1.0)  # confirmed; C3 erased
    store.upsert_enrichments(
        engine,
        [
            store.EnrichmentResult(
                mention_id=int(ids[ext]),
                stage=linker.name,
                label=r.label,
                score=r.score,
                model_name=linker.model_name,
                model_version=linker.model_version,
                data=r.data,
            )
            for ext, r in results.items()
        ],
    )
    links = effective_links(engine, [int(i) for i in ids.values()])
    assert {k: v.customer_id for k, v in links.items()} == {
        int(ids["b"]): "C2",
        int(ids["c"]): "C2",
    }
    assert links[int(ids["b"])].evidence_text == "email a***@example.com (0.97)"
