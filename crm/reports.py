"""Meeting reports: feedback themes, escalations and SLAs, KPIs; built as data, then rendered.

A report is built as data first (:class:`Report`: a title, a period and
:class:`Section` s, each a table with an optional :class:`Chart` spec and
notes), by :func:`feedback_report`, :func:`escalations_report` or
:func:`kpis_report`. The renderers turn the same report into a file:

* :func:`render_csv`: **one CSV file**. The sections' tables are stacked: the
  first column, ``section``, names the section a row belongs to and the other
  columns are the union of the sections' columns, in first-seen order (a
  column a section does not have is empty). ``pandas.read_csv`` reads it back
  and ``df[df.section == NAME]`` gives one table again. Charts and notes are
  left out.
* :func:`render_xlsx`: a ``Report`` sheet (title, period, notes), then one sheet
  per section (bold header, frozen header row, column widths) with a native
  Excel bar or line chart where the section has a chart spec.
* :func:`render_html`: one self-contained file; every text is HTML-escaped;
  the only scripts are plotly's inline bundle and its plot calls, under a
  Content-Security-Policy that allows nothing from the network.
* :func:`render_pdf`: title, period, tables (long text cut to fit) and simple
  bar and line charts drawn with fpdf2. The core fonts only take latin-1, so
  other characters are transliterated where possible, else shown as ``?``.

Post, review and customer text is untrusted. Text cells that a spreadsheet
would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return) get a leading ``'`` in the CSV and XLSX files.

Times are UTC. The period is whole days, ``start`` to ``end`` inclusive.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import Engine, Table, func, select

from listenwell.store.engine import read_connection
from listenwell.store.kpis import DEFAULT_TARGETS
from listenwell.store.models import (
    ConversationRow,
    EscalationEventRow,
    MentionRow,
    SurveyRow,
    utcnow,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FORMATS",
    "Chart",
    "Report",
    "KINDS",
    "Section",
    "build_report",
    "default_period",
    "escalations_report",
    "feedback_report",
    "kpis_report",
    "render",
    "render_csv",
    "render_html",
    "render_pdf",
    "render_xlsx",
    "safe_cell_text",
    "write_report",
]

FORMATS: tuple[str, ...] = ("csv", "xlsx", "html", "pdf")
"""The file formats a report renders to."""

_DEFAULT_TIMEOUT_S = 30.0
_conv = cast(Table, ConversationRow.__table__)
_mentions = cast(Table, MentionRow.__table__)
_events = cast(Table, EscalationEventRow.__table__)
_surveys = cast(Table, SurveyRow.__table__)
_PRIORITY_ORDER = ("urgent", "high", "normal", "low")
_LEVELS = ("none", "priority raised", "supervisor", "manager")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ILLEGAL_XLSX = re.compile(r"[\000-\010\013\014\016-\037]")


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True, slots=True)
class Chart:
    """How to chart a section's table.

    Attributes:
        kind: ``bar`` or ``line``.
        x: The table column on the x axis (categories or times).
        y: The numeric table columns drawn, one series each.
        title: The chart's title.
        y_title: The y axis title.
        stacked: Stack the bars (bar charts only).
    """

    kind: Literal["bar", "line"]
    x: str
    y: tuple[str, ...]
    title: str
    y_title: str = ""
    stacked: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    """One part of a report: a table, optionally charted, with notes.

    Attributes:
        title: The section's name (also the XLSX sheet and CSV ``section`` value).
        table: The rows.
        chart: How to chart the table, or ``None``.
        notes: Sentences that explain the figures.
    """

    title: str
    table: pd.DataFrame
    chart: Chart | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    """A report as data.

    Attributes:
        title: The report's title.
        period: ``(start, end)``, whole UTC days, inclusive.
        sections: Its sections, in order.
        generated_at: When it was built (UTC).
    """

    title: str
    period: tuple[date, date]
    sections: list[Section] = field(default_factory=list)
    generated_at: datetime = field(default_factory=utcnow)

    @property
    def period_text(self) -> str:
        """The period as ``START to END``."""
        return f"{self.period[0].isoformat()} to {self.period[1].isoformat()}"


# --------------------------------------------------------------------------- helpers


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_period(start: date, end: date) -> None:
    if end < start:
        raise ValueError("the period ends before it starts")


def _freq(start: date, end: date) -> str:
    return "day" if (end - start).days < 62 else "week"


def _brand_name(brand: Any) -> str:
    name = getattr(brand, "name", None)
    return str(name) if name else "Listenwell"


def default_period(
    engine: Engine, *, days: int = 30, timeout_s: float = _DEFAULT_TIMEOUT_S
) -> tuple[date, date]:
    """The last ``days`` days of data: ending on the newest day with a mention,
    conversation or survey answer (today when there is none).

    Args:
        engine: The store.
        days: How many days, the last included.
        timeout_s: Statement time limit.

    Returns:
        ``(start, end)``.
    """
    with read_connection(engine, timeout_s) as c:
        newest = [
            c.execute(select(func.max(_mentions.c.created_at))).scalar_one(),
            c.execute(select(func.max(_conv.c.opened_at))).scalar_one(),
            c.execute(select(func.max(_surveys.c.answered_at))).scalar_one(),
        ]
    times = [t for t in (_utc(v) for v in newest) if t is not None]
    end = max(times).date() if times else utcnow().date()
    return end - timedelta(days=max(days, 1) - 1), end


# --------------------------------------------------------------------------- feedback


def _quotes(
    engine: Engine, theme_ids: Sequence[int], themes: Mapping[int, str], start: date, end: date
) -> pd.DataFrame:
    """Up to three quotes per theme: :func:`listenwell.store.themes.theme_quotes`, the
    theme's mentions posted in the period nearest its centre, copies once.

    Earlier reports took :func:`~listenwell.store.themes.theme_detail`'s 15 nearest
    over all time and kept those posted in the period, reading every mention of
    every theme on the way (14 of a feedback report's 15 s at 1,000,000
    mentions); a theme whose nearest mentions were older then had fewer quotes
    or none. The quotes now rank the period's mentions only.
    """
    import pandas as pd

    from listenwell.store.themes import theme_quotes

    with read_connection(engine, _DEFAULT_TIMEOUT_S) as c:
        picked = theme_quotes(c, theme_ids, start, end, per_theme=3)
    rows = [
        {
            "theme": themes[tid],
            "rank": rank,
            "quote": q.text,
            "sentiment": q.sentiment,
            "source": q.source,
            "author": q.author_handle,
            "posted": _utc(q.created_at),
        }
        for tid in theme_ids
        for rank, q in enumerate(picked[tid], start=1)
    ]
    cols = ["theme", "rank", "quote", "sentiment", "source", "author", "posted"]
    return pd.DataFrame(rows, columns=cols)


def feedback_report(
    engine: Engine, start: date, end: date, brand: Any = None, *, quote_themes: int = 20
) -> Report:
    """Theme trends with quotes, and sentiment over time.

    Sections: **Themes** (per theme: mentions in the period, negative and
    positive shares of its sentiment-labelled mentions, the last week of the
    period against the week before, and the change), **Quotes** (up to three
    representative mentions of each of the ``quote_themes`` largest themes,
    posted in the period, nearest the theme's centre first) and **Sentiment**
    (mentions per day, or per week over long periods, by sentiment, with the
    net sentiment).

    Args:
        engine: The store.
        start: First day (UTC).
        end: Last day, inclusive.
        brand: ``settings.brand`` (its name goes in the title), or ``None``.
        quote_themes: How many of the largest themes get quotes.

    Raises:
        ValueError: ``end`` is before ``start``.
    """
    import pandas as pd

    from listenwell.app_pages.charts import theme_table
    from listenwell.store.queries import MentionFilter, sentiment_volume, theme_volume

    _check_period(start, end)
    f = MentionFilter(start=start, end=end)
    themes = theme_table(theme_volume(engine, f, freq="week"))
    names = {int(r.theme_id): str(r.theme) for r in themes.itertuples(index=False)}
    quotes = _quotes(engine, list(names)[: max(quote_themes, 0)], names, start, end)
    themes = themes.rename(
        columns={"last week": "last week of period", "week before": "week before that"}
    )
    top = themes.head(15)

    freq = _freq(start, end)
    sv = sentiment_volume(engine, f, freq=freq)
    cols = ["negative", "neutral", "positive"]
    if sv.empty:
        sentiment = pd.DataFrame(columns=[freq, *cols, "net sentiment"])
    else:
        sentiment = sv.pivot_table(
            index="bucket", columns="sentiment", values="mentions", aggfunc="sum", fill_value=0
        )
        sentiment = sentiment.reindex(columns=cols, fill_value=0).astype("int64")
        total = sentiment.sum(axis=1).replace(0, float("nan"))
        sentiment["net sentiment"] = (
            100.0 * (sentiment["positive"] - sentiment["negative"]) / total
        ).round(1)
        sentiment = sentiment.reset_index().rename(columns={"bucket": freq})
        sentiment[freq] = [d.date() for d in sentiment[freq]]
        sentiment.columns.name = None
    return Report(
        title=f"{_brand_name(brand)}: feedback themes",
        period=(start, end),
        sections=[
            Section(
                "Themes",
                themes,
                Chart("bar", "theme", ("mentions",), "Mentions by theme (largest 15)", "mentions")
                if not top.empty
                else None,
                (
                    "Mentions posted in the period with a theme; merged themes count under "
                    "their survivor; agents' corrections are in force.",
                    "Sentiment shares are of the theme's mentions with a sentiment label.",
                    "Change % compares the last week (Monday to Sunday) of the period with "
                    "the week before; the last week may be partial.",
                ),
            ),
            Section(
                "Quotes",
                quotes,
                None,
                (f"Up to three quotes per theme (largest {quote_themes}), posted in the period.",),
            ),
            Section(
                "Sentiment",
                sentiment,
                Chart(
                    "bar",
                    freq,
                    tuple(cols),
                    f"Mentions per {freq} by sentiment",
                    "mentions",
                    stacked=True,
                )
                if not sentiment.empty
                else None,
                ("Net sentiment is % positive minus % negative.",),
            ),
        ],
    )


# --------------------------------------------------------------------------- escalations


def _reasons(escalation: Any) -> str:
    """``rule (condition, condition); rule`` from a conversation's escalation JSON."""
    if not isinstance(escalation, dict):
        return ""
    rules = [str(r) for r in escalation.get("rules") or [] if r is not None]
    conditions: dict[str, list[str]] = {}
    for reason in escalation.get("reasons") or []:
        if isinstance(reason, dict) and reason.get("rule") is not None:
            cond = reason.get("condition")
            bucket = conditions.setdefault(str(reason["rule"]), [])
            if cond is not None and str(cond) not in bucket:
                bucket.append(str(cond))
    for rule in conditions:
        if rule not in rules:
            rules.append(rule)
    parts = [f"{r} ({', '.join(conditions[r])})" if conditions.get(r) else r for r in rules]
    return "; ".join(parts)


def _sla_status(
    priority: str,
    opened: datetime,
    first: datetime | None,
    now: datetime,
    targets: Mapping[str, float],
) -> str:
    target = targets.get(priority, targets.get("normal", DEFAULT_TARGETS["normal"]))
    if first is not None:
        return "met" if (first - opened).total_seconds() <= target else "breached"
    return "breached" if (now - opened).total_seconds() > target else "pending"


def _minutes(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return round((b - a).total_seconds() / 60.0, 1)


def _short(text: Any, limit: int = 280) -> str:
    value = " ".join(str(text or "").split())
    return value if len(value) <= limit else value[: limit - 3] + "..."


KINDS: tuple[str, ...] = ("feedback", "escalations", "kpis")
"""The reports :func:`build_report` makes."""


def build_report(
    kind: str,
    engine: Engine,
    start: date,
    end: date,
    brand: Any = None,
    *,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> Report:
    """The ``kind`` report (one of :data:`KINDS`) of ``start``..``end``.

    Raises:
        ValueError: ``kind`` is not a known report.
    """
    if kind == "feedback":
        return feedback_report(engine, start, end, brand)
    if kind == "escalations":
        return escalations_report(engine, start, end, timeout_s=timeout_s)
    if kind == "kpis":
        return kpis_report(engine, start, end, brand, timeout_s=timeout_s)
    raise ValueError(f"unknown report {kind!r}: {', '.join(KINDS)}")


def escalations_report(
    engine: Engine,
    start: date,
    end: date,
    *,
    targets: Mapping[str, float] | None = None,
    now: datetime | None = None,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> Report:
    """Escalated conversations opened in the period, SLA compliance per priority, upgrades.

    Sections: **Escalations** (each escalated conversation opened in the period:
    priority, level, status, the rules that fired and their conditions, opened,
    first response, resolved, minutes to first response, SLA status and the
    mention), **By priority** (counts and SLA compliance per priority) and
    **Upgrades** (``upgraded`` and ``breached`` escalation events in the period).

    SLA status is the first-response target of the conversation's priority in
    **wall-clock** time, as the KPIs count it (``met``, ``breached``, or
    ``pending`` while unanswered within target at ``now``).

    Args:
        engine: The store.
        start: First day (UTC).
        end: Last day, inclusive.
        targets: First-response targets per priority in seconds (default the KPIs').
        now: "Now" for unanswered conversations.
        timeout_s: Statement time limit.

    Raises:
        ValueError: ``end`` is before ``start``.
    """
    import pandas as pd

    _check_period(start, end)
    targets = dict(DEFAULT_TARGETS if targets is None else targets)
    now = now or utcnow()
    lo, hi = _day_start(start), _day_start(end + timedelta(days=1))
    with read_connection(engine, timeout_s) as c:
        convs = c.execute(
            select(
                _conv.c.id,
                _conv.c.priority,
                _conv.c.escalation_level,
                _conv.c.status,
                _conv.c.escalation,
                _conv.c.opened_at,
                _conv.c.first_response_at,
                _conv.c.resolved_at,
                _mentions.c.source,
                _mentions.c.author_handle,
                _mentions.c.text,
            )
            .select_from(_conv.join(_mentions, _mentions.c.id == _conv.c.mention_id))
            .where(_conv.c.escalated.is_(True), _conv.c.opened_at >= lo, _conv.c.opened_at < hi)
            .order_by(_conv.c.opened_at, _conv.c.id)
        ).all()
        events = c.execute(
            select(
                _events.c.at,
                _events.c.conversation_id,
                _events.c.kind,
                _events.c.from_level,
                _events.c.to_level,
                _events.c.priority,
                _events.c.actor,
            )
            .where(
                _events.c.kind.in_(("upgraded", "breached")),
                _events.c.at >= lo,
                _events.c.at < hi,
            )
            .order_by(_events.c.at, _events.c.id)
        ).all()

    rows = []
    for r in convs:
        opened = _utc(r.opened_at)
        assert opened is not None
        first = _utc(r.first_response_at)
        level = int(r.escalation_level or 0)
        rows.append(
            {
                "conversation": int(r.id),
                "priority": r.priority,
                "level": _LEVELS[level] if 0 <= level < len(_LEVELS) else str(level),
                "status": r.status,
                "reasons": _reasons(r.escalation),
                "opened": opened,
                "first response": first,
                "resolved": _utc(r.resolved_at),
                "first response (min)": _minutes(opened, first),
                "SLA target (min)": round(
                    targets.get(r.priority, targets.get("normal", DEFAULT_TARGETS["normal"]))
                    / 60.0,
                    1,
                ),
                "SLA status": _sla_status(r.priority, opened, first, now, targets),
                "source": r.source,
                "author": r.author_handle,
                "mention": _short(r.text),
            }
        )
    cols = [
        "conversation", "priority", "level", "status", "reasons", "opened", "first response",
        "resolved", "first response (min)", "SLA target (min)", "SLA status", "source",
        "author", "mention",
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=cols)

    counts = []
    for p in _PRIORITY_ORDER:
        mine = [x for x in rows if x["priority"] == p]
        met = sum(1 for x in mine if x["SLA status"] == "met")
        breached = sum(1 for x in mine if x["SLA status"] == "breached")
        counts.append(
            {
                "priority": p,
                "escalated": len(mine),
                "answered": sum(1 for x in mine if x["first response"] is not None),
                "resolved": sum(1 for x in mine if x["resolved"] is not None),
                "SLA met": met,
                "SLA breached": breached,
                "pending": sum(1 for x in mine if x["SLA status"] == "pending"),
                "SLA compliance %": round(100.0 * met / (met + breached), 1)
                if met + breached
                else None,
            }
        )
    by_priority = pd.DataFrame(counts)
    by_priority["SLA compliance %"] = by_priority["SLA compliance %"].astype("float64")

    upgrades = pd.DataFrame(
        [
            {
                "at": _utc(e.at),
                "conversation": int(e.conversation_id),
                "event": e.kind,
                "from level": e.from_level,
                "to level": e.to_level,
                "priority": e.priority,
                "actor": e.actor,
            }
            for e in events
        ],
        columns=["at", "conversation", "event", "from level", "to level", "priority", "actor"],
    )
    decided = sum(x["SLA status"] != "pending" for x in rows)
    met_all = sum(x["SLA status"] == "met" for x in rows)
    overall = f"{100.0 * met_all / decided:.1f}%" if decided else "n/a"
    return Report(
        title="Escalations and SLA compliance",
        period=(start, end),
        sections=[
            Section(
                "Escalations",
                table,
                None,
                (
                    f"{len(rows)} escalated conversations opened in the period; "
                    f"first-response SLA compliance {overall}.",
                    "SLA targets are wall-clock minutes per priority, as in the KPIs; "
                    "'pending' means unanswered and still within target.",
                ),
            ),
            Section(
                "By priority",
                by_priority,
                Chart(
                    "bar",
                    "priority",
                    ("SLA met", "SLA breached", "pending"),
                    "Escalations by priority and SLA status",
                    "conversations",
                    stacked=True,
                ),
                ("Compliance is met / (met + breached).",),
            ),
            Section(
                "Upgrades",
                upgrades,
                None,
                ("Automatic upgrades (priority or level up) and final breaches in the period.",),
            ),
        ],
    )


# --------------------------------------------------------------------------- KPIs


def kpis_report(
    engine: Engine,
    start: date,
    end: date,
    brand: Any = None,
    *,
    now: datetime | None = None,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> Report:
    """The KPIs of the period, with mention volume and sentiment / CSAT / NPS trends.

    Sections: **KPIs** (the rows of :func:`listenwell.store.kpis.kpi_frame`),
    **Volume** (mentions per day, or per week over long periods) and **Trends**
    (net sentiment, CSAT and NPS per week).

    Args:
        engine: The store.
        start: First day (UTC).
        end: Last day, inclusive.
        brand: ``settings.brand`` (for share of voice; default the built-in brand).
        now: "Now" for the backlog and unanswered conversations.
        timeout_s: Statement time limit.

    Raises:
        ValueError: ``end`` is before ``start``.
    """
    import pandas as pd

    from listenwell.config.settings import BrandSettings
    from listenwell.store.kpis import kpi_frame
    from listenwell.store.queries import MentionFilter, mention_volume
    from listenwell.store.surveys import csat_nps_trend

    _check_period(start, end)
    brand = brand if brand is not None else BrandSettings()
    kpi = kpi_frame(
        engine, start=start, end=end, brand_settings=brand, now=now, timeout_s=timeout_s
    )
    kpi["value"] = kpi["value"].round(2)

    freq = _freq(start, end)
    mv = mention_volume(engine, MentionFilter(start=start, end=end), freq=freq)
    per = mv.groupby("bucket")["mentions"].sum() if not mv.empty else pd.Series(dtype="int64")
    per.index = [b.date() for b in per.index]
    if freq == "day":
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    else:
        first = start - timedelta(days=start.weekday())
        days = [first + timedelta(weeks=i) for i in range((end - first).days // 7 + 1)]
    volume = pd.DataFrame({freq: days, "mentions": [int(per.get(d, 0)) for d in days]})

    trend = csat_nps_trend(engine, freq="week", start=start, end=end, timeout_s=timeout_s)
    trend = trend[
        ["bucket", "net_sentiment", "mentions", "csat", "csat_answers", "nps", "nps_answers"]
    ].rename(
        columns={
            "bucket": "week",
            "net_sentiment": "net sentiment",
            "mentions": "labelled mentions",
            "csat": "CSAT %",
            "csat_answers": "CSAT answers",
            "nps": "NPS",
            "nps_answers": "NPS answers",
        }
    )
    for col in ("net sentiment", "CSAT %", "NPS"):
        trend[col] = trend[col].round(1)
    return Report(
        title=f"{_brand_name(brand)}: customer-care KPIs",
        period=(start, end),
        sections=[
            Section(
                "KPIs",
                kpi,
                None,
                (
                    "Conversations count in the period they were opened in, surveys when "
                    "answered, mentions when posted.",
                    "SLA targets are wall-clock; times are in seconds.",
                ),
            ),
            Section(
                "Volume",
                volume,
                Chart("line", freq, ("mentions",), f"Mentions per {freq}", "mentions"),
            ),
            Section(
                "Trends",
                trend,
                Chart("line", "week", ("net sentiment", "CSAT %", "NPS"), "Weekly trends")
                if not trend.empty
                else None,
                ("Weeks start on Monday; empty where there were no answers or labelled mentions.",),
            ),
        ],
    )


# --------------------------------------------------------------------------- cells


def safe_cell_text(text: str) -> str:
    """Text a spreadsheet will not run as a formula: a leading ``'`` where it could."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _cell(value: Any) -> Any:
    """A table value as a spreadsheet cell holds it (safe text, naive UTC times)."""
    if isinstance(value, list | tuple | dict | set):
        value = str(value)
    if _missing(value):
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return _naive_utc(value)
    if isinstance(value, date | bool | int | float):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return safe_cell_text(_ILLEGAL_XLSX.sub("", str(value)))


def _display(value: Any) -> str:
    """A table value as text for HTML and PDF."""
    if isinstance(value, list | tuple | dict | set):
        return str(value)
    if _missing(value):
        return ""
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return _naive_utc(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        if math.isinf(value):
            return str(value)
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}".rstrip("0")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _number(value: Any) -> float | None:
    if _missing(value) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- CSV


def render_csv(report: Report) -> bytes:
    """The report's tables stacked in one CSV (UTF-8), with a leading ``section`` column."""
    columns: list[str] = []
    for s in report.sections:
        for col in s.table.columns:
            if str(col) not in columns:
                columns.append(str(col))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", *columns])
    for s in report.sections:
        names = [str(c) for c in s.table.columns]
        for values in s.table.itertuples(index=False, name=None):
            row = dict(zip(names, values, strict=True))
            cells = [_csv_cell(row.get(c)) for c in columns]
            writer.writerow([safe_cell_text(s.title), *cells])
    return out.getvalue().encode("utf-8")


def _csv_cell(value: Any) -> Any:
    value = _cell(value)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value


# --------------------------------------------------------------------------- XLSX


def _sheet_title(title: str, taken: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\']", " ", title).strip()[:31] or "Sheet"
    name, n = base, 2
    while name.lower() in taken:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(name.lower())
    return name


def render_xlsx(report: Report) -> bytes:
    """The report as an Excel workbook: a ``Report`` sheet, then one sheet per section."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, LineChart, Reference
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    bold = Font(bold=True)
    header_fill = PatternFill("solid", fgColor="DDE4EE")
    wb = Workbook()
    cover = wb.active
    assert cover is not None
    taken = {"report"}
    cover.title = "Report"
    cover["A1"] = safe_cell_text(report.title)
    cover["A1"].font = Font(bold=True, size=14)
    cover["A2"] = "Period"
    cover["B2"] = report.period_text
    cover["A3"] = "Generated (UTC)"
    cover["B3"] = _naive_utc(report.generated_at).replace(microsecond=0)
    row = 5
    for s in report.sections:
        cover.cell(row, 1, safe_cell_text(s.title)).font = bold
        cover.cell(row, 2, f"{len(s.table):,} rows")
        row += 1
        for note in s.notes:
            cover.cell(row, 2, safe_cell_text(note))
            row += 1
    cover.column_dimensions["A"].width = 24
    cover.column_dimensions["B"].width = 100

    for s in report.sections:
        ws = wb.create_sheet(_sheet_title(s.title, taken))
        names = [str(c) for c in s.table.columns]
        widths = [len(n) for n in names]
        for j, name in enumerate(names, start=1):
            cell = ws.cell(1, j, safe_cell_text(name))
            cell.font = bold
            cell.fill = header_fill
            cell.alignment = Alignment(vertical="top", wrap_text=True)
        for i, values in enumerate(s.table.itertuples(index=False, name=None), start=2):
            for j, value in enumerate(values, start=1):
                v = _cell(value)
                cell = ws.cell(i, j, v)
                if isinstance(v, datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm"
                    widths[j - 1] = max(widths[j - 1], 16)
                elif isinstance(v, date):
                    cell.number_format = "yyyy-mm-dd"
                    widths[j - 1] = max(widths[j - 1], 10)
                elif v is not None:
                    widths[j - 1] = max(widths[j - 1], min(len(str(v)), 80))
        for j, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(j)].width = min(max(width + 2, 8), 60)
        ws.freeze_panes = "A2"
        n = len(s.table)
        if s.chart is not None and n and s.chart.x in names:
            chart: BarChart | LineChart
            if s.chart.kind == "bar":
                chart = BarChart()
                chart.type = "col"
                if s.chart.stacked:
                    chart.grouping = "stacked"
                    chart.overlap = 100
            else:
                chart = LineChart()
            chart.title = s.chart.title
            chart.y_axis.title = s.chart.y_title or None
            chart.x_axis.title = s.chart.x
            chart.height, chart.width = 9, 18
            for y in s.chart.y:
                if y in names:
                    col = names.index(y) + 1
                    ref = Reference(ws, min_col=col, max_col=col, min_row=1, max_row=n + 1)
                    chart.add_data(ref, titles_from_data=True)
            xcol = names.index(s.chart.x) + 1
            chart.set_categories(Reference(ws, min_col=xcol, min_row=2, max_row=n + 1))
            ws.add_chart(chart, f"{get_column_letter(len(names) + 2)}2")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --------------------------------------------------------------------------- HTML

CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
"""The HTML report's Content-Security-Policy: inline plotly only, nothing from anywhere."""

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; }
h1 { margin-bottom: 0.2em; } .period { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #dde4ee; } td.num { text-align: right; }
td { max-width: 40em; overflow-wrap: anywhere; } .notes { color: #555; font-size: 0.9em; }
"""


def _figure(chart: Chart, table: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    from listenwell.app_pages.charts import plain

    x = [plain(_display(v)) for v in table[chart.x]]
    fig = go.Figure()
    for y in chart.y:
        if y not in table.columns:
            continue
        ys = [_number(v) for v in table[y]]
        if chart.kind == "bar":
            fig.add_trace(go.Bar(x=x, y=ys, name=plain(y)))
        else:
            fig.add_trace(go.Scatter(x=x, y=ys, name=plain(y), mode="lines+markers"))
    fig.update_layout(
        title=plain(chart.title),
        yaxis_title=plain(chart.y_title),
        barmode="stack" if chart.stacked else "group",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=380,
    )
    fig.update_xaxes(type="category")
    return fig


def _html_table(table: pd.DataFrame) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in table.columns)
    body = []
    for values in table.itertuples(index=False, name=None):
        cells = []
        for v in values:
            num = _number(v) is not None and not isinstance(v, str)
            cls = ' class="num"' if num else ""
            cells.append(f"<td{cls}>{esc(_display(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        span = max(len(table.columns), 1)
        body.append(f'<tr><td colspan="{span}">No rows in this period.</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(report: Report) -> bytes:
    """The report as one self-contained HTML page (UTF-8), charts drawn by inline plotly."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(report.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{esc(report.title)}</h1>",
        f'<p class="period">{esc(report.period_text)} (UTC) &middot; generated '
        f"{esc(_naive_utc(report.generated_at).strftime('%Y-%m-%d %H:%M'))} UTC</p>",
    ]
    bundled = False
    for s in report.sections:
        parts.append(f"<section><h2>{esc(s.title)}</h2>")
        if s.notes:
            items = "".join(f"<li>{esc(n)}</li>" for n in s.notes)
            parts.append(f'<ul class="notes">{items}</ul>')
        if s.chart is not None and len(s.table) and s.chart.x in s.table.columns:
            fig = _figure(s.chart, s.table)
            parts.append(
                fig.to_html(
                    include_plotlyjs=not bundled,
                    full_html=False,
                    config={"displaylogo": False, "responsive": True},
                )
            )
            bundled = True
        parts.append(_html_table(s.table))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts).encode("utf-8")


# --------------------------------------------------------------------------- PDF

_LATIN1_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": ",", "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u2039": "<", "\u203a": ">",
    "\u2022": "*", "\u00a0": " ", "\u2212": "-",
}  # fmt: skip
_PDF_MAX_ROWS = 300
_COLORS = [(52, 101, 164), (204, 0, 0), (115, 210, 22), (245, 121, 0), (117, 80, 123)]


def _latin1(text: str) -> str:
    """Text the PDF core fonts can draw: latin-1, other characters approximated or ``?``."""
    out = []
    for ch in str(text):
        if ch in ("\n", "\r", "\t"):
            out.append(" ")
        elif ord(ch) < 32 or 127 <= ord(ch) < 160:
            continue
        elif ord(ch) < 256:
            out.append(ch)
        elif ch in _LATIN1_MAP:
            out.append(_LATIN1_MAP[ch])
        else:
            decomposed = unicodedata.normalize("NFKD", ch)
            kept = "".join(c for c in decomposed if ord(c) < 256 and not unicodedata.combining(c))
            out.append(kept or "?")
    return "".join(out)


def _fit(pdf: Any, text: str, width: float) -> str:
    text = _latin1(text)
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "...") > width:
        text = text[: max(len(text) - max(len(text) // 8, 1), 0)]
    return text + "..."


def _pdf_table(pdf: Any, table: pd.DataFrame) -> None:
    from fpdf.enums import XPos, YPos

    names = [str(c) for c in table.columns]
    if not names:
        return
    shown = table.head(_PDF_MAX_ROWS)
    rows = [[_display(v) for v in values] for values in shown.itertuples(index=False, name=None)]
    pdf.set_font("Helvetica", size=7)
    full = pdf.w - pdf.l_margin - pdf.r_margin
    wants = []
    for j, name in enumerate(names):
        longest = max([pdf.get_string_width(_latin1(name))] + [
            pdf.get_string_width(_latin1(r[j][:120])) for r in rows[:100]
        ])  # fmt: skip
        wants.append(min(max(longest + 3, 12), 90))
    scale = min(1.0, full / sum(wants))
    widths = [w * scale for w in wants]
    h = 4.5

    def header() -> None:
        pdf.set_font("Helvetica", style="B", size=7)
        pdf.set_fill_color(221, 228, 238)
        for name, w in zip(names, widths, strict=True):
            pdf.cell(w, h, _fit(pdf, name, w - 1), border=1, fill=True,
                     new_x=XPos.RIGHT, new_y=YPos.TOP)  # fmt: skip
        pdf.ln(h)
        pdf.set_font("Helvetica", size=7)

    header()
    if not rows:
        pdf.cell(sum(widths), h, "No rows in this period.", border=1,
                 new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
    for r in rows:
        if pdf.get_y() + h > pdf.page_break_trigger:
            pdf.add_page()
            header()
        for text, w in zip(r, widths, strict=True):
            pdf.cell(w, h, _fit(pdf, text, w - 1), border=1, new_x=XPos.RIGHT, new_y=YPos.TOP)
        pdf.ln(h)
    if len(table) > len(shown):
        pdf.set_font("Helvetica", style="I", size=7)
        more = len(table) - len(shown)
        pdf.cell(0, h, f"... and {more:,} more rows (see the XLSX or CSV report).",
                 new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
    pdf.ln(3)


def _pdf_chart(pdf: Any, chart: Chart, table: pd.DataFrame) -> None:
    from fpdf.enums import XPos, YPos

    series = [(y, [_number(v) for v in table[y]]) for y in chart.y if y in table.columns]
    labels = [_display(v) for v in table[chart.x]]
    n = len(labels)
    if not series or not n:
        return
    height, width = 60.0, pdf.w - pdf.l_margin - pdf.r_margin - 20
    if pdf.get_y() + height + 22 > pdf.page_break_trigger:
        pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=9)
    pdf.cell(0, 5, _latin1(chart.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    x0, y0 = pdf.l_margin + 15, pdf.get_y() + 2
    values = [v for _, vs in series for v in vs if v is not None]
    if chart.kind == "bar" and chart.stacked:
        totals_pos = [sum(max(vs[i] or 0, 0) for _, vs in series) for i in range(n)]
        totals_neg = [sum(min(vs[i] or 0, 0) for _, vs in series) for i in range(n)]
        top, bottom = max(totals_pos + [0.0]), min(totals_neg + [0.0])
    else:
        top, bottom = max(values + [0.0]), min(values + [0.0])
    if top == bottom:
        top = bottom + 1.0

    def ypos(v: float) -> float:
        return y0 + height * (top - v) / (top - bottom)

    pdf.set_draw_color(120, 120, 120)
    pdf.set_line_width(0.2)
    pdf.line(x0, y0, x0, y0 + height)
    pdf.line(x0, ypos(0.0), x0 + width, ypos(0.0))
    pdf.set_font("Helvetica", size=6)
    for v in (bottom, (top + bottom) / 2, top):
        pdf.set_xy(pdf.l_margin, ypos(v) - 2)
        pdf.cell(14, 4, _display(round(v, 1)), align="R")
    step = width / n
    if chart.kind == "bar":
        k = 1 if chart.stacked else len(series)
        bar = step * 0.8 / k
        for i in range(n):
            base_pos = base_neg = 0.0
            for s, (_, vs) in enumerate(series):
                v = vs[i]
                if v is None or v == 0:
                    continue
                pdf.set_fill_color(*_COLORS[s % len(_COLORS)])
                if chart.stacked:
                    lo_v = base_pos if v > 0 else base_neg + v
                    hi_v = base_pos + v if v > 0 else base_neg
                    if v > 0:
                        base_pos += v
                    else:
                        base_neg += v
                    left = x0 + i * step + step * 0.1
                else:
                    lo_v, hi_v = min(0.0, v), max(0.0, v)
                    left = x0 + i * step + step * 0.1 + s * bar
                pdf.rect(left, ypos(hi_v), bar, ypos(lo_v) - ypos(hi_v), style="F")
    else:
        pdf.set_line_width(0.5)
        for s, (_, vs) in enumerate(series):
            pdf.set_draw_color(*_COLORS[s % len(_COLORS)])
            prev: tuple[float, float] | None = None
            for i, v in enumerate(vs):
                if v is None:
                    prev = None
                    continue
                point = (x0 + (i + 0.5) * step, ypos(v))
                if prev is not None:
                    pdf.line(prev[0], prev[1], point[0], point[1])
                else:
                    pdf.line(point[0] - 0.4, point[1], point[0] + 0.4, point[1])
                prev = point
        pdf.set_line_width(0.2)
    pdf.set_font("Helvetica", size=5.5)
    every = max(1, math.ceil(n / max(int(width / 18), 1)))
    for i in range(0, n, every):
        pdf.set_xy(x0 + i * step, y0 + height + 0.5)
        pdf.cell(max(step * every, 4), 3, _fit(pdf, labels[i], max(step * every, 4) - 0.5))
    pdf.set_xy(x0, y0 + height + 5)
    pdf.set_font("Helvetica", size=7)
    for s, (name, _) in enumerate(series):
        pdf.set_fill_color(*_COLORS[s % len(_COLORS)])
        pdf.rect(pdf.get_x(), pdf.get_y() + 1, 3, 3, style="F")
        pdf.set_x(pdf.get_x() + 4)
        label = _latin1(name)
        pdf.cell(pdf.get_string_width(label) + 6, 5, label, new_x=XPos.RIGHT, new_y=YPos.TOP)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_xy(pdf.l_margin, y0 + height + 12)


def render_pdf(report: Report) -> bytes:
    """The report as a landscape A4 PDF: title, period, each section's chart and table."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(True, margin=12)
    pdf.set_title(_latin1(report.title))
    pdf.set_creator("Listenwell")
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.cell(0, 9, _latin1(report.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=10)
    generated = _naive_utc(report.generated_at).strftime("%Y-%m-%d %H:%M")
    pdf.cell(0, 6, _latin1(f"{report.period_text} (UTC); generated {generated} UTC"),
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
    pdf.ln(3)
    for s in report.sections:
        if pdf.get_y() + 30 > pdf.page_break_trigger:
            pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=12)
        pdf.cell(0, 7, _latin1(s.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("Helvetica", size=8)
        for note in s.notes:
            pdf.multi_cell(0, 4, _latin1(note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)
        if s.chart is not None and len(s.table) and s.chart.x in s.table.columns:
            _pdf_chart(pdf, s.chart, s.table)
        _pdf_table(pdf, s.table)
    return bytes(pdf.output())


# --------------------------------------------------------------------------- files

_RENDERERS: dict[str, Callable[[Report], bytes]] = {
    "csv": render_csv,
    "xlsx": render_xlsx,
    "html": render_html,
    "pdf": render_pdf,
}


def render(report: Report, fmt: str) -> bytes:
    """The report in ``fmt`` (one of :data:`FORMATS`).

    Raises:
        ValueError: An unknown format.
    """
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r} (use {', '.join(FORMATS)})") from None
    return renderer(report)


def write_report(report: Report, path: Path, fmt: str) -> int:
    """Render the report and write it to ``path`` (folders made as needed); returns its bytes.

    Raises:
        ValueError: An unknown format.
        OSError: The file cannot be written.
    """
    data = render(report, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)
