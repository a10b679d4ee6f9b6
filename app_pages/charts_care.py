"""Pure chart builders and formatters for the care pages (inbox, escalations).

A DataFrame in, a plotly figure out: no Streamlit, no SQL. Labels come from our
own values (conversation ids, priorities, SLA states); post text never reaches
a chart.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

__all__ = [
    "PRIORITY_COLORS",
    "PRIORITY_ORDER",
    "SLA_STATES",
    "countdown",
    "queue_by_priority",
    "sla_countdown",
]

PRIORITY_ORDER = ["urgent", "high", "normal", "low"]
"""Priorities, most pressing first (as the queue shows them)."""

PRIORITY_COLORS = {"urgent": "#b71c1c", "high": "#ef6c00", "normal": "#1565c0", "low": "#78909c"}
SLA_STATES = ["breached", "reminded", "running", "paused"]
"""SLA clock states, most pressing first (see ``listenwell.crm.sla.Assessment.state``)."""

_STATE_COLORS = {
    "breached": "#b71c1c",
    "reminded": "#f9a825",
    "running": "#2e7d32",
    "paused": "#9e9e9e",
}
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "legend_title_text": ""}


def countdown(seconds: float) -> str:
    """Business time left as a short countdown: ``2d 3h``, ``1h 05m``, ``12m``; overdue is
    ``overdue 35m``."""
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        text = f"{days}d {hours}h"
    elif hours:
        text = f"{hours}h {mins:02d}m"
    else:
        text = f"{mins}m"
    return f"overdue {text}" if seconds < 0 else text


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, annotations=[{"text": message, "showarrow": False}], **_LAYOUT)
    return fig


def sla_countdown(df: pd.DataFrame, *, title: str = "SLA time left") -> go.Figure:
    """Horizontal bars of business minutes left per conversation, in queue order.

    Overdue conversations have negative bars, left of the "due" line at zero.

    Args:
        df: Columns ``conversation_id``, ``priority``, ``left_minutes``, in queue order
            (the first row is drawn at the top).
    """
    if df.empty:
        return _empty(title, "Nothing in the queue")
    data = df.assign(
        case=[f"#{int(i)}" for i in df["conversation_id"]],
        left=df["left_minutes"].astype(float),
        label=[countdown(m * 60) for m in df["left_minutes"]],
    )
    fig = px.bar(
        data,
        x="left",
        y="case",
        color="priority",
        orientation="h",
        text="label",
        title=title,
        color_discrete_map=PRIORITY_COLORS,
        category_orders={"case": list(data["case"]), "priority": PRIORITY_ORDER},
        labels={"left": "Business minutes left", "case": "", "priority": "Priority"},
    )
    fig.add_vline(x=0, line_dash="dash", line_color="#424242", annotation_text="due")
    fig.update_traces(textposition="outside", cliponaxis=False)
    fig.update_layout(height=max(260, 28 * len(data) + 120), **_LAYOUT)
    return fig


def queue_by_priority(df: pd.DataFrame, *, title: str = "Queue by priority") -> go.Figure:
    """Stacked bars: conversations per priority, split by SLA state.

    Args:
        df: Columns ``priority`` and ``state`` (one row per conversation).
    """
    if df.empty:
        return _empty(title, "Nothing in the queue")
    counts = df.groupby(["priority", "state"]).size().reset_index(name="conversations")
    fig = px.bar(
        counts,
        x="priority",
        y="conversations",
        color="state",
        title=title,
        color_discrete_map=_STATE_COLORS,
        category_orders={"priority": PRIORITY_ORDER, "state": SLA_STATES},
        labels={"priority": "", "conversations": "Conversations", "state": "SLA"},
    )
    fig.update_layout(barmode="stack", **_LAYOUT)
    return fig
