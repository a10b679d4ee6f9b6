"""Escalations: the queue by priority and SLA time left, why each item escalated, its history.

Service agents work the queue top down: most pressing priority first, then the
highest escalation level, then the least business time left on the SLA clock
(``store.escalations.escalation_queue``). The countdown refreshes on its own
every 30 seconds. Picking a conversation shows the breakdown of the rules that
fired (each condition, the value seen and its threshold), the SLA clock, and
the upgrade history; one click opens the customer 360 or the inbox.

Post text and handles are shown as data only (tables, plain text).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from listenwell import store
from listenwell.app_pages import charts_care, common
from listenwell.crm.rules import RulesError, RuleSet, rules_in_force
from listenwell.crm.sla import LEVELS, Assessment, assess
from listenwell.store.escalations import (
    QueueItem,
    conversation_escalation,
    escalation_history,
    escalation_queue,
)
from listenwell.store.inbox import get_conversation
from listenwell.store.links import effective_links

REFRESH_S = 30
CUSTOMERS_PAGE = "app_pages/customers.py"
INBOX_PAGE = "app_pages/inbox.py"
_APP_ROOT = Path(__file__).resolve().parents[1]

common.require("escalations.view")
st.title("Escalations")
st.caption(
    "Open escalated or upgraded conversations: most pressing priority first, then the highest "
    "escalation level, then the least SLA time left (business time; time pending on the "
    "customer does not count)."
)

eng = common.engine()
try:
    rules: RuleSet = rules_in_force(eng, default_path=common.settings().escalations.rules_file)
except RulesError as exc:
    common.fail(f"The escalation rules in force cannot be read: {exc}")
except store.StoreError as exc:
    common.fail(f"The database could not answer: {exc}")
tz = rules.policy.calendar.tz


@common._cached
def _queue(
    url: str, rule_key: str, everything: bool, limit: int, at: datetime, _rules: RuleSet
) -> list[QueueItem]:
    """The queue at ``at`` under the rules in force (``rule_key`` names them for the cache)."""
    return escalation_queue(
        common._engine(url), _rules.policy, at, everything=everything, limit=limit
    )


def _local(t: datetime | None) -> str:
    return "-" if t is None else t.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def _level(level: int | None) -> str:
    if level is None:
        return "-"
    return LEVELS[level] if 0 <= level < len(LEVELS) else str(level)


def _target(a: Assessment) -> str:
    return f"{a.metric.replace('_', ' ')} ({a.stage})"


def _frame(items: list[QueueItem]) -> pd.DataFrame:
    rows = [
        {
            "conversation_id": i.conversation_id,
            "priority": i.priority,
            "level": _level(i.level),
            "state": i.sla.state,
            "time left": charts_care.countdown(i.sla.remaining_s),
            "left_minutes": round(i.sla.remaining_s / 60, 1),
            "SLA used": min(100.0, max(0.0, 100 * i.sla.elapsed_s / i.sla.window_s))
            if i.sla.window_s
            else 100.0,
            "target": _target(i.sla),
            "due": _local(i.sla.due_at),
            "rules": ", ".join(i.rules),
            "status": i.status,
            "assignee": i.assignee,
            "source": i.source,
            "author_handle": i.author_handle,
            "text": i.text,
        }
        for i in items
    ]
    return pd.DataFrame(rows, columns=list(rows[0]) if rows else None)


controls = st.columns([2, 2, 3])
everything = controls[0].toggle(
    "Every open conversation",
    key="esc_all",
    help="Also the conversations no rule escalated and no SLA breach upgraded.",
)
limit = controls[1].select_slider(
    "Rows", options=[50, 100, 200, 500], value=100, key="esc_limit", help="The top of the queue."
)
show_chart = controls[2].toggle(
    "Show the countdown chart", key="esc_chart", help="Business minutes left per conversation."
)


def _now() -> datetime:
    """Now, on a 30-second step, so reruns within the step share one cached queue."""
    t = datetime.now(UTC)
    return t - timedelta(seconds=t.second % REFRESH_S, microseconds=t.microsecond)


@st.fragment(run_every=timedelta(seconds=REFRESH_S))
def _queue_panel() -> None:
    at = _now()
    items = common.query(_queue, f"{rules.version}:{rules.origin}", everything, limit, at, rules)
    if not items:
        st.success(
            "Nothing is escalated right now." if not everything else "No open conversations."
        )
        return
    df = _frame(items)
    st.caption(
        f"{len(items):,} conversations; SLA clocks as of {_local(at)} (rules "
        f"{rules.origin}); the countdown refreshes every {REFRESH_S} s."
    )
    st.dataframe(
        df.drop(columns=["left_minutes"]),
        hide_index=True,
        width="stretch",
        key="esc_table",
        column_config={
            "conversation_id": st.column_config.NumberColumn("Case", format="%d"),
            "SLA used": st.column_config.ProgressColumn(
                "SLA used", min_value=0, max_value=100, format="%.0f%%"
            ),
            "text": st.column_config.TextColumn("Text", width="large"),
            "author_handle": st.column_config.TextColumn("Author"),
        },
    )
    if show_chart:
        st.plotly_chart(charts_care.sla_countdown(df.head(50)), width="stretch")
        st.plotly_chart(charts_care.queue_by_priority(df), width="stretch")


_queue_panel()

# ---------------------------------------------------------------------------- one conversation

items = common.query(_queue, f"{rules.version}:{rules.origin}", everything, limit, _now(), rules)
if not items:
    st.stop()
by_id = {i.conversation_id: i for i in items}
handoff = st.session_state.pop("escalations_open", None)
if isinstance(handoff, int) and handoff in by_id:
    st.session_state["esc_pick"] = handoff
if st.session_state.get("esc_pick") not in by_id:
    st.session_state.pop("esc_pick", None)
st.divider()
picked = st.selectbox(
    "Conversation",
    list(by_id),
    key="esc_pick",
    format_func=lambda cid: (
        f"#{cid} · {by_id[cid].priority} · {_level(by_id[cid].level)} · "
        f"{charts_care.countdown(by_id[cid].sla.remaining_s)}"
    ),
    help="Why it escalated, its SLA clock and its history.",
)
assert picked is not None
try:
    conv = conversation_escalation(eng, picked)
    history = escalation_history(eng, picked)
    inbox_conv = get_conversation(eng, picked)
    customer_id = inbox_conv.customer_id
    if customer_id is None:
        link = effective_links(eng, [conv.mention_id]).get(conv.mention_id)
        customer_id = link.customer_id if link else None
except store.NotFoundError:
    common.fail(f"Conversation #{picked} no longer exists.")
except store.StoreError as exc:
    common.fail(f"The database could not answer: {exc}")

st.subheader(f"Conversation #{conv.conversation_id}")
a = assess(rules.policy, conv.clock, datetime.now(UTC))
m = st.columns(5)
m[0].metric("Priority", conv.priority)
m[1].metric("Level", _level(conv.level))
m[2].metric("SLA target", _target(a))
m[3].metric("Time left", charts_care.countdown(a.remaining_s))
m[4].metric("Due", _local(a.due_at) if a.due_at else ("paused" if a.paused else "-"))
st.dataframe(
    pd.DataFrame(
        [
            {
                "source": conv.source,
                "author_handle": conv.author_handle,
                "status": conv.status,
                "assignee": inbox_conv.assignee,
                "customer_id": customer_id,
                "text": conv.text,
            }
        ]
    ),
    hide_index=True,
    width="stretch",
    key="esc_post",
    column_config={"text": st.column_config.TextColumn("Text", width="large")},
)

buttons = st.columns(2)
customers_ready = (_APP_ROOT / CUSTOMERS_PAGE).exists() and common.can("customers.view")
if buttons[0].button(
    "Open customer 360",
    key="esc_open_customer",
    icon=":material/person:",
    disabled=customer_id is None or not customers_ready,
    help=(
        "No customer is linked to this conversation."
        if customer_id is None
        else "The customer's profile, timeline and satisfaction."
        if customers_ready
        else "The Customers page is not available to you."
    ),
):
    st.session_state["customer_360_id"] = customer_id
    st.switch_page(CUSTOMERS_PAGE)
if buttons[1].button(
    "Open in the inbox",
    key="esc_open_inbox",
    icon=":material/inbox:",
    disabled=not common.can("inbox.view"),
    help="Assign, reply, add notes and change the status.",
):
    st.session_state["inbox_open"] = conv.conversation_id
    st.switch_page(INBOX_PAGE)

st.markdown("**Why it escalated**")
reasons = conv.escalation.get("reasons")
reasons = reasons if isinstance(reasons, list) else []
version = "-" if conv.rule_version is None else f"v{conv.rule_version}"
evaluated = conv.escalation.get("evaluated_at")
if reasons:
    st.caption(
        f"Rules {version}; each condition of each rule that fired, the value it saw and the "
        "threshold it compared it with."
        + (f" Evaluated {str(evaluated)[:16].replace('T', ' ')} UTC." if evaluated else "")
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "rule": str(r.get("rule")),
                    "condition": str(r.get("condition")),
                    "value": str(r.get("value")),
                    "threshold": str(r.get("threshold")),
                    "contribution": str(r.get("contribution")),
                }
                for r in reasons
                if isinstance(r, dict)
            ]
        ),
        hide_index=True,
        width="stretch",
        key="esc_reasons",
    )
else:
    st.info(
        f"No rule fired (rules {version}): it is here because an SLA breach upgraded it, or "
        "because every open conversation is shown."
    )

st.markdown("**Upgrade history**")


def _what(e: Any) -> str:
    d = e.detail or {}
    parts = []
    before = d.get("from_priority")
    if e.kind in ("upgraded", "prioritised") and before and before != e.priority:
        parts.append(f"priority {before} -> {e.priority or '-'}")
    if e.from_level is not None and e.to_level is not None and e.from_level != e.to_level:
        parts.append(f"level {_level(e.from_level)} -> {_level(e.to_level)}")
    if d.get("metric"):
        parts.append(
            f"{str(d['metric']).replace('_', ' ')} target {d.get('target_minutes')} min, "
            f"{d.get('elapsed_minutes')} min elapsed"
        )
    if d.get("rules"):
        parts.append("rules " + ", ".join(str(r) for r in d["rules"]))
    return "; ".join(parts)


if history:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": _local(e.at),
                    "event": e.kind,
                    "priority": e.priority,
                    "level": _level(e.to_level),
                    "what": _what(e),
                    "by": e.actor,
                }
                for e in history
            ]
        ),
        hide_index=True,
        width="stretch",
        key="esc_history",
    )
else:
    st.caption("No escalation events yet.")
