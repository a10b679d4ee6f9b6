"""The export and the dashboard queries show the labels in force.

An agent's newest correction beats the model's label; a theme shows its
user-given name (or its top terms), and a merged theme resolves to the theme
it was merged into.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import insert

from listenwell import store
from listenwell.store.models import CorrectionRow, ThemeRow

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def _seed(engine) -> list[int]:
    mentions = [
        store.Mention(
            source="x",
            external_id=str(i),
            created_at=WHEN,
            author_handle=f"@a{i}",
            text=f"post number {i}",
        )
        for i in range(3)
    ]
    store.upsert_mentions(engine, mentions)
    ids = sorted(store.mentions_frame(engine)["id"].tolist())
    with engine.begin() as conn:
        conn.execute(
            insert(ThemeRow.__table__),
            [
                {
                    "id": 10,
                    "merged_into": None,
                    "label": "battery / charge",
                    "name": None,
                    "status": "active",
                    "origin": "cluster",
                    "pinned": False,
                    "size": 2,
                    "created_at": WHEN,
                    "updated_at": WHEN,
                },
                {
                    "id": 11,
                    "merged_into": None,
                    "label": "delivery / late",
                    "name": "Late deliveries",
                    "status": "active",
                    "origin": "cluster",
                    "pinned": False,
                    "size": 1,
                    "created_at": WHEN,
                    "updated_at": WHEN,
                },
                {
                    "id": 12,
                    "label": "shipping",
                    "name": None,
                    "status": "merged",
                    "merged_into": 11,
                    "origin": "cluster",
                    "pinned": False,
                    "size": 0,
                    "created_at": WHEN,
                    "updated_at": WHEN,
                },
            ],
        )
        results = []
        for mid, sentiment, theme, intent in zip(
            ids,
            ["negative", "positive", "neutral"],
            ["10", "12", "10"],
            ["complaint", "praise", "question"],
            strict=True,
        ):
            for stage, label in (
                ("sentiment", sentiment),
                ("themes", theme),
                ("intent", intent),
                ("language", "en"),
            ):
                results.append(store.EnrichmentResult(mid, stage, label, 0.9, "test-model", "1"))
        store.upsert_enrichments(conn, results)
    return ids


def _export(engine, ids: list[int]) -> dict[int, dict]:
    """Export rows keyed by mention id (external ids are "0", "1", "2" in id order)."""
    by_external = {r["external_id"]: r for r in store.iter_export_rows(engine)}
    return {mid: by_external[str(i)] for i, mid in enumerate(ids)}


def _correct(engine, mention_id: int, stage: str, label: str, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(CorrectionRow.__table__).values(
                mention_id=mention_id,
                stage=stage,
                label=label,
                actor="agent",
                created_at=at,
            )
        )


def test_export_shows_model_labels_theme_names_and_merged_themes(engine):
    ids = _seed(engine)
    rows = _export(engine, ids)
    assert [rows[i]["sentiment"] for i in ids] == ["negative", "positive", "neutral"]
    assert [rows[i]["intent"] for i in ids] == ["complaint", "praise", "question"]
    assert [rows[i]["language"] for i in ids] == ["en", "en", "en"]
    # Theme 12 was merged into 11, which has a user-given name.
    assert [rows[i]["topic"] for i in ids] == [
        "battery / charge",
        "Late deliveries",
        "battery / charge",
    ]
    assert [int(rows[i]["theme_id"]) for i in ids] == [10, 11, 10]


def test_newest_correction_wins_in_export_filters_and_charts(engine):
    ids = _seed(engine)
    _correct(engine, ids[0], "sentiment", "neutral", WHEN)
    _correct(engine, ids[0], "sentiment", "positive", WHEN.replace(hour=10))
    _correct(engine, ids[2], "themes", "11", WHEN)
    _correct(engine, ids[1], "intent", "feature_request", WHEN)
    rows = _export(engine, ids)
    assert rows[ids[0]]["sentiment"] == "positive"
    assert rows[ids[2]]["topic"] == "Late deliveries"
    assert rows[ids[1]]["intent"] == "feature_request"
    positive = store.mentions_frame(engine, store.MentionFilter(sentiments=("positive",)))
    assert sorted(positive["id"].tolist()) == [ids[0], ids[1]]
    late = store.mentions_frame(engine, store.MentionFilter(topics=("Late deliveries",)))
    assert sorted(late["id"].tolist()) == [ids[1], ids[2]]
    volume = store.sentiment_volume(engine)
    assert dict(zip(volume["sentiment"], volume["mentions"], strict=True)) == {
        "positive": 2,
        "neutral": 1,
    }


def test_export_links_only_strong_evidence_or_an_agents_confirmation(engine):
    from listenwell.store.links import decide_link

    ids = _seed(engine)
    store.upsert_customers(
        engine,
        [("1", store.Customer("C1", "Jo Doe")), ("2", store.Customer("C2", "Al Roe"))],
    )
    from sqlalchemy import select

    from listenwell.store.models import CustomerRow

    with engine.connect() as conn:
        pks = dict(conn.execute(select(CustomerRow.customer_id, CustomerRow.id)).all())
    evidence = [{"kind": "handle", "value": "x:@a0", "weight": 0.95}]
    with engine.begin() as conn:
        store.upsert_enrichments(
            conn,
            [
                store.EnrichmentResult(
                    ids[0],
                    "links",
                    "C1",
                    0.95,
                    "linker",
                    "1",
                    {"customer_pk": int(pks["C1"]), "strength": "strong", "evidence": evidence},
                ),
                store.EnrichmentResult(
                    ids[1],
                    "links",
                    "C2",
                    0.6,
                    "linker",
                    "1",
                    {
                        "customer_pk": int(pks["C2"]),
                        "strength": "weak",
                        "evidence": [{"kind": "name", "value": "Al Roe", "weight": 0.6}],
                    },
                ),
            ],
        )
    rows = _export(engine, ids)
    assert (rows[ids[0]]["customer_id"], rows[ids[0]]["link_confidence"]) == ("C1", 0.95)
    assert "handle" in rows[ids[0]]["link_evidence"]
    assert rows[ids[1]]["customer_id"] is None  # a name alone is never exported as a link
    assert rows[ids[2]]["customer_id"] is None

    decide_link(engine, ids[0], "C1", "rejected", "agent")
    decide_link(engine, ids[2], "C2", "confirmed", "agent")
    rows = _export(engine, ids)
    assert rows[ids[0]]["customer_id"] is None
    assert (rows[ids[2]]["customer_id"], rows[ids[2]]["link_confidence"]) == ("C2", 1.0)
    frame = store.mentions_frame(engine).set_index("id")
    assert frame.loc[ids[2], "customer_id"] == "C2" and pd.isna(frame.loc[ids[0], "customer_id"])


def test_export_fills_escalated_and_priority_from_the_conversation(engine):
    from listenwell.store.models import ConversationRow

    ids = _seed(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(ConversationRow.__table__).values(
                mention_id=ids[1],
                status="open",
                tags=[],
                priority="urgent",
                escalated=True,
                escalation_level=1,
                opened_at=WHEN,
                paused_s=0.0,
                version=1,
                created_at=WHEN,
                updated_at=WHEN,
            )
        )
    rows = _export(engine, ids)
    assert (rows[ids[1]]["escalated"], rows[ids[1]]["priority"]) in {
        (True, "urgent"),
        (1, "urgent"),
    }
    assert (rows[ids[0]]["escalated"], rows[ids[0]]["priority"]) == (None, None)
