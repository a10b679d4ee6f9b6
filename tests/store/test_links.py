"""Link decisions and the link in force per mention, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from listenwell import store
from listenwell.store.links import (
    LINK_STAGE,
    EffectiveLink,
    customer_cards,
    decide_link,
    effective_links,
    evidence_text,
    linker_result,
    list_decisions,
)
from listenwell.store.models import AuditRow, ConversationRow, CustomerRow, MentionRow

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def seed(engine, n_mentions: int = 3) -> dict[str, int]:
    """Three customers (C3 erased) and ``n_mentions`` mentions; returns ids by name."""
    store.upsert_customers(
        engine,
        [
            (
                "1",
                store.Customer(
                    "C1",
                    name="Jo Doe",
                    email="jo@example.com",
                    handles=store.parse_handles("x:@JoDoe;reddit:u/jo_doe"),
                    attributes={"order_ids": "A-100234-77"},
                ),
            ),
            ("2", store.Customer("C2", name="Al Roe", phone="+1-212-555-0101")),
            ("3", store.Customer("C3", name="Gone Person", email="gone@example.com")),
        ],
    )
    with engine.begin() as conn:
        conn.execute(
            update(CustomerRow).where(CustomerRow.customer_id == "C3").values(erased_at=T0)
        )
    store.upsert_mentions(
        engine,
        [
            store.Mention(
                source="x",
                external_id=f"m{k}",
                created_at=T0 + timedelta(minutes=k),
                text=f"post {k}",
                author_handle="@somebody",
            )
            for k in range(n_mentions)
        ],
    )
    with engine.connect() as conn:
        ids = dict(conn.execute(select(MentionRow.external_id, MentionRow.id)).all())
        pks = dict(conn.execute(select(CustomerRow.customer_id, CustomerRow.id)).all())
    return {**ids, **pks}


def link_result(ids, mention: str, customer: str, strength: str, score: float = 0.95):
    return store.EnrichmentResult(
        mention_id=ids[mention],
        stage=LINK_STAGE,
        label=customer,
        score=score,
        model_name="listenwell-evidence-linker",
        model_version="1",
        data={
            "customer_pk": ids[customer],
            "strength": strength,
            "ambiguous": False,
            "evidence": [{"kind": "handle", "value": "x:@JoDoe", "weight": 0.95}],
            "suggestions": [],
        },
    )


def test_customer_cards_carry_handles_and_attributes_and_skip_erased(engine):
    seed(engine)
    cards = {c.customer_id: c for c in customer_cards(engine)}
    assert set(cards) == {"C1", "C2"}
    assert cards["C1"].handles == (("x", "jodoe"), ("reddit", "jo_doe"))
    assert cards["C1"].attributes == {"order_ids": "A-100234-77"}
    assert cards["C2"].phone == "+1-212-555-0101"
    everyone = {c.customer_id: c for c in customer_cards(engine, include_erased=True)}
    assert everyone["C3"].erased and not everyone["C1"].erased


def test_decide_link_keeps_the_decision_audits_it_and_drops_the_stale_result(engine):
    ids = seed(engine)
    store.upsert_enrichments(engine, [link_result(ids, "m0", "C1", "strong")])
    d = decide_link(engine, ids["m0"], "C1", "rejected", "alice", note="not her")
    assert (d.customer_id, d.decision, d.actor, d.note) == ("C1", "rejected", "alice", "not her")
    assert linker_result(engine, ids["m0"]) is None  # recomputed on the next enrich
    with engine.connect() as conn:
        audit = conn.execute(select(AuditRow).where(AuditRow.action == "link.rejected")).one()
    assert (audit.actor, audit.entity, audit.entity_id) == ("alice", "mention", str(ids["m0"]))
    assert audit.detail == {"customer_id": "C1", "note": "not her"}
    # A later decision on the same pair replaces the earlier one.
    decide_link(engine, ids["m0"], "C1", "confirmed", "bob")
    decisions = list_decisions(engine, ids["m0"])
    assert [(x.customer_id, x.decision, x.actor) for x in decisions] == [("C1", "confirmed", "bob")]


@pytest.mark.parametrize(
    ("mention", "customer", "decision", "actor", "error", "match"),
    [
        ("missing", "C1", "confirmed", "a", store.NotFoundError, "no mention"),
        ("m0", "C9", "confirmed", "a", store.NotFoundError, "no customer"),
        ("m0", "C3", "confirmed", "a", store.NotFoundError, "erased"),
        ("m0", "C1", "maybe", "a", ValueError, "decision must be"),
        ("m0", "C1", "rejected", "  ", ValueError, "actor"),
    ],
)
def test_decide_link_refuses(engine, mention, customer, decision, actor, error, match):
    ids = seed(engine)
    with pytest.raises(error, match=match):
        decide_link(engine, ids.get(mention, 10**9), customer, decision, actor)
    assert list_decisions(engine) == []


def test_list_decisions_newest_first_and_filters(engine):
    ids = seed(engine)
    decide_link(engine, ids["m0"], "C1", "rejected", "a")
    decide_link(engine, ids["m1"], "C2", "confirmed", "b")
    decide_link(engine, ids["m0"], "C2", "confirmed", "c")
    assert [d.actor for d in list_decisions(engine)] == ["c", "b", "a"]
    assert [d.actor for d in list_decisions(engine, ids["m0"])] == ["c", "a"]
    assert [d.actor for d in list_decisions(engine, mention_ids=[ids["m1"]])] == ["b"]
    assert len(list_decisions(engine, limit=2)) == 2


def test_effective_links_rules(engine):
    ids = seed(engine, n_mentions=6)
    store.upsert_enrichments(
        engine,
        [
            link_result(ids, "m0", "C1", "strong"),  # a link
            link_result(ids, "m1", "C1", "weak", 0.4),  # only a suggestion
            link_result(ids, "m2", "C1", "strong"),  # rejected below
            link_result(ids, "m3", "C1", "strong"),  # an agent confirms someone else
            link_result(ids, "m4", "C3", "strong"),  # erased customer
        ],
    )
    decide_link(engine, ids["m3"], "C2", "confirmed", "alice", note="phone call")
    with engine.begin() as conn:  # decide_link dropped m3's result; restore it
        store.upsert_enrichments(conn, [link_result(ids, "m3", "C1", "strong")])
    rejected = link_result(ids, "m2", "C1", "strong")
    decide_link(engine, ids["m2"], "C1", "rejected", "bob")
    store.upsert_enrichments(engine, [rejected])  # a stale result from before the decision
    links = effective_links(engine, [ids[f"m{k}"] for k in range(6)])
    assert set(links) == {ids["m0"], ids["m3"]}
    assert links[ids["m0"]] == EffectiveLink("C1", 0.95, "handle x:@JoDoe (0.95)")
    assert links[ids["m3"]] == EffectiveLink("C2", 1.0, "agent alice (confirmed): phone call")
    assert effective_links(engine, []) == {}


def test_confirmed_link_to_a_customer_erased_later_is_dropped(engine):
    ids = seed(engine)
    decide_link(engine, ids["m0"], "C2", "confirmed", "alice")
    with engine.begin() as conn:
        conn.execute(
            update(CustomerRow).where(CustomerRow.customer_id == "C2").values(erased_at=T0)
        )
    assert effective_links(engine, [ids["m0"]]) == {}


def test_effective_links_over_many_mentions_in_chunks(engine):
    ids = seed(engine, n_mentions=1200)
    mention_ids = [ids[f"m{k}"] for k in range(1200)]
    store.upsert_enrichments(
        engine, [link_result(ids, f"m{k}", "C1", "strong") for k in range(0, 1200, 2)]
    )
    with engine.connect() as conn:  # a caller's connection works too
        links = effective_links(conn, mention_ids)
    assert len(links) == 600 and all(v.customer_id == "C1" for v in links.values())


def test_evidence_text():
    assert evidence_text([]) == ""
    assert (
        evidence_text(
            [
                {"kind": "email", "value": "j***o@example.com", "weight": 0.97},
                {"kind": "agent", "value": None},
            ]
        )
        == "email j***o@example.com (0.97); agent"
    )


def test_decide_link_moves_the_conversation_customer_at_once(engine):
    from listenwell.store.inbox import ensure_conversations, get_conversation

    ids = seed(engine)
    ensure_conversations(engine)
    with engine.connect() as conn:
        conv_id = conn.execute(
            select(ConversationRow.id).where(ConversationRow.mention_id == ids["m1"])
        ).scalar_one()
    assert get_conversation(engine, conv_id).customer_pk is None
    decide_link(engine, ids["m1"], "C2", "confirmed", "alice")
    c2 = get_conversation(engine, conv_id).customer_pk
    assert c2 is not None
    decide_link(engine, ids["m1"], "C1", "rejected", "alice")  # another customer: no change
    assert get_conversation(engine, conv_id).customer_pk == c2
    decide_link(engine, ids["m1"], "C2", "rejected", "bob")
    assert get_conversation(engine, conv_id).customer_pk is None
