"""Pure tables and charts for the Settings page: values in, DataFrames or plotly figures out.

No Streamlit and no SQL: the page reads the store and the rules, these shape what
it shows, and the tests check them without a browser. Secrets never pass through
here as text: :func:`credentials_frame` only says whether each one is set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from pydantic import BaseModel, SecretStr

from listenwell.app_pages.charts import plain
from listenwell.config import Settings
from listenwell.config.settings import is_secret, iter_settings
from listenwell.crm.auth import PERMISSIONS, ROLES
from listenwell.crm.rules import Preview, RulesFile
from listenwell.crm.sla import PRIORITIES, WEEKDAYS
from listenwell.store.escalations import RuleSetRecord
from listenwell.store.runs import RunRecord
from listenwell.store.users import User

__all__ = [
    "CREDENTIAL_NAMES",
    "credentials_frame",
    "holidays_frame",
    "hours_frame",
    "ladder_frame",
    "md_escape",
    "permissions_frame",
    "policy_frame",
    "priority_chart",
    "priority_frame",
    "quota_frame",
    "rule_sets_frame",
    "rules_fired_chart",
    "rules_fired_frame",
    "rules_frame",
    "runs_frame",
    "samples_frame",
    "targets_frame",
    "users_frame",
]

_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "legend_title_text": ""}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~:$])")

CREDENTIAL_NAMES = frozenset({"client_id", "username"})
"""Non-secret settings that are still credentials: shown only as set or not set."""


def md_escape(text: str) -> str:
    """``text`` with every Markdown-significant character backslash-escaped.

    For the few messages that must go through ``st.error``/``st.success`` (which read
    Markdown) and quote something a person typed, such as a store error naming a bad
    username: the text then shows as written and can never become a link or markup.
    """
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


# --------------------------------------------------------------------------- sources


def _value_at(settings: BaseModel, dotted: str) -> Any:
    node: Any = settings
    for part in dotted.split("."):
        node = getattr(node, part, None)
        if node is None:
            return None
    return node


def _is_set(value: Any) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value().strip())
    if isinstance(value, str):
        return bool(value.strip())
    return value is not None


def credentials_frame(settings: Settings, sources: Sequence[str]) -> pd.DataFrame:
    """Each source's credential settings and whether they are set, never their values.

    Args:
        settings: The loaded settings.
        sources: Source names (``sources.<name>`` sections); names without a section,
            such as ``files``, get no rows.

    Returns:
        Columns ``source``, ``setting`` (the dotted key), ``secret`` (bool) and
        ``state`` (``"set"`` or ``"not set"``).
    """
    rows = []
    for key, field in iter_settings(Settings):
        parts = key.split(".")
        if len(parts) != 3 or parts[0] != "sources" or parts[1] not in sources:
            continue
        secret = is_secret(field)
        if not secret and parts[2] not in CREDENTIAL_NAMES:
            continue
        state = "set" if _is_set(_value_at(settings, key)) else "not set"
        rows.append({"source": parts[1], "setting": key, "secret": secret, "state": state})
    return pd.DataFrame(rows, columns=["source", "setting", "secret", "state"])


def runs_frame(
    sources: Sequence[str],
    runs: Mapping[str, RunRecord],
    readiness: Mapping[str, str],
    stored: Mapping[str, int],
) -> pd.DataFrame:
    """One row per source: readiness, stored mentions and its latest collector run.

    Args:
        sources: Source names, in display order.
        runs: The latest run per source (:func:`listenwell.store.runs.last_runs`).
        readiness: Per source, ``"ready"`` or what is still to be configured.
        stored: Mentions stored per source.

    Returns:
        Columns ``source``, ``setup``, ``stored mentions``, ``last run`` (start, UTC),
        ``finished``, ``status`` (``never`` when it never ran), ``new``,
        ``duplicates``, ``quarantined``, ``pages``, ``retries``, ``error``.
    """
    rows = []
    for name in sources:
        run = runs.get(name)
        rows.append(
            {
                "source": name,
                "setup": readiness.get(name, ""),
                "stored mentions": int(stored.get(name, 0)),
                "last run": run.started_at if run else None,
                "finished": run.finished_at if run else None,
                "status": run.status if run else "never",
                "new": run.new if run else None,
                "duplicates": run.duplicates if run else None,
                "quarantined": run.quarantined if run else None,
                "pages": run.pages if run else None,
                "retries": run.retries if run else None,
                "error": (run.error or "") if run else "",
            }
        )
    cols = ["source", "setup", "stored mentions", "last run", "finished", "status", "new"]
    cols += ["duplicates", "quarantined", "pages", "retries", "error"]
    return pd.DataFrame(rows, columns=cols)


def _quota_value(key: str, value: Any) -> str:
    """Reset times (epoch seconds, as X's headers and praw give them) as UTC times."""
    if "reset" in key:
        try:
            stamp = float(value)
        except (TypeError, ValueError):
            return str(value)
        if stamp > 1e9:  # an epoch time, not a number of seconds to wait
            return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def quota_frame(runs: Mapping[str, RunRecord]) -> pd.DataFrame:
    """The rate-limit state each source reported on its latest run.

    Returns:
        Columns ``source``, ``as of`` (when that run started), ``quota`` (the key the
        source uses: ``limit``, ``remaining``, ``reset``, ``used``...) and ``value``
        (reset times as UTC times); no rows for runs that recorded none.
    """
    rows = []
    for name, run in sorted(runs.items()):
        for key, value in sorted((run.quota or {}).items()):
            rows.append(
                {
                    "source": name,
                    "as of": run.started_at,
                    "quota": str(key),
                    "value": _quota_value(str(key), value),
                }
            )
    return pd.DataFrame(rows, columns=["source", "as of", "quota", "value"])


# --------------------------------------------------------------------------- rules


def rule_sets_frame(records: Sequence[RuleSetRecord], in_force: int | None) -> pd.DataFrame:
    """Saved rule versions, newest first: ``version``, ``in force``, ``saved by``,
    ``saved at``, ``note``."""
    rows = [
        {
            "version": r.version,
            "in force": r.version == in_force,
            "saved by": r.created_by,
            "saved at": r.created_at,
            "note": r.note or "",
        }
        for r in records
    ]
    return pd.DataFrame(rows, columns=["version", "in force", "saved by", "saved at", "note"])


def _condition_text(name: str, value: Any) -> str:
    if isinstance(value, list):
        shown = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        shown = ", ".join(f"{k} {v}" for k, v in value.items())
    else:
        shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{name}: {shown}"


def rules_frame(spec: RulesFile) -> pd.DataFrame:
    """The rules of a rules document, in file order.

    Returns:
        Columns ``rule``, ``priority``, ``escalates``, ``enabled``, ``conditions``
        (``keywords: a, b; sentiment: negative``) and ``description``.
    """
    rows = []
    for rule in spec.rules:
        conditions = rule.when.model_dump(exclude_none=True)
        rows.append(
            {
                "rule": rule.name,
                "priority": rule.priority,
                "escalates": rule.escalate,
                "enabled": rule.enabled,
                "conditions": "; ".join(_condition_text(k, v) for k, v in conditions.items()),
                "description": rule.description or "",
            }
        )
    cols = ["rule", "priority", "escalates", "enabled", "conditions", "description"]
    return pd.DataFrame(rows, columns=cols)


def _why(reasons: Iterable[Mapping[str, Any]]) -> str:
    return "; ".join(f"{r['condition']}={r['value']} ({r['threshold']})" for r in reasons)


def samples_frame(preview: Preview) -> pd.DataFrame:
    """The sample mentions of a preview, one row per rule and mention, with why it fired.

    Returns:
        Columns ``rule``, ``mention_id``, ``posted``, ``source``, ``author``, ``text``,
        ``priority``, ``escalated`` and ``why`` (``condition=value (threshold)`` per
        condition of that rule).
    """
    rows = [
        {
            "rule": rule,
            "mention_id": s.mention_id,
            "posted": s.created_at,
            "source": s.source,
            "author": s.author_handle or "",
            "text": s.text,
            "priority": s.priority,
            "escalated": s.escalated,
            "why": _why(s.reasons),
        }
        for rule, kept in preview.samples.items()
        for s in kept
    ]
    cols = ["rule", "mention_id", "posted", "source", "author", "text", "priority"]
    cols += ["escalated", "why"]
    return pd.DataFrame(rows, columns=cols)


def priority_frame(candidate: Preview, baseline: Preview | None = None) -> pd.DataFrame:
    """Mentions per decided priority, highest first: ``priority``, ``these rules`` and,
    with a baseline, ``rules in force``."""
    rows = []
    for p in reversed(PRIORITIES):
        row: dict[str, Any] = {"priority": p, "these rules": candidate.by_priority.get(p, 0)}
        if baseline is not None:
            row["rules in force"] = baseline.by_priority.get(p, 0)
        rows.append(row)
    cols = ["priority", "these rules"] + (["rules in force"] if baseline is not None else [])
    return pd.DataFrame(rows, columns=cols)


def rules_fired_frame(candidate: Preview, baseline: Preview | None = None) -> pd.DataFrame:
    """Mentions each rule fired on, most first: ``rule``, ``these rules`` and, with a
    baseline, ``rules in force`` (0 where a rule is not in that set)."""
    names = list(candidate.by_rule)
    if baseline is not None:
        names += [n for n in baseline.by_rule if n not in candidate.by_rule]
    rows = []
    for name in names:
        row: dict[str, Any] = {"rule": name, "these rules": candidate.by_rule.get(name, 0)}
        if baseline is not None:
            row["rules in force"] = baseline.by_rule.get(name, 0)
        rows.append(row)
    cols = ["rule", "these rules"] + (["rules in force"] if baseline is not None else [])
    frame = pd.DataFrame(rows, columns=cols)
    return frame.sort_values(["these rules", "rule"], ascending=[False, True], ignore_index=True)


def _long(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    values = [c for c in frame.columns if c != key]
    return frame.melt(id_vars=[key], value_vars=values, var_name="rules", value_name="mentions")


def priority_chart(frame: pd.DataFrame, *, title: str = "Mentions by priority") -> go.Figure:
    """Grouped bars of :func:`priority_frame` (these rules beside the rules in force)."""
    fig = px.bar(
        _long(frame, "priority"),
        x="priority",
        y="mentions",
        color="rules",
        barmode="group",
        title=title,
        category_orders={"priority": list(reversed(PRIORITIES))},
        labels={"priority": "", "mentions": "Mentions"},
    )
    fig.update_layout(**_LAYOUT)
    return fig


def rules_fired_chart(
    frame: pd.DataFrame, *, top: int = 10, title: str = "Top rules fired"
) -> go.Figure:
    """Horizontal grouped bars of the ``top`` rows of :func:`rules_fired_frame`.

    Rule names are typed by people, so they are drawn with :func:`charts.plain`.
    """
    head = frame.head(top).assign(rule=lambda f: f["rule"].map(plain))
    fig = px.bar(
        _long(head, "rule"),
        x="mentions",
        y="rule",
        color="rules",
        barmode="group",
        orientation="h",
        title=title,
        category_orders={"rule": head["rule"].tolist()},
        labels={"rule": "", "mentions": "Mentions"},
    )
    fig.update_layout(**_LAYOUT)
    return fig


# --------------------------------------------------------------------------- SLA policies


def _span(minutes: float) -> str:
    if minutes >= 60 and minutes % 60 == 0:
        hours = minutes / 60
        return f"{hours:g} h"
    if minutes > 60:
        return f"{minutes // 60:g} h {minutes % 60:g} min"
    return f"{minutes:g} min"


def targets_frame(spec: RulesFile) -> pd.DataFrame:
    """First-response and resolution targets per priority (urgent first), in business
    minutes and as readable spans."""
    rank = {p: i for i, p in enumerate(PRIORITIES)}
    rows = []
    for p, t in sorted(spec.sla.targets.items(), key=lambda kv: -rank[kv[0]]):
        rows.append(
            {
                "priority": p,
                "first response (min)": t.first_response_minutes,
                "first response": _span(t.first_response_minutes),
                "resolution (min)": t.resolution_minutes,
                "resolution": _span(t.resolution_minutes),
            }
        )
    cols = ["priority", "first response (min)", "first response", "resolution (min)"]
    return pd.DataFrame(rows, columns=[*cols, "resolution"])


def hours_frame(spec: RulesFile) -> pd.DataFrame:
    """Opening hours per weekday (``weekday``, ``open``); ``closed`` for a day without
    windows, ``around the clock`` when the rules give no hours at all."""
    hours = spec.sla.hours
    rows = []
    by_day = {} if hours is None else {str(k).strip().lower()[:3]: v for k, v in hours.items()}
    for day in WEEKDAYS:
        if hours is None:
            shown = "around the clock"
        else:
            windows = by_day.get(day) or []
            shown = ", ".join(windows) if windows else "closed"
        rows.append({"weekday": day, "open": shown})
    return pd.DataFrame(rows, columns=["weekday", "open"])


def holidays_frame(spec: RulesFile) -> pd.DataFrame:
    """Holidays as written: ``holiday`` (``YYYY-MM-DD`` or ``MM-DD``) and ``repeats``
    (``every year`` or ``once``)."""
    rows = []
    for item in spec.sla.holidays:
        text = item.isoformat() if isinstance(item, date) else str(item).strip()
        once = isinstance(item, date) or len(text) > 5
        rows.append({"holiday": text, "repeats": "once" if once else "every year"})
    return pd.DataFrame(rows, columns=["holiday", "repeats"])


def policy_frame(spec: RulesFile) -> pd.DataFrame:
    """The policy's other settings as ``setting``/``value`` rows: time zone, default
    priority, pre-breach reminder."""
    sla = spec.sla
    rows = [
        {"setting": "time zone", "value": sla.timezone},
        {"setting": "default priority (no rule fired)", "value": spec.default_priority},
        {
            "setting": "pre-breach reminder",
            "value": f"once {sla.reminder_at:.0%} of a target's business time has passed",
        },
    ]
    return pd.DataFrame(rows, columns=["setting", "value"])


def ladder_frame(spec: RulesFile) -> pd.DataFrame:
    """The upgrade ladder on a breach, one row per step: ``step``, ``what happens``,
    ``window`` (business time allowed at that step)."""
    up = spec.sla.upgrades
    rows = []
    if up.raise_priority:
        rows.append(
            {
                "step": "1. raise the priority",
                "what happens": "one level up per breach, until urgent; each level gets its "
                "own targets",
                "window": "the new priority's target",
            }
        )
    rows.append(
        {
            "step": f"{len(rows) + 1}. supervisor",
            "what happens": "a supervisor is called in",
            "window": _span(up.supervisor_minutes),
        }
    )
    rows.append(
        {
            "step": f"{len(rows) + 1}. manager",
            "what happens": "a manager is called in; a breach after that is recorded once",
            "window": _span(up.manager_minutes),
        }
    )
    return pd.DataFrame(rows, columns=["step", "what happens", "window"])


# --------------------------------------------------------------------------- users and roles


def users_frame(users: Sequence[User]) -> pd.DataFrame:
    """Columns ``username``, ``name``, ``role``, ``disabled``, ``last sign-in``."""
    rows = [
        {
            "username": u.username,
            "name": u.display_name or "",
            "role": u.role,
            "disabled": u.disabled,
            "last sign-in": u.last_sign_in_at,
        }
        for u in users
    ]
    return pd.DataFrame(rows, columns=["username", "name", "role", "disabled", "last sign-in"])


def permissions_frame() -> pd.DataFrame:
    """Which role may do what, from :data:`listenwell.crm.auth.PERMISSIONS`: columns
    ``action``, ``what it allows`` and one boolean column per role."""
    rows = []
    for action, (allowed, description) in PERMISSIONS.items():
        row: dict[str, Any] = {"action": action, "what it allows": description}
        row.update({role: role in allowed for role in ROLES})
        rows.append(row)
    return pd.DataFrame(rows, columns=["action", "what it allows", *ROLES])
