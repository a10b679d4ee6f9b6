"""Mentions: every mention matching the filters, with a CSV download of the rows shown."""

from __future__ import annotations

import streamlit as st

from listenwell.app_pages import common

st.title("Mentions")
f = common.filters()
limit = st.select_slider(
    "Rows",
    options=[100, 500, 1000, 5000],
    value=500,
    key="mentions_limit",
    help="The newest rows matching the filters.",
)
df = common.query(common.mentions_frame, f, limit)
st.caption(f"{len(df):,} newest mentions matching the filters")
if df.empty:
    st.info("No mentions match these filters.")
    st.stop()
shown = df[["created_at", "source", "author_handle", "author_name", "text", "rating", "url"]]
st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    column_config={
        "created_at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
        "text": st.column_config.TextColumn("Text", width="large"),
        # Plain text, not a link: a URL in a post is data and should not be clickable blindly.
        "url": st.column_config.TextColumn("URL"),
    },
)
st.download_button(
    "Download these rows (CSV)",
    shown.to_csv(index=False).encode("utf-8"),
    file_name="mentions.csv",
    mime="text/csv",
    key="mentions_download",
)
