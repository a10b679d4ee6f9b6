"""Roles on every dashboard page and write action, for each of the four roles.

* Navigation lists exactly the pages the role may open; a page left out cannot
  be reached by its URL either (the default page renders instead), and the
  page script itself refuses to run for the role.
* Write and export widgets (consent, export, erasure and merging of customers,
  user management, replies and notes, row-level downloads) are drawn only for
  roles whose permission covers them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import streamlit as st
from app_helpers import app_test
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from listenwell import store
from listenwell.crm import auth
from listenwell.store.inbox import ensure_conversations
from listenwell.store.users import User, set_role

REPO = Path(__file__).resolve().parents[2]

# page -> (the action a role needs to open it, its title); written out here rather than read
# from app.py, so the test checks app.py against the permission table and not against itself.
PAGES = {
    "overview": ("mentions.view", "Overview"),
    "mentions": ("mentions.view", "Mentions"),
    "themes": ("themes.view", "Feedback themes"),
    "inbox": ("inbox.view", "Inbox"),
    "escalations": ("escalations.view", "Escalations"),
    "customers": ("customers.view", "Customers"),
    "reports": ("reports.view", "Reports"),
    "settings": ("settings.view", "Settings"),
    "quarantine": ("mentions.view", "Quarantine"),
}
# Pages that check the role themselves (common.require) before drawing anything.
GUARDED = ["inbox", "escalations", "customers", "reports", "settings"]


def _path(page: str) -> str:
    return f"app_pages/{page}.py"


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Mentions in the inbox, a customer with a likely duplicate, and the config naming them."""
    url = f"sqlite:///{tmp_path / 'roles.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    t0 = datetime.now(UTC) - timedelta(days=2)
    store.upsert_mentions(
        eng,
        [
            store.Mention("x", str(i), t0 + timedelta(hours=i), f"post {i}", author_handle="@jd")
            for i in range(5)
        ],
    )
    store.upsert_customers(
        eng,
        [
            (
                "1",
                store.Customer(
                    "C1",
                    "Jonathan Smithers",
                    email="jonathan.smithers@example.com",
                    phone="+1 415 555 0101",
                ),
            ),
            (
                "2",
                store.Customer(
                    "C2",
                    "Jon Smithers",
                    email="jonathan.smithers+shop@example.com",
                    phone="(415) 555-0101",
                ),
            ),
        ],
    )
    ensure_conversations(eng)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database_url: '{url}'\nbrand: {{name: Acme}}\n", encoding="utf-8")
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    try:
        yield eng
    finally:
        eng.dispose()


def _titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


# ----------------------------------------------------------------- navigation


@pytest.mark.parametrize("role", auth.ROLES)
def test_navigation_offers_exactly_the_pages_the_role_may_open(db, role):
    at = app_test(role)
    at.run()
    assert not at.exception, at.exception
    for page, (action, title) in PAGES.items():
        if auth.can(role, action):
            at.switch_page(_path(page)).run()
            assert not at.exception, at.exception
            assert title in _titles(at), (role, page)
        else:
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(_path(page))


@pytest.mark.parametrize("role", auth.ROLES)
def test_a_page_left_out_cannot_be_reached_by_its_url(db, role):
    """What a browser asking for /customers sends is the page's URL hash: the navigation
    does not run a page it did not register, and shows the default page instead."""
    at = app_test(role)
    at.run()
    assert not at.exception, at.exception
    # The control: the same request for a page the role may open opens it.
    at._page_hash = calc_hash("mentions")
    at.run()
    assert _titles(at) == ["Mentions"]
    hidden = [p for p, (action, _) in PAGES.items() if not auth.can(role, action)]
    for page in hidden:
        at._page_hash = calc_hash(page)  # as a request for /<page> carries it
        at.run()
        assert not at.exception, at.exception
        assert PAGES[page][1] not in _titles(at), (role, page)
        assert _titles(at) == ["Overview"], (role, page)
    if role == "admin":
        assert not hidden


REFUSED = [(r, p) for p in GUARDED for r in auth.ROLES if not auth.can(r, PAGES[p][0])]


def test_some_role_is_refused_some_page():
    assert len(REFUSED) >= 4  # the parametrization below is not empty


@pytest.mark.parametrize(("role", "page"), REFUSED)
def test_the_page_itself_refuses_a_role_without_its_permission(db, role, page):
    """Run the page script directly (as if a link or a bug bypassed the navigation)."""
    action, title = PAGES[page]
    direct = AppTest.from_file(str(REPO / _path(page)), default_timeout=60)
    direct.session_state["listenwell_user"] = User(f"test-{role}", role)
    direct.run()
    assert not direct.exception, direct.exception
    assert [e.value for e in direct.error] == [
        f"Your role ({role}) cannot {auth.PERMISSIONS[action][1].lower()}. "
        "Ask an admin if you need to."
    ]
    assert title not in _titles(direct)
    assert not direct.dataframe and not direct.button and not direct.download_button


def test_a_role_change_takes_effect_on_the_next_action(db):
    at = app_test("manager")
    at.run()
    at.switch_page(_path("settings")).run()
    assert "Settings" in _titles(at)
    set_role(db, "test-manager", "agent", actor="test")
    at.run()
    assert not at.exception, at.exception
    assert "Settings" not in _titles(at)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(_path("settings"))


# ----------------------------------------------------------------- write widgets


def _open(role: str, page: str) -> AppTest:
    at = app_test(role)
    at.run()
    assert not at.exception, at.exception
    at.switch_page(_path(page)).run()
    assert not at.exception, at.exception
    return at


def _labels(at: AppTest) -> set[str]:
    return {b.label for b in at.button} | {b.label for b in at.form_submit_button}


CARE = [r for r in auth.ROLES if auth.can(r, "customers.view")]


@pytest.mark.parametrize("role", CARE)
def test_customer_privacy_actions_follow_the_role(db, role):
    at = _open(role, "customers")
    at.text_input(key="customers_query").input("C1").run()
    at.selectbox(key="customers_pick").select("C1").run()
    assert not at.exception, at.exception
    assert "C1" in " ".join(str(t.value) for t in at.text)  # the 360 is open
    labels = _labels(at)
    assert ("Save consent" in labels) == auth.can(role, "customers.consent")
    assert ("Erase this customer" in labels) == auth.can(role, "customers.erase")
    exports = [d for d in at.download_button if "Download everything" in d.label]
    assert bool(exports) == auth.can(role, "customers.export")


@pytest.mark.parametrize("role", CARE)
def test_merging_customers_follows_the_role(db, role):
    at = _open(role, "customers")
    at.toggle(key="customers_all_dupes").set_value(True).run()
    assert not at.exception, at.exception
    at.selectbox(key="customers_pair_pick").select_index(0).run()
    assert not at.exception, at.exception
    may = auth.can(role, "customers.merge")
    assert ("Merge the two customers" in _labels(at)) == may
    assert any("can merge these customers" in c.value for c in at.caption) == (not may)


@pytest.mark.parametrize("role", [r for r in auth.ROLES if auth.can(r, "settings.view")])
def test_user_management_follows_the_role(db, role):
    at = _open(role, "settings")
    labels = _labels(at)
    may = auth.can(role, "users.manage")
    for label in ("Add user", "Change role", "Reset password"):
        assert (label in labels) == may, (role, label)
    assert any("cannot add users" in i.value for i in at.info) == (not may)


@pytest.mark.parametrize("role", [r for r in auth.ROLES if auth.can(r, "inbox.view")])
@pytest.mark.parametrize("lose", [None, "inbox.reply", "inbox.edit"])
def test_reply_and_note_follow_the_role(db, monkeypatch, role, lose):
    """Every role that opens the inbox may reply and edit today; taking one permission
    away from the role (as a deployment's table could) takes its widgets away too."""
    if lose is not None:
        allowed, what = auth.PERMISSIONS[lose]
        monkeypatch.setitem(auth.PERMISSIONS, lose, (allowed - {role}, what))
    at = _open(role, "inbox")
    at.selectbox(key="inbox_pick").set_value(1).run()
    assert not at.exception, at.exception
    keys = {b.key for b in at.button}
    assert ({"inbox_send", "inbox_save_draft"} <= keys) == auth.can(role, "inbox.reply")
    assert ("inbox_add_note" in keys) == auth.can(role, "inbox.edit")


@pytest.mark.parametrize("role", auth.ROLES)
def test_row_level_export_on_reports_follows_the_role(db, role):
    at = _open(role, "reports")
    exports = [d for d in at.download_button if d.key == "reports_export"]
    assert bool(exports) == auth.can(role, "data.export")


@pytest.mark.parametrize("role", auth.ROLES)
def test_row_level_download_on_mentions_follows_the_role(db, role):
    at = _open(role, "mentions")
    downloads = [d for d in at.download_button if d.key == "mentions_download"]
    assert bool(downloads) == auth.can(role, "data.export")
