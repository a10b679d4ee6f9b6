"""Pure builders for the Customers page: 360 data in, DataFrames and plotly figures out.

No Streamlit and no SQL here. Text written by customers (posts, notes, survey
comments) never goes into a figure: charts show kinds, times and numbers only,
so nothing a customer typed can turn into a link or markup in a chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from listenwell.app_pages.charts import plain
from listenwell.store.customer360 import EVENT_KINDS, SatisfactionPoint, TimelineEvent

__all__ = [
    "KIND_COLORS",
    "TIMELINE_COLUMNS",
    "satisfaction_chart",
    "satisfaction_frame",
    "timeline_chart",
    "timeline_frame",
]

KIND_COLORS = {
    "mention": "#3465a4",
    "reply": "#73d216",
    "note": "#75507b",
    "survey": "#f57900",
    "escalation": "#cc0000",
    "status": "#888a85",
}
"""One colour per timeline event kind."""

TIMELINE_COLUMNS = [
    "at",
    "kind",
    "platform",
    "text",
    "detail",
    "mention_id",
    "conversation_id",
    "id",
]
"""The columns of :func:`timeline_frame`."""

_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "legend_title_text": ""}


def _detail_text(event: TimelineEvent) -> str:
    """A short ``key: value`` line of an event's details (scores, statuses, who)."""
    parts = []
    for key, value in event.detail.items():
        if value is None or value == "" or key in ("url", "changes"):
            continue
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


def timeline_frame(events: Sequence[TimelineEvent]) -> pd.DataFrame:
    """Timeline events as a table, newest first, with :data:`TIMELINE_COLUMNS`."""
    rows: list[dict[str, Any]] = [
        {
            "at": e.at,
            "kind": e.kind,
            "platform": e.platform,
            "text": e.text,
            "detail": _detail_text(e),
            "mention_id": e.mention_id,
            "conversation_id": e.conversation_id,
            "id": e.id,
        }
        for e in events
    ]
    df = pd.DataFrame(rows, columns=TIMELINE_COLUMNS)
    df["at"] = pd.to_datetime(df["at"], utc=True)
    for col in ("mention_id", "conversation_id", "id"):
        df[col] = df[col].astype("Int64")
    return df.sort_values(["at", "id"], ascending=False, kind="stable").reset_index(drop=True)


def timeline_chart(df: pd.DataFrame, *, title: str = "Every contact") -> go.Figure:
    """One marker per event on a time axis, a row per kind (mentions, replies, surveys...).

    Args:
        df: A :func:`timeline_frame` (only ``at``, ``kind`` and ``platform`` are drawn).
    """
    fig = go.Figure()
    if df.empty:
        fig.update_layout(title=title, annotations=[{"text": "No contact yet", "showarrow": False}])
        return fig
    for kind in EVENT_KINDS:
        part = df[df["kind"] == kind]
        if part.empty:
            continue
        where = [plain(p) if isinstance(p, str) else "" for p in part["platform"]]
        fig.add_trace(
            go.Scatter(
                x=part["at"],
                y=[kind] * len(part),
                mode="markers",
                name=kind,
                marker={"color": KIND_COLORS[kind], "size": 10, "symbol": "line-ns-open"},
                customdata=where,
                hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>%{customdata}<extra>%{y}</extra>",
            )
        )
    fig.update_layout(
        title=title,
        showlegend=False,
        yaxis={"categoryorder": "array", "categoryarray": list(reversed(EVENT_KINDS))},
        **_LAYOUT,
    )
    return fig


def satisfaction_frame(points: Sequence[SatisfactionPoint]) -> pd.DataFrame:
    """Monthly satisfaction as a table: ``month``, ``sentiment`` (-1..1), ``mentions``,
    ``csat_mean`` (1-5), ``csat_answers``, ``nps`` (-100..100), ``nps_answers``."""
    columns = ["month", "sentiment", "mentions", "csat_mean", "csat_answers", "nps", "nps_answers"]
    df = pd.DataFrame([{c: getattr(p, c) for c in columns} for p in points], columns=columns)
    df["month"] = pd.to_datetime(df["month"])
    for col in ("sentiment", "csat_mean", "nps"):
        df[col] = df[col].astype("float64")
    for col in ("mentions", "csat_answers", "nps_answers"):
        df[col] = df[col].fillna(0).astype("int64")
    return df


def satisfaction_chart(df: pd.DataFrame, *, title: str = "Satisfaction by month") -> go.Figure:
    """Three stacked panels sharing the months: mean sentiment, mean CSAT and NPS.

    Args:
        df: A :func:`satisfaction_frame`; months without a figure leave a gap.
    """
    panels = [
        ("sentiment", "Sentiment (-1 to 1)", (-1.05, 1.05), "mentions"),
        ("csat_mean", "CSAT (1 to 5)", (0.9, 5.1), "csat_answers"),
        ("nps", "NPS (-100 to 100)", (-105, 105), "nps_answers"),
    ]
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=[p[1] for p in panels],
    )
    if df.empty:
        fig.update_layout(
            title=title, annotations=[{"text": "No sentiment or survey yet", "showarrow": False}]
        )
        return fig
    for row, (col, name, yrange, count) in enumerate(panels, start=1):
        fig.add_trace(
            go.Scatter(
                x=df["month"],
                y=df[col],
                mode="lines+markers",
                name=name,
                customdata=df[count],
                hovertemplate="%{x|%Y-%m}: %{y:.2f} (n=%{customdata})<extra></extra>",
                connectgaps=False,
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(range=list(yrange), row=row, col=1)
    fig.update_layout(title=title, showlegend=False, height=520, **_LAYOUT)
    return fig
