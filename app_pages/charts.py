"""Pure chart builders: a DataFrame in, a plotly figure out. No Streamlit, no SQL."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

__all__ = ["ranking_bar", "source_bar", "volume_chart"]

_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "legend_title_text": ""}


def volume_chart(df: pd.DataFrame, *, title: str = "Mentions over time") -> go.Figure:
    """Stacked bars of mentions per time bucket and source.

    Args:
        df: Columns ``bucket`` (datetime), ``source``, ``mentions``.
    """
    if df.empty:
        fig = go.Figure()
        fig.update_layout(title=title, annotations=[{"text": "No mentions", "showarrow": False}])
        return fig
    fig = px.bar(
        df,
        x="bucket",
        y="mentions",
        color="source",
        title=title,
        labels={"bucket": "", "mentions": "Mentions", "source": "Source"},
    )
    fig.update_layout(barmode="stack", hovermode="x unified", **_LAYOUT)
    return fig


def source_bar(df: pd.DataFrame, *, title: str = "Mentions by source") -> go.Figure:
    """Horizontal bars of mentions per source. ``df``: columns ``source``, ``mentions``."""
    fig = px.bar(
        df.sort_values("mentions"),
        x="mentions",
        y="source",
        orientation="h",
        title=title,
        labels={"mentions": "Mentions", "source": ""},
    )
    fig.update_layout(**_LAYOUT)
    return fig


def ranking_bar(df: pd.DataFrame, label: str, value: str, *, title: str) -> go.Figure:
    """Horizontal bars of ``value`` per ``label``, largest at the top."""
    fig = px.bar(
        df.sort_values(value),
        x=value,
        y=label,
        orientation="h",
        title=title,
        labels={value: value.capitalize(), label: ""},
    )
    fig.update_layout(**_LAYOUT)
    return fig
