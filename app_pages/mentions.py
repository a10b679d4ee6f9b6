"""Mentions: every mention matching the filters, with a CSV download of the rows shown
(formula-guarded and redacted like `listenwell export mentions`)."""

from __future__ import annotations

import streamlit as st

from listenwell.app_pages import charts, common

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
columns = ["created_at", "source", "author_handle", "text", "sentiment", "intent", "topic"]
columns += ["language", "customer_id", "rating", "url"]
shown = df[columns]
st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    column_config={
        "created_at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
        "text": st.column_config.TextColumn("Text", width="large"),
        "topic": st.column_config.TextColumn("Theme"),
        "customer_id": st.column_config.TextColumn("Customer"),
        # Plain text, not a link: a URL in a post is data and should not be clickable blindly.
        "url": st.column_config.TextColumn("URL"),
    },
)
if common.can("data.export"):
    st.download_button(
        "Download these rows (CSV)",
        common.safe_csv(shown),
        file_name="mentions.csv",
        mime="text/csv",
        key="mentions_download",
    )

with st.expander("Why this sentiment?", icon=":material/psychology:"):
    st.caption(
        "Pick a mention: each word is left out in turn, and its weight is how much the "
        "probability of the predicted sentiment drops without it."
    )
    texts = dict(zip(df["id"], df["text"], strict=True))
    picked = st.selectbox(
        "Mention",
        list(texts),
        index=None,
        format_func=lambda i: " ".join(str(texts[i]).split())[:90],
        key="explain_pick",
        help="One of the rows above.",
    )
    if picked is not None:
        label, words = common.explain_sentiment(str(texts[picked]))
        if label is None:
            st.info("Sentiment is switched off (setting `nlp.sentiment_model`).")
        else:
            st.text(f"Predicted: {label}")
            st.plotly_chart(charts.word_weights(words), width="stretch")
