"""The enrichment pipeline: stages as objects, embeddings computed once, batches committed whole.

One :class:`Pipeline` holds an optional :class:`~listenwell.nlp.embeddings.Embedder`
and a list of stages. :meth:`Pipeline.run` pages through the mentions that
still lack a stage result or a stored embedding (keyset pagination on the
mention id) and, for each page of ``batch_size`` mentions:

1. embeds the mentions that have no stored vector yet (never the others);
2. reads the stored vectors for the stages that need embeddings;
3. runs every stage on the mentions that lack its result;
4. writes the new vectors and all the results in ONE transaction.

A crash or Ctrl-C therefore loses at most the page in flight: the next run
finds the committed pages complete and starts with the first incomplete one,
so no mention is embedded or labelled twice. :meth:`Pipeline.redo` deletes one
stage's results (or the stored embeddings) and runs again, which recomputes
that stage only.

Stored vectors are reused whatever model version made them; after changing the
embedding model run ``listenwell enrich --redo embeddings``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from listenwell import store

from .base import NlpError, Stage, create_stage
from .embeddings import Embedder
from .options import NlpOptions

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["EMBEDDINGS", "BatchReport", "EnrichReport", "Pipeline", "build_pipeline"]

EMBEDDINGS = "embeddings"
"""The name ``--redo`` takes for the stored embeddings."""


@dataclass(frozen=True, slots=True)
class BatchReport:
    """What one committed batch did."""

    mentions: int
    embedded: int
    results: dict[str, int]


@dataclass(slots=True)
class EnrichReport:
    """What a run did, summed over its batches."""

    mentions: int = 0
    embedded: int = 0
    batches: int = 0
    results: dict[str, int] = field(default_factory=dict)

    def add(self, batch: BatchReport) -> None:
        """Add one batch's counts."""
        self.mentions += batch.mentions
        self.embedded += batch.embedded
        self.batches += 1
        for name, n in batch.results.items():
            self.results[name] = self.results.get(name, 0) + n

    def as_dict(self) -> dict[str, Any]:
        """The counts as plain data (for ``--json``)."""
        return {
            "mentions": self.mentions,
            "embedded": self.embedded,
            "batches": self.batches,
            "results": dict(self.results),
        }


class Pipeline:
    """Enrich stored mentions with an embedder and a list of stages.

    Args:
        stages: Stage objects, run in order; a stage with ``off`` set is kept
            for its name but never run. Stage names must be unique.
        embedder: Computes the vectors that are stored for every mention; ``None``
            stores none (then no stage may need embeddings).
        batch_size: Mentions per batch, and per transaction.

    Raises:
        TypeError: A stage does not follow the :class:`~listenwell.nlp.base.Stage` protocol.
        ValueError: Two stages share a name, or a stage needs embeddings and
            there is no embedder.
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        *,
        embedder: Embedder | None = None,
        batch_size: int = 256,
    ) -> None:
        if isinstance(stages, dict | str) or not isinstance(stages, Sequence):
            raise TypeError("stages must be a list of stage objects")
        for stage in stages:
            if not isinstance(stage, Stage):
                raise TypeError(
                    f"{stage!r} is not a stage: it needs name, model_name, model_version, "
                    "needs_embeddings, off and run(texts, embeddings=None)"
                )
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.stages = list(stages)
        self.active = [s for s in self.stages if not s.off]
        if embedder is None and any(s.needs_embeddings for s in self.active):
            raise ValueError("a stage needs embeddings, so the pipeline needs an embedder")
        if EMBEDDINGS in names:
            raise ValueError(f"{EMBEDDINGS!r} is reserved for the stored vectors")
        self.embedder = embedder
        self.batch_size = batch_size

    @property
    def stage_names(self) -> list[str]:
        """The names of the stages that run."""
        return [s.name for s in self.active]

    def pending(self, engine: Engine) -> int:
        """How many mentions a run would process now."""
        embeddings = self.embedder is not None
        return int(store.count_pending(engine, self.stage_names, embeddings=embeddings))

    def run(
        self,
        engine: Engine,
        *,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> EnrichReport:
        """Enrich every mention that lacks a result of a running stage, or its vector.

        Args:
            engine: The database (migrated).
            on_batch: Called after each committed batch (progress bars).

        Returns:
            The counts of what was computed and written.

        Raises:
            NlpError: A stage returned the wrong number of results.
        """
        report = EnrichReport()
        after = 0
        while True:
            batch = store.pending_mentions(
                engine,
                self.stage_names,
                embeddings=self.embedder is not None,
                after_id=after,
                limit=self.batch_size,
            )
            if not batch:
                return report
            after = batch[-1].id
            done = self._batch(engine, batch)
            report.add(done)
            if on_batch is not None:
                on_batch(done)

    def redo(
        self,
        engine: Engine,
        stage: str,
        *,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> EnrichReport:
        """Delete one stage's results (or, for ``embeddings``, the vectors) and run again.

        The delete is committed first, so an interrupted redo is finished by a
        plain :meth:`run`.

        Raises:
            NlpError: ``stage`` is not a running stage of this pipeline.
        """
        if stage == EMBEDDINGS:
            if self.embedder is None:
                raise NlpError("embeddings are switched off, so there is nothing to redo")
            store.delete_embeddings(engine)
        elif stage in self.stage_names:
            store.delete_enrichments(engine, stage)
        else:
            known = ", ".join([*self.stage_names, *([EMBEDDINGS] if self.embedder else [])])
            raise NlpError(f"no running stage is called {stage!r}; running: {known or 'none'}")
        return self.run(engine, on_batch=on_batch)

    def _batch(self, engine: Engine, batch: list[store.PendingMention]) -> BatchReport:
        vectors: dict[int, np.ndarray] = {}
        new_ids: list[int] = []
        new_vectors = None
        if self.embedder is not None:
            fresh = [m for m in batch if not m.has_embedding]
            if fresh:
                new_ids = [m.id for m in fresh]
                new_vectors = self.embedder.encode([m.text for m in fresh])
                vectors.update(zip(new_ids, new_vectors, strict=True))
            wanting = {
                m.id
                for m in batch
                if m.has_embedding
                and any(s.needs_embeddings and s.name in m.missing for s in self.active)
            }
            if wanting:
                vectors.update(
                    {i: e.vector for i, e in store.read_embeddings(engine, wanting).items()}
                )
        results: list[store.EnrichmentResult] = []
        counts: dict[str, int] = {}
        for stage in self.active:
            todo = [m for m in batch if stage.name in m.missing]
            if not todo:
                continue
            emb = np.stack([vectors[m.id] for m in todo]) if stage.needs_embeddings else None
            out = stage.run([m.text for m in todo], emb)
            if len(out) != len(todo):
                raise NlpError(
                    f"stage {stage.name!r} returned {len(out)} results for {len(todo)} texts"
                )
            results.extend(
                store.EnrichmentResult(
                    mention_id=m.id,
                    stage=stage.name,
                    label=r.label,
                    score=r.score,
                    model_name=stage.model_name,
                    model_version=stage.model_version,
                    data=r.data,
                )
                for m, r in zip(todo, out, strict=True)
            )
            counts[stage.name] = len(todo)
        with engine.begin() as conn:
            if new_vectors is not None and self.embedder is not None:
                store.write_embeddings(
                    conn,
                    new_ids,
                    new_vectors,
                    model_name=self.embedder.model_name,
                    model_version=self.embedder.model_version,
                )
            store.upsert_enrichments(conn, results)
        return BatchReport(mentions=len(batch), embedded=len(new_ids), results=counts)

    def __repr__(self) -> str:
        return f"Pipeline({self.stages!r}, embedder={self.embedder!r})"


def build_pipeline(options: NlpOptions | None = None) -> Pipeline:
    """The pipeline the settings describe: the embedder and the chosen sentiment stage.

    Raises:
        UnknownStageError: ``sentiment_model`` names no registered stage.
        SentimentModelMissingError: The fine-tuned artefact is missing.
        NotInstalledError: A stage's optional dependency is missing.
    """
    options = options or NlpOptions()
    embedder = Embedder(threads=options.threads) if options.embeddings else None
    sentiment = create_stage(
        f"sentiment.{options.sentiment_model}",
        model_dir=options.sentiment_model_dir,
        low_confidence=options.low_confidence,
        threads=options.threads,
    )
    return Pipeline([sentiment], embedder=embedder, batch_size=options.batch_size)
