"""Customer-care KPIs over a period, as a dict and as exportable rows.

The period is whole UTC days, ``start`` to ``end`` inclusive. Conversations
count in the period they were *opened* in; surveys in the period they were
answered in; mentions in the period they were posted in.

* **First response time**: ``first_response_at - opened_at`` of the period's
  answered conversations, median and 90th percentile (linear interpolation,
  as ``pandas.Series.quantile``), in seconds.
* **Resolution time**: ``resolved_at - opened_at`` likewise.
* **SLA compliance**: of the period's conversations whose first-response
  target has been decided (answered, or unanswered past the target at
  ``now``), the percentage answered within the target of their priority.
  Targets are plain **wall-clock** seconds (``targets``; default the shipped
  rules' first-response minutes read as wall-clock minutes); pending time is
  not taken off. ``crm/sla.py`` holds the business-time maths for live clocks.
* **Backlog**: conversations ``new``, ``open`` or ``pending`` now (any period).
* **CSAT**: % of CSAT answers of 4-5, and their mean. **NPS**: % promoters
  (9-10) minus % detractors (0-6).
* **Net sentiment**: % positive minus % negative of the mentions with a
  sentiment label in force.
* **Share of voice**: mentions whose text contains one of the brand's keywords
  (``brand.keywords``, else ``brand.name``), and each competitor's, as a
  substring, case-insensitive; each party's share of all parties' counts. A
  mention naming two parties counts for both.
* **Mentions volume**: mentions in the period, and per day (over the period's days).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine, Table, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from .customer360 import label_in_force
from .engine import using
from .models import ConversationRow, MentionRow, SurveyRow, utcnow

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_TARGETS", "KPI_UNITS", "kpi_frame", "kpis"]

DEFAULT_TARGETS: Mapping[str, float] = {
    "urgent": 30 * 60.0,
    "high": 60 * 60.0,
    "normal": 240 * 60.0,
    "low": 480 * 60.0,
}
"""First-response targets per priority, in wall-clock seconds."""

KPI_UNITS: Mapping[str, str] = {
    "first_response_median_s": "seconds",
    "first_response_p90_s": "seconds",
    "first_responses": "conversations",
    "resolution_median_s": "seconds",
    "resolution_p90_s": "seconds",
    "resolutions": "conversations",
    "sla_compliance": "percent",
    "sla_met": "conversations",
    "sla_breached": "conversations",
    "backlog": "conversations",
    "csat": "percent",
    "csat_mean": "score 1-5",
    "csat_answers": "answers",
    "nps": "score -100..100",
    "nps_answers": "answers",
    "net_sentiment": "score -100..100",
    "sentiment_mentions": "mentions",
    "mentions": "mentions",
    "mentions_per_day": "mentions/day",
}
"""The unit of each KPI (share-of-voice rows are ``percent`` and ``mentions``)."""

_DEFAULT_TIMEOUT_S = 15.0
_conv = cast(Table, ConversationRow.__table__)
_mentions = cast(Table, MentionRow.__table__)
_surveys = cast(Table, SurveyRow.__table__)


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _quantile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation quantile (pandas' default); ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains_any(words: Sequence[str]) -> ColumnElement[bool] | None:
    words = [w.strip() for w in words if w.strip()]
    if not words:
        return None
    return or_(*(_mentions.c.text.ilike(f"%{_escape_like(w)}%", escape="\\") for w in words))


def kpis(
    conn: Connection | Engine,
    *,
    start: date,
    end: date,
    brand_settings: Any,
    targets: Mapping[str, float] | None = None,
    now: datetime | None = None,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
    """Compute every KPI for the days ``start`` to ``end`` (UTC, inclusive).

    Args:
        conn: A connection or an engine.
        start: First day.
        end: Last day.
        brand_settings: ``settings.brand`` (``name``, ``keywords``, ``competitors``).
        targets: First-response target per priority, wall-clock seconds
            (default :data:`DEFAULT_TARGETS`; a priority missing here uses ``normal``'s).
        now: The time "now" for the backlog and for unanswered conversations' SLA.
        timeout_s: Statement time limit when ``conn`` is an engine.

    Returns:
        A flat dict keyed as :data:`KPI_UNITS` (``None`` where there is nothing to
        measure), plus ``share_of_voice``: ``{party: {"mentions": n, "share": pct}}``
        and ``period``: ``{"start", "end", "days"}``.

    Raises:
        ValueError: ``end`` is before ``start``.
    """
    if end < start:
        raise ValueError("the period ends before it starts")
    targets = dict(DEFAULT_TARGETS if targets is None else targets)
    now = now or utcnow()
    lo, hi = _day_start(start), _day_start(end + timedelta(days=1))
    days = (end - start).days + 1
    out: dict[str, Any] = {"period": {"start": start, "end": end, "days": days}}
    with using(conn, timeout_s) as c:
        convs = c.execute(
            select(
                _conv.c.priority,
                _conv.c.opened_at,
                _conv.c.first_response_at,
                _conv.c.resolved_at,
            ).where(_conv.c.opened_at >= lo, _conv.c.opened_at < hi)
        ).all()
        backlog = c.execute(
            select(func.count()).where(_conv.c.status.in_(("new", "open", "pending")))
        ).scalar_one()
        surveys = c.execute(
            select(
                _surveys.c.kind,
                func.count().label("n"),
                func.avg(_surveys.c.score).label("mean"),
                func.sum(case((_surveys.c.score >= 4, 1), else_=0)).label("satisfied"),
                func.sum(case((_surveys.c.score >= 9, 1), else_=0)).label("promoters"),
                func.sum(case((_surveys.c.score <= 6, 1), else_=0)).label("detractors"),
            )
            .where(_surveys.c.answered_at >= lo, _surveys.c.answered_at < hi)
            .group_by(_surveys.c.kind)
        ).all()
        in_period = [_mentions.c.created_at >= lo, _mentions.c.created_at < hi]
        labelled = select(label_in_force("sentiment").label("s")).where(*in_period).subquery()
        sentiment = c.execute(
            select(
                func.count().label("n"),
                func.sum(case((labelled.c.s == "positive", 1), else_=0)).label("pos"),
                func.sum(case((labelled.c.s == "negative", 1), else_=0)).label("neg"),
            ).where(labelled.c.s.in_(("positive", "neutral", "negative")))
        ).one()
        total = c.execute(select(func.count()).where(*in_period)).scalar_one()
        parties: dict[str, list[str]] = {
            str(brand_settings.name): list(brand_settings.keywords or [brand_settings.name])
        }
        for name, words in (brand_settings.competitors or {}).items():
            parties.setdefault(str(name), list(words or [name]))
        voice: dict[str, int] = {}
        for party, words in parties.items():
            cond = _contains_any(words)
            voice[party] = (
                0
                if cond is None
                else int(c.execute(select(func.count()).where(*in_period, cond)).scalar_one())
            )

    first = [
        (_utc(r.first_response_at) - _utc(r.opened_at)).total_seconds()
        for r in convs
        if r.first_response_at is not None
    ]
    resolution = [
        (_utc(r.resolved_at) - _utc(r.opened_at)).total_seconds()
        for r in convs
        if r.resolved_at is not None
    ]
    met = breached = 0
    for r in convs:
        target = targets.get(r.priority, targets.get("normal", DEFAULT_TARGETS["normal"]))
        opened = _utc(r.opened_at)
        if r.first_response_at is not None:
            if (_utc(r.first_response_at) - opened).total_seconds() <= target:
                met += 1
            else:
                breached += 1
        elif (now - opened).total_seconds() > target:
            breached += 1
    out.update(
        first_response_median_s=_quantile(first, 0.5),
        first_response_p90_s=_quantile(first, 0.9),
        first_responses=len(first),
        resolution_median_s=_quantile(resolution, 0.5),
        resolution_p90_s=_quantile(resolution, 0.9),
        resolutions=len(resolution),
        sla_compliance=100.0 * met / (met + breached) if met + breached else None,
        sla_met=met,
        sla_breached=breached,
        backlog=int(backlog),
        csat=None,
        csat_mean=None,
        csat_answers=0,
        nps=None,
        nps_answers=0,
    )
    for r in surveys:
        n = int(r.n)
        if r.kind == "csat":
            out.update(csat=100.0 * int(r.satisfied) / n, csat_mean=float(r.mean), csat_answers=n)
        else:
            out.update(nps=100.0 * (int(r.promoters) - int(r.detractors)) / n, nps_answers=n)
    n = int(sentiment.n)
    out["net_sentiment"] = (
        100.0 * (int(sentiment.pos or 0) - int(sentiment.neg or 0)) / n if n else None
    )
    out["sentiment_mentions"] = n
    out["mentions"] = int(total)
    out["mentions_per_day"] = int(total) / days
    all_voice = sum(voice.values())
    out["share_of_voice"] = {
        party: {"mentions": count, "share": 100.0 * count / all_voice if all_voice else None}
        for party, count in voice.items()
    }
    return out


def kpi_frame(
    conn: Connection | Engine,
    *,
    start: date,
    end: date,
    brand_settings: Any,
    targets: Mapping[str, float] | None = None,
    now: datetime | None = None,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """The KPIs of :func:`kpis` as exportable rows.

    Returns:
        Columns ``kpi``, ``value``, ``unit``, ``period`` (``START..END``), one
        row per KPI in :data:`KPI_UNITS` order, then ``share_of_voice:PARTY``
        (percent) and ``voice_mentions:PARTY`` rows.
    """
    import pandas as pd

    values = kpis(
        conn,
        start=start,
        end=end,
        brand_settings=brand_settings,
        targets=targets,
        now=now,
        timeout_s=timeout_s,
    )
    period = f"{start.isoformat()}..{end.isoformat()}"
    rows = [
        {"kpi": name, "value": values[name], "unit": unit, "period": period}
        for name, unit in KPI_UNITS.items()
    ]
    for party, v in values["share_of_voice"].items():
        rows.append(
            {"kpi": f"share_of_voice:{party}", "value": v["share"], "unit": "percent",
             "period": period}
        )  # fmt: skip
        rows.append(
            {"kpi": f"voice_mentions:{party}", "value": v["mentions"], "unit": "mentions",
             "period": period}
        )  # fmt: skip
    df = pd.DataFrame(rows, columns=["kpi", "value", "unit", "period"])
    df["value"] = df["value"].astype("float64")
    return df
