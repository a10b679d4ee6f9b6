"""Feedback themes, for product teams: what people talk about, how they feel, what is moving."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from listenwell.app_pages import charts, common

st.title("Feedback themes")
f = common.filters()
volume = common.query(common.theme_volume, f)
if volume.empty:
    st.info(
        "No themes yet. `listenwell enrich` fits them once enough mentions are embedded "
        "(setting `nlp.themes_min_mentions`), and `listenwell themes refit` refits them."
    )
    st.stop()

table = charts.theme_table(volume)
c1, c2, c3 = st.columns(3)
c1.metric("Themes", f"{len(table):,}", help="Themes with mentions matching the filters.")
c2.metric(
    "Themed mentions",
    f"{int(table['mentions'].sum()):,}",
    help="Mentions assigned to a theme; the rest are too far from every theme.",
)
moving = table.dropna(subset=["change %"])
if not moving.empty:
    top = moving.loc[moving["change %"].abs().idxmax()]
    c3.metric(
        "Biggest weekly move",
        f"{top['change %']:+.0f}%",
        help=f"Theme {int(top['theme_id'])}: {int(top['week before'])} → "
        f"{int(top['last week'])} mentions, newest week against the one before.",
    )

left, right = st.columns([3, 2])
left.plotly_chart(charts.theme_sentiment_bar(volume), width="stretch")
with right:
    st.subheader("Rising and falling", help="Newest week against the week before.")
    movers = moving.sort_values("change %", ascending=False)
    st.dataframe(
        pd.concat([movers.head(5), movers.tail(5)]).drop_duplicates("theme_id")[
            ["theme", "week before", "last week", "change %"]
        ],
        hide_index=True,
        width="stretch",
    )

st.subheader("All themes")
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config={
        "theme_id": st.column_config.NumberColumn("id", format="%d"),
        "negative %": st.column_config.ProgressColumn(
            "negative %", min_value=0, max_value=100, format="%.0f%%"
        ),
        "positive %": st.column_config.ProgressColumn(
            "positive %", min_value=0, max_value=100, format="%.0f%%"
        ),
        "change %": st.column_config.NumberColumn("change %", format="%+.0f%%"),
    },
)

names = dict(zip(table["theme_id"], table["theme"], strict=True))
picked = st.selectbox(
    "Look into a theme",
    list(names),
    format_func=lambda i: f"{i}: {names[i]}",
    key="theme_pick",
    help="Its top terms, representative quotes and weekly volume.",
)
if picked is not None:
    detail = common.query(common.theme_detail, int(picked), 5)
    theme = detail.summary.theme
    st.caption(f"Theme {theme.id} · {theme.origin} · {'pinned' if theme.pinned else 'not pinned'}")
    st.text("Top terms: " + ", ".join(str(t[0]) for t in (theme.terms or [])))
    st.plotly_chart(charts.theme_trend_chart(volume, [int(picked)]), width="stretch")
    st.subheader("Representative quotes", help="The mentions nearest the theme's centre.")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": q.created_at,
                    "source": q.source,
                    "author": q.author_handle,
                    "sentiment": q.sentiment,
                    "text": q.text,
                }
                for q in detail.quotes
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "Rename, merge, pin or define themes with `listenwell themes` (see `--help`); "
        "every change keeps its history."
    )
