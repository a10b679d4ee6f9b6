"""Read queries for the dashboard and exports. Each returns a DataFrame (or streams rows).

Every query runs under a time limit (:func:`read_connection`), so a heavy
filter fails with :class:`QueryTimeoutError` instead of hanging the page.
Filter values arrive in a frozen, hashable :class:`MentionFilter`, so callers
can cache results keyed on it.

The aggregates join only the enrichments they need (a sentiment chart does not
join links, intents or languages), look an agent's correction up only for the
few corrected mentions (:func:`_in_force`), and resolve theme ids to names and
merge survivors in Python from the small ``themes`` table. The covering indexes
of migration 0007 let them read a date range without touching the mention rows:
``bench/dashboard_bench.py`` times every page at 1,000,000 mentions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    String,
    and_,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from . import rollup
from .engine import read_connection
from .errors import check_text_inputs
from .models import (
    CorrectionRow,
    CustomerRow,
    EnrichmentRow,
    HandleRow,
    MentionRow,
    QuarantineRow,
    ThemeRow,
)
from .records import MENTION_FIELDS

if TYPE_CHECKING:  # pandas is imported on first use: it costs half a second at start-up
    import pandas as pd

__all__ = [
    "EXPORT_COLUMNS",
    "MentionFilter",
    "customers_frame",
    "data_range",
    "iter_export_rows",
    "mention_volume",
    "mentions_frame",
    "overview_counts",
    "quarantine_frame",
    "sentiment_volume",
    "source_counts",
    "theme_volume",
    "top_authors",
]

DEFAULT_TIMEOUT_S = 15.0

# The export's header; other tools read these columns by name, so new columns
# are only ever appended. NLP and engagement columns stay empty until those
# stages have run. ``sentiment``, ``topic`` (the theme's name) and ``intent``
# are the labels in force: an agent's newest correction, else the model's.
EXPORT_COLUMNS = [
    *MENTION_FIELDS,
    "sentiment",
    "sentiment_score",
    "topic",
    "customer_id",
    "link_confidence",
    "link_evidence",
    "escalated",
    "priority",
    "theme_id",
    "intent",
    "language",
]

M = MentionRow.__table__
E = EnrichmentRow.__table__
C = CustomerRow.__table__
T = ThemeRow.__table__


@dataclass(frozen=True)
class MentionFilter:
    """What the dashboard's sidebar filters select. ``end`` is inclusive (a whole day)."""

    start: date | None = None
    end: date | None = None
    sources: tuple[str, ...] = ()
    sentiments: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    search: str | None = None

    def __post_init__(self) -> None:
        check_text_inputs(
            search=self.search,
            sources=self.sources,
            sentiments=self.sentiments,
            topics=self.topics,
            segments=self.segments,
        )


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class _Joined:
    """The mentions joined to their enrichments, with the label in force for each stage."""

    frm: Any
    sentiment: Any
    sentiment_score: Any
    topic: Any
    theme_id: Any
    intent: Any
    language: Any
    link: Any
    cust: Any


def _newest_corrections(stage: str) -> Any:
    """``(mention_id, label)`` of the newest correction of ``stage`` for each corrected mention.

    An agent's newest correction (the highest id) beats the model's label. Outer-joined
    to the mentions, ``coalesce(newest.label, model label)`` is the label in force. It
    is computed once for the few corrected mentions and joined (a hash join on
    PostgreSQL, an automatic index on SQLite) rather than looked up by a correlated
    subquery on each of a million rows, which also keeps PostgreSQL's cost estimates,
    and so its JIT compilation, in proportion.
    """
    corr = CorrectionRow.__table__
    newest = select(func.max(corr.c.id)).where(corr.c.stage == stage).group_by(corr.c.mention_id)
    return select(corr.c.mention_id, corr.c.label).where(corr.c.id.in_(newest)).subquery()


def _in_force(frm: Any, stage: str, model_label: Any) -> tuple[Any, Any]:
    """``frm`` outer-joined to :func:`_newest_corrections` of ``stage``, and the label in
    force for ``stage`` (the newest correction, else ``model_label``)."""
    newest = _newest_corrections(stage)
    frm = frm.outerjoin(newest, newest.c.mention_id == M.c.id)
    return frm, func.coalesce(newest.c.label, model_label)


def _joined(page: Any = None) -> _Joined:
    """The mentions joined to every enrichment, with the labels in force.

    With ``page`` (a subquery with an ``id`` column), the join starts from those
    mention ids: PostgreSQL keeps the written join order once a query joins more
    than ``join_collapse_limit`` (8) tables, so the few rows must come first.
    """
    sent = aliased(E, name="sent")
    topic = aliased(E, name="topic")
    intent = aliased(E, name="intent")
    lang = aliased(E, name="lang")
    link = aliased(E, name="link")
    cust = aliased(C, name="cust")
    theme = aliased(T, name="theme")
    survivor = aliased(T, name="survivor")
    root = M if page is None else page.join(M, M.c.id == page.c.id)
    frm = (
        root.outerjoin(sent, and_(sent.c.mention_id == M.c.id, sent.c.stage == "sentiment"))
        .outerjoin(topic, and_(topic.c.mention_id == M.c.id, topic.c.stage == "themes"))
        .outerjoin(intent, and_(intent.c.mention_id == M.c.id, intent.c.stage == "intent"))
        .outerjoin(lang, and_(lang.c.mention_id == M.c.id, lang.c.stage == "language"))
        .outerjoin(link, and_(link.c.mention_id == M.c.id, link.c.stage == "links"))
        .outerjoin(
            cust,
            and_(
                cust.c.customer_id == link.c.label,
                link.c.data["strength"].as_string() == "strong",
            ),
        )
    )
    frm, sentiment = _in_force(frm, "sentiment", sent.c.label)
    frm, intent_label = _in_force(frm, "intent", intent.c.label)
    frm, theme_key = _in_force(frm, "themes", topic.c.label)
    frm = frm.outerjoin(theme, cast(theme.c.id, String) == theme_key).outerjoin(
        survivor, survivor.c.id == theme.c.merged_into
    )
    return _Joined(
        frm=frm,
        sentiment=sentiment,
        sentiment_score=sent.c.score,
        topic=func.coalesce(survivor.c.name, survivor.c.label, theme.c.name, theme.c.label),
        theme_id=func.coalesce(survivor.c.id, theme.c.id),
        intent=intent_label,
        language=lang.c.label,
        link=link,
        cust=cust,
    )


def _where(f: MentionFilter, j: _Joined | None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.start is not None:
        conds.append(M.c.created_at >= _day_start(f.start))
    if f.end is not None:
        conds.append(M.c.created_at < _day_start(f.end + timedelta(days=1)))
    if f.sources:
        conds.append(M.c.source.in_(f.sources))
    if f.search:
        # Bound parameter: the search text is never spliced into SQL.
        conds.append(M.c.text.ilike(f"%{_escape_like(f.search)}%", escape="\\"))
    if j is not None:
        if f.sentiments:
            conds.append(j.sentiment.in_(f.sentiments))
        if f.topics:
            conds.append(j.topic.in_(f.topics))
        if f.segments:
            conds.append(j.cust.c.segment.in_(f.segments))
    return conds


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _needs_join(f: MentionFilter) -> bool:
    return bool(f.sentiments or f.topics or f.segments)


def _themes() -> tuple[Any, Any, Any]:
    """The themes joined to their merge survivors: ``(from, theme id in force, name in force)``.

    The same resolution as the joins in :func:`_joined`: a merged theme counts as
    the theme it was merged into, under that theme's name (or top terms).
    """
    theme = aliased(T, name="theme")
    survivor = aliased(T, name="survivor")
    return (
        theme.outerjoin(survivor, survivor.c.id == theme.c.merged_into),
        func.coalesce(survivor.c.id, theme.c.id),
        func.coalesce(survivor.c.name, survivor.c.label, theme.c.name, theme.c.label),
    )


def _themes_in_force(conn: Connection) -> dict[str, tuple[int, str]]:
    """Each theme's key as the ``themes`` stage writes it (its id as text) -> the theme it
    counts as and that theme's name: done once on the small ``themes`` table instead of
    once per mention."""
    frm, theme_id, name = _themes()
    key = cast(frm.left.c.id, String)
    return {
        str(k): (int(tid), str(n))
        for k, tid, n in conn.execute(select(key, theme_id, name).select_from(frm))
    }


@dataclass(frozen=True)
class _Lean:
    """Mentions joined to only the enrichments a query needs, with the filter conditions.

    ``sentiment`` and ``theme_key`` are the labels in force (``None`` where not joined);
    ``theme_key`` is a theme id as text, before merges are resolved.
    """

    frm: Any
    sentiment: Any
    theme_key: Any
    conds: list[ColumnElement[bool]]


def _lean(f: MentionFilter, *, sentiment: bool = False, themes: bool = False) -> _Lean:
    """The mentions matching ``f``, joined to the sentiment and/or themes results if asked.

    Matches exactly the rows that :func:`_joined` with :func:`_where` matches (each
    joined enrichment is unique per mention, so no join adds rows). A theme filter
    is a test of the theme key against the keys of the themes (and the themes merged
    into them) with a chosen name: one uncorrelated subquery on ``themes``.
    """
    frm: Any = M
    conds = _where(f, None)
    sentiment_label = theme_key = None
    if sentiment or f.sentiments:
        sent = aliased(E, name="sent")
        frm = frm.outerjoin(sent, and_(sent.c.mention_id == M.c.id, sent.c.stage == "sentiment"))
        frm, sentiment_label = _in_force(frm, "sentiment", sent.c.label)
        if f.sentiments:
            conds.append(sentiment_label.in_(f.sentiments))
    if themes or f.topics:
        topic = aliased(E, name="topic")
        frm = frm.outerjoin(topic, and_(topic.c.mention_id == M.c.id, topic.c.stage == "themes"))
        frm, theme_key = _in_force(frm, "themes", topic.c.label)
        if f.topics:
            tfrm, _, name = _themes()
            keys = select(cast(tfrm.left.c.id, String)).select_from(tfrm)
            conds.append(theme_key.in_(keys.where(name.in_(f.topics))))
    if f.segments:
        link = aliased(E, name="link")
        cust = aliased(C, name="cust")
        # Outer joins, as in _joined: the segment test drops the unlinked rows anyway, and
        # inner joins would let SQLite start from every link result instead of the dates.
        frm = frm.outerjoin(
            link, and_(link.c.mention_id == M.c.id, link.c.stage == "links")
        ).outerjoin(
            cust,
            and_(
                cust.c.customer_id == link.c.label,
                link.c.data["strength"].as_string() == "strong",
            ),
        )
        conds.append(cust.c.segment.in_(f.segments))
    return _Lean(frm=frm, sentiment=sentiment_label, theme_key=theme_key, conds=conds)


def _filtered_ids(f: MentionFilter) -> Select[Any]:
    """The ids of the mentions matching every filter of ``f`` (to use in ``IN``)."""
    lean = _lean(f)
    return select(M.c.id).select_from(lean.frm).where(*lean.conds)


def _frame(engine: Engine, stmt: Any, timeout_s: float) -> pd.DataFrame:
    with read_connection(engine, timeout_s) as conn:
        return _frame_on(conn, stmt)


def _frame_on(conn: Connection, stmt: Any) -> pd.DataFrame:
    import pandas as pd

    result = conn.execute(stmt)
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


Rolled = list[tuple[datetime, str, str | None, str | None, int]]


def _rolled(
    conn: Connection, f: MentionFilter, freq: str = "day", dims: tuple[str, ...] = ()
) -> Rolled | None:
    """Mentions matching ``f`` per (bucket, source, sentiment, theme key) from the rollups
    (:mod:`listenwell.store.rollup`), the labels in force; ``None`` where they cannot
    serve ``f`` or ``freq`` (hours are not rolled up). Only ``dims`` (of ``source``,
    ``sentiment``, ``theme``) are told apart. Needs a snapshot connection."""
    if freq not in ("day", "week"):
        return None
    wanted = set(dims) | ({"sentiment"} if f.sentiments else set())
    wanted |= {"theme"} if f.topics else set()
    counts = rollup.daily_counts(conn, f, frozenset(wanted))
    if counts is None:
        return None
    names = _themes_in_force(conn) if f.topics else {}
    out: Rolled = []
    for day, source, sentiment, theme, n in ((*k, v) for k, v in counts.items()):
        if f.sentiments and sentiment not in f.sentiments:
            continue
        if f.topics:
            named = names.get(str(theme)) if theme is not None else None
            if named is None or named[1] not in f.topics:
                continue
        if freq == "week":
            day = day - timedelta(days=day.weekday())
        out.append((_day_start(day), source, sentiment, theme, n))
    return out


def _summed(rows: Rolled, columns: tuple[int, ...]) -> list[tuple[Any, ...]]:
    """``rows`` added up by the given positions, sorted by them."""
    sums: dict[tuple[Any, ...], int] = {}
    for row in rows:
        key = tuple(row[i] for i in columns)
        sums[key] = sums.get(key, 0) + row[4]
    return sorted(
        ((*k, n) for k, n in sums.items()), key=lambda r: tuple("" if v is None else v for v in r)
    )


def overview_counts(
    engine: Engine, f: MentionFilter = MentionFilter(), *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any]:
    """Headline numbers: mentions, distinct authors, first and last time, customers, quarantine."""
    with read_connection(engine, timeout_s, snapshot=True) as conn:
        rolled = None if _needs_join(f) else _rolled(conn, f, "day")
        authors = None if rolled is None else rollup.distinct_authors(conn, f)
        if rolled is not None and authors is not None:
            # Counts from the rollups; first and last are one index probe each.
            conds = _where(f, None)
            mentions = sum(r[4] for r in rolled)
            first = conn.execute(select(func.min(M.c.created_at)).where(*conds)).scalar()
            last = conn.execute(select(func.max(M.c.created_at)).where(*conds)).scalar()
        elif _needs_join(f):
            lean = _lean(f)
            base = (
                select(M.c.author_handle, M.c.created_at)
                .select_from(lean.frm)
                .where(*lean.conds)
                .subquery()
            )
            row = conn.execute(
                select(
                    func.count(),
                    func.count(func.distinct(base.c.author_handle)),
                    func.min(base.c.created_at),
                    func.max(base.c.created_at),
                )
            ).one()
            mentions, authors, first, last = row
        else:
            # Count and distinct authors read the covering (created_at, source, author_handle)
            # index; first and last are each one index probe when asked on their own.
            conds = _where(f, None)
            mentions, authors = conn.execute(
                select(func.count(), func.count(func.distinct(M.c.author_handle))).where(*conds)
            ).one()
            first = conn.execute(select(func.min(M.c.created_at)).where(*conds)).scalar()
            last = conn.execute(select(func.max(M.c.created_at)).where(*conds)).scalar()
        customers = conn.execute(select(func.count()).select_from(C)).scalar_one()
        quarantined = conn.execute(
            select(func.count()).select_from(QuarantineRow.__table__)
        ).scalar_one()
    return {
        "mentions": mentions,
        "authors": authors,
        "first": _as_utc(first),
        "last": _as_utc(last),
        "customers": customers,
        "quarantined": quarantined,
    }


def data_range(
    engine: Engine, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> tuple[datetime | None, datetime | None, list[str]]:
    """The first and last mention's time and the sources present (the filters' defaults).

    First and last are one index probe each; the sources come from the rollups
    where they are kept, else from one pass over the mentions.
    """
    with read_connection(engine, timeout_s, snapshot=True) as conn:
        first = conn.execute(select(func.min(M.c.created_at))).scalar()
        last = conn.execute(select(func.max(M.c.created_at))).scalar()
        sources = rollup.sources(conn)
        if sources is None:
            sources = sorted(conn.execute(select(M.c.source).distinct()).scalars().all())
    return _as_utc(first), _as_utc(last), [str(s) for s in sources]


def _as_utc(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite aggregates bypass the column type
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _bucket(engine: Engine, freq: str) -> Any:
    if freq not in ("hour", "day", "week"):
        raise ValueError("freq must be hour, day or week")
    col = M.c.created_at
    if engine.dialect.name == "postgresql":
        return func.date_trunc(freq, func.timezone("UTC", col))
    fmt = {"hour": "%Y-%m-%d %H:00:00", "day": "%Y-%m-%d 00:00:00"}
    if freq == "week":  # Monday of the week
        return func.strftime(
            "%Y-%m-%d 00:00:00", col, func.printf("-%d days", (func.strftime("%w", col) + 6) % 7)
        )
    return func.strftime(fmt[freq], col)


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    df["bucket"] = pd.to_datetime(df["bucket"], utc=True)
    df["mentions"] = df["mentions"].astype("int64")
    return df


def mention_volume(
    engine: Engine,
    f: MentionFilter = MentionFilter(),
    *,
    freq: str = "day",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """Mentions per time bucket and source: columns ``bucket`` (UTC), ``source``, ``mentions``."""
    import pandas as pd

    bucket = _bucket(engine, freq).label("bucket")
    with read_connection(engine, timeout_s, snapshot=True) as conn:
        rolled = _rolled(conn, f, freq, ("source",))
        if rolled is not None:
            df = pd.DataFrame(_summed(rolled, (0, 1)), columns=["bucket", "source", "mentions"])
            return _typed(df)
        lean = _lean(f)
        stmt = (
            select(bucket, M.c.source, func.count().label("mentions"))
            .select_from(lean.frm)
            .where(*lean.conds)
            .group_by(bucket, M.c.source)
            .order_by(bucket)
        )
        df = _frame_on(conn, stmt)
    df["bucket"] = pd.to_datetime(df["bucket"], utc=True)
    df["mentions"] = df["mentions"].astype("int64")
    return df


def sentiment_volume(
    engine: Engine,
    f: MentionFilter = MentionFilter(),
    *,
    freq: str = "day",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """Enriched mentions per time bucket and sentiment: ``bucket``, ``sentiment``, ``mentions``.

    Mentions without a sentiment result yet are left out.
    """
    import pandas as pd

    bucket = _bucket(engine, freq).label("bucket")
    with read_connection(engine, timeout_s, snapshot=True) as conn:
        rolled = _rolled(conn, f, freq, ("sentiment",))
        if rolled is not None:
            labelled = [r for r in rolled if r[2] is not None]
            df = pd.DataFrame(
                _summed(labelled, (0, 2)), columns=["bucket", "sentiment", "mentions"]
            )
            return _typed(df)
        lean = _lean(f, sentiment=True)
        sentiment = lean.sentiment.label("sentiment")
        stmt = (
            select(bucket, sentiment, func.count().label("mentions"))
            .select_from(lean.frm)
            .where(lean.sentiment.is_not(None), *lean.conds)
            .group_by(bucket, sentiment)
            .order_by(bucket)
        )
        df = _frame_on(conn, stmt)
    df["bucket"] = pd.to_datetime(df["bucket"], utc=True)
    df["mentions"] = df["mentions"].astype("int64")
    return df


def theme_volume(
    engine: Engine,
    f: MentionFilter = MentionFilter(),
    *,
    freq: str = "week",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """Themed mentions per time bucket, theme and sentiment (the labels in force).

    Columns: ``bucket`` (UTC), ``theme_id``, ``theme`` (its name or top terms),
    ``sentiment`` (``None`` where there is none yet), ``mentions``. Mentions
    without a theme are left out; merged themes count under their survivor.
    """
    import pandas as pd

    bucket = _bucket(engine, freq).label("bucket")
    rows: list[Any]
    with read_connection(engine, timeout_s, snapshot=True) as conn:
        rolled = _rolled(conn, f, freq, ("sentiment", "theme"))
        if rolled is not None:
            themed = [r for r in rolled if r[3] is not None]
            rows = _summed(themed, (0, 3, 2))
        else:
            lean = _lean(f, sentiment=True, themes=True)
            stmt = (
                select(bucket, lean.theme_key, lean.sentiment, func.count())
                .select_from(lean.frm)
                .where(lean.theme_key.is_not(None), *lean.conds)
                .group_by(bucket, lean.theme_key, lean.sentiment)
            )
            rows = list(conn.execute(stmt).all())
        themes = _themes_in_force(conn) if rows else {}
    # Theme ids to names and merged themes to their survivors, then add up what now
    # falls into one group (two merged themes, or a key and its survivor's key).
    counts: dict[tuple[Any, int, str, Any], int] = {}
    for at, key, sentiment, n in rows:
        theme = themes.get(str(key))
        if theme is not None:
            group = (at, theme[0], theme[1], sentiment)
            counts[group] = counts.get(group, 0) + int(n)
    ordered = sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], kv[0][3] or ""))
    df = pd.DataFrame(
        [(*group, n) for group, n in ordered],
        columns=["bucket", "theme_id", "theme", "sentiment", "mentions"],
    )
    df["bucket"] = pd.to_datetime(df["bucket"], utc=True)
    df["mentions"] = df["mentions"].astype("int64")
    df["theme_id"] = df["theme_id"].astype("int64")
    return df


def source_counts(
    engine: Engine, f: MentionFilter = MentionFilter(), *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> pd.DataFrame:
    """Mentions per source: columns ``source``, ``mentions``, most first."""
    import pandas as pd

    n = func.count().label("mentions")
    with read_connection(engine, timeout_s, snapshot=True) as conn:
        rolled = _rolled(conn, f, "day", ("source",))
        if rolled is not None:
            by_source = sorted(_summed(rolled, (1,)), key=lambda r: (-r[1], r[0]))
            df = pd.DataFrame(by_source, columns=["source", "mentions"])
            df["mentions"] = df["mentions"].astype("int64")
            return df
        lean = _lean(f)
        stmt = (
            select(M.c.source, n)
            .select_from(lean.frm)
            .where(*lean.conds)
            .group_by(M.c.source)
            .order_by(n.desc())
        )
        return _frame_on(conn, stmt)


def top_authors(
    engine: Engine,
    f: MentionFilter = MentionFilter(),
    *,
    limit: int = 10,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """The most active authors: columns ``author_handle``, ``mentions``, most first."""
    import pandas as pd

    n = func.count().label("mentions")
    with read_connection(engine, timeout_s, snapshot=True) as conn:
        top = None if _needs_join(f) else rollup.author_counts(conn, f, limit)
        if top is not None:
            df = pd.DataFrame(top, columns=["author_handle", "mentions"])
            df["mentions"] = df["mentions"].astype("int64")
            return df
        lean = _lean(f)
        stmt = (
            select(M.c.author_handle, n)
            .select_from(lean.frm)
            .where(M.c.author_handle.is_not(None), *lean.conds)
            .group_by(M.c.author_handle)
            .order_by(n.desc(), M.c.author_handle)
            .limit(limit)
        )
        return _frame_on(conn, stmt)


def _mention_columns(j: _Joined) -> list[Any]:
    from .escalations import escalation_columns

    escalated, priority = escalation_columns(M.c.id)
    return [
        M.c.id,
        M.c.source,
        M.c.external_id,
        M.c.created_at,
        M.c.author_handle,
        M.c.author_name,
        M.c.text,
        M.c.url,
        M.c.rating,
        M.c.in_reply_to,
        j.sentiment.label("sentiment"),
        j.sentiment_score.label("sentiment_score"),
        j.topic.label("topic"),
        # Filled from the links in force (store.links.effective_links): see _with_links.
        literal(None).label("customer_id"),
        literal(None).label("link_confidence"),
        literal(None).label("link_evidence"),
        escalated.label("escalated"),
        priority.label("priority"),
        j.theme_id.label("theme_id"),
        j.intent.label("intent"),
        j.language.label("language"),
    ]


_LINK_COLUMNS = {
    "customer_id": "customer_id",
    "link_confidence": "confidence",
    "link_evidence": "evidence_text",
}


def _links(conn: Any, mention_ids: list[int]) -> dict[int, Any]:
    """The links in force: confirmed by an agent, else strong evidence not rejected."""
    from .links import effective_links

    return dict(effective_links(conn, mention_ids)) if mention_ids else {}


def mentions_frame(
    engine: Engine,
    f: MentionFilter = MentionFilter(),
    *,
    limit: int = 500,
    offset: int = 0,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """The newest mentions matching ``f``, with their enrichment columns."""
    # First the page's ids through the lean joins the filters need, then every column
    # for those ids only: the full join never runs over the whole date range.
    lean = _lean(f)
    page = (
        select(M.c.id, M.c.created_at)
        .select_from(lean.frm)
        .where(*lean.conds)
        .order_by(M.c.created_at.desc(), M.c.id.desc())
        .limit(max(1, min(limit, 100_000)))
        .offset(max(0, offset))
        .subquery("page")
    )
    j = _joined(page)
    # Ordered by the page's own columns, so neither database is tempted to walk every
    # mention in date order to avoid sorting a few hundred rows.
    stmt = (
        select(*_mention_columns(j))
        .select_from(j.frm)
        .order_by(page.c.created_at.desc(), page.c.id.desc())
    )
    import pandas as pd

    df = _frame(engine, stmt, timeout_s)
    if not df.empty:
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
        links = _links(engine, df["id"].tolist())
        for column, attr in _LINK_COLUMNS.items():
            df[column] = [getattr(links[i], attr) if i in links else None for i in df["id"]]
    return df


def iter_export_rows(
    engine: Engine,
    f: MentionFilter = MentionFilter(),
    *,
    batch_size: int = 5000,
) -> Iterator[dict[str, Any]]:
    """Stream every mention matching ``f`` as a dict keyed by :data:`EXPORT_COLUMNS`.

    Rows are read in keyset-paginated batches (by id), so memory stays flat
    however many mentions there are.
    """
    j = _joined()
    last_id = 0
    while True:
        stmt = (
            select(*_mention_columns(j))
            .select_from(j.frm)
            .where(M.c.id > last_id, *_where(f, j))
            .order_by(M.c.id)
            .limit(batch_size)
        )
        with engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
            links = _links(conn, [r["id"] for r in rows])
        if not rows:
            return
        for row in rows:
            out = {k: row[k] for k in EXPORT_COLUMNS}
            link = links.get(row["id"])
            if link is not None:
                for column, attr in _LINK_COLUMNS.items():
                    out[column] = getattr(link, attr)
            created = row["created_at"]
            out["created_at"] = created.isoformat().replace("+00:00", "Z")
            yield out
        last_id = rows[-1]["id"]


def customers_frame(
    engine: Engine,
    search: str | None = None,
    *,
    limit: int = 500,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """Customers with their handles joined as ``platform:handle;…``, optionally searched.

    ``search`` matches name, email, phone, customer id or a handle (substring,
    case-insensitive).
    """
    check_text_inputs(search=search)
    H = HandleRow.__table__
    handles = select(H.c.customer_pk, H.c.platform, H.c.display).order_by(H.c.platform).subquery()
    if engine.dialect.name == "postgresql":
        agg = func.string_agg(handles.c.platform + ":" + handles.c.display, ";")
    else:
        agg = func.group_concat(handles.c.platform + ":" + handles.c.display, ";")
    stmt = (
        select(
            C.c.customer_id,
            C.c.name,
            C.c.email,
            C.c.phone,
            C.c.segment,
            agg.label("handles"),
            C.c.attributes,
            C.c.consent_contact,
            C.c.updated_at,
        )
        .select_from(C.outerjoin(handles, handles.c.customer_pk == C.c.id))
        .group_by(C.c.id)
        .order_by(C.c.customer_id)
        .limit(max(1, min(limit, 100_000)))
    )
    if search:
        pattern = f"%{_escape_like(search.strip())}%"
        stmt = stmt.where(
            or_(
                C.c.name.ilike(pattern, escape="\\"),
                C.c.email.ilike(pattern, escape="\\"),
                C.c.phone.ilike(pattern, escape="\\"),
                C.c.customer_id.ilike(pattern, escape="\\"),
                C.c.id.in_(select(H.c.customer_pk).where(H.c.display.ilike(pattern, escape="\\"))),
            )
        )
    return _frame(engine, stmt, timeout_s)


def quarantine_frame(
    engine: Engine, *, limit: int = 500, timeout_s: float = DEFAULT_TIMEOUT_S
) -> pd.DataFrame:
    """The newest quarantined records: source, origin, reason, raw, received_at."""
    Q = QuarantineRow.__table__
    stmt = (
        select(Q.c.id, Q.c.source, Q.c.origin, Q.c.reason, Q.c.raw, Q.c.received_at)
        .order_by(Q.c.id.desc())
        .limit(max(1, min(limit, 100_000)))
    )
    return _frame(engine, stmt, timeout_s)
