"""The enrichment pipeline over SQLite and PostgreSQL: only new work, resumable, --redo."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from listenwell import store
from listenwell.nlp import NlpError, PassThroughStage, StageResult
from listenwell.nlp.pipeline import EMBEDDINGS, Pipeline
from listenwell.store.embeddings import embeddings as embeddings_table
from listenwell.store.models import EnrichmentRow, MentionRow


class NearestText:
    """A stage that needs embeddings: labels each text by its nearest prototype.

    It keeps the vectors it was given, so a test can check they are the stored ones.
    """

    name = "topic"
    model_name = "nearest-prototype"
    model_version = "test"
    needs_embeddings = True
    off = False

    def __init__(self, prototypes: dict[str, np.ndarray]) -> None:
        self.names = list(prototypes)
        self.matrix = np.stack(list(prototypes.values()))
        self.seen: list[np.ndarray] = []

    def run(self, texts, embeddings=None):
        assert embeddings is not None and embeddings.shape == (len(texts), 384)
        self.seen.append(embeddings)
        sims = embeddings @ self.matrix.T
        return [StageResult(self.names[int(row.argmax())], float(row.max()), {}) for row in sims]


class FailingOnCall:
    """Wraps a stage and raises on its n-th call: a crash in the middle of a run."""

    def __init__(self, stage, fail_on: int) -> None:
        self.stage, self.fail_on, self.calls = stage, fail_on, 0
        self.name, self.model_name = stage.name, stage.model_name
        self.model_version, self.needs_embeddings, self.off = stage.model_version, False, False

    def run(self, texts, embeddings=None):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("simulated crash")
        return self.stage.run(texts, embeddings)


def rows_per_mention(engine, stage: str) -> int:
    """The largest number of rows any mention has for ``stage`` (1 means no double work)."""
    with engine.connect() as conn:
        counts = conn.execute(
            select(func.count())
            .select_from(EnrichmentRow)
            .where(EnrichmentRow.stage == stage)
            .group_by(EnrichmentRow.mention_id)
        ).scalars()
        return max(counts, default=0)


def test_enrich_fills_every_mention_once_and_stores_embeddings(
    engine, seed, texts, vader, fresh_embedder
):
    ids = seed(engine)
    pipeline = Pipeline([vader], embedder=fresh_embedder, batch_size=5)
    assert pipeline.pending(engine) == len(texts)
    batches = []
    report = pipeline.run(engine, on_batch=batches.append)
    assert (report.mentions, report.embedded, report.batches) == (len(texts), len(texts), 3)
    assert [b.mentions for b in batches] == [5, 5, 2]
    assert report.results == {"sentiment": len(texts)}
    results = store.read_enrichments(engine, "sentiment")
    assert sorted(results) == sorted(ids)
    assert {r.model_name for r in results.values()} == {"vaderSentiment"}
    assert {r.label for r in results.values()} == {"negative", "neutral", "positive"}
    assert results[ids[0]].label == "positive" and results[ids[1]].label == "negative"
    vectors = store.read_embeddings(engine, ids)
    assert sorted(vectors) == sorted(ids)
    assert np.allclose(vectors[ids[0]].vector, fresh_embedder.encode([texts[0]])[0], atol=1e-5)


def test_second_run_does_nothing_and_new_mentions_only_get_new_work(
    engine, seed, vader, fresh_embedder
):
    seed(engine)
    pipeline = Pipeline([vader], embedder=fresh_embedder, batch_size=4)
    first = pipeline.run(engine)
    encoded = fresh_embedder.texts_encoded
    assert encoded == first.mentions == 12
    again = pipeline.run(engine)
    assert (again.mentions, again.embedded, again.results) == (0, 0, {})
    assert fresh_embedder.texts_encoded == encoded  # nothing embedded twice
    assert pipeline.pending(engine) == 0
    seed(engine, ["a brand new post, loving it", "another one"], start=100)
    later = pipeline.run(engine)
    assert (later.mentions, later.embedded, later.results) == (2, 2, {"sentiment": 2})
    assert fresh_embedder.texts_encoded == encoded + 2
    assert rows_per_mention(engine, "sentiment") == 1


def test_stages_reuse_stored_embeddings(engine, seed, texts, vader, fresh_embedder):
    ids = seed(engine)
    Pipeline([vader], embedder=fresh_embedder).run(engine)
    encoded = fresh_embedder.texts_encoded
    stored = store.read_embeddings(engine, ids)
    prototypes = {"shop": stored[ids[2]].vector, "complaint": stored[ids[3]].vector}
    topic = NearestText(prototypes)
    report = Pipeline([vader, topic], embedder=fresh_embedder, batch_size=5).run(engine)
    # Only the new stage ran, on the stored vectors; the encoder was not called again.
    assert report.results == {"topic": len(texts)} and report.embedded == 0
    assert fresh_embedder.texts_encoded == encoded
    given = np.concatenate(topic.seen)
    assert np.array_equal(given, np.stack([stored[i].vector for i in ids]))
    labels = store.read_enrichments(engine, "topic")
    assert labels[ids[2]].label == "shop" and labels[ids[9]].label == "complaint"


def test_enrich_resumes_after_a_crash_without_double_work(
    engine, seed, texts, vader, fresh_embedder
):
    ids = seed(engine)
    crashing = FailingOnCall(vader, fail_on=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Pipeline([crashing], embedder=fresh_embedder, batch_size=5).run(engine)
    # The first batch is committed whole; the one that crashed left nothing behind.
    assert sorted(store.read_enrichments(engine, "sentiment")) == ids[:5]
    assert store.count_embeddings(engine) == 5
    encoded = fresh_embedder.texts_encoded
    resumed = Pipeline([vader], embedder=fresh_embedder, batch_size=5).run(engine)
    assert resumed.mentions == len(texts) - 5 and resumed.results == {"sentiment": 7}
    # Batch 2 was embedded before the crash but not committed, so it is embedded again;
    # batch 1 is not.
    assert fresh_embedder.texts_encoded == encoded + 7
    assert sorted(store.read_enrichments(engine, "sentiment")) == ids
    assert store.count_embeddings(engine) == len(texts)
    assert rows_per_mention(engine, "sentiment") == 1


def test_redo_recomputes_one_stage_only(engine, seed, texts, vader, fresh_embedder):
    ids = seed(engine)
    pipeline = Pipeline([vader], embedder=fresh_embedder, batch_size=5)
    pipeline.run(engine)
    encoded = fresh_embedder.texts_encoded
    before = store.read_enrichments(engine, "sentiment")
    strict = type(vader)(threshold=0.9)  # a "new model": same stage, other version
    redone = Pipeline([strict], embedder=fresh_embedder, batch_size=5).redo(engine, "sentiment")
    assert redone.results == {"sentiment": len(texts)} and redone.embedded == 0
    assert fresh_embedder.texts_encoded == encoded
    after = store.read_enrichments(engine, "sentiment")
    assert sorted(after) == ids
    assert {r.model_version for r in after.values()} == {strict.model_version}
    assert strict.model_version != vader.model_version
    assert sum(after[i].label != before[i].label for i in ids) >= 1
    assert rows_per_mention(engine, "sentiment") == 1
    emb = pipeline.redo(engine, EMBEDDINGS)
    assert emb.embedded == len(texts) and emb.results == {}
    assert fresh_embedder.texts_encoded == encoded + len(texts)


@pytest.mark.parametrize("stage", ["themes", "bogus", ""])
def test_redo_of_an_unknown_stage_is_refused(engine, vader, stage):
    with pytest.raises(NlpError, match="running: sentiment"):
        Pipeline([vader]).redo(engine, stage)


def test_an_off_stage_writes_nothing(engine, seed, fresh_embedder):
    seed(engine)
    report = Pipeline([PassThroughStage("sentiment")], embedder=fresh_embedder).run(engine)
    assert report.results == {} and report.embedded == 12
    assert store.enrichment_counts(engine) == {}


def test_a_stage_returning_the_wrong_count_is_an_error(engine, seed, vader):
    class Short:
        name, model_name, model_version, needs_embeddings, off = "short", "s", "1", False, False

        def run(self, texts, embeddings=None):
            return [StageResult("x")]

    seed(engine, ["a", "b"])
    with pytest.raises(NlpError, match="1 results for 2 texts"):
        Pipeline([Short()]).run(engine)
    assert store.enrichment_counts(engine) == {}


def test_export_shows_the_sentiment(engine, seed, vader):
    ids = seed(engine, ["I love it", "I hate it"])
    Pipeline([vader]).run(engine)
    rows = {r["external_id"]: r for r in store.iter_export_rows(engine)}
    assert rows["m0"]["sentiment"] == "positive" and rows["m1"]["sentiment"] == "negative"
    assert rows["m0"]["sentiment_score"] > 0 > rows["m1"]["sentiment_score"]
    assert len(ids) == 2


class CorpusStage:
    """A phase-1 stage: ``prepare`` records how many vectors were stored when it started."""

    name = "corpus"
    model_name = "corpus-test"
    model_version = "test"
    needs_embeddings = True
    off = False
    phase = 1

    def __init__(self) -> None:
        self.vectors_at_prepare: list[int] = []

    def prepare(self, engine) -> None:
        with engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(embeddings_table)).scalar_one()
        self.vectors_at_prepare.append(int(n))

    def run(self, texts, embeddings=None):
        assert embeddings is not None
        return [StageResult("seen", float(np.linalg.norm(e))) for e in embeddings]


class AuthorStage:
    """A stage that asks for context: labels each mention with its author and source."""

    name = "author"
    model_name = "author-test"
    model_version = "test"
    needs_embeddings = False
    needs_context = True
    off = False

    def run(self, texts, embeddings=None, contexts=None):
        assert contexts is not None and len(contexts) == len(texts)
        return [StageResult(f"{c.source}:{c.author_handle}", None, {"id": c.id}) for c in contexts]


def test_phase_one_starts_after_every_vector_is_stored_and_context_reaches_stages(
    engine, seed, texts, fresh_embedder
):
    ids = seed(engine)
    corpus, author = CorpusStage(), AuthorStage()
    pipeline = Pipeline([corpus, author], embedder=fresh_embedder, batch_size=5)
    assert [n for _, n in pipeline.pending_by_phase(engine)] == [len(texts), len(texts)]
    batches = []
    report = pipeline.run(engine, on_batch=batches.append)
    # prepare ran once, when all the vectors of phase 0 were already committed.
    assert corpus.vectors_at_prepare == [len(texts)]
    assert [b.phase for b in batches] == [0, 0, 0, 1, 1, 1]
    assert report.mentions == len(texts)  # counted once, not once per phase
    assert report.results == {"corpus": len(texts), "author": len(texts)}
    authors = store.read_enrichments(engine, "author")
    with engine.connect() as conn:
        stored = dict(conn.execute(select(MentionRow.id, MentionRow.author_handle)).all())
    for mid in ids:
        assert authors[mid].data == {"id": mid}
        assert authors[mid].label.endswith(f":{stored[mid]}")
    # Nothing left: a second run prepares again but processes nothing.
    again = pipeline.run(engine)
    assert again.mentions == 0 and corpus.vectors_at_prepare == [len(texts), len(texts)]


def test_a_read_ahead_window_regroups_by_length_and_resumes_after_a_crash(
    engine, seed, texts, vader, fresh_embedder
):
    """Batches cut from a window by token length: a crash still loses one batch at most, the
    resume does the rest once, and the vectors are the embedder's own for each text."""
    ids = seed(engine)
    crashing = FailingOnCall(vader, fail_on=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Pipeline([crashing], embedder=fresh_embedder, batch_size=5, window=15).run(engine)
    assert len(store.read_enrichments(engine, "sentiment")) == 5  # one whole batch
    assert store.count_embeddings(engine) == 5
    resumed = Pipeline([vader], embedder=fresh_embedder, batch_size=5, window=15).run(engine)
    assert resumed.mentions == len(texts) - 5 and resumed.results == {"sentiment": 7}
    assert sorted(store.read_enrichments(engine, "sentiment")) == ids
    assert rows_per_mention(engine, "sentiment") == 1
    vectors = store.read_embeddings(engine, ids)
    for mid, text in zip(ids, texts, strict=True):
        assert np.allclose(vectors[mid].vector, fresh_embedder.encode([text])[0], atol=1e-5)


def test_a_window_smaller_than_a_batch_is_refused(vader):
    with pytest.raises(ValueError, match="window"):
        Pipeline([vader], batch_size=10, window=5)
