"""Quarantine: input records that were not stored, with the reason and raw payload."""

from __future__ import annotations

import streamlit as st

from listenwell import store
from listenwell.app_pages import common

st.title("Quarantine")
st.caption(
    "Records that could not be stored: malformed API payloads, broken CSV rows, bad encodings, "
    "empty or oversized texts. Nothing here stopped a run."
)
eng = common.engine()
try:
    df = store.quarantine_frame(eng, limit=500, timeout_s=common.settings().query_timeout_s)
except store.StoreError as exc:
    common.fail(f"The database could not answer: {exc}")
if df.empty:
    st.success("No quarantined records.")
    st.stop()
st.dataframe(
    df[["received_at", "source", "origin", "reason", "raw"]],
    hide_index=True,
    width="stretch",
    column_config={
        "received_at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
        "raw": st.column_config.TextColumn("Raw payload", width="large"),
    },
)
