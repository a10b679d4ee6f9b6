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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from .engine import read_connection
from .queries import (
    DEFAULT_TIMEOUT_S,
    M,
    MentionFilter,
    _bucket,
    _escape_like,
    _frame_on,
    _lean,
)

if TYPE_CHECKING:
    import pandas as pd

_EVERYTHING = MentionFilter()

__all__ = ["keyword_condition", "share_of_voice", "voice_parties"]


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
    words = _words(words)
    if not words:
        return None
    if engine.dialect.name == "sqlite":
        conds = [M.c.text.like(f"%{_escape_like(w)}%", escape="\\") for w in words]
    else:
        conds = [M.c.text.ilike(f"%{_escape_like(w)}%", escape="\\") for w in words]
    return or_(*conds)


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
    with read_connection(engine, DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s) as conn:
        lean = _lean(f)
        contains: Callable[[Sequence[str]], ColumnElement[bool] | None]
        if engine.dialect.name == "postgresql":
            # ILIKE lower-cases the text again for every keyword; lower-case it once per row
            # and look for each lower-cased keyword with strpos (several times faster over
            # many rows). OFFSET 0 keeps PostgreSQL from inlining the subquery, and the
            # lower() with it.
            rows = (
                select(_bucket(engine, freq).label("bucket"), func.lower(M.c.text).label("t"))
                .select_from(lean.frm)
                .where(*lean.conds)
                .offset(0)
                .subquery()
            )
            key: Any = rows.c.bucket
            base = select(key).select_from(rows)

            def contains(words: Sequence[str]) -> ColumnElement[bool] | None:
                kept = _words(words)
                found = [func.strpos(rows.c.t, func.lower(w)) > 0 for w in kept]
                return or_(*found) if found else None

        else:
            key = _bucket(engine, freq)
            base = select(key.label("bucket")).select_from(lean.frm).where(*lean.conds)

            def contains(words: Sequence[str]) -> ColumnElement[bool] | None:
                return keyword_condition(engine, words)

        sums = []
        for i, name in enumerate(names):
            cond = contains(parties[name])
            # Labels are our own (p0, p1, …): party names from settings never reach the SQL.
            counted = func.sum(case((cond, 1), else_=0)) if cond is not None else func.sum(0)
            sums.append(counted.label(f"p{i}"))
        wide = _frame_on(conn, base.add_columns(*sums).group_by(key).order_by(key))
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
