"""Feedback themes: the ``themes`` and ``theme_events`` tables, and what the dashboard reads.

A theme's id is stable. Refits and user actions change a theme's row in place
(``label``, ``terms``, ``centroid``, ``status``) and append one
``theme_events`` row per step, so the history of merges, splits, renames and
pins can be read back (:func:`theme_events`). Which theme a mention belongs to
is the ``themes`` stage's enrichment: ``label`` is the theme id as text,
``score`` the cosine similarity to the theme's centroid (``label`` is ``NULL``
for an unthemed mention).

The clustering itself lives in :mod:`listenwell.nlp.themes`; this module only
reads and writes rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Table,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import aliased

from . import rollup
from .embeddings import EMBEDDING_DTYPE
from .embeddings import embeddings as _embeddings
from .engine import read_connection, using, writing
from .enrich import EnrichmentResult, upsert_enrichments
from .errors import NotFoundError
from .models import EnrichmentRow, MentionRow, ThemeEventRow, ThemeRow, utcnow

__all__ = [
    "SENTIMENTS",
    "THEME_STAGE",
    "NewTheme",
    "Quote",
    "Theme",
    "ThemeDetail",
    "ThemeEvent",
    "ThemeSummary",
    "embedding_matrix",
    "get_theme",
    "insert_theme",
    "latest_fit_id",
    "load_themes",
    "mention_texts",
    "record_theme_event",
    "replace_assignments",
    "theme_detail",
    "theme_events",
    "theme_members",
    "theme_quotes",
    "theme_summaries",
    "update_theme",
]

THEME_STAGE = "themes"
"""The enrichment stage that holds each mention's theme."""
# Reads that gather a theme's figures from several queries (one snapshot, generous limit).
_READ_TIMEOUT_S = 300.0

SENTIMENTS = ("negative", "neutral", "positive")
"""The sentiment labels a theme summary counts."""

_themes = cast(Table, ThemeRow.__table__)
_events = cast(Table, ThemeEventRow.__table__)
_mentions = cast(Table, MentionRow.__table__)
_enrichments = cast(Table, EnrichmentRow.__table__)

_UPDATABLE = frozenset(
    {
        "label",
        "name",
        "terms",
        "origin",
        "status",
        "pinned",
        "merged_into",
        "centroid",
        "size",
        "examples",
        "fit_id",
    }
)
_STATUSES = frozenset({"active", "merged", "retired"})


@dataclass(frozen=True, slots=True)
class Theme:
    """One stored theme.

    Attributes:
        id: Stable id; refits keep it for the theme they continue.
        label: The automatic label (its top terms).
        name: What a user called it, or ``None``.
        terms: ``(term, weight)`` pairs, best first (class-based TF-IDF).
        origin: ``cluster``, ``user``, ``merge`` or ``split``.
        status: ``active``, ``merged`` or ``retired``.
        pinned: A refit never merges, retires or relabels a pinned theme.
        merged_into: The survivor, for a merged theme.
        centroid: The unit-length mean embedding of its mentions.
        size: Mentions assigned to it when it was last fitted or assigned.
        examples: Mention ids a user gave to define it.
        fit_id: The fit that last set its centroid and terms.
        created_at: When it was created.
        updated_at: When it last changed.
    """

    id: int
    label: str
    name: str | None
    terms: list[tuple[str, float]]
    origin: str
    status: str
    pinned: bool
    merged_into: int | None
    centroid: npt.NDArray[np.float32] | None
    size: int
    examples: list[int]
    fit_id: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def title(self) -> str:
        """The user's name where set, else the automatic label."""
        return self.name or self.label


@dataclass(frozen=True, slots=True)
class NewTheme:
    """A theme to insert (:func:`insert_theme`)."""

    label: str
    centroid: npt.NDArray[np.float32] | None
    terms: Sequence[tuple[str, float]] = ()
    origin: str = "cluster"
    size: int = 0
    fit_id: str | None = None
    name: str | None = None
    pinned: bool = False
    examples: Sequence[int] = ()


@dataclass(frozen=True, slots=True)
class ThemeEvent:
    """One step of the themes' history."""

    id: int
    at: datetime
    kind: str
    actor: str
    fit_id: str | None
    from_ids: list[int]
    to_ids: list[int]
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ThemeSummary:
    """A theme with its live counts, for lists and the dashboard.

    Attributes:
        theme: The stored theme.
        mentions: How many mentions are assigned to it now.
        sentiment: Mentions per sentiment label (``negative``, ``neutral``,
            ``positive``; mentions without a sentiment are not counted).
    """

    theme: Theme
    mentions: int
    sentiment: dict[str, int]

    @property
    def negative_share(self) -> float | None:
        """The share of its sentiment-labelled mentions that are negative."""
        total = sum(self.sentiment.values())
        return self.sentiment.get("negative", 0) / total if total else None


@dataclass(frozen=True, slots=True)
class Quote:
    """A representative mention of a theme: one of those nearest its centroid."""

    mention_id: int
    text: str
    similarity: float | None
    sentiment: str | None
    created_at: datetime
    source: str
    author_handle: str | None


@dataclass(frozen=True, slots=True)
class ThemeDetail:
    """Everything ``listenwell themes show`` prints about one theme.

    Attributes:
        summary: The theme and its live counts.
        quotes: Representative mentions, nearest the centroid first.
        trend: ``(week starting Monday, mentions)``, oldest first.
        merged: Themes that were merged into this one.
    """

    summary: ThemeSummary
    quotes: list[Quote]
    trend: list[tuple[date, int]] = field(default_factory=list)
    merged: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers


def _vector_bytes(vector: npt.ArrayLike | None) -> bytes | None:
    if vector is None:
        return None
    arr = np.asarray(vector, dtype=EMBEDDING_DTYPE)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"a centroid must be a non-empty 1-d vector, got shape {arr.shape}")
    return arr.tobytes()


def _vector(data: bytes | None) -> npt.NDArray[np.float32] | None:
    if data is None:
        return None
    return np.frombuffer(data, dtype=EMBEDDING_DTYPE).astype(np.float32)


def _terms(raw: Any) -> list[tuple[str, float]]:
    return [(str(t), float(w)) for t, w in (raw or [])]


def _theme(row: Any) -> Theme:
    return Theme(
        id=int(row.id),
        label=row.label,
        name=row.name,
        terms=_terms(row.terms),
        origin=row.origin,
        status=row.status,
        pinned=bool(row.pinned),
        merged_into=row.merged_into,
        centroid=_vector(row.centroid),
        size=int(row.size or 0),
        examples=[int(i) for i in (row.examples or [])],
        fit_id=row.fit_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# --------------------------------------------------------------------------- themes


def load_themes(
    conn: Connection | Engine, *, statuses: Collection[str] | None = ("active",)
) -> list[Theme]:
    """The stored themes with one of ``statuses`` (``None``: all), by id."""
    stmt = select(_themes).order_by(_themes.c.id)
    if statuses is not None:
        stmt = stmt.where(_themes.c.status.in_(list(statuses)))
    with using(conn) as c:
        return [_theme(r) for r in c.execute(stmt)]


def get_theme(conn: Connection | Engine, theme_id: int) -> Theme:
    """One theme, whatever its status.

    Raises:
        NotFoundError: There is no theme ``theme_id``.
    """
    with using(conn) as c:
        row = c.execute(select(_themes).where(_themes.c.id == int(theme_id))).one_or_none()
    if row is None:
        raise NotFoundError(f"there is no theme {theme_id}")
    return _theme(row)


def insert_theme(conn: Connection | Engine, theme: NewTheme) -> int:
    """Store a new active theme and return its id."""
    now = utcnow()
    values = {
        "label": theme.label[:300],
        "name": theme.name,
        "terms": [[t, float(w)] for t, w in theme.terms],
        "origin": theme.origin,
        "status": "active",
        "pinned": theme.pinned,
        "centroid": _vector_bytes(theme.centroid),
        "size": int(theme.size),
        "examples": [int(i) for i in theme.examples] or None,
        "fit_id": theme.fit_id,
        "created_at": now,
        "updated_at": now,
    }
    with writing(conn) as c:
        pk = c.execute(insert(_themes).values(**values)).inserted_primary_key
    assert pk is not None
    return int(pk[0])


def update_theme(conn: Connection | Engine, theme_id: int, changes: Mapping[str, Any]) -> None:
    """Change some columns of one theme and stamp ``updated_at``.

    Args:
        conn: A connection in a transaction, or an engine.
        theme_id: The theme.
        changes: Column values: ``label``, ``name``, ``terms`` (``(term,
            weight)`` pairs), ``origin``, ``status``, ``pinned``,
            ``merged_into``, ``centroid`` (a vector), ``size``, ``examples``,
            ``fit_id``.

    Raises:
        ValueError: An unknown column or status.
        NotFoundError: There is no theme ``theme_id``.
    """
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot update theme column(s): {', '.join(sorted(unknown))}")
    values = dict(changes)
    if "status" in values and values["status"] not in _STATUSES:
        raise ValueError(f"unknown theme status {values['status']!r}")
    if "centroid" in values:
        values["centroid"] = _vector_bytes(values["centroid"])
    if "terms" in values:
        values["terms"] = [[t, float(w)] for t, w in values["terms"]]
    if "label" in values:
        values["label"] = str(values["label"])[:300]
    values["updated_at"] = utcnow()
    with writing(conn) as c:
        done = c.execute(update(_themes).where(_themes.c.id == int(theme_id)).values(**values))
        if done.rowcount == 0:
            raise NotFoundError(f"there is no theme {theme_id}")


# --------------------------------------------------------------------------- events


def record_theme_event(
    conn: Connection | Engine,
    kind: str,
    *,
    actor: str = "system",
    fit_id: str | None = None,
    from_ids: Iterable[int] = (),
    to_ids: Iterable[int] = (),
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one step to the themes' history.

    Args:
        conn: A connection in a transaction, or an engine.
        kind: ``fit``, ``refit``, ``keep``, ``split``, ``merge``, ``new``,
            ``retire``, ``name``, ``pin``, ``unpin`` or ``define``.
        actor: Who did it (``system`` for automatic fits).
        fit_id: The fit it belongs to, if any.
        from_ids: The themes it started from.
        to_ids: The themes it led to.
        detail: Anything else worth keeping (JSON values).
    """
    values = {
        "at": utcnow(),
        "kind": kind,
        "actor": actor,
        "fit_id": fit_id,
        "from_ids": [int(i) for i in from_ids],
        "to_ids": [int(i) for i in to_ids],
        "detail": dict(detail) if detail else None,
    }
    with writing(conn) as c:
        c.execute(insert(_events).values(**values))


def theme_events(
    conn: Connection | Engine, *, theme_id: int | None = None, limit: int | None = 200
) -> list[ThemeEvent]:
    """The themes' history, oldest first (the last ``limit`` steps).

    Args:
        conn: A connection or an engine.
        theme_id: Only steps that started from or led to this theme.
        limit: At most this many steps (``None``: all).
    """
    stmt = select(_events).order_by(_events.c.id.desc())
    with using(conn) as c:
        rows = c.execute(stmt).all()
    out = [
        ThemeEvent(
            id=int(r.id),
            at=r.at,
            kind=r.kind,
            actor=r.actor,
            fit_id=r.fit_id,
            from_ids=[int(i) for i in (r.from_ids or [])],
            to_ids=[int(i) for i in (r.to_ids or [])],
            detail=dict(r.detail or {}),
        )
        for r in rows
    ]
    if theme_id is not None:
        out = [e for e in out if theme_id in e.from_ids or theme_id in e.to_ids]
    if limit is not None:
        out = out[:limit]
    return out[::-1]


def latest_fit_id(conn: Connection | Engine) -> str | None:
    """The id of the most recent fit or refit, or ``None`` before the first."""
    stmt = (
        select(_events.c.fit_id)
        .where(_events.c.kind.in_(["fit", "refit"]))
        .order_by(_events.c.id.desc())
        .limit(1)
    )
    with using(conn) as c:
        value = c.execute(stmt).scalar_one_or_none()
    return None if value is None else str(value)


# --------------------------------------------------------------------------- corpus


def embedding_matrix(
    conn: Connection | Engine,
    mention_ids: Collection[int] | None = None,
    *,
    batch_size: int = 5000,
) -> tuple[list[int], npt.NDArray[np.float32]]:
    """Stored vectors as one matrix, read in id order in keyset-paginated batches.

    Args:
        conn: A connection or an engine.
        mention_ids: Only these mentions (``None``: every mention with a vector).
        batch_size: Rows per query.

    Returns:
        ``(mention ids, (n, dim) float32 array)``, rows in id order. Vectors of
        another dimension than the first one read are skipped.
    """
    wanted = None if mention_ids is None else sorted({int(i) for i in mention_ids})
    ids: list[int] = []
    rows: list[npt.NDArray[np.float32]] = []
    dim: int | None = None
    with using(conn) as c:
        if wanted is not None:
            chunks: Iterable[Any] = (
                c.execute(
                    select(_embeddings.c.mention_id, _embeddings.c.dim, _embeddings.c.vector)
                    .where(_embeddings.c.mention_id.in_(wanted[i : i + batch_size]))
                    .order_by(_embeddings.c.mention_id)
                ).all()
                for i in range(0, len(wanted), batch_size)
            )
        else:
            chunks = _keyset(c, batch_size)
        for chunk in chunks:
            for mid, d, data in chunk:
                if dim is None:
                    dim = int(d)
                if int(d) != dim:
                    continue
                ids.append(int(mid))
                rows.append(np.frombuffer(data, dtype=EMBEDDING_DTYPE))
    if not rows:
        return [], np.zeros((0, dim or 0), dtype=np.float32)
    return ids, np.vstack(rows).astype(np.float32)


def _keyset(c: Connection, batch_size: int) -> Iterator[Sequence[Any]]:
    after = 0
    while True:
        chunk = c.execute(
            select(_embeddings.c.mention_id, _embeddings.c.dim, _embeddings.c.vector)
            .where(_embeddings.c.mention_id > after)
            .order_by(_embeddings.c.mention_id)
            .limit(batch_size)
        ).all()
        if not chunk:
            return
        yield chunk
        after = int(chunk[-1][0])


def mention_texts(
    conn: Connection | Engine, mention_ids: Iterable[int], *, batch_size: int = 5000
) -> dict[int, str]:
    """The texts of these mentions, keyed by id; unknown ids are left out."""
    ids = sorted({int(i) for i in mention_ids})
    out: dict[int, str] = {}
    with using(conn) as c:
        for i in range(0, len(ids), batch_size):
            stmt = select(_mentions.c.id, _mentions.c.text).where(
                _mentions.c.id.in_(ids[i : i + batch_size])
            )
            out.update({int(mid): str(text) for mid, text in c.execute(stmt)})
    return out


# --------------------------------------------------------------------------- assignments


def theme_members(conn: Connection | Engine) -> dict[int, set[int]]:
    """The mentions assigned to each theme (from the ``themes`` enrichments)."""
    stmt = select(_enrichments.c.label, _enrichments.c.mention_id).where(
        _enrichments.c.stage == THEME_STAGE, _enrichments.c.label.is_not(None)
    )
    out: dict[int, set[int]] = {}
    with using(conn) as c:
        for label, mid in c.execute(stmt):
            try:
                theme = int(label)
            except (TypeError, ValueError):
                continue
            out.setdefault(theme, set()).add(int(mid))
    return out


def replace_assignments(conn: Connection | Engine, results: Iterable[EnrichmentResult]) -> int:
    """Delete every ``themes`` enrichment and write ``results`` instead (one transaction).

    Returns:
        How many results were written.

    Raises:
        ValueError: A result is not of the ``themes`` stage.
    """
    rows = list(results)
    for r in rows:
        if r.stage != THEME_STAGE:
            raise ValueError(f"expected {THEME_STAGE!r} results, got stage {r.stage!r}")
    with writing(conn) as c:
        rollup.reset(c)  # every theme label changes: the dashboard's counts start again
        c.execute(delete(_enrichments).where(_enrichments.c.stage == THEME_STAGE))
        written = 0
        for i in range(0, len(rows), 5000):
            written += upsert_enrichments(c, rows[i : i + 5000])
    return written


# --------------------------------------------------------------------------- summaries


def _sentiment_mix(c: Connection, theme_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    t = aliased(_enrichments, name="t")
    s = aliased(_enrichments, name="s")
    stmt = (
        select(t.c.label, s.c.label, func.count())
        .select_from(t.join(s, and_(s.c.mention_id == t.c.mention_id, s.c.stage == "sentiment")))
        .where(t.c.stage == THEME_STAGE, t.c.label.in_([str(i) for i in theme_ids]))
        .group_by(t.c.label, s.c.label)
    )
    out: dict[int, dict[str, int]] = {i: dict.fromkeys(SENTIMENTS, 0) for i in theme_ids}
    for theme, sentiment, n in c.execute(stmt):
        if sentiment in SENTIMENTS:
            out[int(theme)][sentiment] = int(n)
    return out


def _live_sizes(c: Connection, theme_ids: Sequence[int]) -> dict[int, int]:
    stmt = (
        select(_enrichments.c.label, func.count())
        .where(
            _enrichments.c.stage == THEME_STAGE,
            _enrichments.c.label.in_([str(i) for i in theme_ids]),
        )
        .group_by(_enrichments.c.label)
    )
    sizes = dict.fromkeys(theme_ids, 0)
    for label, n in c.execute(stmt):
        sizes[int(label)] = int(n)
    return sizes


def _snapshot(conn: Connection | Engine) -> Any:
    """The caller's connection, or a new one that sees one snapshot (for the rollups)."""
    if isinstance(conn, Engine):
        return read_connection(conn, _READ_TIMEOUT_S, snapshot=True)
    return using(conn)


def _counted(
    c: Connection, theme_ids: Sequence[int]
) -> tuple[dict[int, int], dict[int, dict[str, int]], dict[int, dict[date, int]]] | None:
    """Sizes, sentiment mixes and weekly trends of these themes from the dashboard's
    rollups (model labels, as :func:`_live_sizes` and :func:`_sentiment_mix` count);
    ``None`` where the rollups cannot serve them."""
    counts = rollup.model_counts(c, [str(i) for i in theme_ids])
    if counts is None:
        return None
    sizes = dict.fromkeys(theme_ids, 0)
    mix: dict[int, dict[str, int]] = {i: dict.fromkeys(SENTIMENTS, 0) for i in theme_ids}
    weeks: dict[int, dict[date, int]] = {i: {} for i in theme_ids}
    for (day, sentiment, key), n in counts.items():
        tid = int(key)
        sizes[tid] += n
        if sentiment in SENTIMENTS:
            mix[tid][sentiment] += n
        week = day - timedelta(days=day.weekday())
        weeks[tid][week] = weeks[tid].get(week, 0) + n
    return sizes, mix, weeks


def theme_summaries(
    conn: Connection | Engine, *, statuses: Collection[str] | None = ("active",)
) -> list[ThemeSummary]:
    """Themes with their live mention counts and sentiment mix, largest first."""
    with _snapshot(conn) as c:
        themes = load_themes(c, statuses=statuses)
        ids = [t.id for t in themes]
        counted = _counted(c, ids) if ids else None
        if counted is not None:
            sizes, mix, _ = counted
        else:
            sizes = _live_sizes(c, ids) if ids else {}
            mix = _sentiment_mix(c, ids) if ids else {}
    out = [ThemeSummary(theme=t, mentions=sizes[t.id], sentiment=mix[t.id]) for t in themes]
    out.sort(key=lambda s: (-s.mentions, s.theme.id))
    return out


def _week(value: datetime) -> date:
    day = value.date()
    return day - timedelta(days=day.weekday())


def theme_detail(conn: Connection | Engine, theme_id: int, *, quotes: int = 3) -> ThemeDetail:
    """One theme's summary, representative quotes and weekly trend.

    Quotes are the assigned mentions nearest the theme's centroid (highest
    ``themes`` score); identical texts (retweets, copies) are shown once.

    Raises:
        NotFoundError: There is no theme ``theme_id``.
    """
    sent = aliased(_enrichments, name="sent")
    t = aliased(_enrichments, name="t")
    label = str(int(theme_id))
    with _snapshot(conn) as c:
        theme = get_theme(c, theme_id)
        counted = _counted(c, [theme.id])
        if counted is not None:
            size, mix, weeks = counted[0][theme.id], counted[1][theme.id], counted[2][theme.id]
        else:
            size = _live_sizes(c, [theme.id])[theme.id]
            mix = _sentiment_mix(c, [theme.id])[theme.id]
        stmt = (
            select(
                _mentions.c.id,
                _mentions.c.text,
                _mentions.c.created_at,
                _mentions.c.source,
                _mentions.c.author_handle,
                t.c.score,
                sent.c.label.label("sentiment"),
            )
            .select_from(
                t.join(_mentions, _mentions.c.id == t.c.mention_id).outerjoin(
                    sent, and_(sent.c.mention_id == t.c.mention_id, sent.c.stage == "sentiment")
                )
            )
            .where(t.c.stage == THEME_STAGE, t.c.label == label)
            .order_by(t.c.score.desc(), _mentions.c.id)
            .limit(max(quotes, 0) * 5 + 5)
        )
        picked: list[Quote] = []
        seen: set[str] = set()
        for r in c.execute(stmt):
            key = " ".join(str(r.text).lower().split())
            if key in seen:
                continue
            seen.add(key)
            picked.append(
                Quote(
                    mention_id=int(r.id),
                    text=str(r.text),
                    similarity=None if r.score is None else float(r.score),
                    sentiment=r.sentiment,
                    created_at=r.created_at,
                    source=r.source,
                    author_handle=r.author_handle,
                )
            )
            if len(picked) >= quotes:
                break
        if counted is None:
            weeks = {}
            created = select(_mentions.c.created_at).select_from(
                t.join(_mentions, _mentions.c.id == t.c.mention_id)
            )
            for (at,) in c.execute(created.where(t.c.stage == THEME_STAGE, t.c.label == label)):
                week = _week(at)
                weeks[week] = weeks.get(week, 0) + 1
        merged = [
            int(i)
            for i in c.execute(
                select(_themes.c.id).where(_themes.c.merged_into == theme.id).order_by(_themes.c.id)
            ).scalars()
        ]
    return ThemeDetail(
        summary=ThemeSummary(theme=theme, mentions=size, sentiment=mix),
        quotes=picked,
        trend=sorted(weeks.items()),
        merged=merged,
    )


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def theme_quotes(
    conn: Connection | Engine,
    theme_ids: Sequence[int],
    start: date,
    end: date,
    *,
    per_theme: int = 3,
) -> dict[int, list[Quote]]:
    """Each theme's representative quotes among the mentions posted from ``start`` to ``end``.

    The rule of :func:`theme_detail`'s quotes, applied to the period's mentions
    only: the mentions whose ``themes`` label is the theme, nearest its
    centroid first (highest score, then lowest mention id; a mention without a
    score sorts where the database puts ``NULL`` in a descending order, as in
    :func:`theme_detail`), identical texts (case and spacing aside) once.
    Unlike taking :func:`theme_detail`'s nearest over all time and keeping
    those in the period, a theme whose nearest mentions are older still gets
    its quotes, and nothing outside the period is read: one query ranks the
    period's mentions per theme (a window function) and returns the first few
    of each, with more fetched only for a theme whose first few had copies.

    Args:
        conn: A connection or an engine.
        theme_ids: The themes (ids as stored in the ``themes`` labels).
        start: First day (UTC).
        end: Last day, inclusive.
        per_theme: Quotes per theme, at most.

    Returns:
        Every requested theme id, with its quotes in order (empty where the
        period has none).
    """
    wanted = list(dict.fromkeys(int(i) for i in theme_ids))
    out: dict[int, list[Quote]] = {i: [] for i in wanted}
    if per_theme < 1 or not wanted or end < start:
        return out
    seen: dict[int, set[str]] = {i: set() for i in wanted}
    pending, done, batch = wanted, 0, per_theme * 5 + 5
    # A long period holds most of a theme's mentions: walking each theme's mentions in
    # score order (an index) and stopping at the first few in the period beats ranking
    # every mention of the period (27 s cold for 90 days at 10M mentions).
    walk = (end - start).days + 1 >= WALK_DAYS
    with using(conn) as c:
        while pending:
            got = dict.fromkeys(pending, 0)
            if walk:
                found: list[Any] = []
                for tid in pending:
                    found += c.execute(_walked_quotes(tid, start, end, done, done + batch)).all()
            else:
                found = list(c.execute(_ranked_quotes(pending, start, end, done, done + batch)))
            for r in found:
                tid = int(r.label)
                got[tid] += 1
                key = " ".join(str(r.text).lower().split())
                if len(out[tid]) >= per_theme or key in seen[tid]:
                    continue
                seen[tid].add(key)
                out[tid].append(
                    Quote(
                        mention_id=int(r.id),
                        text=str(r.text),
                        similarity=None if r.score is None else float(r.score),
                        sentiment=r.sentiment,
                        created_at=r.created_at,
                        source=r.source,
                        author_handle=r.author_handle,
                    )
                )
            # Read on only where copies left a theme short and its batch was full.
            pending = [i for i in pending if len(out[i]) < per_theme and got[i] == batch]
            done, batch = done + batch, batch * 2
    return out


def _quote_rows(label: Any, score: Any, mention_id: Any, source: Any) -> Select[Any]:
    """A quote's columns (theme label, score, the mention, its sentiment label) for the
    rows of ``source`` whose ``mention_id`` names the mention."""
    sent = aliased(_enrichments, name="sent")
    return select(
        label,
        score,
        _mentions.c.id,
        _mentions.c.text,
        _mentions.c.created_at,
        _mentions.c.source,
        _mentions.c.author_handle,
        sent.c.label.label("sentiment"),
    ).select_from(
        source.join(_mentions, _mentions.c.id == mention_id).outerjoin(
            sent, and_(sent.c.mention_id == mention_id, sent.c.stage == "sentiment")
        )
    )


WALK_DAYS = 28
"""Periods this long or longer get their quotes by :func:`_walked_quotes`."""


def _walked_quotes(theme_id: int, start: date, end: date, after: int, upto: int) -> Select[Any]:
    """The period's mentions of one theme ranked ``after`` + 1 to ``upto`` (nearest the
    centroid first), read down the ``(stage, label, score, mention_id)`` index: the
    same rows and order as :func:`_ranked_quotes`."""
    t = aliased(_enrichments, name="t")
    return (
        _quote_rows(t.c.label, t.c.score, t.c.mention_id, t)
        .where(
            t.c.stage == THEME_STAGE,
            t.c.label == str(int(theme_id)),
            _mentions.c.created_at >= _day_start(start),
            _mentions.c.created_at < _day_start(end + timedelta(days=1)),
        )
        .order_by(t.c.score.desc(), t.c.mention_id)
        .offset(after)
        .limit(upto - after)
    )


def _ranked_quotes(
    theme_ids: Sequence[int], start: date, end: date, after: int, upto: int
) -> Select[Any]:
    """The period's mentions of ``theme_ids`` ranked ``after`` + 1 to ``upto`` within
    their theme (nearest the centroid first), with their sentiment label.

    Each mention of the period gets its theme and score by a correlated lookup of its
    own ``themes`` result, so both databases read the period's mentions by date and
    nothing else; given a join, they started from every mention of the themes (the
    ``(stage, label)`` index) and dropped all but the period's.
    """
    t = aliased(_enrichments, name="t")

    def own(column: Any) -> Any:
        mine = and_(t.c.mention_id == _mentions.c.id, t.c.stage == THEME_STAGE)
        return select(column).where(mine).scalar_subquery()

    period = (
        select(
            _mentions.c.id.label("mention_id"),
            own(t.c.label).label("label"),
            own(t.c.score).label("score"),
        )
        .where(
            _mentions.c.created_at >= _day_start(start),
            _mentions.c.created_at < _day_start(end + timedelta(days=1)),
        )
        .subquery("period")
    )
    ranked = (
        select(
            period,
            func.row_number()
            .over(
                partition_by=period.c.label, order_by=(period.c.score.desc(), period.c.mention_id)
            )
            .label("rn"),
        )
        .where(period.c.label.in_([str(i) for i in theme_ids]))
        .subquery("ranked")
    )
    return (
        _quote_rows(ranked.c.label, ranked.c.score, ranked.c.mention_id, ranked)
        .where(ranked.c.rn > after, ranked.c.rn <= upto)
        .order_by(ranked.c.label, ranked.c.rn)
    )
