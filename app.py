"""Listenwell dashboard: ``streamlit run app.py`` (or ``listenwell demo``).

Thin on purpose: it declares the navigation and the shared sidebar filters,
then runs the chosen page from ``app_pages/``. The database comes from the
config that ``LISTENWELL_CONFIG`` (or the default config) names.
"""

from __future__ import annotations

import streamlit as st

from listenwell.app_pages import common

st.set_page_config(page_title="Listenwell", page_icon=":material/hearing:", layout="wide")

pages = {
    "Listen": [
        st.Page(
            "app_pages/overview.py", title="Overview", icon=":material/monitoring:", default=True
        ),
        st.Page("app_pages/mentions.py", title="Mentions", icon=":material/forum:"),
        st.Page("app_pages/themes.py", title="Feedback themes", icon=":material/category:"),
    ],
    "Data": [
        st.Page("app_pages/quarantine.py", title="Quarantine", icon=":material/report:"),
    ],
}
page = st.navigation(pages)
common.sidebar()
page.run()
