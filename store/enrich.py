"""What the NLP pipeline reads and writes: pending mentions and stage results.

A stage's result for a mention is one ``enrichments`` row, unique on
``(mention_id, stage)``. The pipeline pages through the mentions that still
lack a result (keyset pagination on the mention id, so each page is one cheap
indexed query), computes the results of a page, and writes them with
:func:`upsert_enrichments` in one transaction with the page's embeddings. A
crash therefore loses at most the page in flight, and a re-run starts where
the last committed page ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, and_, delete, exists, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from . import rollup
from .embeddings import embeddings as _embeddings
from .engine import using, writing
from .models import EnrichmentRow, MentionRow, utcnow

__all__ = [
    "EnrichmentResult",
    "PendingMention",
    "count_pending",
    "delete_enrichments",
    "enrichment_counts",
    "pending_mentions",
    "read_enrichments",
    "upsert_enrichments",
]

_mentions = cast(Table, MentionRow.__table__)
_enrichments = cast(Table, EnrichmentRow.__table__)


@dataclass(frozen=True, slots=True)
class PendingMention:
    """A mention that lacks the result of at least one stage, or its embedding.

    Attributes:
        id: The mention's id.
        text: Its text, verbatim.
        missing: The stages (of those asked about) that have no result for it.
        has_embedding: Whether a vector is stored for it.
        source: Where it came from (``x``, ``reddit``, ...).
        author_handle: The author's handle as stored, if any.
        author_name: The author's display name, if any.
        created_at: When it was posted.
    """

    id: int
    text: str
    missing: frozenset[str]
    has_embedding: bool
    source: str = ""
    author_handle: str | None = None
    author_name: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EnrichmentResult:
    """One stage's result for one mention, with the model that made it."""

    mention_id: int
    stage: str
    label: str | None
    score: float | None
    model_name: str
    model_version: str
    data: dict[str, Any] = field(default_factory=dict)


def _lacks(stage: str) -> ColumnElement[bool]:
    return ~exists().where(
        _enrichments.c.mention_id == _mentions.c.id, _enrichments.c.stage == stage
    )


def _pending_conds(stages: Sequence[str], embeddings: bool) -> list[ColumnElement[bool]]:
    """A mention is pending if it lacks a result of any of ``stages`` (or, with
    ``embeddings``, its vector)."""
    conds = [_lacks(s) for s in stages]
    if embeddings:
        conds.append(~exists().where(_embeddings.c.mention_id == _mentions.c.id))
    return conds


def pending_mentions(
    conn: Connection | Engine,
    stages: Sequence[str],
    *,
    embeddings: bool = False,
    after_id: int = 0,
    limit: int = 256,
    before_id: int | None = None,
) -> list[PendingMention]:
    """The next mentions, by id, that lack a result of any of ``stages`` (or their embedding).

    Args:
        conn: A connection or an engine.
        stages: Stage names whose results are looked for.
        embeddings: Also count a mention without a stored vector as pending.
        after_id: Only mentions with a larger id (keyset pagination: pass the
            last id of the previous page).
        limit: At most this many mentions.
        before_id: Only mentions with a smaller id (a worker's share of the backlog).

    Returns:
        Up to ``limit`` pending mentions in id order, each saying what it lacks.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    conds = _pending_conds(stages, embeddings)
    if not conds:
        return []
    stmt = (
        select(
            _mentions.c.id,
            _mentions.c.text,
            _mentions.c.source,
            _mentions.c.author_handle,
            _mentions.c.author_name,
            _mentions.c.created_at,
        )
        .where(_mentions.c.id > after_id, or_(*conds))
        .order_by(_mentions.c.id)
        .limit(limit)
    )
    if before_id is not None:
        stmt = stmt.where(_mentions.c.id < before_id)
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return _pending(c, stmt, stages)
    return _pending(conn, stmt, stages)


def _pending(conn: Connection, stmt: Any, stages: Sequence[str]) -> list[PendingMention]:
    rows = conn.execute(stmt).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    done: dict[int, set[str]] = {}
    if stages:
        for mid, stage in conn.execute(
            select(_enrichments.c.mention_id, _enrichments.c.stage).where(
                and_(_enrichments.c.mention_id.in_(ids), _enrichments.c.stage.in_(list(stages)))
            )
        ):
            done.setdefault(mid, set()).add(stage)
    with_vector = set(
        conn.execute(
            select(_embeddings.c.mention_id).where(_embeddings.c.mention_id.in_(ids))
        ).scalars()
    )
    wanted = frozenset(stages)
    return [
        PendingMention(
            id=r.id,
            text=r.text,
            missing=wanted - done.get(r.id, set()),
            has_embedding=r.id in with_vector,
            source=r.source,
            author_handle=r.author_handle,
            author_name=r.author_name,
            created_at=r.created_at,
        )
        for r in rows
    ]


def upsert_enrichments(conn: Connection | Engine, results: Iterable[EnrichmentResult]) -> int:
    """Insert or replace stage results; idempotent on ``(mention_id, stage)``.

    Pass a connection to write inside the caller's transaction.

    Returns:
        How many results were written.
    """
    now = utcnow()
    rows = [
        {
            "mention_id": r.mention_id,
            "stage": r.stage,
            "label": r.label,
            "score": r.score,
            "data": r.data,
            "model_name": r.model_name,
            "model_version": r.model_version,
            "created_at": now,
        }
        for r in results
    ]
    if not rows:
        return 0
    if isinstance(conn, Engine):
        with conn.begin() as c:
            return _upsert(c, rows)
    return _upsert(conn, rows)


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> int:
    ins: Any = (
        postgresql.insert(_enrichments)
        if conn.dialect.name == "postgresql"
        else sqlite.insert(_enrichments)
    )
    stmt = ins.on_conflict_do_update(
        index_elements=["mention_id", "stage"],
        set_={
            k: getattr(ins.excluded, k)
            for k in ("label", "score", "data", "model_name", "model_version", "created_at")
        },
    )
    conn.execute(stmt, rows)
    # Labels the dashboard's rollups count: their days are recounted (new mentions,
    # past the watermark, cost nothing here).
    labelled = [r["mention_id"] for r in rows if r["stage"] in rollup.LABEL_STAGES]
    if labelled:
        rollup.mark_dirty(conn, labelled)
    return len(rows)


def delete_enrichments(conn: Connection | Engine, stage: str) -> int:
    """Delete every result of one stage (``listenwell enrich --redo STAGE``). Returns how many."""
    stmt = delete(_enrichments).where(_enrichments.c.stage == stage)
    with writing(conn) as c:
        if stage in rollup.LABEL_STAGES:
            rollup.reset(c)  # every label of the stage goes: the dashboard's counts start again
        return int(c.execute(stmt).rowcount)


def enrichment_counts(engine: Engine) -> dict[str, int]:
    """How many mentions have a result, per stage."""
    n = func.count()
    stmt = select(_enrichments.c.stage, n).group_by(_enrichments.c.stage)
    with engine.connect() as conn:
        return {stage: int(count) for stage, count in conn.execute(stmt)}


def read_enrichments(engine: Engine, stage: str) -> dict[int, EnrichmentResult]:
    """Every result of one stage, keyed by mention id."""
    stmt = select(_enrichments).where(_enrichments.c.stage == stage)
    with engine.connect() as conn:
        return {
            r.mention_id: EnrichmentResult(
                mention_id=r.mention_id,
                stage=r.stage,
                label=r.label,
                score=r.score,
                model_name=r.model_name,
                model_version=r.model_version,
                data=dict(r.data or {}),
            )
            for r in conn.execute(stmt)
        }


def count_pending(
    conn: Connection | Engine, stages: Sequence[str], *, embeddings: bool = False
) -> int:
    """How many mentions :func:`pending_mentions` would page through from the start."""
    conds = _pending_conds(stages, embeddings)
    if not conds:
        return 0
    stmt = select(func.count()).select_from(_mentions).where(or_(*conds))
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return int(c.execute(stmt).scalar_one())
    return int(conn.execute(stmt).scalar_one())


def pending_id_ranges(
    conn: Connection | Engine,
    stages: Sequence[str],
    *,
    embeddings: bool = False,
    size: int = 2000,
) -> list[tuple[int, int]]:
    """The pending mentions cut into ``[first_id, end_id)`` ranges of at most ``size`` each.

    This is how a backlog is shared among workers: each range is one job, and
    a range's job processes only what is still pending in it, so a retried job
    never redoes committed work.
    """
    if size < 1:
        raise ValueError("size must be at least 1")
    conds = _pending_conds(stages, embeddings)
    if not conds:
        return []
    numbered = (
        select(
            _mentions.c.id.label("id"),
            ((func.row_number().over(order_by=_mentions.c.id) - 1) // size).label("part"),
        )
        .where(or_(*conds))
        .subquery()
    )
    stmt = (
        select(func.min(numbered.c.id), func.max(numbered.c.id))
        .group_by(numbered.c.part)
        .order_by(func.min(numbered.c.id))
    )
    with using(conn) as c:
        return [(int(lo), int(hi) + 1) for lo, hi in c.execute(stmt)]
