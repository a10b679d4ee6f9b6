"""Corrections in the store (SQLite and PostgreSQL): in force, audited, validated, exported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import and_, delete, func, insert, select

from listenwell import store
from listenwell.store import corrections as sc
from listenwell.store.models import AuditRow, CorrectionRow, EnrichmentRow, MentionRow, ThemeRow

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)


def seed(engine, texts: list[str]) -> list[int]:
    store.upsert_mentions(
        engine,
        [
            store.Mention(source="x", external_id=f"c{i}", created_at=T0, text=t)
            for i, t in enumerate(texts)
        ],
    )
    with engine.connect() as conn:
        ids = dict(conn.execute(select(MentionRow.external_id, MentionRow.id)).all())
    return [ids[f"c{i}"] for i in range(len(texts))]


def enrich(engine, mid: int, label: str, *, stage="sentiment", version="1", data=None) -> None:
    store.upsert_enrichments(
        engine,
        [
            store.EnrichmentResult(
                mention_id=mid,
                stage=stage,
                label=label,
                score=0.9,
                model_name="minilm",
                model_version=version,
                data=data if data is not None else {},
            )
        ],
    )


def count(engine, table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def add_theme(engine, *, status="active", merged_into=None) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            insert(ThemeRow.__table__).values(
                label="billing",
                origin="cluster",
                status=status,
                pinned=False,
                merged_into=merged_into,
                size=0,
                created_at=T0,
                updated_at=T0,
            )
        )
        return int(result.inserted_primary_key[0])


def test_correction_snapshots_the_model_and_the_newest_wins(engine):
    a, b, c = seed(engine, ["awful", "fine", "great"])
    enrich(engine, a, "positive")
    enrich(engine, b, "neutral")
    first = sc.correct(engine, a, "sentiment", "neutral", "alice", at=T0)
    assert (first.label, first.model_label, first.model_name, first.model_version) == (
        "neutral",
        "positive",
        "minilm",
        "1",
    )
    assert first.actor == "alice" and first.created_at == T0 and not first.agrees
    second = sc.correct(engine, a, " Sentiment ", " NEGATIVE ", "bob", at=T0 + timedelta(hours=1))
    assert second.label == "negative" and second.stage == "sentiment"

    got = sc.effective_labels(engine, [a, b, c], "sentiment")
    assert got[a].label == "negative" and got[a].source == "agent"
    assert (got[a].actor, got[a].at, got[a].model_label) == ("bob", second.created_at, "positive")
    assert got[b].label == "neutral" and got[b].source == "model" and got[b].actor is None
    assert c not in got  # neither a model label nor a correction
    assert sc.effective_labels(engine, None, "sentiment").keys() == {a, b}

    # A re-run of the model (enrich --redo) rewrites enrichments; the correction stays in force.
    enrich(engine, a, "positive", version="2")
    again = sc.effective_labels(engine, [a], "sentiment")[a]
    assert (again.label, again.source, again.model_label) == ("negative", "agent", "positive")

    history = list(sc.iter_corrections(engine, stage="sentiment"))
    assert [h.actor for h in history] == ["alice", "bob"]
    current = list(sc.iter_corrections(engine, current_only=True))
    assert [(h.mention_id, h.label) for h in current] == [(a, "negative")]


def test_same_time_corrections_are_ordered_by_id(engine):
    (a,) = seed(engine, ["hmm"])
    sc.correct(engine, a, "intent", "question", "alice", at=T0)
    sc.correct(engine, a, "intent", "complaint", "bob", at=T0)
    assert sc.effective_labels(engine, [a], "intent")[a].label == "complaint"
    # A correction made without a model result keeps model_label empty.
    assert all(c.model_label is None for c in sc.iter_corrections(engine))


def test_each_correction_writes_an_audit_row(engine):
    (a,) = seed(engine, ["slow delivery"])
    enrich(engine, a, "neutral")
    c1 = sc.correct(engine, a, "sentiment", "negative", "alice")
    c2 = sc.correct(engine, a, "sentiment", "neutral", "bob")
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditRow).where(AuditRow.action == "correction.add").order_by(AuditRow.id)
        ).all()
    assert [(r.actor, r.entity, r.entity_id) for r in rows] == [
        ("alice", "mention", str(a)),
        ("bob", "mention", str(a)),
    ]
    assert rows[0].detail["correction_id"] == c1.id and rows[0].detail["model_label"] == "neutral"
    assert rows[0].detail["previous_correction"] is None
    assert rows[1].detail["correction_id"] == c2.id
    assert rows[1].detail["previous_correction"] == "negative"


def test_a_correction_inside_a_rolled_back_transaction_leaves_no_trace(engine):
    (a,) = seed(engine, ["x"])
    with pytest.raises(RuntimeError), engine.begin() as conn:
        sc.correct(conn, a, "sentiment", "positive", "alice")
        raise RuntimeError("boom")
    assert count(engine, CorrectionRow.__table__) == 0
    assert count(engine, AuditRow.__table__) == 0


@pytest.mark.parametrize(
    ("stage", "label", "actor", "message"),
    [
        ("topic", "positive", "alice", "unknown stage 'topic'"),
        ("sentiment", "happy", "alice", "not a valid sentiment label"),
        ("intent", "rant", "alice", "not a valid intent label"),
        ("themes", "billing", "alice", "a themes label is a theme id"),
        ("themes", "999999", "alice", "theme 999999 does not exist"),
        ("sentiment", "positive", "   ", "needs the name"),
    ],
)
def test_invalid_corrections_are_refused_and_write_nothing(engine, stage, label, actor, message):
    (a,) = seed(engine, ["x"])
    with pytest.raises(sc.CorrectionError, match=message):
        sc.correct(engine, a, stage, label, actor)
    assert isinstance(sc.CorrectionError("x"), store.StoreError)
    assert count(engine, CorrectionRow.__table__) == 0
    assert count(engine, AuditRow.__table__) == 0


def test_unknown_or_erased_mention_is_a_clear_error(engine):
    (a,) = seed(engine, ["to be erased"])
    sc.correct(engine, a, "sentiment", "neutral", "alice")
    with pytest.raises(store.NotFoundError, match=r"mention 987654 not found"):
        sc.correct(engine, 987654, "sentiment", "neutral", "alice")
    # Erasure deletes the mention; its corrections go with it (ON DELETE CASCADE).
    with engine.begin() as conn:
        conn.execute(delete(MentionRow.__table__).where(MentionRow.id == a))
    assert count(engine, CorrectionRow.__table__) == 0
    with pytest.raises(store.NotFoundError, match="unknown id, or erased"):
        sc.correct(engine, a, "sentiment", "positive", "alice")


def test_theme_labels_follow_merges_to_the_active_theme(engine):
    (a,) = seed(engine, ["my bill doubled"])
    survivor = add_theme(engine)
    merged = add_theme(engine, status="merged", merged_into=survivor)
    twice = add_theme(engine, status="merged", merged_into=merged)
    retired = add_theme(engine, status="retired")
    assert sc.correct(engine, a, "themes", str(survivor), "alice").label == str(survivor)
    assert sc.correct(engine, a, "themes", str(twice), "alice").label == str(survivor)
    with pytest.raises(sc.CorrectionError, match="is retired"):
        sc.correct(engine, a, "themes", str(retired), "alice")
    assert sc.effective_labels(engine, [a], "themes")[a].label == str(survivor)


def test_labelled_set_and_frame(engine):
    a, b = seed(engine, ["love it", "where is my parcel?"])
    enrich(engine, a, "negative")
    sc.correct(engine, a, "sentiment", "neutral", "alice", at=T0)
    sc.correct(engine, a, "sentiment", "positive", "bob", at=T0 + timedelta(minutes=5))
    sc.correct(engine, b, "intent", "question", "carol", at=T0 + timedelta(minutes=9))
    rows = sc.labelled_set(engine)
    assert [(r.stage, r.mention_id, r.text, r.label, r.model_label, r.actor) for r in rows] == [
        ("intent", b, "where is my parcel?", "question", None, "carol"),
        ("sentiment", a, "love it", "positive", "negative", "bob"),
    ]
    assert [r.mention_id for r in sc.labelled_set(engine, "sentiment")] == [a]

    df = sc.corrections_frame(engine)
    assert list(df.columns) == sc.CORRECTION_COLUMNS
    assert df["actor"].tolist() == ["carol", "bob", "alice"]  # newest first
    assert sc.corrections_frame(engine, current_only=True)["actor"].tolist() == ["carol", "bob"]
    assert sc.corrections_frame(engine, stage="intent", limit=5)["label"].tolist() == ["question"]
    with pytest.raises(sc.CorrectionError):
        sc.corrections_frame(engine, stage="mood")


def test_calibration_examples_use_the_models_own_probabilities(engine):
    a, b, c = seed(engine, ["a", "b", "c"])
    raw = {"negative": 0.7, "neutral": 0.2, "positive": 0.1}
    enrich(engine, a, "negative", data={"probs": raw})
    # A calibrated result keeps the model's own probabilities under model_probs.
    enrich(engine, b, "neutral", data={"probs": {"neutral": 1.0}, "model_probs": raw})
    enrich(engine, c, "neutral", version="0", data={"probs": raw})  # another model version
    for mid in (a, b, c):
        sc.correct(engine, mid, "sentiment", "positive", "alice")
    got = sc.calibration_examples(engine, "sentiment", "minilm", "1")
    assert [(e.mention_id, e.probs, e.label) for e in got] == [
        (a, raw, "positive"),
        (b, raw, "positive"),
    ]
    assert sc.current_model(engine, "sentiment") == ("minilm", "0")
    assert sc.current_model(engine, "intent") is None


def test_save_load_replace_and_delete_a_calibration(engine):
    assert sc.load_calibration(engine, "sentiment", "minilm", "1") is None
    sc.save_calibration(engine, "sentiment", "minilm", "1", {"bias": [1, 2]}, 60, actor="alice")
    saved = sc.save_calibration(engine, "sentiment", "minilm", "1", {"bias": [0, 0]}, 75)
    loaded = sc.load_calibration(engine, "sentiment", "minilm", "1")
    assert loaded is not None
    assert (loaded.params, loaded.n_corrections) == ({"bias": [0, 0]}, 75)
    assert loaded.fitted_at == saved.fitted_at
    assert sc.load_calibration(engine, "sentiment", "minilm", "2") is None
    assert sc.delete_calibration(engine, "sentiment", "minilm", "1", actor="bob")
    assert not sc.delete_calibration(engine, "sentiment", "minilm", "1")
    with engine.connect() as conn:
        actions = conn.execute(select(AuditRow.action).order_by(AuditRow.id)).scalars().all()
    assert actions == ["calibration.save", "calibration.save", "calibration.delete"]


def test_corrections_in_force_joins_into_one_query(engine):
    a, b = seed(engine, ["one", "two"])
    enrich(engine, a, "neutral")
    enrich(engine, b, "neutral")
    sc.correct(engine, a, "sentiment", "negative", "alice", at=T0)
    sc.correct(engine, a, "sentiment", "positive", "bob", at=T0 + timedelta(minutes=1))
    sc.correct(engine, b, "intent", "praise", "carol")
    m, e = MentionRow.__table__, EnrichmentRow.__table__
    fix = sc.corrections_in_force("sentiment")
    frm = m.outerjoin(e, and_(e.c.mention_id == m.c.id, e.c.stage == "sentiment")).outerjoin(
        fix, and_(fix.c.mention_id == m.c.id, fix.c.rank == 1)
    )
    stmt = (
        select(m.c.id, func.coalesce(fix.c.label, e.c.label), fix.c.actor)
        .select_from(frm)
        .order_by(m.c.id)
    )
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(stmt)]
    assert rows == [(a, "positive", "bob"), (b, "neutral", None)]
