"""Inbox: the conversations to work on, one at a time, as ``listenwell inbox`` does.

The list is one page of ``store.inbox.list_conversations`` (keyset paging: no
count, no OFFSET, so the first page is as fast at a million mentions as at a
hundred), filtered by status, priority, assignee, tag, escalation and text, and
the filters can be saved as named views (``store.views``), private or shared.

An open conversation shows its thread (earlier posts, notes and replies), the
author's profile, the linked customer with the link's evidence (confirm or
reject it), who else has it open (``store.presence``) and who changed it (the
audit log). Agents assign it, tag it, add notes, change its status and reply
with canned responses; replies go out through the platform's own client
(``crm.replies``) and a failed send stays as a failed draft with the reason.

Every change names the version the agent saw (optimistic locking): if someone
changed the conversation meanwhile, nothing is written and a one-line message
says who. Each write is audit-logged as ``user:<name>``. Post text, handles and
names are shown as data only (tables and plain text), never as markdown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from listenwell import store
from listenwell.app_pages import common
from listenwell.crm import auth
from listenwell.crm.replies import SENDERS, retry_reply, send_reply
from listenwell.crm.templates import (
    Template,
    TemplateError,
    load_templates,
    render,
    reply_context,
    templates_file,
)
from listenwell.store import inbox as ib
from listenwell.store import presence, views
from listenwell.store.escalations import MentionFacts, iter_facts
from listenwell.store.links import decide_link, effective_links, linker_result, list_decisions
from listenwell.store.users import User, list_users

PAGE = "inbox"
PAGE_SIZE = 50
PRESENCE_REFRESH_S = 30
CUSTOMERS_PAGE = "app_pages/customers.py"
_APP_ROOT = Path(__file__).resolve().parents[1]

ANYONE, ME, UNASSIGNED = "*anyone", "*me", "*unassigned"
_ASSIGNEE_LABELS = {ANYONE: "anyone", ME: "me", UNASSIGNED: "nobody (unassigned)"}
# The filters of a fresh inbox; a saved view stores these keys.
DEFAULTS: dict[str, Any] = {
    "status": list(ib.ACTIVE_STATUSES),
    "priority": [],
    "assignee": ANYONE,
    "tag": "",
    "escalated": False,
    "search": "",
    "order": "priority",
}

_MD = re.compile(r"([\\`*_{}\[\]<>#|~$])")


def _safe(text: object) -> str:
    """Text from the database or an error, made inert for a one-line markdown message."""
    return _MD.sub(r"\\\1", " ".join(str(text).split()))


def _key(name: str) -> str:
    return f"inbox_f_{name}"


# ---------------------------------------------------------------------------- cached reads


@common._cached
def _conversation_page(
    url: str,
    status: tuple[str, ...],
    priority: tuple[str, ...],
    assignee: str | None,
    tag: str | None,
    escalated: bool | None,
    search: str | None,
    order: str,
    after: str | None,
) -> ib.ConversationPage:
    """One page of :func:`listenwell.store.inbox.list_conversations`."""
    return ib.list_conversations(
        common._engine(url),
        status=status or None,
        priority=priority or None,
        assignee=assignee,
        tag=tag,
        escalated=escalated,
        search=search,
        order=order,
        after=after,
        limit=PAGE_SIZE,
        timeout_s=common.settings().query_timeout_s,
    )


@common._cached
def _saved_views(url: str, owner: str) -> list[views.SavedView]:
    """The inbox views ``owner`` can use (their own and the shared ones)."""
    return views.list_views(common._engine(url), owner=owner, page=PAGE)


@common._cached
def _users(url: str) -> list[User]:
    """Every dashboard user."""
    return list_users(common._engine(url))


def _clear_lists() -> None:
    _conversation_page.clear()


# ---------------------------------------------------------------------------- messages


def _flash(kind: str, text: str) -> None:
    """Keep a one-line message for the next run (callbacks run before the page draws)."""
    st.session_state.setdefault("inbox_flash", []).append((kind, text))


def _show_flash() -> None:
    for kind, text in st.session_state.pop("inbox_flash", []):
        {"success": st.success, "warning": st.warning, "info": st.info}.get(kind, st.error)(text)


def _conflict_text(exc: ib.ConflictError) -> str:
    when = ""
    if exc.changed_at is not None:
        at = exc.changed_at.astimezone(UTC)
        when = (
            f" at {at:%H:%M} UTC"
            if at.date() == datetime.now(UTC).date()
            else f" on {at:%Y-%m-%d %H:%M} UTC"
        )
    return (
        f"Not saved: conversation #{exc.conversation_id} was changed by "
        f"{_safe(exc.changed_by or 'someone')}{when} while you had it open (now version "
        f"{exc.version}, you saw {exc.expected_version}). It now shows the latest; check and "
        "try again."
    )


def _attempt(action: str, fn: Callable[[], str | None]) -> None:
    """Run one write, as the signed-in user may: a message either way, never a traceback."""
    if not common.can(action):
        _flash("error", f"Your role cannot do this ({_safe(auth.PERMISSIONS[action][1])}).")
        return
    try:
        done = fn()
    except ib.ConflictError as exc:
        _flash("error", _conflict_text(exc))
    except (ValueError, store.StoreError) as exc:  # includes TemplateError, NotFoundError
        _flash("error", f"Not saved: {_safe(exc)}")
    else:
        if done:
            _flash("success", done)
    finally:
        _clear_lists()


# ---------------------------------------------------------------------------- actions


def _changed(before: int, after: ib.Conversation, what: str) -> str:
    if after.version == before:
        return f"Nothing to change: {what}."
    return f"Conversation #{after.id}: {what} (version {after.version})."


def _assign(cid: int, version: int, who: str | None) -> None:
    def run() -> str:
        name = who if who is not None else st.session_state.get(f"inbox_assign_to_{cid}")
        assignee = None if name in (None, "", UNASSIGNED) else str(name)
        c = ib.update_conversation(
            eng, cid, expected_version=version, actor=common.actor(), assignee=assignee
        )
        return _changed(
            version, c, f"assigned to {_safe(c.assignee)}" if c.assignee else "unassigned"
        )

    _attempt("inbox.edit", run)


def _set_status(cid: int, version: int) -> None:
    def run() -> str:
        new = str(st.session_state.get("inbox_status_to") or "")
        c = ib.update_conversation(
            eng, cid, expected_version=version, actor=common.actor(), status=new
        )
        return _changed(version, c, f"status {c.status}")

    _attempt("inbox.edit", run)


def _tag(cid: int, version: int) -> None:
    def run() -> str:
        added = [t for t in re.split(r"[,\s]+", st.session_state.get("inbox_tags_add", "")) if t]
        removed = list(st.session_state.get("inbox_tags_remove") or [])
        c = ib.update_conversation(
            eng,
            cid,
            expected_version=version,
            actor=common.actor(),
            add_tags=added,
            remove_tags=removed,
        )
        st.session_state["inbox_tags_add"] = ""
        st.session_state["inbox_tags_remove"] = []
        return _changed(version, c, f"tags {_safe(', '.join(c.tags) or '(none)')}")

    _attempt("inbox.edit", run)


def _note(cid: int) -> None:
    key = f"inbox_note_{cid}"

    def run() -> str:
        n = ib.add_note(eng, cid, author=common.actor(), body=st.session_state.get(key, ""))
        st.session_state[key] = ""
        return f"Note {n.id} added to conversation #{cid}."

    _attempt("inbox.edit", run)


def _use_template(cid: int, values: dict[str, str]) -> None:
    name = st.session_state.get("inbox_template")
    if name is None or name not in templates:
        return
    try:
        st.session_state[f"inbox_reply_{cid}"] = render(templates[name].text, values)
        st.session_state[f"inbox_reply_template_{cid}"] = name
    except TemplateError as exc:
        _flash("error", f"That canned reply cannot be used: {_safe(exc)}")


def _reply_outcome(reply: ib.Reply, maybe_posted: bool) -> str | None:
    if reply.status == "sent":
        return f"Reply {reply.id} sent on {reply.platform} as {_safe(reply.external_id or '?')}."
    note = " It may have been posted: check the thread first." if maybe_posted else ""
    _flash(
        "error",
        f"Reply {reply.id} failed: {_safe(reply.error or 'unknown error')}. It is kept as a "
        f"failed draft; send it again from the replies below.{note}",
    )
    return None


def _reply(cid: int, send: bool) -> None:
    key = f"inbox_reply_{cid}"

    def run() -> str | None:
        who = common.actor()
        draft = ib.create_reply(
            eng,
            cid,
            body=st.session_state.get(key, ""),
            actor=who,
            template=st.session_state.get(f"inbox_reply_template_{cid}"),
        )
        st.session_state[key] = ""
        st.session_state.pop(f"inbox_reply_template_{cid}", None)
        if not send:
            return f"Reply {draft.id} saved as a draft."
        result = send_reply(eng, draft.id, common.settings(), actor=who)
        return _reply_outcome(result.reply, result.maybe_posted)

    _attempt("inbox.reply", run)


def _retry(reply_id: int) -> None:
    def run() -> str | None:
        result = retry_reply(eng, reply_id, common.settings(), actor=common.actor())
        return _reply_outcome(result.reply, result.maybe_posted)

    _attempt("inbox.reply", run)


def _decide(mention_id: int, decision: str) -> None:
    def run() -> str:
        customer = st.session_state.get("inbox_link_customer")
        if not customer:
            raise ValueError("pick the customer to decide on")
        note = (st.session_state.get("inbox_link_note") or "").strip() or None
        d = decide_link(eng, mention_id, str(customer), decision, common.actor(), note)
        st.session_state["inbox_link_note"] = ""
        return f"Link to customer {_safe(d.customer_id)} {d.decision}."

    _attempt("links.decide", run)


# ---------------------------------------------------------------------------- saved views


def _current_filters() -> dict[str, Any]:
    return {name: st.session_state.get(_key(name), default) for name, default in DEFAULTS.items()}


def _clean(filters: dict[str, Any]) -> dict[str, Any]:
    """A view's filters with anything unknown dropped (views outlive code changes)."""
    out = dict(DEFAULTS)
    status = filters.get("status")
    if isinstance(status, list):
        out["status"] = [s for s in status if s in ib.STATUSES]
    priority = filters.get("priority")
    if isinstance(priority, list):
        out["priority"] = [p for p in priority if p in ib.PRIORITIES]
    for name in ("assignee", "tag", "search"):
        if isinstance(filters.get(name), str):
            out[name] = filters[name]
    out["escalated"] = bool(filters.get("escalated", False))
    if filters.get("order") in ("priority", "newest"):
        out["order"] = filters["order"]
    return out


def _apply_view() -> None:
    view_id = st.session_state.get("inbox_view")
    if view_id is None:
        return
    try:
        view = views.get_view(eng, int(view_id), viewer=common.current_user().username)
    except store.StoreError as exc:
        _flash("error", f"That view cannot be opened: {_safe(exc)}")
        return
    for name, value in _clean(view.filters).items():
        st.session_state[_key(name)] = value


def _save_view() -> None:
    def run() -> str:
        v = views.save_view(
            eng,
            owner=common.current_user().username,
            page=PAGE,
            name=st.session_state.get("inbox_view_name", ""),
            filters=_current_filters(),
            shared=bool(st.session_state.get("inbox_view_shared")),
            actor=common.actor(),
        )
        _saved_views.clear()
        st.session_state["inbox_view"] = v.id
        st.session_state["inbox_view_name"] = ""
        return f"View {_safe(v.name)} saved" + (" and shared." if v.shared else ".")

    _attempt("inbox.view", run)


def _delete_view(view_id: int) -> None:
    def run() -> str:
        views.delete_view(eng, view_id, owner=common.current_user().username, actor=common.actor())
        _saved_views.clear()
        st.session_state["inbox_view"] = None
        return "View deleted."

    _attempt("inbox.view", run)


# ---------------------------------------------------------------------------- paging


def _next_page(cursor: str) -> None:
    st.session_state["inbox_cursors"].append(cursor)


def _previous_page() -> None:
    if len(st.session_state["inbox_cursors"]) > 1:
        st.session_state["inbox_cursors"].pop()


def _row_picked() -> None:
    state = st.session_state.get("inbox_table")
    try:
        rows = list(state["selection"]["rows"]) if state else []
    except (KeyError, TypeError):
        rows = []
    ids = st.session_state.get("inbox_page_ids", [])
    if rows and 0 <= rows[0] < len(ids):
        st.session_state["inbox_pick"] = ids[rows[0]]


# ============================================================================ the page

common.require("inbox.view")
eng = common.engine()
user = common.current_user()
url = common.settings().database_url
st.title("Inbox")
st.caption(
    "Conversations to work on, most pressing first. The sidebar's filters are for the "
    "listening pages; the inbox has its own below."
)
_show_flash()

for name, default in DEFAULTS.items():
    st.session_state.setdefault(_key(name), list(default) if isinstance(default, list) else default)

# -- saved views
saved: list[views.SavedView] = common.query(_saved_views, user.username)
by_view = {v.id: v for v in saved}
if st.session_state.get("inbox_view") not in by_view:
    st.session_state["inbox_view"] = None
vcols = st.columns([3, 3, 1, 1], vertical_alignment="bottom")
vcols[0].selectbox(
    "Saved view",
    [None, *by_view],
    key="inbox_view",
    on_change=_apply_view,
    format_func=lambda v: (
        "(none)"
        if v is None
        else by_view[v].name
        + ("" if by_view[v].owner == user.username else f" (shared by {by_view[v].owner})")
    ),
    help="Your views, then those others shared. Picking one sets the filters.",
)
vcols[1].text_input(
    "Save these filters as", key="inbox_view_name", placeholder="e.g. My urgent ones"
)
vcols[2].checkbox("Shared", key="inbox_view_shared", help="Everyone sees it in their list.")
vcols[3].button("Save view", key="inbox_view_save", on_click=_save_view)
chosen = by_view.get(st.session_state.get("inbox_view"))
if chosen is not None and chosen.owner == user.username:
    st.button(
        "Delete this view",
        key="inbox_view_delete",
        on_click=_delete_view,
        args=(chosen.id,),
        icon=":material/delete:",
    )

# -- filters
agents = [
    u.username for u in common.query(_users) if not u.disabled and auth.can(u.role, "inbox.edit")
]
assignee_options = [ANYONE, ME, UNASSIGNED, *agents]
if st.session_state[_key("assignee")] not in assignee_options:
    assignee_options.append(st.session_state[_key("assignee")])
fcols = st.columns([3, 2, 2, 2, 2])
fcols[0].multiselect("Status", list(ib.STATUSES), key=_key("status"), help="Empty: every status.")
fcols[1].multiselect(
    "Priority", list(ib.PRIORITIES), key=_key("priority"), help="Empty: every priority."
)
fcols[2].selectbox(
    "Assigned to",
    assignee_options,
    key=_key("assignee"),
    format_func=lambda a: _ASSIGNEE_LABELS.get(a, a),
)
fcols[3].text_input("Tag", key=_key("tag"), help="Only conversations with this tag.")
fcols[4].selectbox(
    "Order",
    ["priority", "newest"],
    key=_key("order"),
    format_func=lambda o: {"priority": "most pressing", "newest": "newest first"}[o],
    help="Most pressing: urgent first, then the longest waiting.",
)
gcols = st.columns([4, 2])
gcols[0].text_input(
    "Text or author contains", key=_key("search"), help="Case-insensitive; matched literally."
)
gcols[1].checkbox("Escalated only", key=_key("escalated"))

f = _current_filters()
tag_filter = f["tag"].strip() or None
if tag_filter is not None:
    try:
        tag_filter = ib.normalize_tag(tag_filter)
    except ValueError as exc:
        common.fail(f"Tag filter: {_safe(exc)}")
assignee_filter = {ANYONE: None, ME: user.username, UNASSIGNED: ""}.get(
    f["assignee"], f["assignee"]
)
query_args = (
    tuple(f["status"]),
    tuple(f["priority"]),
    assignee_filter,
    tag_filter,
    True if f["escalated"] else None,
    f["search"].strip() or None,
    f["order"],
)
filter_key = json.dumps(query_args)
if st.session_state.get("inbox_filter_key") != filter_key:
    st.session_state["inbox_filter_key"] = filter_key
    st.session_state["inbox_cursors"] = [None]
cursors: list[str | None] = st.session_state["inbox_cursors"]
page: ib.ConversationPage = common.query(_conversation_page, *query_args, cursors[-1])

# -- the list
if not page.items:
    st.info("No conversations match these filters.")
else:
    frame = page.frame()
    frame["tags"] = frame["tags"].map(lambda t: ", ".join(t))
    st.session_state["inbox_page_ids"] = [c.id for c in page.items]
    st.dataframe(
        frame[
            [
                "id",
                "priority",
                "status",
                "escalated",
                "assignee",
                "tags",
                "source",
                "author_handle",
                "mentioned_at",
                "text",
                "customer_id",
                "updated_by",
                "updated_at",
            ]
        ],
        hide_index=True,
        width="stretch",
        key="inbox_table",
        on_select=_row_picked,
        selection_mode="single-row",
        column_config={
            "id": st.column_config.NumberColumn("Case", format="%d"),
            "author_handle": st.column_config.TextColumn("Author"),
            "mentioned_at": st.column_config.DatetimeColumn(
                "Posted (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "text": st.column_config.TextColumn("Text", width="large"),
            "customer_id": st.column_config.TextColumn("Customer"),
            "updated_by": st.column_config.TextColumn("Changed by"),
            "updated_at": st.column_config.DatetimeColumn(
                "Changed (UTC)", format="YYYY-MM-DD HH:mm"
            ),
        },
    )
pcols = st.columns([1, 1, 4])
pcols[0].button(
    "Previous page",
    key="inbox_prev",
    on_click=_previous_page,
    disabled=len(cursors) <= 1,
    icon=":material/chevron_left:",
)
pcols[1].button(
    "Next page",
    key="inbox_next",
    on_click=_next_page,
    args=(page.next_after,),
    disabled=page.next_after is None,
    icon=":material/chevron_right:",
)
pcols[2].caption(f"Page {len(cursors)}, {len(page.items)} conversations, {PAGE_SIZE} per page.")

# -- which conversation is open
labels = {
    c.id: f"#{c.id} · {c.priority} · {c.status} · {c.source}"
    + (" · escalated" if c.escalated else "")
    for c in page.items
}
handoff = st.session_state.pop("inbox_open", None)
if isinstance(handoff, int):
    st.session_state["inbox_pick"] = handoff
options: list[int] = list(labels)
current = st.session_state.get("inbox_pick")
if isinstance(current, int) and current not in labels:
    options.insert(0, current)
elif current is not None and not isinstance(current, int):
    st.session_state["inbox_pick"] = None
st.divider()
cid = st.selectbox(
    "Open conversation",
    options,
    index=None,
    key="inbox_pick",
    format_func=lambda i: labels.get(i, f"#{i}"),
    placeholder="Pick a conversation (or a row above)",
)
previous = st.session_state.get("inbox_present")
if previous is not None and previous != cid:
    try:
        presence.leave(eng, int(previous), user.username)
    except store.StoreError:
        pass  # presence is a hint; it expires by itself
    st.session_state["inbox_present"] = None
if cid is None:
    st.stop()

# ============================================================================ one conversation

try:
    conv = ib.get_conversation(eng, cid)
    items = ib.thread(eng, cid)
    replies = ib.list_replies(eng, conversation_id=cid, limit=200)
except store.NotFoundError:
    common.fail(f"Conversation #{cid} no longer exists.")
except store.StoreError as exc:
    common.fail(f"The database could not answer: {_safe(exc)}")
st.session_state["inbox_present"] = cid

st.subheader(f"Conversation #{conv.id}")
facts_line = [
    conv.status,
    f"{conv.priority} priority",
    f"on {conv.source}",
    f"version {conv.version}",
    f"opened {conv.opened_at:%Y-%m-%d %H:%M} UTC",
]
if conv.escalated or conv.escalation_level:
    facts_line.append(f"escalated (level {conv.escalation_level})")
if conv.first_response_at:
    facts_line.append(f"first response {conv.first_response_at:%Y-%m-%d %H:%M} UTC")
st.caption(" · ".join(facts_line))
st.dataframe(
    pd.DataFrame(
        [
            {
                "assignee": conv.assignee,
                "tags": ", ".join(conv.tags),
                "customer": conv.customer_id,
                "customer name": conv.customer_name,
                "author": conv.author_handle,
            }
        ]
    ),
    hide_index=True,
    width="stretch",
    key="inbox_summary",
)


@st.fragment(run_every=timedelta(seconds=PRESENCE_REFRESH_S))
def _presence_box(conv_id: int, updated_by: str | None, updated_at: datetime) -> None:
    """Who else has it open (refreshed on a timer) and who changed it last."""
    try:
        presence.touch(eng, conv_id, user.username)
        others = presence.viewers(eng, conv_id, exclude=user.username)
    except store.StoreError:
        others = []
    now = datetime.now(UTC)
    if others:
        seen = ", ".join(
            f"{_safe(v.username)} ({max(0, int((now - v.seen_at).total_seconds() // 60))} min ago)"
            for v in others
        )
        st.warning(f"Also open by {seen}.", icon=":material/group:")
    when = updated_at.astimezone(UTC)
    st.caption(f"Last changed by {_safe(updated_by or 'system')} at {when:%Y-%m-%d %H:%M} UTC.")


_presence_box(conv.id, conv.updated_by, conv.updated_at)

left, right = st.columns([3, 2], gap="large")

# -- thread, replies, composing
with left:
    st.markdown("**Thread**")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": i.at,
                    "kind": i.kind,
                    "relation": i.relation,
                    "author": i.author,
                    "text": i.text,
                    "detail": i.detail,
                }
                for i in items
            ],
            columns=["when", "kind", "relation", "author", "text", "detail"],
        ),
        hide_index=True,
        width="stretch",
        key="inbox_thread",
        column_config={
            "when": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
            "text": st.column_config.TextColumn("Text", width="large"),
            "detail": st.column_config.TextColumn("Why it failed"),
        },
    )
    if replies:
        st.markdown("**Replies**")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "reply": r.id,
                        "status": r.status,
                        "platform": r.platform,
                        "by": r.actor,
                        "attempts": r.attempts,
                        "error": r.error,
                        "external_id": r.external_id,
                        "body": r.body,
                    }
                    for r in replies
                ]
            ),
            hide_index=True,
            width="stretch",
            key="inbox_replies",
        )
        again = [r.id for r in replies if r.status in ("draft", "failed")]
        if again and common.can("inbox.reply"):
            rc = st.columns([2, 1], vertical_alignment="bottom")
            rc[0].selectbox(
                "Draft or failed reply",
                again,
                key="inbox_retry_pick",
                format_func=lambda i: f"reply {i}",
            )
            rc[1].button(
                "Send again",
                key="inbox_retry",
                on_click=lambda: _retry(int(st.session_state["inbox_retry_pick"])),
            )

    if common.can("inbox.reply"):
        st.markdown("**Reply**")
        try:
            templates: dict[str, Template] = load_templates(templates_file(common.settings()))
        except TemplateError as exc:
            st.warning(
                f"Your canned replies cannot be read ({_safe(exc)}); the built-in ones are offered."
            )
            templates = load_templates(None)
        values = reply_context(
            case_id=conv.id,
            agent=user.label,
            customer_name=conv.customer_name,
            handle=conv.author_handle,
        )
        tc = st.columns([3, 1], vertical_alignment="bottom")
        tc[0].selectbox(
            "Canned reply",
            sorted(templates),
            key="inbox_template",
            format_func=lambda n: (
                n if not templates[n].description else f"{n}: {templates[n].description}"
            ),
        )
        tc[1].button(
            "Use it", key="inbox_use_template", on_click=_use_template, args=(conv.id, values)
        )
        limit = ib.REPLY_LIMITS.get(conv.source, 20_000)
        body = st.text_area(
            f"Reply on {conv.source} (public)",
            key=f"inbox_reply_{conv.id}",
            max_chars=limit,
            height=120,
        )
        can_send = conv.source in SENDERS
        bc = st.columns([1, 1, 3])
        bc[0].button(
            "Send reply",
            key="inbox_send",
            type="primary",
            on_click=_reply,
            args=(conv.id, True),
            disabled=not can_send,
            help=None if can_send else f"Replies on {conv.source} are sent there, not from here.",
        )
        bc[1].button("Save draft", key="inbox_save_draft", on_click=_reply, args=(conv.id, False))
        bc[2].caption(f"{len(body or '')} / {limit:,} characters")

    if common.can("inbox.edit"):
        st.markdown("**Internal note**")
        st.text_area("Note (never sent to the customer)", key=f"inbox_note_{conv.id}", height=80)
        st.button("Add note", key="inbox_add_note", on_click=_note, args=(conv.id,))

# -- actions, author, customer, activity
with right:
    if common.can("inbox.edit"):
        st.markdown("**Work on it**")
        ac = st.columns([3, 1, 1], vertical_alignment="bottom")
        people = [UNASSIGNED, *agents]
        if conv.assignee and conv.assignee not in people:
            people.append(conv.assignee)
        assign_key = f"inbox_assign_to_{conv.id}"
        if st.session_state.get(assign_key) not in people:
            st.session_state[assign_key] = conv.assignee or UNASSIGNED
        ac[0].selectbox(
            "Assignee",
            people,
            key=assign_key,
            format_func=lambda a: _ASSIGNEE_LABELS.get(a, a),
        )
        ac[1].button(
            "Assign", key="inbox_assign", on_click=_assign, args=(conv.id, conv.version, None)
        )
        ac[2].button(
            "Take it",
            key="inbox_assign_me",
            on_click=_assign,
            args=(conv.id, conv.version, user.username),
            help="Assign it to yourself.",
        )
        allowed = [s for s in ib.STATUSES if s in ib.TRANSITIONS[conv.status]]
        if st.session_state.get("inbox_status_to") not in allowed:
            st.session_state["inbox_status_to"] = allowed[0]
        kept = [t for t in st.session_state.get("inbox_tags_remove") or [] if t in conv.tags]
        st.session_state["inbox_tags_remove"] = kept
        sc = st.columns([3, 2], vertical_alignment="bottom")
        sc[0].selectbox(
            f"Status (now {conv.status})",
            allowed,
            key="inbox_status_to",
            help="Time spent pending on the customer does not count against the SLA.",
        )
        sc[1].button(
            "Change status",
            key="inbox_set_status",
            on_click=_set_status,
            args=(conv.id, conv.version),
        )
        gc = st.columns([2, 2, 1], vertical_alignment="bottom")
        gc[0].text_input("Add tags", key="inbox_tags_add", placeholder="refund, vip")
        gc[1].multiselect("Remove tags", list(conv.tags), key="inbox_tags_remove")
        gc[2].button("Update tags", key="inbox_tag", on_click=_tag, args=(conv.id, conv.version))
    else:
        st.caption("Your role can read the inbox but not change it.")

    st.markdown("**Author**")
    batch: list[MentionFacts]
    try:
        batch = next(iter_facts(eng, mention_ids=[conv.mention_id], repeat_days=(7, 30)), [])
    except store.StoreError:
        batch = []
    facts = batch[0] if batch else None
    earlier = sum(1 for i in items if i.kind == "mention" and i.relation == "earlier")
    profile = [
        ("source", conv.source),
        ("handle", conv.author_handle),
        ("name", conv.author_name),
        ("post URL", conv.url),
        ("followers", facts.followers if facts else None),
        (
            "sentiment",
            None
            if facts is None or facts.sentiment is None
            else f"{facts.sentiment}"
            + (f" ({facts.sentiment_p:.2f})" if facts.sentiment_p is not None else ""),
        ),
        ("intent", facts.intent if facts else None),
        ("posts in the last 7 days", facts.contacts.get(7) if facts else None),
        ("posts in the last 30 days", facts.contacts.get(30) if facts else None),
        ("earlier posts in the thread", earlier),
    ]
    st.dataframe(
        pd.DataFrame(
            [(k, "-" if v is None else str(v)) for k, v in profile], columns=["field", "value"]
        ),
        hide_index=True,
        width="stretch",
        key="inbox_author",
    )

    st.markdown("**Customer and link**")
    try:
        link = effective_links(eng, [conv.mention_id]).get(conv.mention_id)
        found = linker_result(eng, conv.mention_id)
        decisions = list_decisions(eng, conv.mention_id, limit=20)
    except store.StoreError as exc:
        common.fail(f"The database could not answer: {_safe(exc)}")
    linked_id = conv.customer_id or (link.customer_id if link else None)
    data = found.data if found is not None else {}
    rows = [
        ("linked customer", linked_id),
        ("customer name", conv.customer_name if conv.customer_id else None),
        ("link confidence", f"{link.confidence:.2f}" if link else None),
        ("link evidence", link.evidence_text if link else None),
        ("linker's candidate", found.label if found is not None else None),
        ("linker's strength", data.get("strength")),
    ]
    st.dataframe(
        pd.DataFrame(
            [(k, "-" if v is None else str(v)) for k, v in rows], columns=["field", "value"]
        ),
        hide_index=True,
        width="stretch",
        key="inbox_link",
    )
    evidence = data.get("evidence") if isinstance(data.get("evidence"), list) else []
    if evidence:
        st.caption("The linker's evidence")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "kind": str(e.get("kind")),
                        "value": str(e.get("value")),
                        "weight": e.get("weight"),
                    }
                    for e in evidence
                    if isinstance(e, dict)
                ]
            ),
            hide_index=True,
            width="stretch",
            key="inbox_evidence",
        )
    suggestions = [s for s in data.get("suggestions") or [] if isinstance(s, dict)]
    if suggestions:
        st.caption("Other candidates")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "customer_id": str(s.get("customer_id")),
                        "confidence": s.get("confidence"),
                        "strength": s.get("strength"),
                    }
                    for s in suggestions
                ]
            ),
            hide_index=True,
            width="stretch",
            key="inbox_suggestions",
        )
    if decisions:
        st.caption("Agents' decisions on this post")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "when": d.decided_at,
                        "customer_id": d.customer_id,
                        "decision": d.decision,
                        "by": d.actor,
                        "note": d.note,
                    }
                    for d in decisions
                ]
            ),
            hide_index=True,
            width="stretch",
            key="inbox_decisions",
        )
    candidates = list(
        dict.fromkeys(
            c
            for c in [
                linked_id,
                found.label if found is not None else None,
                *(str(s.get("customer_id")) for s in suggestions if s.get("customer_id")),
            ]
            if c
        )
    )
    if candidates and common.can("links.decide"):
        if st.session_state.get("inbox_link_customer") not in candidates:
            st.session_state["inbox_link_customer"] = candidates[0]
        lc = st.columns([2, 2], vertical_alignment="bottom")
        lc[0].selectbox("Customer to decide on", candidates, key="inbox_link_customer")
        lc[1].text_input("Why (optional)", key="inbox_link_note")
        dc = st.columns(2)
        dc[0].button(
            "Confirm link",
            key="inbox_link_confirm",
            on_click=_decide,
            args=(conv.mention_id, "confirmed"),
            icon=":material/link:",
        )
        dc[1].button(
            "Reject link",
            key="inbox_link_reject",
            on_click=_decide,
            args=(conv.mention_id, "rejected"),
            icon=":material/link_off:",
        )
    elif not candidates:
        st.caption("No customer is linked or suggested for this post.")
    customers_ready = (_APP_ROOT / CUSTOMERS_PAGE).exists() and common.can("customers.view")
    if (
        linked_id
        and customers_ready
        and st.button("Open customer 360", key="inbox_open_customer", icon=":material/person:")
    ):
        st.session_state["customer_360_id"] = linked_id
        st.switch_page(CUSTOMERS_PAGE)

    st.markdown("**Activity**")
    try:
        log = presence.activity(eng, conv.id, mention_id=conv.mention_id, limit=20)
    except store.StoreError:
        log = []
    if log:
        st.dataframe(
            pd.DataFrame(
                [{"when": a.at, "who": a.actor, "what": a.summary} for a in log],
                columns=["when", "who", "what"],
            ),
            hide_index=True,
            width="stretch",
            key="inbox_activity",
            column_config={
                "when": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm")
            },
        )
    else:
        st.caption("No changes recorded yet.")
