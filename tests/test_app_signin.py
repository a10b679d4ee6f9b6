"""Dashboard sign-in: passwords, lockout, session expiry, disabled accounts, demo users."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import streamlit as st
from app_helpers import APP, SESSION_KEY, sign_in_as
from streamlit.testing.v1 import AppTest

from listenwell import store
from listenwell.store.users import create_user, disable_user

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str = "") -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    store.upsert_mentions(eng, [store.Mention("x", "1", datetime.now(UTC), "hello @acme")])
    create_user(eng, "mo", "manager", PASSWORD, "Mo", actor="test")
    eng.dispose()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database_url: '{url}'\nbrand: {{name: Acme}}\n{extra}", encoding="utf-8")
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    return url


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _sign_in(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input(key="sign_in_username").input(username)
    at.text_input(key="sign_in_password").input(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def test_signed_out_sees_only_the_form_then_signs_in(tmp_path, monkeypatch):
    url = _config(tmp_path, monkeypatch)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert not at.metric  # no page ran
    assert (
        at.text_input(key="sign_in_password").proto.type
        == at.text_input(key="sign_in_password").proto.PASSWORD
    )
    _sign_in(at, "mo", "wrong password!")
    assert "wrong username or password" in at.error[0].value and not at.metric
    _sign_in(at, "nobody", PASSWORD)
    assert "wrong username or password" in at.error[0].value and not at.metric
    _sign_in(at, "mo", PASSWORD)
    assert _metrics(at)["Mentions"] == "1"
    assert any("`mo` (manager)" in c.value for c in at.sidebar.caption)
    eng = store.connect(url)
    try:
        from sqlalchemy import text

        with eng.connect() as c:
            rows = c.execute(text("SELECT actor, action FROM audit_log ORDER BY id")).all()
    finally:
        eng.dispose()
    assert ("user:mo", "user.sign_in") in [tuple(r) for r in rows]
    assert [tuple(r) for r in rows].count(("anonymous", "user.sign_in_failed")) == 2


def test_five_failures_lock_the_account(tmp_path, monkeypatch):
    _config(tmp_path, monkeypatch)
    at = AppTest.from_file(APP, default_timeout=60).run()
    for _ in range(5):
        _sign_in(at, "mo", "not the password")
    _sign_in(at, "mo", PASSWORD)
    assert "too many failed sign-ins" in at.error[0].value
    assert not at.metric


def test_idle_session_expires(tmp_path, monkeypatch):
    _config(tmp_path, monkeypatch, "dashboard: {session_idle_min: 5}\n")
    at = AppTest.from_file(APP, default_timeout=60)
    sign_in_as(at, "agent")
    at.run()
    assert _metrics(at)["Mentions"] == "1"
    session = at.session_state[SESSION_KEY]
    at.session_state[SESSION_KEY] = {**session, "last_seen": time.time() - 6 * 60}
    at.run()
    assert "session expired" in at.warning[0].value
    assert not at.metric and at.text_input(key="sign_in_password")


def test_disabled_account_is_signed_out_at_once(tmp_path, monkeypatch):
    url = _config(tmp_path, monkeypatch)
    at = AppTest.from_file(APP, default_timeout=60)
    sign_in_as(at, "agent", "al")
    at.run()
    assert _metrics(at)["Mentions"] == "1"
    eng = store.connect(url)
    disable_user(eng, "al", actor="test")
    eng.dispose()
    at.run()
    assert not at.exception
    assert "disabled" in at.error[0].value and not at.metric


def test_demo_signs_in_without_friction_and_switches_role(tmp_path, monkeypatch):
    _config(tmp_path, monkeypatch, "dashboard: {sign_in: demo}\n")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert _metrics(at)["Mentions"] == "1"
    assert any("`demo-manager` (manager)" in c.value for c in at.sidebar.caption)
    at.selectbox(key="demo_user").select("demo-analyst").run()
    assert not at.exception
    assert any("`demo-analyst` (analyst)" in c.value for c in at.sidebar.caption)


def test_password_mode_never_offers_demo_users(tmp_path, monkeypatch):
    _config(tmp_path, monkeypatch)
    at = AppTest.from_file(APP, default_timeout=60)
    sign_in_as(at, "admin")
    at.run()
    with pytest.raises(KeyError):
        at.selectbox(key="demo_user")
    assert at.button(key="sign_out")
    at.button(key="sign_out").click().run()
    assert not at.metric and at.text_input(key="sign_in_password")
