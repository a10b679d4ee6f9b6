"""The store functions the pipeline relies on, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest

from listenwell import store


def result(mid: int, stage: str = "sentiment", label: str = "neutral", **kw):
    return store.EnrichmentResult(
        mention_id=mid,
        stage=stage,
        label=label,
        score=kw.pop("score", 0.5),
        model_name=kw.pop("model_name", "m"),
        model_version=kw.pop("model_version", "1"),
        data=kw.pop("data", {"k": 1}),
    )


def test_pending_pages_by_id_and_says_what_is_missing(engine, seed):
    ids = seed(engine, [f"post {i}" for i in range(7)])
    store.upsert_enrichments(engine, [result(ids[0]), result(ids[1], "topic")])
    store.write_embeddings(engine, [ids[0]], np.ones((1, 4)), model_name="e", model_version="1")
    first = store.pending_mentions(engine, ["sentiment", "topic"], embeddings=True, limit=3)
    assert [m.id for m in first] == ids[:3]
    assert first[0].missing == {"topic"} and first[0].has_embedding
    assert first[1].missing == {"sentiment"} and not first[1].has_embedding
    assert first[2].missing == {"sentiment", "topic"} and first[2].text == "post 2"
    rest = store.pending_mentions(
        engine, ["sentiment", "topic"], embeddings=True, after_id=first[-1].id, limit=10
    )
    assert [m.id for m in rest] == ids[3:]
    assert store.count_pending(engine, ["sentiment", "topic"], embeddings=True) == 7
    # Mention 0 only lacks "topic"; asked about sentiment alone it is done.
    assert store.count_pending(engine, ["sentiment"]) == 6
    assert store.pending_mentions(engine, []) == [] and store.count_pending(engine, []) == 0
    with pytest.raises(ValueError):
        store.pending_mentions(engine, ["sentiment"], limit=0)


def test_upsert_is_idempotent_on_mention_and_stage(engine, seed):
    ids = seed(engine, ["a", "b"])
    assert store.upsert_enrichments(engine, [result(i) for i in ids]) == 2
    store.upsert_enrichments(
        engine, [result(ids[0], label="positive", score=0.9, model_version="2", data={})]
    )
    got = store.read_enrichments(engine, "sentiment")
    assert len(got) == 2 and store.enrichment_counts(engine) == {"sentiment": 2}
    assert (got[ids[0]].label, got[ids[0]].score, got[ids[0]].model_version) == (
        "positive",
        0.9,
        "2",
    )
    assert got[ids[1]].data == {"k": 1}
    assert store.upsert_enrichments(engine, []) == 0


def test_delete_removes_one_stage_only(engine, seed):
    ids = seed(engine, ["a", "b"])
    store.upsert_enrichments(engine, [result(i) for i in ids] + [result(ids[0], "topic")])
    assert store.delete_enrichments(engine, "sentiment") == 2
    assert store.enrichment_counts(engine) == {"topic": 1}
    assert store.delete_enrichments(engine, "sentiment") == 0
