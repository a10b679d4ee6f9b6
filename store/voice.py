"""Share of voice: the brand's mentions against each competitor's, per time bucket.

A mention counts for a party when its text contains one of the party's
keywords as a substring, case-insensitive (the rule :func:`listenwell.store.kpis.kpis`
uses for its period totals). A mention naming two parties counts for both.
Counting happens in one SQL pass (``SUM(CASE WHEN <text contains a keyword> …)``
per party, grouped by time bucket), with every keyword a bound parameter; no
mention row leaves the database. SQLite tests ``text LIKE '%kw%'`` (its LIKE
is case-insensitive for ASCII, as its ``lower()`` is); PostgreSQL lower-cases
each text once and tests ``strpos(lowered, lower(kw))``, several times faster
than one ``ILIKE`` per keyword at a million mentions.

With the dashboard's rollups refreshed for the configured parties
(``store/rollup.py``, table ``stats_voice``), the counts up to the watermark come
from there and only the newer mentions and dirty days are scanned: at 10,000,000
mentions a 90-day window was a 17 s scan of 1.7M texts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Select, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from . import rollup
from .engine import read_connection
from .models import StatsDailyRow, StatsVoiceRow
from .queries import (
    DEFAULT_TIMEOUT_S,
    M,
    MentionFilter,
    _as_utc,
    _bucket,
    _day_start,
    _escape_like,
    _frame_on,
    _lean,
)

if TYPE_CHECKING:
    import pandas as pd

_EVERYTHING = MentionFilter()

__all__ = ["keyword_condition", "party_key", "share_of_voice", "voice_parties", "voice_select"]


def voice_parties(brand: Any) -> dict[str, tuple[str, ...]]:
    """The parties of share of voice, read from ``settings.brand``.

    The brand comes first, with its ``keywords`` (else its ``name``); then each
    competitor in ``competitors`` with its keywords (else its name). A
    competitor named like the brand is left out.
    """
    name = str(brand.name)
    parties: dict[str, tuple[str, ...]] = {name: tuple(brand.keywords or [name])}
    for other, words in (brand.competitors or {}).items():
        parties.setdefault(str(other), tuple(words or [other]))
    return parties


def _words(words: Sequence[str]) -> list[str]:
    return [w.strip() for w in words if w and w.strip()]


def keyword_condition(engine: Engine, words: Sequence[str]) -> ColumnElement[bool] | None:
    """``text`` contains one of ``words`` (substring, case-insensitive); ``None`` for no words.

    SQLite's ``LIKE`` is already case-insensitive for ASCII, as its ``lower()``
    is, so it gets a plain ``LIKE`` (no per-row ``lower()``); PostgreSQL gets
    ``ILIKE``.
    """
    return _keyword_condition(engine.dialect.name, words)


def _keyword_condition(dialect: str, words: Sequence[str]) -> ColumnElement[bool] | None:
    words = _words(words)
    if not words:
        return None
    if dialect == "sqlite":
        conds = [M.c.text.like(f"%{_escape_like(w)}%", escape="\\") for w in words]
    else:
        conds = [M.c.text.ilike(f"%{_escape_like(w)}%", escape="\\") for w in words]
    return or_(*conds)


def party_key(words: Sequence[str]) -> str | None:
    """A party's identity in the rollups: a digest of its lower-cased keywords (matching is
    case-insensitive, so case and order do not matter); ``None`` for no keywords."""
    kept = sorted({w.lower() for w in _words(words)})
    if not kept:
        return None
    return hashlib.sha256("\x1f".join(kept).encode("utf-8")).hexdigest()[:32]


def voice_select(
    dialect: str,
    words: Sequence[Sequence[str]],
    frm: Any,
    conds: Sequence[Any],
    keys: Mapping[str, Any],
) -> Select[Any]:
    """Per group of ``keys`` (label -> expression over the mentions), how many mentions of
    ``frm`` matching ``conds`` name each keyword set of ``words``: columns ``*keys``,
    ``p0``, ``p1``, ... One pass over the rows, whatever the number of parties."""
    if dialect == "postgresql":
        # ILIKE lower-cases the text again for every keyword; lower-case it once per row
        # and look for each lower-cased keyword with strpos (several times faster over
        # many rows). OFFSET 0 keeps PostgreSQL from inlining the subquery, and the
        # lower() with it.
        rows = (
            select(*[e.label(k) for k, e in keys.items()], func.lower(M.c.text).label("t"))
            .select_from(frm)
            .where(*conds)
            .offset(0)
            .subquery()
        )
        group: list[Any] = [rows.c[k] for k in keys]
        base = select(*group).select_from(rows)

        def contains(kws: Sequence[str]) -> ColumnElement[bool] | None:
            found = [func.strpos(rows.c.t, func.lower(w)) > 0 for w in _words(kws)]
            return or_(*found) if found else None

    else:
        group = [e.label(k) for k, e in keys.items()]
        base = select(*group).select_from(frm).where(*conds)

        def contains(kws: Sequence[str]) -> ColumnElement[bool] | None:
            return _keyword_condition(dialect, kws)

    sums = []
    for i, kws in enumerate(words):
        cond = contains(kws)
        # Labels are our own (p0, p1, …): party names from settings never reach the SQL.
        counted = func.sum(case((cond, 1), else_=0)) if cond is not None else func.sum(0)
        sums.append(counted.label(f"p{i}"))
    return base.add_columns(*sums).group_by(*group)


def share_of_voice(
    engine: Engine,
    parties: Mapping[str, Sequence[str]],
    f: MentionFilter = _EVERYTHING,
    *,
    freq: str = "week",
    timeout_s: float | None = None,
) -> pd.DataFrame:
    """Mentions of each party per time bucket, and each party's share of the bucket.

    Args:
        engine: The database.
        parties: Party name to keywords (see :func:`voice_parties`); the order is kept.
        f: The dashboard filters; every party is counted within them.
        freq: ``hour``, ``day`` or ``week`` (UTC; weeks start on Monday).
        timeout_s: Statement time limit (default the store's).

    Returns:
        Columns ``bucket`` (UTC), ``party``, ``mentions``, ``share`` (percent of
        all parties' mentions in that bucket; ``NaN`` where none of them has
        any). One row per bucket with mentions matching ``f`` and per party,
        zeros included. A party without keywords counts 0.

    Raises:
        ValueError: ``freq`` is not ``hour``, ``day`` or ``week``.
        QueryTimeoutError: The count ran past the time limit.
    """
    import pandas as pd

    names = list(parties)
    words = [parties[n] for n in names]
    bucket = _bucket(engine, freq)  # checks freq
    timeout = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
    with read_connection(engine, timeout, snapshot=True) as conn:
        wide = _rolled(conn, words, f, freq)
        if wide is None:
            lean = _lean(f)
            stmt = voice_select(
                engine.dialect.name, words, lean.frm, lean.conds, {"bucket": bucket}
            )
            wide = _frame_on(conn, stmt)
    out_cols = ["bucket", "party", "mentions", "share"]
    if wide.empty or not names:
        return pd.DataFrame(columns=out_cols)
    wide["bucket"] = pd.to_datetime(wide["bucket"], utc=True)
    keys = [f"p{i}" for i in range(len(names))]
    wide[keys] = wide[keys].fillna(0).astype("int64")
    long = wide.melt(id_vars="bucket", value_vars=keys, var_name="key", value_name="mentions")
    long["party"] = long["key"].map(dict(zip(keys, names, strict=True)))
    long["order"] = long["key"].str[1:].astype("int64")
    total = long.groupby("bucket")["mentions"].transform("sum")
    long["share"] = (100.0 * long["mentions"] / total.where(total > 0)).astype("float64")
    long = long.sort_values(["bucket", "order"])
    return long.reset_index(drop=True)[out_cols]


def _rolled(
    conn: Connection, words: Sequence[Sequence[str]], f: MentionFilter, freq: str
) -> pd.DataFrame | None:
    """The wide counts (``bucket``, ``p0``, ...) from the rollups plus what they lack, or
    ``None`` where they cannot serve this (a filter or bucket they do not count, a party
    not counted yet, or no rollups)."""
    import pandas as pd

    if freq not in ("day", "week") or f.search or f.segments or f.sentiments or f.topics:
        return None
    if not words:
        return None
    cov = rollup.coverage(conn, f)
    if cov is None:
        return None
    keys = [party_key(w) for w in words]
    known = rollup.voice_keys(conn)
    if any(k is not None and k not in known for k in keys):
        return None

    def bucket_of(day: Any) -> datetime:
        d = rollup._as_date(day)
        if freq == "week":
            d -= timedelta(days=d.weekday())
        return _day_start(d)

    counts: dict[datetime, list[int]] = {}
    daily, voice = StatsDailyRow.__table__, StatsVoiceRow.__table__
    # Every bucket with mentions gets a row, zeros included (as the scan gives).
    days = select(daily.c.day).where(*rollup._table_window(daily, f, cov)).distinct()
    for day in conn.execute(days).scalars():
        counts.setdefault(bucket_of(day), [0] * len(words))
    wanted = [k for k in keys if k is not None]
    if wanted:
        stmt = (
            select(voice.c.day, voice.c.party_key, func.sum(voice.c.mentions))
            .where(*rollup._table_window(voice, f, cov), voice.c.party_key.in_(wanted))
            .group_by(voice.c.day, voice.c.party_key)
        )
        for day, key, n in conn.execute(stmt):
            row = counts.setdefault(bucket_of(day), [0] * len(words))
            for i, k in enumerate(keys):
                if k == key:
                    row[i] += int(n)
    lean = _lean(f)
    bucket = _bucket(conn.engine, freq)
    for part in rollup._live_parts(cov):
        stmt = voice_select(
            conn.dialect.name, words, lean.frm, [part, *lean.conds], {"bucket": bucket}
        )
        for r in conn.execute(stmt):
            at = _as_utc(r[0])
            assert at is not None
            row = counts.setdefault(at, [0] * len(words))
            for i in range(len(words)):
                row[i] += int(r[i + 1] or 0)
    columns = ["bucket", *[f"p{i}" for i in range(len(words))]]
    return pd.DataFrame([(b, *v) for b, v in sorted(counts.items())], columns=columns)
