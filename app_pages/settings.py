"""Settings (admins and managers): sources, escalation rules, SLA policies, users and roles.

Four tabs. **Sources**: each source's setup, credentials (only ever "set" or "not
set"), latest collector run and the quota it reported. **Escalation rules**: the
version in force and its history, and an editor whose text is previewed,
backtested and saved through :mod:`listenwell.crm.rules` (the functions behind
``listenwell rules preview|backtest|save``). **SLA policies**: the ``sla:``
section of the rules in force, as tables. **Users and roles**: accounts and what
each role may do. Every change is written with ``actor=common.actor()``, so the
audit log names the signed-in user.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Literal

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from listenwell import store
from listenwell.app_pages import charts_settings as cs
from listenwell.app_pages import common
from listenwell.crm import rules as crm_rules
from listenwell.crm.auth import MIN_PASSWORD_LENGTH, PERMISSIONS, ROLES
from listenwell.store import escalations as store_escalations
from listenwell.store import runs as store_runs
from listenwell.store import users as store_users

common.require("settings.view")

FLASH = "settings_flash"
RULES_TEXT = "settings_rules_text"
RULES_RESULT = "settings_rules_result"
MAX_NOTE = 500


def _say_error(message: str) -> None:
    """A one-line error whose text may quote what someone typed: shown as plain text."""
    st.error(cs.md_escape(message), icon=":material/error:")


def _flash(message: str) -> None:
    """Show ``message`` after the rerun that refreshes the page's tables."""
    st.session_state[FLASH] = message
    st.rerun()


def _cannot(action: str) -> str:
    role = common.current_user().role
    return f"Your role ({role}) cannot {PERMISSIONS[action][1].lower()}."


def _one_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _guarded(tab: Callable[[], None]) -> None:
    """Run one tab; a database failure becomes a one-line message and the other tabs still
    render."""
    try:
        tab()
    except (store.StoreError, SQLAlchemyError) as exc:
        _say_error(f"The database could not answer: {_one_line(exc)}")


# --------------------------------------------------------------------------- sources

FILES = "files"


def _readiness() -> dict[str, str]:
    """Per source: ``ready``, or the settings still to be set (named, never valued)."""
    from listenwell.collectors.registry import create, default_registry

    out: dict[str, str] = {}
    for name in default_registry():
        collector = create(name, common.settings())
        try:
            out[name] = collector.missing() or "ready"
        finally:
            collector.close()
    out[FILES] = "no credentials needed (listenwell import mentions FILE)"
    return out


def sources_tab() -> None:
    """Setup, credentials, latest run and quota of every source."""
    if not common.can("sources.view"):
        st.info(_cannot("sources.view"), icon=":material/lock:")
        return
    readiness = _readiness()
    last = store_runs.last_runs(common.engine())
    counts = common.query(common.source_counts, store.MentionFilter())
    stored = {str(k): int(v) for k, v in zip(counts["source"], counts["mentions"], strict=True)}
    # Sources that only came from files (a CSV of reviews, say) are listed after the collectors.
    names = list(readiness) + sorted(set(stored) - set(readiness))
    readiness |= {name: "imported from files" for name in names if name not in readiness}

    st.subheader("Sources")
    st.dataframe(
        cs.runs_frame(names, last, readiness, stored),
        hide_index=True,
        width="stretch",
        column_config={
            "last run": st.column_config.DatetimeColumn(
                "Last run (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "finished": st.column_config.DatetimeColumn(
                "Finished (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "error": st.column_config.TextColumn("Errors", width="large"),
        },
    )
    st.caption(
        "The latest collector run of each source (`listenwell collect`): status ok, error (some "
        "streams failed) or failed (nothing could be read), with what it stored. File imports "
        "are not recorded as runs; their mentions count under the source named in the file."
    )

    st.subheader("Credentials")
    creds = cs.credentials_frame(common.settings(), list(readiness))
    st.dataframe(creds, hide_index=True, width="stretch")
    st.caption(
        "Only whether each credential is set is shown, never its value. Set them in the config "
        "file or as LISTENWELL_SOURCES__<SOURCE>__<SETTING> environment variables. The App Store "
        "feed and file imports need none."
    )

    st.subheader("Quota and rate limits")
    quota = cs.quota_frame(last)
    if quota.empty:
        st.info("No source has reported a rate limit yet.", icon=":material/speed:")
    else:
        st.dataframe(
            quota,
            hide_index=True,
            width="stretch",
            column_config={
                "as of": st.column_config.DatetimeColumn("As of (UTC)", format="YYYY-MM-DD HH:mm")
            },
        )
    st.caption(
        "What each source reported on its latest run: X sends x-rate-limit-limit, -remaining and "
        "-reset with every page; Reddit's remaining, used and reset come from praw. The App Store "
        "feed and file imports have no quota. Retries (above) count 429, 5xx and timeouts that "
        "were retried; a wait longer than sources.max_wait_s ends that source's run."
    )


# --------------------------------------------------------------------------- escalation rules


def _rules_in_force() -> tuple[crm_rules.RuleSet | None, str | None]:
    """The rules in force, or ``None`` and the one-line reason they are unusable."""
    path = common.settings().escalations.rules_file
    try:
        return crm_rules.rules_in_force(common.engine(), default_path=path), None
    except crm_rules.RulesError as exc:
        return None, str(exc)
    except store.StoreError as exc:
        return None, f"The database could not answer: {exc}"


def _default_since() -> date | None:
    first, last, _ = common.query(common.data_range)
    if not isinstance(first, date) or not isinstance(last, date):
        return None
    return max(first, last - timedelta(days=90))


def _show_preview(result: crm_rules.Preview, limit: int) -> None:
    per_day = list(result.escalated_per_day.values())
    c1, c2, c3 = st.columns(3)
    c1.metric("Mentions evaluated", f"{result.evaluated:,}")
    c2.metric("Would escalate", f"{result.escalated:,}")
    c3.metric(
        "Escalations per day",
        f"{sum(per_day) / len(per_day):.1f}" if per_day else "0",
        help=f"Mean over the {len(per_day)} days with escalations; at most "
        f"{max(per_day, default=0):,} in a day.",
    )
    if result.evaluated >= limit:
        st.caption(f"Stopped at {limit:,} mentions; raise the limit to cover more.")
    frame = cs.priority_frame(result)
    left, right = st.columns(2)
    with left:
        st.dataframe(frame, hide_index=True, width="stretch")
    with right:
        fired = cs.rules_fired_frame(result)
        st.dataframe(fired, hide_index=True, width="stretch")
    if not fired.empty:
        st.plotly_chart(cs.rules_fired_chart(fired), width="stretch", key="settings_preview_chart")
    _show_samples(result)


def _show_samples(result: crm_rules.Preview) -> None:
    st.markdown("**Sample mentions and why each rule fired**")
    samples = cs.samples_frame(result)
    if samples.empty:
        st.caption("No rule fired on these mentions.")
        return
    st.dataframe(
        samples,
        hide_index=True,
        width="stretch",
        column_config={
            "posted": st.column_config.DatetimeColumn("Posted (UTC)", format="YYYY-MM-DD HH:mm"),
            "text": st.column_config.TextColumn("Text", width="large"),
            "why": st.column_config.TextColumn("Why (condition=value (threshold))", width="large"),
        },
    )


def _show_backtest(result: crm_rules.Backtest, limit: int) -> None:
    cand, base, ch = result.candidate, result.baseline, result.changes
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Mentions replayed", f"{cand.evaluated:,}")
    c2.metric(
        "Would escalate",
        f"{cand.escalated:,}",
        delta=f"{cand.escalated - base.escalated:+,} vs {base.origin}",
        delta_color="off",
    )
    c3.metric("Newly escalated", f"{ch['newly_escalated']:,}")
    c4.metric("No longer escalated", f"{ch['no_longer_escalated']:,}")
    c5.metric("Priority raised / lowered", f"{ch['raised']:,} / {ch['lowered']:,}")
    if cand.evaluated >= limit:
        st.caption(f"Stopped at {limit:,} mentions; raise the limit to cover more.")
    by_priority = cs.priority_frame(cand, base)
    fired = cs.rules_fired_frame(cand, base)
    left, right = st.columns(2)
    with left:
        st.markdown("**Counts by priority**")
        st.dataframe(by_priority, hide_index=True, width="stretch")
        st.plotly_chart(cs.priority_chart(by_priority), width="stretch", key="settings_bt_pchart")
    with right:
        st.markdown("**Top rules fired**")
        st.dataframe(fired, hide_index=True, width="stretch")
        if not fired.empty:
            st.plotly_chart(cs.rules_fired_chart(fired), width="stretch", key="settings_bt_rchart")
    i = result.inbox
    st.markdown("**Against the inbox as it stands** (hot = escalated, or high/urgent)")
    st.dataframe(
        [
            {"conversations": i["conversations"], "both hot": i["both"]}
            | {"only the rules": i["rules_only"], "only the inbox": i["inbox_only"]}
            | {"neither": i["neither"]}
        ],
        hide_index=True,
        width="stretch",
    )
    _show_samples(cand)


def _reset_editor(text: str) -> None:
    st.session_state[RULES_TEXT] = text
    st.session_state.pop(RULES_RESULT, None)


def rules_tab(in_force: crm_rules.RuleSet | None, problem: str | None) -> None:
    """The rules in force and their history; an editor to preview, backtest and save."""
    eng = common.engine()
    if in_force is None:
        _say_error(problem or "The rules in force cannot be read.")
    else:
        spec = in_force.spec
        enabled = sum(1 for r in spec.rules if r.enabled)
        c1, c2, c3 = st.columns(3)
        c1.metric(
            "Version in force",
            str(in_force.version) if in_force.version else "default",
            help="The newest saved version is in force; until one is saved, the rules file "
            "(escalations.rules_file, else the shipped config/rules.yaml) is.",
        )
        c2.metric("Rules enabled", f"{enabled} of {len(spec.rules)}")
        c3.metric("Default priority", spec.default_priority)
        with st.expander("Rules in force", expanded=False):
            st.dataframe(cs.rules_frame(spec), hide_index=True, width="stretch")
    history = store_escalations.list_rule_sets(eng)
    st.markdown("**History**")
    if history:
        st.dataframe(
            cs.rule_sets_frame(history, in_force.version if in_force else None),
            hide_index=True,
            width="stretch",
            column_config={
                "saved at": st.column_config.DatetimeColumn(
                    "Saved at (UTC)", format="YYYY-MM-DD HH:mm"
                )
            },
        )
    else:
        st.caption("No version saved yet: the default rules file is in force.")

    st.subheader("Edit")
    base_text = in_force.text if in_force is not None else crm_rules.shipped_rules_text()
    if not common.can("rules.edit"):
        st.info(_cannot("rules.edit"), icon=":material/lock:")
        st.code(base_text, language="yaml")
        return
    if RULES_TEXT not in st.session_state:
        st.session_state[RULES_TEXT] = base_text
    text = st.text_area(
        "Rules and SLA policies (YAML)",
        key=RULES_TEXT,
        height=420,
        help="The whole rules document: rules: and sla:. Unknown keys are errors, so a typo "
        "never silently switches a rule off. The comments of config/rules.yaml document "
        "every key.",
    )
    st.button(
        "Reset to the rules in force",
        key="settings_rules_reset",
        on_click=_reset_editor,
        args=(base_text,),
        icon=":material/undo:",
    )
    c1, c2, c3 = st.columns(3)
    since = c1.date_input(
        "Mentions posted since",
        value=_default_since(),
        key="settings_rules_since",
        help="Preview and backtest the mentions posted on or after this day (UTC), through the "
        "newest one. Empty: all stored mentions.",
    )
    limit = int(
        c2.number_input(
            "At most this many mentions",
            min_value=100,
            max_value=1_000_000,
            value=50_000,
            step=1_000,
            key="settings_rules_limit",
        )
    )
    samples = int(
        c3.number_input(
            "Sample mentions per rule",
            min_value=1,
            max_value=20,
            value=3,
            key="settings_rules_samples_n",
        )
    )
    day = since if isinstance(since, date) else None
    b1, b2 = st.columns(2)
    if b1.button("Preview", key="settings_rules_preview", icon=":material/visibility:"):
        try:
            with st.spinner("Running the rules over the stored mentions…"):
                result = crm_rules.preview(
                    eng, text, since=day, limit=limit, samples=samples, origin="editor"
                )
        except crm_rules.RulesError as exc:
            st.session_state.pop(RULES_RESULT, None)
            _say_error(str(exc))
        else:
            st.session_state[RULES_RESULT] = ("preview", text, limit, result)
    if b2.button("Backtest", key="settings_rules_backtest", icon=":material/history:"):
        try:
            with st.spinner("Replaying the rules and the rules in force…"):
                bt = crm_rules.backtest(
                    eng,
                    text,
                    since=day,
                    limit=limit,
                    samples=samples,
                    origin="editor",
                    baseline=in_force,
                )
        except crm_rules.RulesError as exc:
            st.session_state.pop(RULES_RESULT, None)
            _say_error(str(exc))
        else:
            st.session_state[RULES_RESULT] = ("backtest", text, limit, bt)
    shown = st.session_state.get(RULES_RESULT)
    if shown is not None and shown[1] == text:
        if shown[0] == "preview":
            _show_preview(shown[3], shown[2])
        else:
            _show_backtest(shown[3], shown[2])
    elif shown is not None:
        st.caption("The text changed since the last preview or backtest: run it again.")

    st.markdown("**Save as a new version**")
    note = st.text_input(
        "Note (why)",
        key="settings_rules_note",
        max_chars=MAX_NOTE,
        help="Shown in the history and written to the audit log with your name.",
    )
    if st.button("Save as new version", key="settings_rules_save", type="primary"):
        if not common.can("rules.edit"):
            _say_error(_cannot("rules.edit"))
        elif not note.strip():
            _say_error("Add a note saying why, then save.")
        elif in_force is not None and in_force.version and text.strip() == in_force.text.strip():
            _say_error(f"Nothing to save: this is the text of version {in_force.version}.")
        else:
            try:
                saved = crm_rules.save_rules(eng, text, common.actor(), note)
            except crm_rules.RulesError as exc:
                _say_error(str(exc))
            except store.StoreError as exc:
                _say_error(f"Not saved: {exc}")
            else:
                _flash(
                    f"Saved as version {saved.version}; it is in force now. Open conversations "
                    "are re-evaluated by the next escalations sweep."
                )
    st.caption(
        "Saving validates the text first; an invalid text is never saved. The same functions "
        "back `listenwell rules preview`, `backtest` and `save`."
    )


# --------------------------------------------------------------------------- SLA policies


def sla_tab(in_force: crm_rules.RuleSet | None) -> None:
    """Targets, business hours, holidays, reminder and upgrade ladder of the rules in force."""
    if in_force is None:
        st.info(
            "The SLA policies come from the rules in force, which cannot be read (see the "
            "Escalation rules tab)."
        )
        return
    spec = in_force.spec
    label = f"version {in_force.version}" if in_force.version else "the default rules file"
    st.caption(
        f"From the sla: section of the rules in force ({label}). To change them, edit that "
        "section in the Escalation rules tab, preview or backtest it, and save a new version. "
        "Minutes are business minutes: inside the opening hours, never on holidays, and not "
        "while a conversation is pending on the customer."
    )
    st.markdown("**Targets per priority**")
    st.dataframe(cs.targets_frame(spec), hide_index=True, width="stretch")
    left, right = st.columns(2)
    with left:
        st.markdown("**Business hours** (local time)")
        st.dataframe(cs.hours_frame(spec), hide_index=True, width="stretch")
        st.markdown("**Policy**")
        st.dataframe(cs.policy_frame(spec), hide_index=True, width="stretch")
    with right:
        st.markdown("**Holidays** (closed all day)")
        holidays = cs.holidays_frame(spec)
        if holidays.empty:
            st.caption("No holidays.")
        else:
            st.dataframe(holidays, hide_index=True, width="stretch")
        st.markdown("**Upgrade ladder on a breach**")
        st.dataframe(cs.ladder_frame(spec), hide_index=True, width="stretch")


# --------------------------------------------------------------------------- users and roles


USERS_MSG = "settings_users_msg"
PICK, NEW_ROLE = "settings_user_pick", "settings_user_role"
NEW_FIELDS = ("settings_new_username", "settings_new_name")
NEW_PASSWORDS = ("settings_new_pw1", "settings_new_pw2")
RESET_PASSWORDS = ("settings_user_pw1", "settings_user_pw2")


# The user actions run as widget callbacks, before the page is drawn: the tables then show
# the change at once, and the typed passwords are wiped from the session state right away.


def _report(kind: Literal["error", "success", "info"], message: str) -> None:
    st.session_state[USERS_MSG] = (kind, message)


def _show_report() -> None:
    found = st.session_state.pop(USERS_MSG, None)
    if found is None:
        return
    kind, message = found
    icons = {"error": ":material/error:", "success": ":material/check_circle:"}
    getattr(st, kind)(cs.md_escape(message), icon=icons.get(kind, ":material/info:"))


def _take_passwords(keys: tuple[str, str]) -> tuple[str, str]:
    """The two typed passwords, wiped from the session state as they are read."""
    typed = tuple(str(st.session_state.get(k) or "") for k in keys)
    for k in keys:
        st.session_state[k] = ""
    return typed[0], typed[1]


def _allowed() -> bool:
    if common.can("users.manage"):
        return True
    _report("error", _cannot("users.manage"))
    return False


def _picked() -> str | None:
    """The username picked under "Change a user"."""
    name = st.session_state.get(PICK)
    return str(name) if name else None


def _is_me(username: str) -> bool:
    me = str(common.current_user().username)
    return username.lower() == me.lower()


def _on_add_user() -> None:
    pw1, pw2 = _take_passwords(NEW_PASSWORDS)
    if not _allowed():
        return
    if pw1 != pw2:
        _report("error", "The two passwords differ: type the same password twice.")
        return
    ss = st.session_state
    try:
        user = store_users.create_user(
            common.engine(),
            str(ss.get("settings_new_username") or ""),
            str(ss.get("settings_new_role") or ""),
            pw1,
            str(ss.get("settings_new_name") or "") or None,
            actor=common.actor(),
        )
    except (store.StoreError, SQLAlchemyError) as exc:
        _report("error", f"Not added: {_one_line(exc)}")
        return
    for key in NEW_FIELDS:
        ss[key] = ""
    _report("success", f"Added user {user.username} as {user.role}.")


def _on_change_role() -> None:
    name, role = _picked(), str(st.session_state.get(NEW_ROLE) or "")
    if not _allowed() or name is None:
        return
    if _is_me(name):
        _report(
            "error",
            "You cannot change your own role: ask another admin (this keeps an admin able "
            "to manage users).",
        )
        return
    try:
        eng = common.engine()
        if store_users.get_user(eng, name).role == role:
            _report("info", f"{name} already has the role {role}.")
            return
        store_users.set_role(eng, name, role, actor=common.actor())
    except (store.StoreError, SQLAlchemyError) as exc:
        _report("error", f"Role not changed: {_one_line(exc)}")
        return
    _report("success", f"{name} is now {role}.")


def _on_toggle() -> None:
    name = _picked()
    if not _allowed() or name is None:
        return
    if _is_me(name):
        _report("error", "You cannot disable your own account: ask another admin.")
        return
    try:
        eng = common.engine()
        disable = not store_users.get_user(eng, name).disabled
        store_users.disable_user(eng, name, actor=common.actor(), disabled=disable)
    except (store.StoreError, SQLAlchemyError) as exc:
        _report("error", f"Not changed: {_one_line(exc)}")
        return
    _report("success", f"{name} is {'disabled' if disable else 'enabled'}.")


def _on_reset_password() -> None:
    pw1, pw2 = _take_passwords(RESET_PASSWORDS)
    name = _picked()
    if not _allowed() or name is None:
        return
    if pw1 != pw2:
        _report("error", "The two passwords differ: type the same password twice.")
        return
    try:
        store_users.set_password(common.engine(), name, pw1, actor=common.actor())
    except (store.StoreError, SQLAlchemyError) as exc:
        _report("error", f"Password not changed: {_one_line(exc)}")
        return
    _report("success", f"New password set for {name}; any sign-in lockout is lifted.")


def _add_user_form() -> None:
    st.markdown("**Add a user**")
    with st.form("settings_add_user"):
        c1, c2, c3 = st.columns(3)
        c1.text_input("Username", key=NEW_FIELDS[0], max_chars=100)
        c2.text_input("Name", key=NEW_FIELDS[1], max_chars=200)
        c3.selectbox("Role", ROLES, index=ROLES.index("agent"), key="settings_new_role")
        c4, c5 = st.columns(2)
        c4.text_input("Initial password", type="password", key=NEW_PASSWORDS[0])
        c5.text_input("Password again", type="password", key=NEW_PASSWORDS[1])
        st.form_submit_button(
            "Add user", key="settings_new_submit", type="primary", on_click=_on_add_user
        )
    st.caption(
        f"Passwords need at least {MIN_PASSWORD_LENGTH} characters and some variety; they are "
        "stored only as argon2id hashes."
    )


def _change_user(users: list[store_users.User]) -> None:
    st.markdown("**Change a user**")
    by_name = {u.username: u for u in users}
    picked = st.selectbox(
        "User",
        list(by_name),
        key=PICK,
        format_func=lambda n: (
            f"{n} ({by_name[n].role}{', disabled' if by_name[n].disabled else ''})"
        ),
        on_change=lambda: st.session_state.pop(NEW_ROLE, None),
    )
    if picked is None:
        return
    user = by_name[picked]
    c1, c2, c3 = st.columns(3)
    with c1:
        st.selectbox("New role", ROLES, index=ROLES.index(user.role), key=NEW_ROLE)
        st.button("Change role", key="settings_user_role_save", on_click=_on_change_role)
    with c2, st.form("settings_user_pw_form"):
        st.text_input("New password", type="password", key=RESET_PASSWORDS[0])
        st.text_input("New password again", type="password", key=RESET_PASSWORDS[1])
        st.form_submit_button(
            "Reset password", key="settings_user_pw_save", on_click=_on_reset_password
        )
    with c3:
        st.caption(
            "A disabled user cannot sign in, and a signed-in one is signed out at their next "
            "action."
        )
        st.button(
            "Enable" if user.disabled else "Disable",
            key="settings_user_toggle",
            on_click=_on_toggle,
        )


def users_tab() -> None:
    """The users (for admins) and the table of what each role may do (for everyone here)."""
    if common.can("users.manage"):
        _show_report()
        users = store_users.list_users(common.engine())
        st.dataframe(
            cs.users_frame(users),
            hide_index=True,
            width="stretch",
            column_config={
                "last sign-in": st.column_config.DatetimeColumn(
                    "Last sign-in (UTC)", format="YYYY-MM-DD HH:mm"
                )
            },
        )
        _add_user_form()
        if users:
            _change_user(users)
        st.caption(
            "Every change is written to the audit log under your name; passwords are stored "
            "only as argon2id hashes. You cannot disable yourself or change your own role."
        )
    else:
        st.info(_cannot("users.manage"), icon=":material/lock:")
    st.markdown("**What each role may do**")
    st.dataframe(cs.permissions_frame(), hide_index=True, width="stretch")


# --------------------------------------------------------------------------- the page

st.title("Settings")
if FLASH in st.session_state:
    st.success(st.session_state.pop(FLASH), icon=":material/check_circle:")
rules_now, rules_problem = _rules_in_force()
sources, rules, sla, people = st.tabs(
    ["Sources", "Escalation rules", "SLA policies", "Users and roles"]
)
with sources:
    _guarded(sources_tab)
with rules:
    _guarded(lambda: rules_tab(rules_now, rules_problem))
with sla:
    _guarded(lambda: sla_tab(rules_now))
with people:
    _guarded(users_tab)
