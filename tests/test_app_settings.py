"""The Settings page through Streamlit's AppTest, and its pure tables and charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from app_helpers import REPO, app_test, open_page
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from listenwell import store
from listenwell.app_pages import charts_settings as cs
from listenwell.config import load_settings
from listenwell.crm import auth
from listenwell.crm.rules import parse_rules, preview, shipped_rules_text
from listenwell.store import runs
from listenwell.store.escalations import latest_rule_set, list_rule_sets
from listenwell.store.models import AuditRow
from listenwell.store.users import SignInError, User, authenticate, create_user, get_user

PAGE = "app_pages/settings.py"
T0 = datetime(2024, 6, 3, 9, tzinfo=UTC)
SECRETS = {
    "x_token": "SEKRET-x-bearer-0451",
    "reddit_secret": "SEKRET-reddit-9917",
    "reddit_password": "SEKRET-pw-3321",
}
HOSTILE = '<script>alert("x")</script> **bold** [link](javascript:alert(1))'
TEXTS = [
    "my lawyer will hear about this",
    "I want to cancel my plan",
    "thanks, all good",
    "nothing to see",
    "I will cancel, and my lawyer agrees",
    HOSTILE + " cancel",
]
RULES = """
rules:
  - {name: legal, priority: urgent, when: {keywords: [lawyer]}}
  - {name: churn, priority: high, when: {keywords: [cancel]}}
  - {name: quiet, priority: low, escalate: false, when: {keywords: [nothing]}}
sla:
  timezone: UTC
  hours: {mon: 09:00-17:00, tue: 09:00-17:00, wed: 09:00-17:00, thu: 09:00-17:00,
          fri: 09:00-17:00}
  holidays: ["12-25", 2024-12-31]
  reminder_at: 0.5
  targets:
    urgent: {first_response_minutes: 15, resolution_minutes: 60}
    high: {first_response_minutes: 30, resolution_minutes: 120}
    normal: {first_response_minutes: 60, resolution_minutes: 240}
    low: {first_response_minutes: 120, resolution_minutes: 480}
  upgrades: {raise_priority: false, supervisor_minutes: 45, manager_minutes: 90}
"""
STRONG = "plum-Orchard-42!"


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite database with a few mentions, a config with secrets set; returns the URL."""
    url = f"sqlite:///{tmp_path / 'settings.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    store.upsert_mentions(
        eng,
        [
            store.Mention("x", str(i), T0 + timedelta(hours=i), t, author_handle=f"@a{i}")
            for i, t in enumerate(TEXTS)
        ],
    )
    eng.dispose()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"database_url: '{url}'\n"
        "brand: {name: Acme}\n"
        "sources:\n"
        f"  x: {{bearer_token: '{SECRETS['x_token']}'}}\n"
        "  reddit:\n"
        "    client_id: my-client-id\n"
        f"    client_secret: '{SECRETS['reddit_secret']}'\n"
        f"    password: '{SECRETS['reddit_password']}'\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    return url


@pytest.fixture
def eng(seeded: str):
    engine = store.connect(seeded)
    yield engine
    engine.dispose()


def settings_page(role: str = "admin") -> AppTest:
    at = open_page(app_test(role), PAGE)
    assert not at.exception, at.exception
    return at


# Each table of the page, known by columns no other table has (AppTest tables carry no key).
TABLES = {
    "sources": {"setup", "stored mentions"},
    "credentials": {"setting", "state"},
    "quota": {"quota", "as of"},
    "rules": {"rule", "conditions"},
    "history": {"saved by", "in force"},
    "preview_priority": {"priority", "these rules"},
    "bt_priority": {"priority", "these rules", "rules in force"},
    "bt_rules": {"rule", "these rules", "rules in force"},
    "samples": {"rule", "why"},
    "targets": {"first response (min)"},
    "hours": {"weekday", "open"},
    "policy": {"setting", "value"},
    "holidays": {"holiday", "repeats"},
    "ladder": {"step", "what happens"},
    "users": {"username", "last sign-in"},
    "permissions": {"action", "what it allows"},
}


def tables(at: AppTest, name: str) -> list[pd.DataFrame]:
    want = TABLES[name]
    return [d.value for d in at.dataframe if want <= set(d.value.columns)]


def frame(at: AppTest, name: str) -> pd.DataFrame:
    found = tables(at, name)
    assert found, f"no {name} table; tables: {[list(d.value.columns) for d in at.dataframe]}"
    return found[0]


def errors(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.error]


def page_text(at: AppTest) -> str:
    """Everything the page shows: text elements, tables, metrics, widget values."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "text", "code", "error", "info", "success", "warning"):
        parts += [str(getattr(e, "value", "")) for e in at.get(kind)]
    parts += [d.value.to_csv() for d in at.dataframe]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [str(w.value) for w in at.text_area] + [str(w.value) for w in at.text_input]
    parts += [str(c.proto) for c in at.get("plotly_chart")]
    return "\n".join(parts)


def audit(eng, action: str) -> list[tuple[str, str | None, object]]:
    with eng.connect() as conn:
        rows = conn.execute(
            select(AuditRow.actor, AuditRow.entity_id, AuditRow.detail)
            .where(AuditRow.action == action)
            .order_by(AuditRow.id)
        ).all()
    return [tuple(r) for r in rows]


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


# --------------------------------------------------------------------------- access


def test_admin_sees_all_four_tabs_without_errors(seeded):
    at = settings_page("admin")
    assert [t.label for t in at.tabs] == [
        "Sources",
        "Escalation rules",
        "SLA policies",
        "Users and roles",
    ]
    assert not errors(at)
    users = frame(at, "users")
    assert users.set_index("username").loc["test-admin", "role"] == "admin"


def test_manager_opens_settings_but_cannot_manage_users(seeded):
    at = settings_page("manager")
    assert not errors(at)
    assert any("cannot add users, change roles and passwords" in i.value for i in at.info)
    keys = {w.key for w in at.text_input}
    assert "settings_new_username" not in keys
    assert not tables(at, "users")
    # ... but manages the rules, sees the sources and the table of roles.
    assert (at.text_area(key="settings_rules_text").value or "").strip()
    assert set(frame(at, "sources")["source"]) == {
        "reddit",
        "x",
        "appstore",
        "files",
    }
    perms = frame(at, "permissions").set_index("action")
    assert perms.loc["users.manage", "admin"] and not perms.loc["users.manage", "manager"]


@pytest.mark.parametrize("role", ["agent", "analyst"])
def test_agent_and_analyst_cannot_open_settings(seeded, role):
    at = app_test(role)
    at.run()
    assert not at.exception
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)


@pytest.mark.parametrize("role", ["agent", "analyst"])
def test_the_page_itself_refuses_other_roles(seeded, role):
    at = AppTest.from_file(str(REPO / PAGE), default_timeout=60)
    at.session_state["listenwell_user"] = User(f"someone-{role}", role)
    at.run()
    assert not at.exception
    (shown,) = errors(at)
    assert shown.startswith(f"Your role ({role}) cannot open the settings page.")
    assert not at.tabs and not at.text_area


# --------------------------------------------------------------------------- sources


def test_sources_show_last_run_quota_and_credentials_as_set_or_not(seeded, eng):
    store.upsert_mentions(eng, [store.Mention("trustpilot", "r1", T0, "meh", author_handle="@r")])
    run_id = runs.start_run(eng, "x", T0)
    runs.finish_run(
        eng,
        run_id,
        status="error",
        new=7,
        duplicates=2,
        pages=3,
        retries=1,
        error="GET /2/tweets/search/recent: 503",
        quota={"limit": "450", "remaining": "447", "reset": "1717405200"},
    )
    at = settings_page("admin")
    table = frame(at, "sources").set_index("source")
    assert table.loc["x", "status"] == "error" and table.loc["x", "new"] == 7
    assert table.loc["x", "error"] == "GET /2/tweets/search/recent: 503"
    assert table.loc["x", "setup"] == "ready"
    assert table.loc["x", "stored mentions"] == len(TEXTS)
    assert table.loc["files", "status"] == "never"
    assert table.loc["reddit", "status"] == "never" and table.loc["reddit", "setup"] == "ready"
    assert table.loc["appstore", "setup"] == "set sources.appstore.app_ids"
    assert table.index.tolist() == ["reddit", "x", "appstore", "files", "trustpilot"]
    assert table.loc["trustpilot", "setup"] == "imported from files"
    assert table.loc["trustpilot", "stored mentions"] == 1
    quota = frame(at, "quota").set_index("quota")["value"].to_dict()
    assert quota == {"limit": "450", "remaining": "447", "reset": "2024-06-03 09:00:00 UTC"}
    creds = frame(at, "credentials").set_index("setting")["state"]
    assert creds["sources.x.bearer_token"] == "set"
    assert creds["sources.reddit.client_secret"] == "set"
    assert creds["sources.reddit.client_id"] == "set"
    assert creds["sources.reddit.refresh_token"] == "not set"
    assert creds["sources.x.user_token"] == "not set"
    assert set(creds.index) >= {"sources.x.consumer_key", "sources.reddit.password"}
    assert creds["sources.reddit.password"] == "set"


def test_secrets_never_appear_in_the_page(seeded, eng):
    run_id = runs.start_run(eng, "reddit", T0)
    runs.finish_run(eng, run_id, status="ok", new=1)
    at = settings_page("admin")
    text = page_text(at)
    assert "sources.x.bearer_token" in text  # the table is there ...
    for secret in SECRETS.values():
        assert secret not in text  # ... without any value
    assert "my-client-id" not in text  # credentials are set/not set, even when not secret


# --------------------------------------------------------------------------- rules


def test_rule_preview_shows_which_mentions_escalate_and_why(seeded, eng):
    at = settings_page("admin")
    at.text_area(key="settings_rules_text").input(RULES)
    at.date_input(key="settings_rules_since").set_value(None)
    click(at, "settings_rules_preview")
    assert not errors(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Mentions evaluated"] == str(len(TEXTS))
    assert metrics["Would escalate"] == "4"  # two lawyers, three cancels, one with both
    samples = frame(at, "samples")
    legal = samples[samples["rule"] == "legal"]
    assert sorted(legal["text"]) == sorted([TEXTS[0], TEXTS[4]])
    assert set(legal["why"]) == {"keywords=lawyer (any of lawyer)"}
    assert set(legal["priority"]) == {"urgent"} and legal["escalated"].all()
    churn = samples[samples["rule"] == "churn"]
    assert HOSTILE + " cancel" in churn["text"].tolist()  # shown as data ...
    assert "<script>" not in "\n".join(str(m.value) for m in at.markdown)  # ... never markup
    priorities = frame(at, "preview_priority").set_index("priority")["these rules"]
    # "quiet" fires at low, but nothing goes below the default priority (normal).
    assert priorities.to_dict() == {"urgent": 2, "high": 2, "normal": 2, "low": 0}
    assert latest_rule_set(eng) is None  # a preview saves nothing


def test_backtest_counts_by_priority_and_top_rules(seeded, eng):
    at = settings_page("manager")
    at.text_area(key="settings_rules_text").input(RULES)
    at.date_input(key="settings_rules_since").set_value(None)
    click(at, "settings_rules_backtest")
    assert not errors(at)
    expected = preview(eng, RULES)
    base = preview(eng, shipped_rules_text())
    by_priority = frame(at, "bt_priority").set_index("priority")
    assert by_priority["these rules"].to_dict() == {
        "urgent": 2,
        "high": 2,
        "normal": 2,
        "low": 0,
    }
    assert by_priority["these rules"].to_dict() == {
        p: expected.by_priority[p] for p in by_priority.index
    }
    assert by_priority["rules in force"].to_dict() == {
        p: base.by_priority[p] for p in by_priority.index
    }
    fired = frame(at, "bt_rules")
    assert fired["rule"].tolist()[:2] == ["churn", "legal"]  # most first
    assert fired.set_index("rule")["these rules"].to_dict()["churn"] == 3
    # The shipped default's legal_threat rule sees the lawyers too.
    assert fired.set_index("rule")["rules in force"].to_dict()["legal_threat"] == 2
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Mentions replayed"] == str(len(TEXTS))


def test_backtest_since_a_day_counts_only_later_mentions(seeded):
    at = settings_page("admin")
    at.text_area(key="settings_rules_text").input(RULES)
    at.date_input(key="settings_rules_since").set_value((T0 + timedelta(days=1)).date())
    click(at, "settings_rules_backtest")
    assert {m.label: m.value for m in at.metric}["Mentions replayed"] == "0"


def test_saving_a_new_rule_version_bumps_the_version_and_is_audited(seeded, eng):
    at = settings_page("admin")
    at.text_area(key="settings_rules_text").input(RULES)
    click(at, "settings_rules_save")
    assert errors(at) == [cs.md_escape("Add a note saying why, then save.")]
    assert latest_rule_set(eng) is None
    at.text_input(key="settings_rules_note").input("stricter legal rule")
    click(at, "settings_rules_save")
    assert not errors(at)
    saved = latest_rule_set(eng)
    assert saved is not None and saved.version == 1 and saved.text == RULES
    assert saved.created_by == "user:test-admin" and saved.note == "stricter legal rule"
    assert audit(eng, "rules.save") == [
        ("user:test-admin", "1", {"note": "stricter legal rule", "chars": len(RULES)})
    ]
    assert any("Saved as version 1" in s.value for s in at.success)
    assert {m.label: m.value for m in at.metric}["Version in force"] == "1"
    history = frame(at, "history")
    assert history[["version", "in force", "saved by"]].values.tolist() == [
        [1, True, "user:test-admin"]
    ]
    # Saving the same text again is refused; a changed text is version 2.
    at.text_input(key="settings_rules_note").input("again")
    click(at, "settings_rules_save")
    assert errors(at) == [cs.md_escape("Nothing to save: this is the text of version 1.")]
    at.text_area(key="settings_rules_text").input(
        RULES.replace("reminder_at: 0.5", "reminder_at: 0.6")
    )
    click(at, "settings_rules_save")
    assert [r.version for r in list_rule_sets(eng)] == [2, 1]
    assert [a[1] for a in audit(eng, "rules.save")] == ["1", "2"]
    # The SLA tab follows the version in force.
    targets = frame(at, "targets").set_index("priority")
    assert targets.loc["urgent", "first response (min)"] == 15
    assert "60%" in frame(at, "policy").set_index("setting")["value"]["pre-breach reminder"]


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("rules: [\n  - {name: x", "not YAML at line"),
        (RULES.replace("keywords: [cancel]", "keywrds: [cancel]"), "rules[churn].when.keywrds"),
        (RULES.replace("priority: high", "priority: hot"), "rules[churn].priority"),
    ],
)
def test_invalid_rules_are_one_line_errors_and_never_saved(seeded, eng, bad, problem):
    at = settings_page("admin")
    at.text_area(key="settings_rules_text").input(bad)
    for button in ("settings_rules_preview", "settings_rules_backtest"):
        click(at, button)
        shown = errors(at)
        assert len(shown) == 1 and "\n" not in shown[0]
        assert cs.md_escape(problem) in shown[0]
    at.text_input(key="settings_rules_note").input("broken")
    click(at, "settings_rules_save")
    assert len(errors(at)) == 1 and cs.md_escape(problem) in errors(at)[0]
    assert latest_rule_set(eng) is None


def test_sla_tab_shows_the_policy_of_the_rules_in_force(seeded):
    at = settings_page("manager")
    targets = frame(at, "targets").set_index("priority")
    assert targets.index.tolist() == ["urgent", "high", "normal", "low"]
    assert targets.loc["urgent", "first response (min)"] == 30
    assert targets.loc["normal", "resolution"] == "24 h"
    hours = frame(at, "hours").set_index("weekday")["open"]
    assert hours["mon"] == "08:00-18:00" and hours["sun"] == "closed"
    policy = frame(at, "policy").set_index("setting")["value"]
    assert policy["time zone"] == "Europe/Berlin"
    assert "80%" in policy["pre-breach reminder"]
    holidays = frame(at, "holidays")
    assert ["12-25", "every year"] in holidays.values.tolist()
    assert ["2026-04-03", "once"] in holidays.values.tolist()
    ladder = frame(at, "ladder")["step"].tolist()
    assert ladder == ["1. raise the priority", "2. supervisor", "3. manager"]
    assert any("edit that section in the Escalation rules tab" in c.value for c in at.caption)


# --------------------------------------------------------------------------- users


def add_user(at: AppTest, username: str, role: str, pw1: str, pw2: str | None = None) -> AppTest:
    at.text_input(key="settings_new_username").input(username)
    at.text_input(key="settings_new_name").input(f"Name of {username}")
    at.selectbox(key="settings_new_role").select(role)
    at.text_input(key="settings_new_pw1").input(pw1)
    at.text_input(key="settings_new_pw2").input(pw1 if pw2 is None else pw2)
    return click(at, "settings_new_submit")


def test_admin_adds_a_user_who_can_sign_in_and_changes_their_role(seeded, eng):
    at = settings_page("admin")
    add_user(at, "newbie", "agent", STRONG)
    assert not errors(at)
    assert any("Added user newbie as agent" in s.value for s in at.success)
    users = frame(at, "users").set_index("username")
    assert (
        users.loc["newbie", "role"] == "agent" and users.loc["newbie", "name"] == "Name of newbie"
    )
    assert authenticate(eng, "newbie", STRONG).role == "agent"
    assert STRONG not in page_text(at)

    at.selectbox(key="settings_user_pick").select("newbie")
    at.run()
    at.selectbox(key="settings_user_role").select("manager")
    click(at, "settings_user_role_save")
    assert not errors(at)
    assert get_user(eng, "newbie").role == "manager"
    assert frame(at, "users").set_index("username").loc["newbie", "role"] == ("manager")
    assert audit(eng, "user.create")[-1] == ("user:test-admin", "newbie", {"role": "agent"})
    assert audit(eng, "user.role") == [("user:test-admin", "newbie", {"role": "manager"})]
    with eng.connect() as conn:
        details = conn.execute(select(AuditRow.detail)).scalars().all()
    assert STRONG not in repr(details)


@pytest.mark.parametrize(
    ("username", "pw1", "pw2", "problem"),
    [
        ("ann", STRONG, STRONG + "x", "The two passwords differ"),
        ("ann", "short", "short", "at least 10 characters"),
        ("ann", "aaaaaaaaaaaa", "aaaaaaaaaaaa", "too few different characters"),
        ("<b>bad</b>", STRONG, STRONG, "invalid username"),
        ("test-admin", STRONG, STRONG, "already exists"),
    ],
)
def test_adding_a_user_shows_policy_errors(seeded, eng, username, pw1, pw2, problem):
    at = settings_page("admin")
    add_user(at, username, "agent", pw1, pw2)
    shown = errors(at)
    assert len(shown) == 1 and cs.md_escape(problem) in shown[0]
    assert "<b>" not in shown[0]  # a typed name is escaped, never markup
    assert [u.username for u in store.users.list_users(eng)] == ["test-admin"]


def test_admin_cannot_disable_or_demote_themselves(seeded, eng):
    at = settings_page("admin")
    at.selectbox(key="settings_user_pick").select("test-admin")
    at.run()
    at.selectbox(key="settings_user_role").select("agent")
    click(at, "settings_user_role_save")
    assert any("cannot change your own role" in e for e in errors(at))
    click(at, "settings_user_toggle")
    assert any("cannot disable your own account" in e for e in errors(at))
    me = get_user(eng, "test-admin")
    assert me.role == "admin" and not me.disabled
    assert audit(eng, "user.role") == [] and audit(eng, "user.disable") == []


def test_disable_enable_and_reset_password(seeded, eng):
    create_user(eng, "bob", "agent", STRONG, "Bob", actor="test")
    at = settings_page("admin")
    at.selectbox(key="settings_user_pick").select("bob")
    at.run()
    click(at, "settings_user_toggle")
    assert get_user(eng, "bob").disabled
    with pytest.raises(SignInError):
        authenticate(eng, "bob", STRONG)
    assert at.button(key="settings_user_toggle").label == "Enable"
    click(at, "settings_user_toggle")
    assert not get_user(eng, "bob").disabled

    new = "new-Secret-pass-7"
    at.text_input(key="settings_user_pw1").input(new)
    at.text_input(key="settings_user_pw2").input(new + "?")
    click(at, "settings_user_pw_save")
    assert any("passwords differ" in e for e in errors(at))
    at.text_input(key="settings_user_pw1").input(new)
    at.text_input(key="settings_user_pw2").input(new)
    click(at, "settings_user_pw_save")
    assert not errors(at)
    assert authenticate(eng, "bob", new).username == "bob"
    with pytest.raises(SignInError):
        authenticate(eng, "bob", STRONG)
    assert [a[0] for a in audit(eng, "user.password")] == ["user:test-admin"]
    assert [a[0] for a in audit(eng, "user.disable") + audit(eng, "user.enable")] == [
        "user:test-admin",
        "user:test-admin",
    ]


# --------------------------------------------------------------------------- pure builders


def test_md_escape_leaves_no_markup():
    escaped = cs.md_escape("[x](javascript:1) **b** <i>\n:red[c]")
    assert escaped == r"\[x\]\(javascript\:1\) \*\*b\*\* \<i\> \:red\[c\]"


def test_credentials_frame_holds_no_value(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"sources: {{x: {{bearer_token: '{SECRETS['x_token']}', consumer_key: ''}}}}\n",
        encoding="utf-8",
    )
    creds = cs.credentials_frame(load_settings(cfg), ["x", "reddit", "files"])
    assert SECRETS["x_token"] not in creds.to_csv()
    states = creds.set_index("setting")["state"]
    assert states["sources.x.bearer_token"] == "set"
    assert states["sources.x.consumer_key"] == "not set"  # empty counts as not set
    assert set(creds["source"]) == {"x", "reddit"}
    assert creds.set_index("setting")["secret"].to_dict()["sources.reddit.client_id"] is False


def test_permissions_frame_matches_auth_can():
    perms = cs.permissions_frame().set_index("action")
    assert list(perms.index) == list(auth.PERMISSIONS)
    for action in auth.PERMISSIONS:
        for role in auth.ROLES:
            assert bool(perms.loc[action, role]) == auth.can(role, action)


def test_sla_frames_of_a_custom_policy():
    spec = parse_rules(RULES)
    hours = cs.hours_frame(spec).set_index("weekday")["open"]
    assert hours["fri"] == "09:00-17:00" and hours["sat"] == "closed"
    assert cs.holidays_frame(spec).values.tolist() == [
        ["12-25", "every year"],
        ["2024-12-31", "once"],
    ]
    ladder = cs.ladder_frame(spec)
    assert ladder["step"].tolist() == ["1. supervisor", "2. manager"]  # no priority raising
    assert ladder["window"].tolist() == ["45 min", "1 h 30 min"]
    assert "50%" in cs.policy_frame(spec).set_index("setting")["value"]["pre-breach reminder"]
    no_hours = RULES.split("  hours:")[0] + "  reminder_at" + RULES.split("  reminder_at")[1]
    around = cs.hours_frame(parse_rules(no_hours))["open"]
    assert set(around) == {"around the clock"}


def test_quota_values_and_charts():
    run = runs.RunRecord(
        1,
        "reddit",
        T0,
        T0,
        "ok",
        1,
        0,
        0,
        1,
        0,
        None,
        {"remaining": 598.0, "used": 2, "reset_timestamp": 1717405200.5},
    )
    q = cs.quota_frame({"reddit": run}).set_index("quota")["value"].to_dict()
    assert q == {"remaining": "598", "used": "2", "reset_timestamp": "2024-06-03 09:00:00 UTC"}
    assert cs.quota_frame({}).empty
    cand = pd.DataFrame(
        {"rule": ["churn", HOSTILE], "these rules": [3, 1], "rules in force": [0, 2]}
    )
    fig = cs.rules_fired_chart(cand)
    assert all("<script>" not in str(y) for trace in fig.data for y in trace.y)
    assert {t.name for t in fig.data} == {"these rules", "rules in force"}
