"""The dashboard's rollups: mentions counted per UTC day, kept exact by a watermark.

At 10,000,000 mentions a 90-day dashboard window holds about 1.7M mentions, and
the overview, themes and reports pages spent 8-20 s cold aggregating them
(``bench/dashboard_bench.py``). Two tables (migration 0009) hold the counts of
every mention with an id up to a **watermark**:

- ``stats_daily``: mentions per day, source, model sentiment and model theme key;
- ``stats_authors``: mentions per day, source and author handle;
- ``stats_voice``: mentions per day and source naming each share-of-voice party
  (the parties passed to :func:`refresh`, from ``brand`` in the settings).

A reader adds, live and in the same snapshot, what the tables do not hold:

1. the mentions past the watermark (new since the last refresh);
2. the **dirty days**, whose rows changed after they were counted (a redone
   stage, erasure, retention), listed in ``stats_dirty``;
3. the agents' corrections: a corrected mention is taken out at its model labels
   and counted live with the labels in force.

So every figure equals the live query's, whether the rollups are fresh, stale or
empty; freshness only changes how much is read live. Writers that change the
labels, authors or existence of mentions at or below the watermark call
:func:`mark_dirty` (or :func:`reset`) in their own transaction;
:func:`refresh` recounts the dirty days and moves the watermark to the newest
mention. ``listenwell db refresh-stats``, ``listenwell enrich`` and the workers'
periodic job call it.

Concurrency: :func:`refresh` first updates the state row, which serialises
refreshes (and takes SQLite's write lock before it reads); :func:`mark_dirty`
reads the watermark ``FOR SHARE`` on PostgreSQL, so a writer either sees the new
watermark or the refresh waits for the writer's commit and counts its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Connection,
    Date,
    Engine,
    Table,
    and_,
    delete,
    func,
    insert,
    select,
    union,
    union_all,
    update,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from .models import (
    CorrectionRow,
    EnrichmentRow,
    MentionRow,
    StatsAuthorRow,
    StatsDailyRow,
    StatsDirtyRow,
    StatsStateRow,
    StatsVoiceRow,
    utcnow,
)

if TYPE_CHECKING:
    from .queries import MentionFilter

__all__ = [
    "Coverage",
    "RefreshReport",
    "author_counts",
    "coverage",
    "daily_counts",
    "distinct_authors",
    "mark_dirty",
    "model_counts",
    "refresh",
    "reset",
    "sources",
    "voice_keys",
]

M = cast(Table, MentionRow.__table__)
E = cast(Table, EnrichmentRow.__table__)
D = cast(Table, StatsDailyRow.__table__)
A = cast(Table, StatsAuthorRow.__table__)
V = cast(Table, StatsVoiceRow.__table__)
DIRTY = cast(Table, StatsDirtyRow.__table__)
STATE = cast(Table, StatsStateRow.__table__)
NAME = "mentions"
VOICE = "voice:"  # + a party key (store.voice.party_key): one state row per counted party
LABEL_STAGES = ("sentiment", "themes")
# More dirty days than this in a window and the readers go fully live (one scan
# beats many small ones); a refresh brings them back.
MAX_DIRTY_DAYS = 62
# Days recounted per statement during a refresh (a month of mentions at a time).
RUN_DAYS = 31

DailyKey = tuple[date, str, str | None, str | None]


def day_of(conn: Connection) -> Any:
    """A mention's UTC day as a SQL ``date`` (what ``stats_*.day`` holds)."""
    if conn.dialect.name == "postgresql":
        return sa_cast(func.timezone("UTC", M.c.created_at), Date)
    return func.date(M.c.created_at)


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _runs(days: Iterable[date], limit: int = RUN_DAYS) -> Iterator[tuple[date, date]]:
    """Consecutive days as ``(first, last)`` runs of at most ``limit`` days."""
    run: list[date] = []
    for d in sorted(set(days)):
        if run and (d - run[-1] != timedelta(days=1) or len(run) >= limit):
            yield run[0], run[-1]
            run = []
        run.append(d)
    if run:
        yield run[0], run[-1]


def _in_days(first: date, last: date) -> Any:
    return and_(
        M.c.created_at >= _day_start(first), M.c.created_at < _day_start(last) + timedelta(days=1)
    )


# ------------------------------------------------------------------ writers


def _upsert(conn: Connection, table: Any) -> Any:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


def _insert_ignore(conn: Connection, table: Any) -> Any:
    return _upsert(conn, table).on_conflict_do_nothing()


def watermark(conn: Connection, *, share: bool = False) -> int:
    """The id up to which the rollups have counted (0: never refreshed)."""
    stmt = select(STATE.c.watermark).where(STATE.c.name == NAME)
    if share and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=True)
    return int(conn.execute(stmt).scalar() or 0)


def mark_dirty(conn: Connection, mention_ids: Iterable[int], *, purge: bool = False) -> int:
    """Mark the days of these mentions for a recount; call it in the transaction that
    changes their labels, author or existence (before deleting them).

    Mentions past the watermark are skipped: they are read live anyway. With
    ``purge`` the counts of those days are deleted at once (erasure and retention:
    no author handle may outlive its mentions until the next refresh); readers
    read dirty days live either way. Returns how many mentions were at or below
    the watermark.
    """
    ids = sorted({int(i) for i in mention_ids})
    if not ids:
        return 0
    mark = watermark(conn, share=True)
    ids = [i for i in ids if i <= mark]
    for i in range(0, len(ids), 5_000):
        part = ids[i : i + 5_000]
        days = [
            _as_date(d)
            for d in conn.execute(
                select(day_of(conn).label("day")).where(M.c.id.in_(part)).distinct()
            ).scalars()
        ]
        if not days:
            continue
        conn.execute(_insert_ignore(conn, DIRTY), [{"day": d} for d in days])
        if purge:
            for table in (D, A, V):
                conn.execute(delete(table).where(table.c.day.in_(days)))
    return len(ids)


def reset(conn: Connection) -> None:
    """Forget every count (after a stage's labels are rewritten wholesale): readers go
    live until the next :func:`refresh` recounts everything."""
    conn.execute(update(STATE).where(STATE.c.name == NAME).values(watermark=0))
    conn.execute(delete(D))
    conn.execute(delete(A))
    conn.execute(delete(V))
    conn.execute(delete(DIRTY))


@dataclass(frozen=True)
class RefreshReport:
    """What one :func:`refresh` did."""

    watermark: int
    previous: int
    days: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "watermark": self.watermark,
            "previous": self.previous,
            "days": self.days,
            "seconds": round(self.seconds, 3),
        }


def refresh(
    engine: Engine | Connection,
    *,
    parties: Mapping[str, Sequence[str]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RefreshReport:
    """Count the new mentions and recount the dirty days; move the watermark.

    Args:
        engine: The database (or a connection, to run in the caller's transaction).
        parties: The share-of-voice parties to count (name -> keywords, see
            :func:`listenwell.store.voice.voice_parties`). A party not counted before
            is counted over every day; parties counted before and not named here are
            dropped. ``None`` keeps counting the parties counted before.
        progress: Called with ``(days done, days to do)`` after each run of days.

    Returns:
        The new and previous watermark, the days recounted and the time taken.
    """
    import time as _time

    t0 = _time.perf_counter()
    if isinstance(engine, Engine):
        with engine.begin() as conn:
            return _refresh(conn, parties, progress, t0)
    return _refresh(engine, parties, progress, t0)


def voice_keys(conn: Connection) -> set[str]:
    """The party keys whose mentions the rollups count."""
    names = select(STATE.c.name).where(STATE.c.name.startswith(VOICE, autoescape=True))
    return {str(n)[len(VOICE) :] for n in conn.execute(names).scalars()}


def _voice_parties(conn: Connection) -> dict[str, list[str]]:
    rows = select(STATE.c.name, STATE.c.detail).where(
        STATE.c.name.startswith(VOICE, autoescape=True)
    )
    return {
        str(name)[len(VOICE) :]: list((detail or {}).get("words") or [])
        for name, detail in conn.execute(rows)
    }


def _count_voice(
    conn: Connection, parties: Mapping[str, list[str]], first: date, last: date, mark: int
) -> None:
    """Insert the ``stats_voice`` rows of ``parties`` for the days ``first..last``."""
    from .voice import voice_select

    if not parties:
        return
    keys = list(parties)
    stmt = voice_select(
        conn.dialect.name,
        [parties[k] for k in keys],
        M,
        [_in_days(first, last), M.c.id <= mark],
        {"day": day_of(conn), "source": M.c.source},
    )
    rows = [
        {"day": _as_date(r[0]), "source": r[1], "party_key": key, "mentions": int(n)}
        for r in conn.execute(stmt)
        for key, n in zip(keys, r[2:], strict=True)
        if n
    ]
    if rows:
        conn.execute(insert(V), rows)


def _refresh(
    conn: Connection,
    parties: Mapping[str, Sequence[str]] | None,
    progress: Callable[[int, int], None] | None,
    t0: float,
) -> RefreshReport:
    import time as _time

    # The state row first: it serialises refreshes (and takes SQLite's write lock). It is
    # written here if missing (a database emptied table by table, or restored from a
    # backup made before the rollups existed).
    now = utcnow()
    state = _upsert(conn, STATE).values(name=NAME, watermark=0, refreshed_at=now)
    conn.execute(state.on_conflict_do_update(index_elements=["name"], set_={"refreshed_at": now}))
    previous = watermark(conn)
    newest = int(conn.execute(select(func.max(M.c.id))).scalar() or 0)
    if newest > previous:
        days = (
            select(day_of(conn).label("day")).where(M.c.id > previous, M.c.id <= newest).distinct()
        )
        conn.execute(_insert_ignore(conn, DIRTY).from_select(["day"], days))
    mark = max(newest, previous)
    counted = _voice_parties(conn)
    new: dict[str, list[str]] = {}
    if parties is not None:
        from .voice import party_key

        wanted = {}
        for words in parties.values():
            key = party_key(words)
            if key is not None:
                wanted[key] = [str(w) for w in words]
        gone = sorted(set(counted) - set(wanted))
        if gone:
            conn.execute(delete(V).where(V.c.party_key.in_(gone)))
            conn.execute(delete(STATE).where(STATE.c.name.in_([VOICE + k for k in gone])))
        counted = {k: w for k, w in counted.items() if k in wanted}
        new = {k: w for k, w in wanted.items() if k not in counted}
    dirty = [_as_date(d) for d in conn.execute(select(DIRTY.c.day)).scalars()]
    span: list[date] = []
    if new:  # a party counted for the first time: every day with mentions
        lo, hi = conn.execute(
            select(func.min(M.c.created_at), func.max(M.c.created_at)).where(M.c.id <= mark)
        ).one()
        if lo is not None:
            lo_day, hi_day = _as_date(lo), _as_date(hi)
            span = [lo_day + timedelta(days=i) for i in range((hi_day - lo_day).days + 1)]
    dirty_days = set(dirty)
    span = [d for d in span if d not in dirty_days]
    total = len(dirty) + len(span)
    done = 0
    for first, last in _runs(dirty):
        in_run = and_(D.c.day >= first, D.c.day <= last)
        conn.execute(delete(D).where(in_run))
        conn.execute(delete(A).where(and_(A.c.day >= first, A.c.day <= last)))
        conn.execute(delete(V).where(and_(V.c.day >= first, V.c.day <= last)))
        _count_voice(conn, {**counted, **new}, first, last, mark)
        day = day_of(conn).label("day")
        sent = aliased(E, name="sent")
        topic = aliased(E, name="topic")
        frm = M.outerjoin(
            sent, and_(sent.c.mention_id == M.c.id, sent.c.stage == "sentiment")
        ).outerjoin(topic, and_(topic.c.mention_id == M.c.id, topic.c.stage == "themes"))
        counts = (
            select(day, M.c.source, sent.c.label, topic.c.label, func.count())
            .select_from(frm)
            .where(_in_days(first, last), M.c.id <= mark)
            .group_by(day, M.c.source, sent.c.label, topic.c.label)
        )
        conn.execute(
            insert(D).from_select(["day", "source", "sentiment", "theme_key", "mentions"], counts)
        )
        authors = (
            select(day, M.c.source, M.c.author_handle, func.count())
            .where(_in_days(first, last), M.c.id <= mark, M.c.author_handle.is_not(None))
            .group_by(day, M.c.source, M.c.author_handle)
        )
        conn.execute(insert(A).from_select(["day", "source", "author_handle", "mentions"], authors))
        done += (last - first).days + 1
        if progress is not None:
            progress(done, total)
    for first, last in _runs(span):
        _count_voice(conn, new, first, last, mark)
        done += (last - first).days + 1
        if progress is not None:
            progress(done, total)
    if new:
        conn.execute(
            insert(STATE),
            [
                {"name": VOICE + k, "watermark": mark, "refreshed_at": now, "detail": {"words": w}}
                for k, w in new.items()
            ],
        )
    conn.execute(delete(DIRTY))
    conn.execute(update(STATE).where(STATE.c.name == NAME).values(watermark=mark))
    return RefreshReport(
        watermark=mark, previous=previous, days=total, seconds=_time.perf_counter() - t0
    )


# ------------------------------------------------------------------ readers


@dataclass(frozen=True)
class Coverage:
    """What the rollups hold for a reader's window: counted up to ``watermark``, except
    the ``dirty`` days."""

    watermark: int
    dirty: frozenset[date]


def coverage(conn: Connection, f: MentionFilter) -> Coverage | None:
    """The rollups' coverage for ``f``, or ``None`` where they cannot serve it.

    They cannot where ``f`` searches the text or filters by customer segment
    (neither is counted), where nothing was ever counted, or where more than
    :data:`MAX_DIRTY_DAYS` days of the window are dirty. Call it on a
    :func:`~listenwell.store.engine.read_connection` opened with ``snapshot=True``.
    """
    if f.search or f.segments:
        return None
    mark = watermark(conn)
    if mark <= 0:
        return None
    stmt = select(DIRTY.c.day)
    if f.start is not None:
        stmt = stmt.where(DIRTY.c.day >= f.start)
    if f.end is not None:
        stmt = stmt.where(DIRTY.c.day <= f.end)
    dirty = frozenset(_as_date(d) for d in conn.execute(stmt).scalars())
    if len(dirty) > MAX_DIRTY_DAYS:
        return None
    return Coverage(watermark=mark, dirty=dirty)


def _table_window(table: Any, f: MentionFilter, cov: Coverage) -> list[Any]:
    conds: list[Any] = []
    if f.start is not None:
        conds.append(table.c.day >= f.start)
    if f.end is not None:
        conds.append(table.c.day <= f.end)
    if f.sources:
        conds.append(table.c.source.in_(f.sources))
    if cov.dirty:
        conds.append(table.c.day.not_in(sorted(cov.dirty)))
    return conds


def _live_parts(cov: Coverage) -> list[Any]:
    """The conditions of the mentions read live, one per disjoint part: past the
    watermark, and each run of dirty days at or below it."""
    parts: list[Any] = [M.c.id > cov.watermark]
    parts += [and_(_in_days(a, b), M.c.id <= cov.watermark) for a, b in _runs(cov.dirty)]
    return parts


ALL_DIMS = frozenset({"source", "sentiment", "theme"})


def daily_counts(
    conn: Connection, f: MentionFilter, dims: frozenset[str] = ALL_DIMS
) -> dict[DailyKey, int] | None:
    """Mentions in ``f``'s dates and sources per (day, source, sentiment, theme key),
    with the labels in force (an agent's newest correction, else the model's).

    Only the ``dims`` asked for (of ``source``, ``sentiment``, ``theme``) are told
    apart; the others come back as ``""`` (source) or ``None`` and are added up, in
    SQL for the rolled-up days. The sentiment and theme filters of ``f`` are not
    applied (the caller does, on the labels returned, so it asks for those dims).
    ``None`` where the rollups cannot serve ``f`` (:func:`coverage`).
    """
    from dataclasses import replace

    from .queries import _lean

    cov = coverage(conn, f)
    if cov is None:
        return None
    counts: dict[DailyKey, int] = {}

    by_source, by_sentiment, by_theme = ("source" in dims, "sentiment" in dims, "theme" in dims)

    def add(day: Any, source: str, sentiment: Any, theme: Any, n: int) -> None:
        key = (
            _as_date(day),
            str(source) if by_source else "",
            sentiment if by_sentiment else None,
            theme if by_theme else None,
        )
        counts[key] = counts.get(key, 0) + int(n)

    columns = ((D.c.source, by_source), (D.c.sentiment, by_sentiment), (D.c.theme_key, by_theme))
    wanted = [c for c, on in columns if on]
    rows = (
        select(D.c.day, *wanted, func.sum(D.c.mentions))
        .where(*_table_window(D, f, cov))
        .group_by(D.c.day, *wanted)
    )
    for r in conn.execute(rows):
        values = iter(r[1:-1])
        add(
            r[0],
            next(values) if by_source else "",
            next(values) if by_sentiment else None,
            next(values) if by_theme else None,
            r[-1],
        )

    plain = replace(f, sentiments=(), topics=())
    corr = CorrectionRow.__table__
    corrected = select(corr.c.mention_id).where(corr.c.stage.in_(LABEL_STAGES)).distinct()
    day = day_of(conn).label("day")
    # Corrected mentions were counted at their model labels: take them out there...
    sent = aliased(E, name="sent")
    topic = aliased(E, name="topic")
    model = (
        select(day, M.c.source, sent.c.label, topic.c.label, func.count())
        .select_from(
            M.outerjoin(
                sent, and_(sent.c.mention_id == M.c.id, sent.c.stage == "sentiment")
            ).outerjoin(topic, and_(topic.c.mention_id == M.c.id, topic.c.stage == "themes"))
        )
        .where(M.c.id.in_(corrected), M.c.id <= cov.watermark, *_window(f))
        .group_by(day, M.c.source, sent.c.label, topic.c.label)
    )
    moved: list[Any] = []
    for d, source, s, t, n in conn.execute(model):
        if _as_date(d) not in cov.dirty:
            add(d, source, s, t, -int(n))
            moved.append(d)
    # ...and count them, the new mentions and the dirty days with the labels in force.
    lean = _lean(plain, sentiment=True, themes=True)
    parts = _live_parts(cov)
    if moved:
        parts.append(and_(M.c.id.in_(corrected), M.c.id <= cov.watermark))
    for i, part in enumerate(parts):
        live = (
            select(day, M.c.source, lean.sentiment, lean.theme_key, func.count())
            .select_from(lean.frm)
            .where(part, *lean.conds)
            .group_by(day, M.c.source, lean.sentiment, lean.theme_key)
        )
        for d, source, s, t, n in conn.execute(live):
            # The corrected part counts only clean days (dirty days are in their own part).
            if i == len(parts) - 1 and moved and _as_date(d) in cov.dirty:
                continue
            add(d, source, s, t, n)
    return {k: n for k, n in counts.items() if n}


def _window(f: MentionFilter) -> list[Any]:
    """The mentions in ``f``'s dates and sources (the dashboard's own conditions; the
    rollups serve no text search, so ``f`` has none here)."""
    from .queries import _where

    return _where(f, None)


def model_counts(
    conn: Connection, theme_keys: Sequence[str]
) -> dict[tuple[date, str | None, str], int] | None:
    """All-time mentions per (day, model sentiment, model theme key) for these theme keys.

    The models' labels, not the agents' corrections (what a theme's size, sentiment
    mix and trend show). ``None`` where the rollups cannot serve it (never
    refreshed, or too many dirty days).
    """
    everything = _everything()
    cov = coverage(conn, everything)
    keys = [str(k) for k in theme_keys]
    if cov is None or not keys:
        return None
    out: dict[tuple[date, str | None, str], int] = {}
    rolled = (
        select(D.c.day, D.c.sentiment, D.c.theme_key, func.sum(D.c.mentions))
        .where(D.c.theme_key.in_(keys), *_table_window(D, everything, cov))
        .group_by(D.c.day, D.c.sentiment, D.c.theme_key)
    )
    rows = list(conn.execute(rolled))
    sent = aliased(E, name="sent")
    topic = aliased(E, name="topic")
    day = day_of(conn).label("day")
    frm = M.join(
        topic,
        and_(topic.c.mention_id == M.c.id, topic.c.stage == "themes", topic.c.label.in_(keys)),
    ).outerjoin(sent, and_(sent.c.mention_id == M.c.id, sent.c.stage == "sentiment"))
    for part in _live_parts(cov):
        live = (
            select(day, sent.c.label, topic.c.label, func.count())
            .select_from(frm)
            .where(part)
            .group_by(day, sent.c.label, topic.c.label)
        )
        rows += list(conn.execute(live))
    for d, sentiment, key, n in rows:
        k = (_as_date(d), sentiment, str(key))
        out[k] = out.get(k, 0) + int(n)
    return out


def sources(conn: Connection) -> list[str] | None:
    """The sources with mentions, sorted; ``None`` where the rollups hold nothing."""
    cov = coverage(conn, _everything())
    if cov is None:
        return None
    found = set(
        conn.execute(select(D.c.source).where(*_table_window(D, _everything(), cov)).distinct())
        .scalars()
        .all()
    )
    for cond in _live_parts(cov):
        found.update(conn.execute(select(M.c.source).where(cond).distinct()).scalars().all())
    return sorted(found)


def _everything() -> MentionFilter:
    from .queries import MentionFilter

    return MentionFilter()


def _author_selects(f: MentionFilter, cov: Coverage, *, counted: bool) -> list[Any]:
    rolled = select(A.c.author_handle.label("author_handle"))
    if counted:
        rolled = rolled.add_columns(A.c.mentions.label("n"))
    parts = [rolled.where(*_table_window(A, f, cov))]
    for cond in _live_parts(cov):
        live = select(M.c.author_handle.label("author_handle"))
        conds = [cond, M.c.author_handle.is_not(None), *_window(f)]
        if counted:
            live = live.add_columns(func.count().label("n")).group_by(M.c.author_handle)
        parts.append(live.where(*conds))
    return parts


def distinct_authors(conn: Connection, f: MentionFilter) -> int | None:
    """Distinct author handles in ``f``'s dates and sources; ``None`` where the rollups
    cannot serve ``f`` (or ``f`` filters by sentiment or theme, which they do not
    count per author)."""
    if f.sentiments or f.topics:
        return None
    cov = coverage(conn, f)
    if cov is None:
        return None
    handles = union(*_author_selects(f, cov, counted=False)).subquery()
    return int(conn.execute(select(func.count()).select_from(handles)).scalar_one())


def author_counts(conn: Connection, f: MentionFilter, limit: int) -> list[tuple[str, int]] | None:
    """The ``limit`` most active authors in ``f``'s dates and sources, most first (ties by
    handle); ``None`` as for :func:`distinct_authors`."""
    if f.sentiments or f.topics:
        return None
    cov = coverage(conn, f)
    if cov is None:
        return None
    rows = union_all(*_author_selects(f, cov, counted=True)).subquery()
    n = func.sum(rows.c.n).label("mentions")
    stmt = (
        select(rows.c.author_handle, n)
        .group_by(rows.c.author_handle)
        .order_by(n.desc(), rows.c.author_handle)
        .limit(limit)
    )
    return [(str(h), int(c)) for h, c in conn.execute(stmt)]
