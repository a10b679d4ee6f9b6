"""Helpers for the dashboard's AppTests: an app already signed in as a user of some role."""

from __future__ import annotations

import os
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from listenwell import store
from listenwell.config import load_settings
from listenwell.store.users import ensure_user

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
SESSION_KEY = "listenwell_session"

__all__ = ["APP", "app_test", "open_page", "sign_in_as"]


def sign_in_as(at: AppTest, role: str = "admin", username: str | None = None) -> str:
    """Create (if needed) a user of ``role`` in the configured database and sign ``at`` in."""
    name = username or f"test-{role}"
    settings = load_settings(Path(os.environ["LISTENWELL_CONFIG"]))
    engine = store.connect(settings.database_url)
    try:
        ensure_user(engine, name, role, f"Test {role}", actor="test")
    finally:
        engine.dispose()
    now = time.time()
    at.session_state[SESSION_KEY] = {"username": name, "signed_in_at": now, "last_seen": now}
    return name


def app_test(role: str = "admin", *, timeout: float = 60) -> AppTest:
    """An AppTest of ``app.py`` signed in as a ``role`` user (LISTENWELL_CONFIG must be set)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    sign_in_as(at, role)
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    """Run the app, switch to ``page`` (e.g. ``app_pages/inbox.py``) and run it; no exceptions."""
    at.run()
    assert not at.exception, at.exception
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at
