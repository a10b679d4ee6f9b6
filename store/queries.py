"""Read queries for the dashboard and exports. Each returns a DataFrame (or streams rows).

Every query runs under a time limit (:func:`read_connection`), so a heavy
filter fails with :class:`QueryTimeoutError` instead of hanging the page.
Filter values arrive in a frozen, hashable :class:`MentionFilter`, so callers
can cache results keyed on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Select, String, and_, cast, func, literal, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from .engine import read_connection
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


def _corrected(stage: str) -> Any:
    """The newest agent correction of ``stage`` for the outer mention row (or NULL)."""
    corr = CorrectionRow.__table__
    return (
        select(corr.c.label)
        .where(corr.c.mention_id == M.c.id, corr.c.stage == stage)
        .order_by(corr.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _joined() -> _Joined:
    sent = aliased(E, name="sent")
    topic = aliased(E, name="topic")
    intent = aliased(E, name="intent")
    lang = aliased(E, name="lang")
    link = aliased(E, name="link")
    cust = aliased(C, name="cust")
    theme = aliased(T, name="theme")
    survivor = aliased(T, name="survivor")
    theme_key = func.coalesce(_corrected("themes"), topic.c.label)
    frm = (
        M.outerjoin(sent, and_(sent.c.mention_id == M.c.id, sent.c.stage == "sentiment"))
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
        .outerjoin(theme, cast(theme.c.id, String) == theme_key)
        .outerjoin(survivor, survivor.c.id == theme.c.merged_into)
    )
    return _Joined(
        frm=frm,
        sentiment=func.coalesce(_corrected("sentiment"), sent.c.label),
        sentiment_score=sent.c.score,
        topic=func.coalesce(survivor.c.name, survivor.c.label, theme.c.name, theme.c.label),
        theme_id=func.coalesce(survivor.c.id, theme.c.id),
        intent=func.coalesce(_corrected("intent"), intent.c.label),
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


def _filtered_ids(f: MentionFilter) -> Select[Any]:
    j = _joined()
    return select(M.c.id).select_from(j.frm).where(*_where(f, j))


def _frame(engine: Engine, stmt: Any, timeout_s: float) -> pd.DataFrame:
    import pandas as pd

    with read_connection(engine, timeout_s) as conn:
        result = conn.execute(stmt)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def overview_counts(
    engine: Engine, f: MentionFilter = MentionFilter(), *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any]:
    """Headline numbers: mentions, distinct authors, first and last time, customers, quarantine."""
    if _needs_join(f):
        base = select(M).where(M.c.id.in_(_filtered_ids(f))).subquery()
    else:
        base = select(M).where(*_where(f, None)).subquery()
    stmt = select(
        func.count().label("mentions"),
        func.count(func.distinct(base.c.author_handle)).label("authors"),
        func.min(base.c.created_at).label("first"),
        func.max(base.c.created_at).label("last"),
    )
    with read_connection(engine, timeout_s) as conn:
        row = conn.execute(stmt).one()
        customers = conn.execute(select(func.count()).select_from(C)).scalar_one()
        quarantined = conn.execute(
            select(func.count()).select_from(QuarantineRow.__table__)
        ).scalar_one()
    first, last = row.first, row.last
    return {
        "mentions": row.mentions,
        "authors": row.authors,
        "first": _as_utc(first),
        "last": _as_utc(last),
        "customers": customers,
        "quarantined": quarantined,
    }


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


def mention_volume(
    engine: Engine,
    f: MentionFilter = MentionFilter(),
    *,
    freq: str = "day",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """Mentions per time bucket and source: columns ``bucket`` (UTC), ``source``, ``mentions``."""
    bucket = _bucket(engine, freq).label("bucket")
    stmt = select(bucket, M.c.source, func.count().label("mentions"))
    if _needs_join(f):
        stmt = stmt.where(M.c.id.in_(_filtered_ids(f)))
    else:
        stmt = stmt.where(*_where(f, None))
    stmt = stmt.group_by(bucket, M.c.source).order_by(bucket)
    import pandas as pd

    df = _frame(engine, stmt, timeout_s)
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

    j = _joined()
    bucket = _bucket(engine, freq).label("bucket")
    sentiment = j.sentiment.label("sentiment")
    stmt = (
        select(bucket, sentiment, func.count().label("mentions"))
        .select_from(j.frm)
        .where(j.sentiment.is_not(None), *_where(f, j))
        .group_by(bucket, sentiment)
        .order_by(bucket)
    )
    df = _frame(engine, stmt, timeout_s)
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

    j = _joined()
    bucket = _bucket(engine, freq).label("bucket")
    theme_id = j.theme_id.label("theme_id")
    theme = j.topic.label("theme")
    sentiment = j.sentiment.label("sentiment")
    stmt = (
        select(bucket, theme_id, theme, sentiment, func.count().label("mentions"))
        .select_from(j.frm)
        .where(j.theme_id.is_not(None), *_where(f, j))
        .group_by(bucket, theme_id, theme, sentiment)
        .order_by(bucket)
    )
    df = _frame(engine, stmt, timeout_s)
    df["bucket"] = pd.to_datetime(df["bucket"], utc=True)
    df["mentions"] = df["mentions"].astype("int64")
    df["theme_id"] = df["theme_id"].astype("int64")
    return df


def source_counts(
    engine: Engine, f: MentionFilter = MentionFilter(), *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> pd.DataFrame:
    """Mentions per source: columns ``source``, ``mentions``, most first."""
    n = func.count().label("mentions")
    stmt = select(M.c.source, n)
    if _needs_join(f):
        stmt = stmt.where(M.c.id.in_(_filtered_ids(f)))
    else:
        stmt = stmt.where(*_where(f, None))
    return _frame(engine, stmt.group_by(M.c.source).order_by(n.desc()), timeout_s)


def top_authors(
    engine: Engine,
    f: MentionFilter = MentionFilter(),
    *,
    limit: int = 10,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """The most active authors: columns ``author_handle``, ``mentions``, most first."""
    n = func.count().label("mentions")
    stmt = select(M.c.author_handle, n).where(M.c.author_handle.is_not(None))
    if _needs_join(f):
        stmt = stmt.where(M.c.id.in_(_filtered_ids(f)))
    else:
        stmt = stmt.where(*_where(f, None))
    stmt = stmt.group_by(M.c.author_handle).order_by(n.desc(), M.c.author_handle).limit(limit)
    return _frame(engine, stmt, timeout_s)


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
    j = _joined()
    stmt = (
        select(*_mention_columns(j))
        .select_from(j.frm)
        .where(*_where(f, j))
        .order_by(M.c.created_at.desc(), M.c.id.desc())
        .limit(max(1, min(limit, 100_000)))
        .offset(max(0, offset))
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
