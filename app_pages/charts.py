"""Pure chart builders: a DataFrame in, a plotly figure out. No Streamlit, no SQL."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

__all__ = [
    "SENTIMENT_COLORS",
    "alert_table",
    "net_sentiment",
    "plain",
    "ranking_bar",
    "selected",
    "sentiment_chart",
    "source_bar",
    "spike_chart",
    "theme_movers",
    "theme_movers_chart",
    "theme_sentiment_bar",
    "theme_table",
    "theme_trend_chart",
    "voice_chart",
    "voice_totals",
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


def _iso(buckets: pd.Series) -> pd.Series:
    """Bucket times as ISO strings: the key a chart selection hands back (``customdata``)."""
    return pd.Series(
        [pd.Timestamp(b).isoformat() for b in buckets], index=buckets.index, dtype=object
    )


def selected(selection: object) -> list[object] | None:
    """The ``customdata`` of the first point of a ``st.plotly_chart`` selection, if any.

    Args:
        selection: The chart's state (``{"selection": {"points": [...]}}``) or ``None``.
    """
    try:
        points = selection["selection"]["points"]  # type: ignore[index]
    except (AttributeError, KeyError, TypeError):
        return None
    for point in points or []:
        data = point.get("customdata") if hasattr(point, "get") else None
        if data is not None:
            return list(data) if isinstance(data, list | tuple) else [data]
    return None


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
        df.assign(key=_iso(df["bucket"]), label=df["source"].map(plain)),
        x="bucket",
        y="mentions",
        color="label",
        custom_data=["key", "source"],
        title=title,
        labels={"bucket": "", "mentions": "Mentions", "label": "Source"},
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
        df.assign(key=_iso(df["bucket"])),
        x="bucket",
        y="mentions",
        color="sentiment",
        custom_data=["key", "sentiment"],
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


def spike_chart(hours: pd.DataFrame, *, z: float = 3.0, min_count: int = 10) -> go.Figure:
    """Mentions per hour of the scanned window against the hour-of-week baseline.

    Bars are the observed counts (alert hours in red), the line the expected
    count and the dotted line the alert threshold, ``max(min_count,
    expected + z * spread)``.

    Args:
        hours: As ``SpikeReport.hours``: ``hour``, ``observed``, ``expected``,
            ``spread``, ``score``, ``flagged``.
        z: The alert score the scan used.
        min_count: The fewest mentions for an alert the scan used.
    """
    fig = go.Figure()
    title = "Mentions per hour against the usual for that hour of the week"
    if hours.empty:
        fig.update_layout(title=title, annotations=[{"text": "No mentions", "showarrow": False}])
        return fig
    keys = _iso(hours["hour"])
    colors = ["#d62728" if f else "#60a5fa" for f in hours["flagged"]]
    fig.add_trace(
        go.Bar(
            x=hours["hour"],
            y=hours["observed"],
            name="mentions",
            marker={"color": colors},
            customdata=[[k] for k in keys],
            hovertemplate="%{x|%a %Y-%m-%d %H:00} UTC: %{y} mentions<extra></extra>",
        )
    )
    threshold = (hours["expected"] + z * hours["spread"]).clip(lower=min_count)
    fig.add_trace(
        go.Scatter(
            x=hours["hour"],
            y=hours["expected"],
            name="expected",
            mode="lines",
            line={"color": "#1f2937", "width": 2},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=hours["hour"],
            y=threshold,
            name="alert above",
            mode="lines",
            line={"color": "#d62728", "width": 1, "dash": "dot"},
        )
    )
    fig.update_layout(title=title, hovermode="x unified", **_LAYOUT)
    return fig


def alert_table(alerts: list[Any]) -> pd.DataFrame:
    """One row per spike alert, for a table: when, counts, score and what changed.

    Args:
        alerts: ``SpikeAlert`` objects (:mod:`listenwell.store.spikes`).

    Returns:
        Columns ``hour`` (UTC), ``mentions``, ``expected``, ``score``, ``hours``,
        ``terms``, ``sources``, ``authors`` (the last three as text).
    """
    rows = []
    for a in alerts:
        w = a.what_changed
        rows.append(
            {
                "hour": pd.Timestamp(a.hour),
                "mentions": a.observed,
                "expected": a.expected,
                "score": a.score,
                "hours": a.hours,
                "terms": ", ".join(t.term + (" (new)" if t.new else "") for t in w.terms),
                "sources": ", ".join(
                    f"{s.source} {s.spike_share:.0f}% (usually {s.baseline_share:.0f}%)"
                    for s in w.sources
                ),
                "authors": ", ".join(
                    f"{x.author} ×{x.mentions}" + (" (new)" if x.new else "") for x in w.authors
                ),
            }
        )
    cols = ["hour", "mentions", "expected", "score", "hours", "terms", "sources", "authors"]
    return pd.DataFrame(rows, columns=cols)


def voice_totals(df: pd.DataFrame) -> pd.DataFrame:
    """Each party's mentions and share over the whole period, in the parties' order.

    Args:
        df: As :func:`listenwell.store.voice.share_of_voice`: ``bucket``,
            ``party``, ``mentions``, ``share``.

    Returns:
        Columns ``party``, ``mentions``, ``share %`` (``None`` when no party has any).
    """
    if df.empty:
        return pd.DataFrame(columns=["party", "mentions", "share %"])
    totals = df.groupby("party", sort=False, as_index=False)["mentions"].sum()
    total = int(totals["mentions"].sum())
    totals["share %"] = [round(100.0 * m / total, 1) if total else None for m in totals["mentions"]]
    return totals


def voice_chart(df: pd.DataFrame, *, title: str = "Share of voice per week") -> go.Figure:
    """Stacked bars: each party's share of the parties' mentions per bucket (100% per bucket).

    Args:
        df: As :func:`voice_totals`.
    """
    if df.empty:
        fig = go.Figure()
        fig.update_layout(title=title, annotations=[{"text": "No mentions", "showarrow": False}])
        return fig
    data = df.assign(key=_iso(df["bucket"]), label=df["party"].map(plain))
    fig = px.bar(
        data,
        x="bucket",
        y="share",
        color="label",
        custom_data=["key", "party", "mentions"],
        title=title,
        labels={"bucket": "", "share": "Share of voice %", "label": ""},
    )
    fig.update_traces(
        hovertemplate="%{fullData.name}: %{y:.0f}% (%{customdata[2]} mentions)<extra></extra>"
    )
    fig.update_layout(barmode="stack", hovermode="x unified", yaxis={"range": [0, 100]}, **_LAYOUT)
    return fig


def theme_movers(table: pd.DataFrame, *, top: int = 5) -> pd.DataFrame:
    """The themes rising and falling most: newest week against the week before.

    Args:
        table: As :func:`theme_table` returns it.
        top: How many rising and how many falling themes.

    Returns:
        Columns ``theme_id``, ``theme``, ``week before``, ``last week``,
        ``change`` (mentions), ``change %``, ``direction`` (``rising`` or
        ``falling``); rising first, biggest move first. Unchanged themes are left out.
    """
    cols = ["theme_id", "theme", "week before", "last week", "change", "change %", "direction"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    data = table.assign(change=table["last week"] - table["week before"])
    rising = data[data["change"] > 0].sort_values(["change", "theme_id"], ascending=[False, True])
    falling = data[data["change"] < 0].sort_values(["change", "theme_id"])
    out = pd.concat(
        [rising.head(top).assign(direction="rising"), falling.head(top).assign(direction="falling")]
    )
    return out[cols].reset_index(drop=True)


def theme_movers_chart(movers: pd.DataFrame) -> go.Figure:
    """Horizontal bars of each moving theme's change in weekly mentions (rising green, falling red).

    Args:
        movers: As :func:`theme_movers` returns it.
    """
    colors = {"rising": "#16a34a", "falling": "#dc2626"}
    names, ids = movers["theme"].map(plain), movers["theme_id"]
    labels = [f"{t} [{int(i)}]" for t, i in zip(names, ids, strict=True)]
    data = movers.assign(label=pd.Series(labels, index=movers.index, dtype=object))
    fig = px.bar(
        data.iloc[::-1],
        x="change",
        y="label",
        color="direction",
        orientation="h",
        custom_data=["theme_id"],
        title="Themes rising and falling (newest week against the week before)",
        color_discrete_map=colors,
        category_orders={"direction": list(colors)},
        labels={"change": "Change in weekly mentions", "label": "", "direction": ""},
    )
    fig.update_layout(**_LAYOUT)
    return fig
