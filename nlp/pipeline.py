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
finds the committed pages complete and processes only what is still pending,
so no mention is embedded or labelled twice. :meth:`Pipeline.redo` deletes one
stage's results (or the stored embeddings) and runs again, which recomputes
that stage only.

With a read-ahead ``window`` larger than ``batch_size`` (``build_pipeline``
reads eight pages ahead), the pending mentions are read ``window`` at a time,
the texts to embed are tokenised once, and the window is cut into pages of
similar token length instead of consecutive ids. Each page is still computed
and committed on its own, as above; the encoders just pad short posts far less.

Stored vectors are reused whatever model version made them; after changing the
embedding model run ``listenwell enrich --redo embeddings``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from listenwell import store

from .base import MentionContext, NlpError, Stage, create_stage
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
    phase: int = 0


@dataclass(slots=True)
class EnrichReport:
    """What a run did, summed over its batches.

    ``mentions`` counts each mention once even when several phases processed it
    (it is the largest per-phase count).
    """

    mentions: int = 0
    embedded: int = 0
    batches: int = 0
    results: dict[str, int] = field(default_factory=dict)
    per_phase: dict[int, int] = field(default_factory=dict)

    def add(self, batch: BatchReport) -> None:
        """Add one batch's counts."""
        self.per_phase[batch.phase] = self.per_phase.get(batch.phase, 0) + batch.mentions
        self.mentions = max(self.per_phase.values())
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
        window: Pending mentions read at once and regrouped by token length
            into batches of ``batch_size`` (``None``: ``batch_size``, i.e. batches
            are consecutive ids). Only the mentions to embed are regrouped by length.

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
        window: int | None = None,
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
        if window is not None and window < batch_size:
            raise ValueError("window must be at least batch_size")
        self.stages = list(stages)
        self.active = [s for s in self.stages if not s.off]
        if embedder is None and any(s.needs_embeddings for s in self.active):
            raise ValueError("a stage needs embeddings, so the pipeline needs an embedder")
        if EMBEDDINGS in names:
            raise ValueError(f"{EMBEDDINGS!r} is reserved for the stored vectors")
        self.embedder = embedder
        self.batch_size = batch_size
        self.window = window if window is not None else batch_size

    @property
    def stage_names(self) -> list[str]:
        """The names of the stages that run."""
        return [s.name for s in self.active]

    def pending(self, engine: Engine) -> int:
        """How many mentions lack something a run would compute (any stage, or the vector)."""
        embeddings = self.embedder is not None
        return int(store.count_pending(engine, self.stage_names, embeddings=embeddings))

    def phases(self) -> list[list[Stage]]:
        """The running stages grouped by their ``phase`` (default 0), lowest first."""
        by_phase: dict[int, list[Stage]] = {}
        for stage in self.active:
            by_phase.setdefault(int(getattr(stage, "phase", 0)), []).append(stage)
        return [by_phase[k] for k in sorted(by_phase)]

    def pending_by_phase(self, engine: Engine) -> list[tuple[list[str], int]]:
        """For each phase, its stage names and how many mentions it would process now.

        The first phase also counts mentions that lack a stored vector. With no
        running stage, the embeddings alone form the one phase.
        """
        embeddings = self.embedder is not None
        phases = self.phases() or [[]]
        out = []
        for i, group in enumerate(phases):
            names = [s.name for s in group]
            n = store.count_pending(engine, names, embeddings=embeddings and i == 0)
            out.append((names, int(n)))
        return out

    def run(
        self,
        engine: Engine,
        *,
        on_batch: Callable[[BatchReport], None] | None = None,
        id_range: tuple[int, int] | None = None,
        phases: Sequence[int] | None = None,
    ) -> EnrichReport:
        """Enrich every mention that lacks a result of a running stage, or its vector.

        Stages run phase by phase (see :class:`~listenwell.nlp.base.Stage`):
        every pending mention goes through phase 0 (and gets its vector) before
        phase 1 starts, so a corpus-level stage such as themes sees every vector.
        Each stage's optional ``prepare(engine)`` is called once, just before
        its phase starts.

        Args:
            engine: The database (migrated).
            on_batch: Called after each committed batch (progress bars);
                :attr:`BatchReport.phase` says which phase it belongs to.
            id_range: Only mentions with ``first <= id < end`` (one worker job's share).
            phases: Only these phase indexes (e.g. ``[0]``: the per-mention stages,
                leaving corpus-level stages such as themes to a later run).

        Returns:
            The counts of what was computed and written.

        Raises:
            NlpError: A stage returned the wrong number of results.
        """
        report = EnrichReport()
        groups = self.phases() or [[]]
        first, end = id_range if id_range is not None else (1, None)
        for index, group in enumerate(groups):
            if phases is not None and index not in phases:
                continue
            for stage in group:
                prepare = getattr(stage, "prepare", None)
                if callable(prepare):
                    prepare(engine)
            names = [s.name for s in group]
            embed = self.embedder is not None and index == 0
            after = first - 1
            while True:
                ahead = store.pending_mentions(
                    engine,
                    names,
                    embeddings=embed,
                    after_id=after,
                    limit=self.window,
                    before_id=end,
                )
                if not ahead:
                    break
                after = ahead[-1].id
                for batch, token_ids in self._regroup(ahead):
                    done = self._batch(engine, batch, group, phase=index, token_ids=token_ids)
                    report.add(done)
                    if on_batch is not None:
                        on_batch(done)
        return report

    def _regroup(
        self, ahead: list[store.PendingMention]
    ) -> list[tuple[list[store.PendingMention], dict[int, list[int]] | None]]:
        """Cut a read-ahead window into batches, with the embedder's token ids if computed.

        Without texts to embed the batches are consecutive ids. Otherwise the
        texts to embed are tokenised once and the mentions sorted by token count
        (those with a stored vector first), so each batch holds posts of similar
        length and the forward passes pad little. Each batch is in id order.
        """
        size = self.batch_size
        fresh = [m for m in ahead if not m.has_embedding]
        if self.embedder is None or not fresh or len(ahead) <= size:
            return [(ahead[i : i + size], None) for i in range(0, len(ahead), size)]
        ids = self.embedder.tokenize([m.text for m in fresh])
        token_ids = {m.id: t for m, t in zip(fresh, ids, strict=True)}
        ordered = sorted(ahead, key=lambda m: len(token_ids.get(m.id, ())))  # stable: ids
        return [
            (sorted(ordered[i : i + size], key=lambda m: m.id), token_ids)
            for i in range(0, len(ordered), size)
        ]

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

    def _batch(
        self,
        engine: Engine,
        batch: list[store.PendingMention],
        stages: Sequence[Stage],
        *,
        phase: int = 0,
        token_ids: dict[int, list[int]] | None = None,
    ) -> BatchReport:
        vectors: dict[int, np.ndarray] = {}
        new_ids: list[int] = []
        new_vectors = None
        if self.embedder is not None:
            fresh = [m for m in batch if not m.has_embedding]
            if fresh:
                new_ids = [m.id for m in fresh]
                new_vectors = self.embedder.encode(
                    [m.text for m in fresh],
                    token_ids=None if token_ids is None else [token_ids[i] for i in new_ids],
                )
                vectors.update(zip(new_ids, new_vectors, strict=True))
            wanting = {
                m.id
                for m in batch
                if m.has_embedding
                and any(s.needs_embeddings and s.name in m.missing for s in stages)
            }
            if wanting:
                vectors.update(
                    {i: e.vector for i, e in store.read_embeddings(engine, wanting).items()}
                )
        results: list[store.EnrichmentResult] = []
        counts: dict[str, int] = {}
        for stage in stages:
            todo = [m for m in batch if stage.name in m.missing]
            if not todo:
                continue
            emb = np.stack([vectors[m.id] for m in todo]) if stage.needs_embeddings else None
            texts = [m.text for m in todo]
            if getattr(stage, "needs_context", False):
                contexts = [
                    MentionContext(
                        id=m.id,
                        source=m.source,
                        author_handle=m.author_handle,
                        author_name=m.author_name,
                        created_at=m.created_at,
                    )
                    for m in todo
                ]
                out = stage.run(texts, emb, contexts=contexts)  # type: ignore[call-arg]
            else:
                out = stage.run(texts, emb)
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
        return BatchReport(mentions=len(batch), embedded=len(new_ids), results=counts, phase=phase)

    def __repr__(self) -> str:
        return f"Pipeline({self.stages!r}, embedder={self.embedder!r})"


def build_pipeline(options: NlpOptions | None = None, settings: Any = None) -> Pipeline:
    """The pipeline the settings describe: the embedder and every stage that is not off.

    Stages: language, sentiment, intent, customer links and themes (phase 1).
    Intent and themes need the embeddings; with ``embeddings: false`` they are off.

    Args:
        options: The NLP options (defaults when ``None``).
        settings: The whole settings object, for the stages that read more than
            ``nlp`` (themes leave the brand's names out of their labels).

    Raises:
        UnknownStageError: ``sentiment_model`` names no registered stage.
        SentimentModelMissingError: The fine-tuned artefact is missing.
        NotInstalledError: A stage's optional dependency is missing.
    """
    options = options or NlpOptions()
    embedder = Embedder(threads=options.threads) if options.embeddings else None
    stages: list[Stage] = [
        create_stage(
            f"language.{options.language_model}",
            languages=options.languages,
            min_confidence=options.language_min_confidence,
            min_letters=options.language_min_letters,
        ),
        # Given the embedder, a stacked sentiment model (v0.3) reads the stored vectors
        # instead of encoding every text a second time.
        create_stage(
            f"sentiment.{options.sentiment_model}",
            model_dir=options.sentiment_model_dir,
            low_confidence=options.low_confidence,
            threads=options.threads,
            embedder=embedder,
        ),
    ]
    linking = getattr(settings, "linking", None)
    if linking is None or linking.enabled:
        from .matching import MatchOptions

        match = MatchOptions.from_settings(settings)
        stages.append(
            create_stage(
                "links.evidence",
                default_region=match.default_region,
                account_fields=match.account_fields,
                name_min_score=match.name_min_score,
                duplicate_min_score=match.duplicate_min_score,
            )
        )
    if embedder is not None:
        # These read the stored vectors; without embeddings they are off.
        stages.append(
            create_stage(
                f"intent.{options.intent_model}", embedder=embedder, threads=options.threads
            )
        )
        theme_options = None
        if options.themes != "off":
            from .themes import ThemeOptions

            theme_options = (
                ThemeOptions.from_settings(settings)
                if settings is not None
                else ThemeOptions(threads=options.threads)
            )
        stages.append(
            create_stage(f"themes.{options.themes}", options=theme_options, threads=options.threads)
        )
    # Read eight batches ahead: batches regrouped by token length pad about 15 % fewer
    # tokens in the two encoders than batches of consecutive ids (bench/enrich_bench.py).
    return Pipeline(
        stages, embedder=embedder, batch_size=options.batch_size, window=8 * options.batch_size
    )
