"""Sessions expire and cannot be made up: the gaps tests/test_app_signin.py leaves.

(The per-account lockout after five wrong passwords, its audit entries and
the idle timeout are tested in tests/store/test_users.py and
tests/test_app_signin.py.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import streamlit as st
from app_helpers import APP, SESSION_KEY, sign_in_as
from streamlit.testing.v1 import AppTest

from listenwell import store


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    store.upsert_mentions(eng, [store.Mention("x", "1", datetime.now(UTC), "hello")])
    eng.dispose()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"database_url: '{url}'\ndashboard: {{session_idle_min: 30, session_max_hours: 8}}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    return AppTest.from_file(APP, default_timeout=60)


def _signed_out(at: AppTest) -> bool:
    return not at.metric and bool(at.text_input(key="sign_in_password"))


def test_a_busy_session_still_ends_after_the_maximum_age(app):
    sign_in_as(app, "admin")
    app.run()
    assert not _signed_out(app)
    session = app.session_state[SESSION_KEY]
    # Active a minute ago, but signed in nine hours ago (the limit is eight).
    app.session_state[SESSION_KEY] = {
        **session,
        "signed_in_at": time.time() - 9 * 3600,
        "last_seen": time.time() - 60,
    }
    app.run()
    assert not app.exception
    assert "session expired" in app.warning[0].value
    assert _signed_out(app)


def test_a_session_for_an_account_that_does_not_exist_is_refused(app):
    """Session state naming a user is not a sign-in: the account must exist and be enabled."""
    now = time.time()
    app.session_state[SESSION_KEY] = {"username": "ghost", "signed_in_at": now, "last_seen": now}
    app.run()
    assert not app.exception
    assert "no longer exists or was disabled" in app.error[0].value
    assert not app.metric
    assert SESSION_KEY not in app.session_state


def test_a_session_without_timestamps_is_treated_as_expired(app):
    sign_in_as(app, "admin")
    app.session_state[SESSION_KEY] = {"username": "test-admin"}
    app.run()
    assert not app.exception
    assert _signed_out(app)
