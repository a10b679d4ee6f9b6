"""Overview: headline numbers and mention volume over time, for everyone."""

from __future__ import annotations

import streamlit as st

from listenwell.app_pages import charts, common

st.title("Overview")
f = common.filters()
counts = common.query(common.overview_counts, f)

c1, c2, c3, c4 = st.columns(4)
c1.metric("Mentions", f"{counts['mentions']:,}", help="Mentions matching the sidebar filters.")
c2.metric("Authors", f"{counts['authors']:,}", help="Distinct author handles among them.")
c3.metric("Known customers", f"{counts['customers']:,}", help="Customers in the CRM.")
c4.metric(
    "Quarantined records",
    f"{counts['quarantined']:,}",
    help="Input records that were not stored; see the Quarantine page for reasons.",
)

if counts["mentions"] == 0:
    st.info("No mentions match these filters.")
    st.stop()

freq = st.segmented_control(
    "Granularity",
    ["hour", "day", "week"],
    default="day",
    key="overview_freq",
    help="Size of each time bucket (UTC).",
)
volume = common.query(common.mention_volume, f, freq or "day")
st.plotly_chart(charts.volume_chart(volume), width="stretch")

sentiment = common.query(common.sentiment_volume, f, freq or "day")
net = charts.net_sentiment(sentiment)
if net is None:
    st.caption("No sentiment yet: run `listenwell enrich` to add it.")
else:
    enriched = int(sentiment["mentions"].sum())
    st.metric(
        "Net sentiment",
        f"{net:+.0f}%",
        help=f"(positive - negative) / all, over the {enriched:,} enriched mentions matching "
        "the filters.",
    )
    st.plotly_chart(charts.sentiment_chart(sentiment), width="stretch")

left, right = st.columns([1, 2])
with left:
    sources = common.query(common.source_counts, f)
    if len(sources) > 1:
        st.plotly_chart(charts.source_bar(sources), width="stretch")
    authors = common.query(common.top_authors, f, 10)
    st.plotly_chart(
        charts.ranking_bar(authors, "author_handle", "mentions", title="Most active authors"),
        width="stretch",
    )
with right:
    st.subheader("Latest mentions")
    latest = common.query(common.mentions_frame, f, 20)
    # st.dataframe renders cell text as text: no HTML or markdown is interpreted.
    st.dataframe(
        latest[["created_at", "source", "author_handle", "text"]],
        hide_index=True,
        width="stretch",
        column_config={
            "created_at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
            "source": "Source",
            "author_handle": "Author",
            "text": st.column_config.TextColumn("Text", width="large"),
        },
    )
