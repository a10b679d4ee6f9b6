"""Pure chart builders: a DataFrame in, a plotly figure out. No Streamlit, no SQL."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

__all__ = [
    "SENTIMENT_COLORS",
    "net_sentiment",
    "plain",
    "ranking_bar",
    "sentiment_chart",
    "source_bar",
    "theme_sentiment_bar",
    "theme_table",
    "theme_trend_chart",
    "volume_chart",
    "word_weights",
]

_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "legend_title_text": ""}


def plain(value: object) -> str:
    """A label safe for plotly, which reads a few HTML tags (``<a href>``, ``<b>``) in text.

    Angle brackets become look-alike characters, so user text (handles, theme
    names, words of a post) is drawn as text and never as a tag or a link.
    """
    return str(value).replace("<", "\u2039").replace(">", "\u203a")


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
        df.assign(**{label: df[label].map(plain)}).sort_values(value),
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


def theme_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per theme: mentions, sentiment shares and the week-over-week change.

    Args:
        df: Columns ``bucket`` (weekly datetime), ``theme_id``, ``theme``,
            ``sentiment``, ``mentions`` (as :func:`listenwell.store.theme_volume`).

    Returns:
        Columns ``theme_id``, ``theme``, ``mentions``, ``negative %``,
        ``positive %``, ``last week``, ``week before``, ``change %`` (``None``
        where the week before had none), largest first. "Last week" is the
        newest week in the data, which may still be in progress.
    """
    cols = ["theme_id", "theme", "mentions", "negative %", "positive %", "last week"]
    cols += ["week before", "change %"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    totals = df.groupby(["theme_id", "theme"], as_index=False)["mentions"].sum()
    by_sent = df.pivot_table(
        index="theme_id", columns="sentiment", values="mentions", aggfunc="sum", fill_value=0
    )
    labelled = by_sent.sum(axis=1).replace(0, float("nan"))
    weeks = sorted(df["bucket"].unique())
    last = weeks[-1]
    before = weeks[-2] if len(weeks) > 1 else None
    per_week = df.groupby(["theme_id", "bucket"])["mentions"].sum()

    def week(theme_id: int, bucket: object) -> int:
        return int(per_week.get((theme_id, bucket), 0)) if bucket is not None else 0

    rows = []
    for r in totals.itertuples(index=False):
        tid = int(r.theme_id)
        neg = by_sent.loc[tid].get("negative", 0) if tid in by_sent.index else 0
        pos = by_sent.loc[tid].get("positive", 0) if tid in by_sent.index else 0
        n_lab = labelled.get(tid, float("nan"))
        a, b = week(tid, last), week(tid, before)
        rows.append(
            {
                "theme_id": tid,
                "theme": r.theme,
                "mentions": int(r.mentions),
                "negative %": round(100.0 * neg / n_lab, 1) if n_lab == n_lab else None,
                "positive %": round(100.0 * pos / n_lab, 1) if n_lab == n_lab else None,
                "last week": a,
                "week before": b,
                "change %": round(100.0 * (a - b) / b, 1) if b else None,
            }
        )
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["mentions", "theme_id"], ascending=[False, True], ignore_index=True)


def theme_sentiment_bar(df: pd.DataFrame, *, top: int = 15) -> go.Figure:
    """Horizontal stacked bars: the ``top`` largest themes, split by sentiment.

    Args:
        df: As for :func:`theme_table`.
        top: How many themes to show.
    """
    if df.empty:
        data = pd.DataFrame(columns=["theme", "sentiment", "mentions"])
    else:
        data = df.assign(
            sentiment=df["sentiment"].fillna("not labelled"), theme=df["theme"].map(plain)
        )
        data = data.groupby(["theme", "sentiment"], as_index=False)["mentions"].sum()
        order = data.groupby("theme")["mentions"].sum().sort_values(ascending=False).index
        data = data[data["theme"].isin(order[:top])]
    colors = {**SENTIMENT_COLORS, "not labelled": "#d1d5db"}
    fig = px.bar(
        data,
        y="theme",
        x="mentions",
        color="sentiment",
        orientation="h",
        title="Themes by sentiment",
        category_orders={"sentiment": list(colors)},
        color_discrete_map=colors,
        labels={"theme": "", "mentions": "Mentions", "sentiment": "Sentiment"},
    )
    fig.update_layout(barmode="stack", yaxis={"categoryorder": "total ascending"}, **_LAYOUT)
    return fig


def theme_trend_chart(df: pd.DataFrame, theme_ids: list[int]) -> go.Figure:
    """Weekly mentions of the chosen themes, one line each.

    Args:
        df: As for :func:`theme_table`.
        theme_ids: The themes to draw.
    """
    data = df[df["theme_id"].isin(theme_ids)] if not df.empty else df
    if not data.empty:
        data = data.assign(theme=data["theme"].map(plain))
        data = data.groupby(["bucket", "theme"], as_index=False)["mentions"].sum()
    else:
        data = pd.DataFrame(columns=["bucket", "theme", "mentions"])
    fig = px.line(
        data,
        x="bucket",
        y="mentions",
        color="theme",
        markers=True,
        title="Theme volume per week",
        labels={"bucket": "", "mentions": "Mentions", "theme": "Theme"},
    )
    fig.update_layout(hovermode="x unified", **_LAYOUT)
    return fig


def word_weights(words: list[tuple[str, float]]) -> go.Figure:
    """Horizontal bars of word weights: green pushed toward the predicted label, red away.

    Args:
        words: ``(word, weight)`` pairs, as a sentiment model's ``explain`` returns them.
    """
    data = pd.DataFrame([(plain(w), x) for w, x in words], columns=["word", "weight"])
    data["effect"] = ["toward the label" if w >= 0 else "away from it" for w in data["weight"]]
    fig = px.bar(
        data.iloc[::-1],
        x="weight",
        y="word",
        color="effect",
        orientation="h",
        title="Words that drove the prediction",
        color_discrete_map={"toward the label": "#16a34a", "away from it": "#dc2626"},
        labels={"weight": "Probability drop without the word", "word": ""},
    )
    fig.update_layout(**_LAYOUT)
    return fig
