"""Pure chart builders: a DataFrame in, a plotly figure out. No Streamlit, no SQL."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

__all__ = [
    "SENTIMENT_COLORS",
    "net_sentiment",
    "ranking_bar",
    "sentiment_chart",
    "source_bar",
    "volume_chart",
]

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


SENTIMENT_COLORS = {"negative": "#d62728", "neutral": "#9e9e9e", "positive": "#2ca02c"}


def net_sentiment(df: pd.DataFrame) -> float | None:
    """(positive - negative) / all, in percent; ``None`` without data. ``df`` as below."""
    total = int(df["mentions"].sum()) if not df.empty else 0
    if total == 0:
        return None
    by = df.groupby("sentiment")["mentions"].sum()
    return 100.0 * (int(by.get("positive", 0)) - int(by.get("negative", 0))) / total


def sentiment_chart(df: pd.DataFrame, *, title: str = "Sentiment over time") -> go.Figure:
    """Stacked bars of mentions per bucket and sentiment, with the net sentiment as a line.

    Args:
        df: Columns ``bucket`` (datetime), ``sentiment``, ``mentions``.
    """
    fig = px.bar(
        df,
        x="bucket",
        y="mentions",
        color="sentiment",
        title=title,
        category_orders={"sentiment": list(SENTIMENT_COLORS)},
        color_discrete_map=SENTIMENT_COLORS,
        labels={"bucket": "", "mentions": "Mentions", "sentiment": "Sentiment"},
    )
    if not df.empty:
        wide = df.pivot_table(
            index="bucket", columns="sentiment", values="mentions", aggfunc="sum", fill_value=0
        )
        total = wide.sum(axis=1)
        net = 100.0 * (wide.get("positive", 0) - wide.get("negative", 0)) / total
        fig.add_trace(
            go.Scatter(
                x=net.index,
                y=net.values,
                name="net sentiment %",
                yaxis="y2",
                mode="lines",
                line={"color": "#1f2937", "width": 2},
            )
        )
        fig.update_layout(
            yaxis2={
                "overlaying": "y",
                "side": "right",
                "range": [-105, 105],
                "tickvals": [-100, -50, 0, 50, 100],
                "title": "Net sentiment %",
                "showgrid": False,
            },
            legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
        )
    fig.update_layout(barmode="stack", hovermode="x unified", **_LAYOUT)
    return fig
