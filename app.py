"""Listenwell dashboard: ``streamlit run app.py`` (or ``listenwell demo``).

Thin on purpose: it signs the user in, declares the navigation (only the pages
the user's role may open) and the shared sidebar filters, then runs the chosen
page from ``app_pages/``. The database comes from the config that
``LISTENWELL_CONFIG`` (or the default config) names.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from listenwell.app_pages import common

# A bundled icon: a ":material/..." page icon makes the browser fetch it from Google's servers.
ICON = str(Path(__file__).parent / "app_pages" / "icon.png")
st.set_page_config(page_title="Listenwell", page_icon=ICON, layout="wide")

# (section, file, title, icon, the action a role needs to see the page)
PAGES = [
    ("Listen", "overview", "Overview", ":material/monitoring:", "mentions.view"),
    ("Listen", "mentions", "Mentions", ":material/forum:", "mentions.view"),
    ("Listen", "themes", "Feedback themes", ":material/category:", "themes.view"),
    ("Care", "inbox", "Inbox", ":material/inbox:", "inbox.view"),
    ("Care", "escalations", "Escalations", ":material/priority_high:", "escalations.view"),
    ("Care", "customers", "Customers", ":material/groups:", "customers.view"),
    ("Report", "reports", "Reports", ":material/summarize:", "reports.view"),
    ("Admin", "settings", "Settings", ":material/settings:", "settings.view"),
    ("Admin", "quarantine", "Quarantine", ":material/report:", "mentions.view"),
]

user = common.signed_in_user()
sections: dict[str, list[st.Page]] = {}
for section, name, title, icon, action in PAGES:
    if common.can(action):
        sections.setdefault(section, []).append(
            st.Page(f"app_pages/{name}.py", title=title, icon=icon, default=name == "overview")
        )
page = st.navigation(sections)
common.sidebar()
page.run()
