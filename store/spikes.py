"""Spike alerts: hours with far more mentions than usual for that hour of the week.

The baseline is seasonal. An hour is compared with the *same hour of the week*
over the previous ``weeks`` weeks (Monday 14:00 with the Mondays 14:00 before
it), so a peak that comes every week, say Monday mornings, is expected and not
an alert. For each hour of the recent window:

* **expected** is the median of those baseline counts (a past spike in the
  baseline does not move it, as it would move a mean);
* **spread** is ``max(1.4826 * MAD, sqrt(expected), 1)``: the robust standard
  deviation, floored by Poisson noise so a flat baseline does not turn every
  extra mention into an alert;
* **score** is ``(observed - expected) / spread``; an hour with at least
  ``min_count`` mentions, a score of at least ``z`` and at least ``min_ratio``
  times the expected count is flagged. A run of flagged hours is one alert,
  at its highest-scoring hour.

Weeks before the first mention of the chosen sources (whatever its text)
do not count as zeros, since nothing was collected then; an hour needs
``min_weeks`` baseline weeks to be scored at all.

The counting is one SQL aggregate (mentions per hour). Texts and sources are
read only for the few alert hours, each read bounded by a ``LIMIT``, to say
**what changed**: the terms over-represented in the spike hour against the
same hours of the baseline weeks (smoothed log rate ratio of document
frequencies, stop words and URLs left out), the sources whose share moved,
and the spike's most active authors, marked new where they posted nothing in
the baseline weeks.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Select, and_, func, or_, select, union_all
from sqlalchemy.sql.elements import ColumnElement

from .engine import read_connection
from .queries import (
    DEFAULT_TIMEOUT_S,
    M,
    MentionFilter,
    _as_utc,
    _frame,
    _joined,
    _lean,
    _where,
)
from .voice import keyword_condition

if TYPE_CHECKING:
    import pandas as pd

_EVERYTHING = MentionFilter()

__all__ = [
    "AuthorActivity",
    "SourceChange",
    "SpikeAlert",
    "SpikeReport",
    "TermChange",
    "WhatChanged",
    "mentions_between",
    "spike_alerts",
    "spike_report",
    "terms",
]

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)

# English function words and social-media filler. Kept here rather than taken
# from scikit-learn so the store does not import it (a second at start-up).
STOP_WORDS = frozenset(
    """a about above after again against all almost also am an and any are as at be because
    been before being below between both but by can cannot could did do does doing done down
    during each either else even ever every few for from further get gets getting go goes going
    gone got had has have having he her here hers herself him himself his how however i if in
    into is it its itself just know let like ll make many may me might mine more most much must
    my myself need never new no nor not now of off on once one only or other our ours ourselves
    out over own please put rather re really same say see she should since so some still such
    take than that the their theirs them themselves then there these they thing things this
    those though through thus to too under until up upon us use used using ve very via want was
    we well were what when where whether which while who whom whose why will with within without
    would yes yet you your yours yourself yourselves
    amp rt im ive id ill dont cant didnt doesnt isnt wont wasnt arent havent hasnt couldnt
    shouldnt wouldnt youre youve thats theres whats lets ur pls plz gt lt http https www com
    don didn doesn isn wasn aren hi hey thanks thank ok okay lol""".split()
)
"""Words never reported as what changed."""

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_APOSTROPHE = re.compile(r"['\u2019`]")
# A word starts with a letter; "#tag" and "@handle" keep their mark.
_WORD = re.compile(r"[#@]?[^\W\d_][\w-]*")


def terms(text: str) -> set[str]:
    """The distinct terms of one text: lower case, no URLs, no stop words, 2+ characters."""
    cleaned = _APOSTROPHE.sub("", _URL.sub(" ", text.lower()))
    out = set()
    for word in _WORD.findall(cleaned):
        word = word.rstrip("-")
        bare = word.lstrip("#@")
        if len(bare) >= 2 and bare not in STOP_WORDS:
            out.add(word)
    return out


@dataclass(frozen=True)
class TermChange:
    """A term over-represented in the spike hour."""

    term: str
    spike: int
    """Mentions in the spike hour (of those read) that contain it."""
    baseline: int
    """Mentions in the baseline hours (of those read) that contain it."""
    score: float
    """Log rate ratio over its standard error (a z-score); higher is more unusual."""

    @property
    def new(self) -> bool:
        """The term does not occur in the baseline mentions read."""
        return self.baseline == 0


@dataclass(frozen=True)
class SourceChange:
    """A source whose share of the mentions moved in the spike hour."""

    source: str
    spike: int
    """Mentions from it in the spike hour."""
    spike_share: float
    """Its percentage of the spike hour's mentions."""
    baseline_share: float
    """Its percentage of the baseline hours' mentions (0 where it had none)."""


@dataclass(frozen=True)
class AuthorActivity:
    """One of the spike hour's most active authors (two mentions or more in it)."""

    author: str
    mentions: int
    new: bool
    """No mention from this author in the baseline weeks."""


@dataclass(frozen=True)
class WhatChanged:
    """What sets a spike hour apart from its baseline."""

    terms: tuple[TermChange, ...] = ()
    sources: tuple[SourceChange, ...] = ()
    authors: tuple[AuthorActivity, ...] = ()

    def summary(self) -> str:
        """One line, e.g. ``terms: outage (new), refund · sources: reddit 80% (usually 5%)``."""
        parts = []
        if self.terms:
            parts.append(
                "terms: " + ", ".join(t.term + (" (new)" if t.new else "") for t in self.terms)
            )
        if self.sources:
            parts.append(
                "sources: "
                + ", ".join(
                    f"{s.source} {s.spike_share:.0f}% (usually {s.baseline_share:.0f}%)"
                    for s in self.sources
                )
            )
        if self.authors:
            parts.append(
                "authors: "
                + ", ".join(
                    f"{a.author} ×{a.mentions}" + (" (new)" if a.new else "") for a in self.authors
                )
            )
        return " · ".join(parts) if parts else "no single term, source or author stands out"


@dataclass(frozen=True)
class SpikeAlert:
    """An hour with far more mentions than that hour of the week usually has."""

    hour: datetime
    """Start of the hour (UTC); the highest-scoring hour of the run of flagged hours."""
    observed: int
    expected: float
    """Median mentions in the same hour of the week over the baseline weeks."""
    spread: float
    score: float
    """``(observed - expected) / spread``."""
    baseline_weeks: int
    hours: int
    """Consecutive flagged hours in this spike (1 for a single hour)."""
    what_changed: WhatChanged = field(default_factory=WhatChanged)


@dataclass(frozen=True)
class SpikeReport:
    """The scanned window, hour by hour, and the alerts found in it."""

    now: datetime | None
    """End of the scan (``None`` where no mention matches the filters)."""
    hours: pd.DataFrame
    """Columns ``hour`` (UTC), ``observed``, ``expected``, ``spread``, ``score``
    (``NaN`` where the baseline is too short), ``flagged``; oldest first."""
    alerts: tuple[SpikeAlert, ...]
    """Newest first."""


def _floor_hour(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_bucket(engine: Engine) -> Any:
    """The hour a mention was created in, as cheap as each database allows."""
    col = M.c.created_at
    if engine.dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", col))
    # SQLite keeps UTC times as 'YYYY-MM-DD HH:MM:SS.ffffff' text: the hour is its first 13
    # characters, and a substring is a third of the cost of strftime() over many rows.
    return func.substr(col, 1, 13)


def _hour_of(value: object) -> datetime:
    """A bucket from :func:`_hour_bucket` (text on SQLite, naive UTC on PostgreSQL), aware UTC."""
    if isinstance(value, str) and len(value) == 13:
        value = value + ":00:00"
    t = _as_utc(value)
    assert t is not None
    return t


@dataclass(frozen=True)
class _Scope:
    """The mentions a scan reads: a FROM clause (joined to enrichments only where the
    filters need them) and the filters' conditions."""

    frm: Any
    conds: list[ColumnElement[bool]]

    def select(self, *columns: Any) -> Select[Any]:
        return select(*columns).select_from(self.frm).where(*self.conds)


def _scope(f: MentionFilter) -> _Scope:
    lean = _lean(f)
    return _Scope(lean.frm, list(lean.conds))


def _in_hours(starts: Iterable[datetime], length: timedelta = HOUR) -> ColumnElement[bool]:
    return or_(*(and_(M.c.created_at >= s, M.c.created_at < s + length) for s in starts))


def _robust(values: Sequence[int]) -> tuple[float, float]:
    """Median and spread (``max(1.4826 * MAD, sqrt(median), 1)``) of baseline counts."""
    med = float(statistics.median(values))
    mad = float(statistics.median(abs(v - med) for v in values))
    return med, max(1.4826 * mad, math.sqrt(med), 1.0)


def _term_changes(
    spike: list[str], baseline: list[str], *, top: int, min_mentions: int, min_score: float
) -> tuple[TermChange, ...]:
    """Terms over-represented in ``spike`` texts against ``baseline`` texts.

    Document frequencies, so one long or repeated post counts once per term.
    The score is the log ratio of the smoothed rates (add 0.5) over its
    approximate standard error: a term in most spike posts and none of the
    baseline's scores high, a word common to both scores near zero.
    """
    n, m = len(spike), len(baseline)
    if n == 0:
        return ()
    in_spike: Counter[str] = Counter()
    for text in spike:
        in_spike.update(terms(text))
    in_base: Counter[str] = Counter()
    for text in baseline:
        in_base.update(terms(text))
    out = []
    for term, y in in_spike.items():
        if y < min_mentions:
            continue
        b = in_base.get(term, 0)
        ratio = math.log((y + 0.5) / (n + 1)) - math.log((b + 0.5) / (m + 1))
        score = ratio / math.sqrt(1 / (y + 0.5) + 1 / (b + 0.5))
        if score >= min_score:
            out.append(TermChange(term, y, b, round(score, 2)))
    out.sort(key=lambda t: (-t.score, -t.spike, t.term))
    return tuple(out[:top])


def _source_changes(
    spike: dict[str, int], baseline: dict[str, int], *, min_points: float
) -> tuple[SourceChange, ...]:
    """Sources whose share of the spike hour is ``min_points`` or more above their usual share."""
    n, m = sum(spike.values()), sum(baseline.values())
    if n == 0:
        return ()
    out = []
    for source, count in spike.items():
        share = 100.0 * count / n
        usual = 100.0 * baseline.get(source, 0) / m if m else 0.0
        if share - usual >= min_points:
            out.append(SourceChange(source, count, round(share, 1), round(usual, 1)))
    out.sort(key=lambda s: (-(s.spike_share - s.baseline_share), s.source))
    return tuple(out)


def _what_changed(
    conn: Connection,
    scope: _Scope,
    hour: datetime,
    baseline_hours: list[datetime],
    since: datetime,
    until: datetime,
    *,
    sample: int,
    top: int,
) -> WhatChanged:
    """Terms, sources and authors of ``hour`` against ``baseline_hours`` (bounded reads)."""
    spike_texts = (
        conn.execute(
            scope.select(M.c.text)
            .where(_in_hours([hour]))
            .order_by(M.c.created_at, M.c.id)
            .limit(sample)
        )
        .scalars()
        .all()
    )
    base_texts = (
        conn.execute(
            scope.select(M.c.text)
            .where(_in_hours(baseline_hours))
            .order_by(M.c.created_at.desc(), M.c.id.desc())
            .limit(2 * sample)
        )
        .scalars()
        .all()
        if baseline_hours
        else []
    )
    found_terms = _term_changes(
        [str(t) for t in spike_texts],
        [str(t) for t in base_texts],
        top=top,
        min_mentions=2,
        min_score=2.0,
    )

    def per_source(hours: list[datetime]) -> dict[str, int]:
        if not hours:
            return {}
        # One indexed range per hour (an OR of ranges can make SQLite scan every mention).
        picked = union_all(
            *(
                scope.select(M.c.source).where(M.c.created_at >= h, M.c.created_at < h + HOUR)
                for h in hours
            )
        ).subquery()
        rows = conn.execute(
            select(picked.c.source, func.count().label("n")).group_by(picked.c.source)
        ).all()
        return {str(r.source): int(r.n) for r in rows}

    sources = _source_changes(per_source([hour]), per_source(baseline_hours), min_points=10.0)
    n = func.count().label("n")
    rows = conn.execute(
        scope.select(M.c.author_handle, n)
        .where(_in_hours([hour]), M.c.author_handle.is_not(None))
        .group_by(M.c.author_handle)
        .having(func.count() >= 2)
        .order_by(n.desc(), M.c.author_handle)
        .limit(top)
    ).all()
    handles = [str(r.author_handle) for r in rows]
    seen = (
        set(
            conn.execute(
                scope.select(M.c.author_handle)
                .where(
                    M.c.author_handle.in_(handles),
                    M.c.created_at >= since,
                    M.c.created_at < until,
                )
                .distinct()
            )
            .scalars()
            .all()
        )
        if handles
        else set()
    )
    authors = tuple(
        AuthorActivity(h, int(r.n), h not in seen) for h, r in zip(handles, rows, strict=True)
    )
    return WhatChanged(found_terms, sources, authors)


def spike_report(
    engine: Engine,
    f: MentionFilter = _EVERYTHING,
    *,
    now: datetime | None = None,
    window_hours: int = 48,
    weeks: int = 8,
    min_weeks: int = 2,
    min_count: int = 10,
    z: float = 3.0,
    min_ratio: float = 1.5,
    max_alerts: int = 5,
    sample: int = 500,
    top: int = 5,
    timeout_s: float | None = None,
) -> SpikeReport:
    """Score every hour of the recent window against its hour-of-week baseline.

    Args:
        engine: The database.
        f: The dashboard filters. Sources, search text and labels narrow the
            counts; the date range only sets the default ``now``, since the
            baseline reaches back before it.
        now: End of the window (default the newest mention matching ``f``, so
            historic data still has a recent window).
        window_hours: Hours scanned, ending with the hour of ``now``.
        weeks: Baseline weeks before each hour.
        min_weeks: Fewest baseline weeks (with data) for an hour to be scored.
        min_count: Fewest mentions in an hour for an alert.
        z: Smallest score for an alert.
        min_ratio: Smallest ``observed / expected`` for an alert: in busy hours a
            score of 3 can be a few percent above usual, which is no news.
        max_alerts: Most alerts returned (the highest scores).
        sample: Most texts read for a spike hour (twice that for its baseline).
        top: Most terms and authors named per alert.
        timeout_s: Time limit for the whole scan (default the store's).

    Returns:
        The :class:`SpikeReport`; no hours and no alerts where nothing matches ``f``.

    Raises:
        ValueError: A window, week count or limit below 1.
        QueryTimeoutError: The scan ran past the time limit.
    """
    import pandas as pd

    if min(window_hours, weeks, min_weeks, max_alerts, sample, top) < 1:
        raise ValueError("window_hours, weeks, min_weeks, max_alerts, sample and top must be >= 1")
    columns = ["hour", "observed", "expected", "spread", "score", "flagged"]
    with read_connection(engine, DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s) as conn:
        if now is None:
            newest = conn.execute(_scope(f).select(func.max(M.c.created_at))).scalar()
            now = _as_utc(newest)
        if now is None:
            return SpikeReport(None, pd.DataFrame(columns=columns), ())
        # The date range only chose `now`: the baseline reaches back before it.
        scope = _scope(replace(f, start=None, end=None))
        last = _floor_hour(now)
        window = [last - HOUR * i for i in range(window_hours - 1, -1, -1)]
        since = window[0] - WEEK * weeks
        # Only created_at is read (no source, no text): an index-only scan where possible.
        bucket = _hour_bucket(engine).label("bucket")
        rows = conn.execute(
            scope.select(bucket, func.count().label("n"))
            .where(M.c.created_at >= since, M.c.created_at < last + HOUR)
            .group_by(bucket)
        ).all()
        counts = {_hour_of(r.bucket): int(r.n) for r in rows}
        # Where collection began: the first mention of the chosen sources, whatever the text
        # or labels (a term nobody used before has a baseline of zeros, not no baseline).
        collected = [M.c.source.in_(f.sources)] if f.sources else []
        oldest = conn.execute(
            select(func.min(M.c.created_at)).where(
                *collected, M.c.created_at >= since, M.c.created_at < last + HOUR
            )
        ).scalar_one()
        first = _floor_hour(_hour_of(oldest)) if oldest is not None else last + HOUR

        scored = []
        for h in window:
            base = [h - WEEK * k for k in range(1, weeks + 1) if h - WEEK * k >= first]
            observed = counts.get(h, 0)
            if len(base) < min_weeks:
                scored.append((h, observed, math.nan, math.nan, math.nan, False, base))
                continue
            expected, spread = _robust([counts.get(b, 0) for b in base])
            score = (observed - expected) / spread
            flagged = observed >= min_count and score >= z and observed >= min_ratio * expected
            scored.append((h, observed, expected, spread, score, flagged, base))

        # A run of consecutive flagged hours is one spike, reported at its peak.
        peaks: list[tuple[Any, int]] = []
        run: list[Any] = []
        for row in [*scored, None]:
            if row is not None and row[5]:
                run.append(row)
                continue
            if run:
                peaks.append((max(run, key=lambda r: (r[4], r[0])), len(run)))
                run = []
        peaks.sort(key=lambda p: (-p[0][4], p[0][0]))
        alerts = []
        for (h, observed, expected, spread, score, _, base), length in peaks[:max_alerts]:
            # The same hours of the week, and the hour either side, as the texts' baseline.
            nearby = sorted({b + d for b in base for d in (-HOUR, timedelta(0), HOUR)})
            changed = _what_changed(
                conn, scope, h, nearby, since, window[0], sample=sample, top=top
            )
            alerts.append(
                SpikeAlert(
                    hour=h,
                    observed=observed,
                    expected=round(expected, 2),
                    spread=round(spread, 2),
                    score=round(score, 2),
                    baseline_weeks=len(base),
                    hours=length,
                    what_changed=changed,
                )
            )
    alerts.sort(key=lambda a: a.hour, reverse=True)
    hours = pd.DataFrame([r[:6] for r in scored], columns=columns)
    hours["hour"] = pd.to_datetime(hours["hour"], utc=True)
    hours = hours.astype(
        {"observed": "int64", "expected": "float64", "spread": "float64", "score": "float64"}
    )
    hours["flagged"] = hours["flagged"].astype(bool)
    return SpikeReport(now, hours, tuple(alerts))


def spike_alerts(
    engine: Engine,
    f: MentionFilter = _EVERYTHING,
    *,
    now: datetime | None = None,
    window_hours: int = 48,
    weeks: int = 8,
    min_count: int = 10,
    z: float = 3.0,
    timeout_s: float | None = None,
) -> list[SpikeAlert]:
    """The spike alerts of :func:`spike_report` (newest first), with its defaults otherwise."""
    report = spike_report(
        engine,
        f,
        now=now,
        window_hours=window_hours,
        weeks=weeks,
        min_count=min_count,
        z=z,
        timeout_s=timeout_s,
    )
    return list(report.alerts)


def mentions_between(
    engine: Engine,
    f: MentionFilter,
    start: datetime,
    end: datetime,
    *,
    keywords: Sequence[str] = (),
    limit: int = 200,
    timeout_s: float | None = None,
) -> pd.DataFrame:
    """The newest mentions matching ``f`` created in ``[start, end)``: a chart's drill-down.

    Args:
        engine: The database.
        f: The dashboard filters (their date range still applies).
        start: First instant (inclusive).
        end: Last instant (exclusive).
        keywords: If given, only mentions containing one of them
            (case-insensitive, as share of voice counts them).
        limit: Most rows returned (1 to 10,000).
        timeout_s: Statement time limit (default the store's).

    Returns:
        Columns ``id``, ``created_at`` (UTC), ``source``, ``author_handle``,
        ``text``, ``url``, ``sentiment``, ``topic``; newest first.
    """
    import pandas as pd

    j = _joined()
    conds = [*_where(f, j), M.c.created_at >= start, M.c.created_at < end]
    if keywords:
        words = keyword_condition(engine, keywords)
        if words is None:
            return pd.DataFrame(
                columns=["id", "created_at", "source", "author_handle", "text", "url"]
                + ["sentiment", "topic"]
            )
        conds.append(words)
    stmt = (
        select(
            M.c.id,
            M.c.created_at,
            M.c.source,
            M.c.author_handle,
            M.c.text,
            M.c.url,
            j.sentiment.label("sentiment"),
            j.topic.label("topic"),
        )
        .select_from(j.frm)
        .where(*conds)
        .order_by(M.c.created_at.desc(), M.c.id.desc())
        .limit(max(1, min(limit, 10_000)))
    )
    df = _frame(engine, stmt, DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    return df
