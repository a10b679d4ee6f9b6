"""Customers: fuzzy search, the customer 360, duplicates to merge, and admins' privacy actions.

Search goes through one matching index per database (built once, kept with
``st.cache_resource`` and rebuilt after a write or ten minutes), so a query is
a dictionary hit or one ``rapidfuzz`` call, never a scan of the tables. The
Escalations page opens a customer here by setting ``customer_360_id`` in the
session state before switching to this page.

Everything a customer or a post wrote is shown as data (tables, ``st.json``,
``st.text``), never as markdown.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from listenwell import store
from listenwell.app_pages import charts_crm, common
from listenwell.crm import segments as crm_segments
from listenwell.nlp.matching import CustomerIndex, DuplicatePair, MatchOptions
from listenwell.store.customer360 import EVENT_KINDS, Customer360, customer_360
from listenwell.store.links import customer_cards
from listenwell.store.merge import CONSENT_PURPOSES, merge_customers, set_consent
from listenwell.store.privacy import erase_person, export_person
from listenwell.store.segments import customer_facts, list_segments

HANDOFF_KEY = "customer_360_id"
"""Session key another page sets to a brand customer id to open that customer's 360 here."""

_PAGE = 200  # timeline events per page
_INDEX_TTL_S = 600
_CONSENT = {None: "unknown", True: "given", False: "refused"}
_CONSENT_LABELS = {
    "contact": "Contact (surveys)",
    "marketing": "Marketing",
    "profiling": "Profiling",
}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


# ------------------------------------------------------------------ cached reads


@st.cache_resource(ttl=_INDEX_TTL_S, max_entries=4, show_spinner="Indexing customers…")
def _index(url: str, region: str, account_fields: str) -> CustomerIndex:
    """The matching index over every live customer (rebuilt after writes or ten minutes)."""
    return CustomerIndex(
        customer_cards(common._engine(url)), default_region=region, account_fields=account_fields
    )


@st.cache_resource(ttl=_INDEX_TTL_S, max_entries=4, show_spinner="Comparing customers…")
def _all_duplicates(
    url: str, region: str, account_fields: str, min_score: float
) -> list[DuplicatePair]:
    """Likely duplicate pairs over the whole customer base (blocked, never all pairs)."""
    pairs: list[DuplicatePair] = _index(url, region, account_fields).duplicates(min_score)
    return pairs


@common._cached
def _duplicates_of(
    url: str, customer_id: str, region: str, account_fields: str, min_score: float
) -> list[DuplicatePair]:
    """Customers likely to be the same person as this one: found by searching this one's
    name, e-mail, phone and handles in the index, then scored pair by pair."""
    index = _index(url, region, account_fields)
    card = index.by_customer_id(customer_id)
    if card is None:
        return []
    queries = [card.name, card.email, card.phone, *(f"{p}:{h}" for p, h in card.handles)]
    others = {
        hit.pk for q in queries if q for hit in index.search(q, limit=10) if hit.pk != card.pk
    }
    pairs = [index.compare(card.pk, pk) for pk in others]
    pairs = [p for p in pairs if p.score >= min_score]
    return sorted(pairs, key=lambda p: (-p.score, p.customer_id_a, p.customer_id_b))


@common._cached
def _view(url: str, customer_id: str, before: str | None) -> Customer360:
    """One page of a customer's 360 (the satisfaction trend with the first page only)."""
    return customer_360(
        common._engine(url),
        customer_id,
        limit=_PAGE,
        before=before,
        trend=before is None,
        timeout_s=common.settings().query_timeout_s,
    )


@common._cached
def _segments(url: str, customer_id: str) -> dict[str, list[str]]:
    """The rule segments the customer is in now, and why they are at risk of churning."""
    eng = common._engine(url)
    rules = []
    for seg in list_segments(eng):
        try:
            rules.append((seg.name, crm_segments.parse_rule(seg.definition)))
        except crm_segments.RuleError:
            continue  # a rule that no longer parses has no members (the CLI says why)
    days = {crm_segments.CHURN_COMPLAINT_DAYS, *(d for _, r in rules for d in r.complaint_days)}
    facts = customer_facts(
        eng,
        complaint_days=sorted(days),
        window_days=crm_segments.CHURN_WINDOW_DAYS,
        customer_ids=[customer_id],
        timeout_s=common.settings().query_timeout_s,
    )
    if facts.empty:
        return {"segments": [], "churn": []}
    row = facts.to_dict("records")[0]
    return {
        "segments": [name for name, rule in rules if crm_segments.matches(rule, row)],
        "churn": crm_segments.churn_reasons(row),
    }


# ------------------------------------------------------------------ helpers


def _escape(text: str) -> str:
    """Backslash-escape markdown so a message quoting data shows it as typed."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _error(what: str, exc: BaseException) -> None:
    st.error(f"{what}: {_escape(str(exc))}", icon=":material/error:")


def _options() -> MatchOptions:
    return MatchOptions.from_settings(common.settings())


def _search_index() -> CustomerIndex:
    opts = _options()
    try:
        return _index(common.settings().database_url, opts.default_region, opts.account_fields)
    except ValueError as exc:  # a bad region or account-field pattern in the settings
        common.fail(f"The linking settings are not usable: {exc}")
    except store.StoreError as exc:
        common.fail(f"The database could not answer: {exc}")


def _ask(fn: Any, *args: Any) -> Any:
    """A cached read; ``None`` when the customer is gone, a one-line message on other errors."""
    try:
        return fn(common.settings().database_url, *args)
    except store.NotFoundError:
        return None
    except store.QueryTimeoutError as exc:
        common.fail(f"That view took too long: {exc}.")
    except store.StoreError as exc:
        common.fail(f"The database could not answer: {exc}")


def _after_write() -> None:
    """Drop every cached read and the matching index: the data just changed."""
    st.cache_data.clear()
    _index.clear()
    _all_duplicates.clear()


def _flash(message: str, detail: str | None = None) -> None:
    st.session_state["customers_flash"] = (message, detail)


def _open(customer_id: str | None) -> None:
    st.session_state["customers_selected"] = customer_id
    st.session_state["customers_pages"] = 1


def _open_picked() -> None:
    _open(st.session_state.get("customers_pick"))


def _key(customer_id: str) -> str:
    """A short widget-key suffix per customer, so one customer's inputs never show on another."""
    return hashlib.sha256(customer_id.encode("utf-8")).hexdigest()[:12]


def _file_name(customer_id: str) -> str:
    return "customer-" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", customer_id)[:60] or "export") + ".json"


def _exporter(customer_id: str, actor: str) -> Callable[[], bytes]:
    """The export, built only when the admin clicks download (and audited then)."""
    eng = common.engine()

    def build() -> bytes:
        data = export_person(eng, customer_id)
        store.record_audit(
            eng,
            actor,
            "customer.export",
            "customer",
            customer_id,
            {"to": "dashboard download", "mentions": len(data["mentions"])},
        )
        return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")

    return build


def _pairs_frame(pairs: list[DuplicatePair]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "customer_id_a": p.customer_id_a,
                "customer_id_b": p.customer_id_b,
                "score": round(p.score, 3),
                "reasons": "; ".join(p.reasons),
            }
            for p in pairs
        ],
        columns=["customer_id_a", "customer_id_b", "score", "reasons"],
    )


# ------------------------------------------------------------------ actions


def _merge_form(a: str, b: str, key: str) -> None:
    """Pick which of two customers to keep and merge the other into it."""
    if not common.can("customers.merge"):
        st.caption("A manager or an admin can merge these customers.")
        return
    keep = st.selectbox(
        "Keep",
        [a, b],
        key=f"{key}_keep",
        help="The other customer is folded into this one and deleted: its handles, "
        "conversations, surveys and link decisions move here; this one's profile wins "
        "and its blanks are filled from the other.",
    )
    other = b if keep == a else a
    if st.button("Merge the two customers", key=f"{key}_go", icon=":material/merge:"):
        try:
            report = merge_customers(common.engine(), keep, other, actor=common.actor())
        except (store.StoreError, ValueError) as exc:
            _error("The merge failed", exc)
            return
        _after_write()
        _open(keep)
        _flash(
            "Merged: the duplicate was folded into the customer kept.",
            f"{other} -> {keep}: {report.handles} handles, {report.conversations} conversations, "
            f"{report.surveys} surveys, {report.link_decisions} link decisions moved",
        )
        st.rerun()


def _privacy(view: Customer360) -> None:
    """Consent, export and erasure: each only for a role that may do it."""
    cid = view.customer_id
    k = _key(cid)
    if common.can("customers.consent"):
        st.markdown("**Consent**")
        cols = st.columns(len(CONSENT_PURPOSES))
        chosen: dict[str, bool | None] = {}
        names = list(_CONSENT.values())
        for col, purpose in zip(cols, CONSENT_PURPOSES, strict=True):
            label = col.selectbox(
                _CONSENT_LABELS[purpose],
                names,
                index=names.index(_CONSENT[view.consent.get(purpose)]),
                key=f"customers_consent_{purpose}_{k}",
            )
            chosen[purpose] = {v: flag for flag, v in _CONSENT.items()}[label]
        if st.button("Save consent", key=f"customers_consent_save_{k}", icon=":material/save:"):
            try:
                changes = set_consent(common.engine(), cid, chosen, actor=common.actor())
            except (store.StoreError, ValueError) as exc:
                _error("Consent was not saved", exc)
            else:
                _after_write()
                what = ", ".join(f"{p}: {_CONSENT[new]}" for p, (_, new) in changes.items())
                _flash("Consent saved." if changes else "Consent unchanged.", what or None)
                st.rerun()
    if common.can("customers.export"):
        st.markdown("**Right of access**")
        st.download_button(
            "Download everything held about this customer (JSON)",
            data=_exporter(cid, common.actor()),
            file_name=_file_name(cid),
            mime="application/json",
            key=f"customers_export_{k}",
            on_click="ignore",
            icon=":material/download:",
            help="Profile, handles, linked mentions, conversations, surveys and audit entries "
            "(GDPR Art. 15). Each download is audit-logged.",
        )
    if common.can("customers.erase"):
        st.markdown("**Right to erasure**")
        st.caption(
            "Deletes the customer, their mentions, conversations, surveys and handles, and "
            "scrubs them from the audit log and other people's posts. This cannot be undone."
        )
        typed = st.text_input("Type the customer id to confirm", key=f"customers_erase_confirm_{k}")
        confirmed = typed.strip() == cid
        if st.button(
            "Erase this customer",
            key=f"customers_erase_{k}",
            type="primary",
            disabled=not confirmed,
            icon=":material/delete_forever:",
        ):
            try:
                report = erase_person(
                    common.engine(),
                    cid,
                    common.actor(),
                    region=common.settings().linking.default_region,
                )
            except (store.StoreError, ValueError) as exc:
                _error("The erasure failed", exc)
                return
            _after_write()
            _open(None)
            _flash(
                "Customer erased.",
                f"{report.mentions} mentions, {report.conversations} conversations, "
                f"{report.surveys} surveys, {report.handles} handles deleted; "
                f"{report.audit_scrubbed} audit entries scrubbed (audit id {report.customer_hash})",
            )
            st.rerun()


# ------------------------------------------------------------------ the 360


def _events(view: Customer360, customer_id: str) -> tuple[list[Any], bool]:
    """The events of the pages loaded so far, and whether there are older ones."""
    events = list(view.timeline)
    before = view.next_before
    for _ in range(int(st.session_state.get("customers_pages", 1)) - 1):
        if not before:
            break
        page = _ask(_view, customer_id, before)
        if page is None:
            break
        events += page.timeline
        before = page.next_before
    return events, before is not None


def _show_360(customer_id: str) -> None:
    view: Customer360 | None = _ask(_view, customer_id, None)
    st.divider()
    st.subheader("Customer 360", anchor=False)
    if view is None:
        st.warning("This customer no longer exists: merged into another, or erased.")
        if st.button("Close", key="customers_close_gone"):
            _open(None)
            st.rerun()
        return
    head, close = st.columns([6, 1])
    head.text(f"{view.customer_id}  {view.name or ''}")
    if close.button("Close", key="customers_close", icon=":material/close:"):
        _open(None)
        st.rerun()

    counts = view.counts
    c1, c2, c3, c4 = st.columns(4)
    value = view.lifetime_value
    c1.metric("Lifetime value", "-" if value is None else f"{value:,.2f}")
    c2.metric("Mentions", f"{counts.get('mention', 0):,}")
    c3.metric("Surveys", f"{counts.get('survey', 0):,}")
    c4.metric("Escalation events", f"{counts.get('escalation', 0):,}")

    segments = _ask(_segments, customer_id) or {"segments": [], "churn": []}
    left, right = st.columns(2)
    with left:
        st.markdown("**Profile**")
        st.json(
            {
                "customer_id": view.customer_id,
                "name": view.name,
                "email": view.email,
                "phone": view.phone,
                "handles": view.handles,
                "consent": {p: _CONSENT[v] for p, v in view.consent.items()},
                "attributes": view.attributes,
            },
            expanded=True,
        )
    with right:
        st.markdown("**Segment and value**")
        st.json(
            {
                "segment": view.segment,
                "rule segments": segments["segments"],
                "lifetime value": value,
                "churn risk": segments["churn"] or "no",
            },
            expanded=True,
        )
        st.plotly_chart(
            charts_crm.satisfaction_chart(charts_crm.satisfaction_frame(view.satisfaction)),
            width="stretch",
            key="customers_satisfaction",
        )

    events, more = _events(view, customer_id)
    frame = charts_crm.timeline_frame(events)
    st.markdown("**Timeline**")
    st.caption(
        f"{len(frame):,} of {sum(counts.values()):,} events loaded, newest first: mentions, "
        "replies, internal notes, survey answers, escalations and status changes."
    )
    kinds = st.multiselect("Kinds", list(EVENT_KINDS), key="customers_kinds", help="Empty: all.")
    shown = frame[frame["kind"].isin(kinds)] if kinds else frame
    st.plotly_chart(charts_crm.timeline_chart(shown), width="stretch", key="customers_timeline")
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
            "text": st.column_config.TextColumn("Text", width="large"),
        },
    )
    if more and st.button("Load older events", key="customers_more", icon=":material/history:"):
        st.session_state["customers_pages"] = int(st.session_state.get("customers_pages", 1)) + 1
        st.rerun()

    surveys, escalations = st.columns(2)
    with surveys:
        st.markdown("**Surveys**")
        part = frame[frame["kind"] == "survey"][["at", "text", "conversation_id"]]
        st.dataframe(part.rename(columns={"text": "answer"}), hide_index=True, width="stretch")
    with escalations:
        st.markdown("**Escalations**")
        part = frame[frame["kind"] == "escalation"][["at", "text", "detail", "conversation_id"]]
        st.dataframe(part.rename(columns={"text": "escalation"}), hide_index=True, width="stretch")

    st.markdown("**Possible duplicates**")
    opts = _options()
    _search_index()  # a settings problem is a message, not a traceback
    pairs: list[DuplicatePair] = _ask(
        _duplicates_of,
        customer_id,
        opts.default_region,
        opts.account_fields,
        opts.duplicate_min_score,
    )
    if not pairs:
        st.caption(f"No likely duplicate (score {opts.duplicate_min_score:g} or more).")
    else:
        st.dataframe(_pairs_frame(pairs), hide_index=True, width="stretch")
        others = {
            p.customer_id_b if p.customer_id_a == customer_id else p.customer_id_a: p for p in pairs
        }
        other = st.selectbox(
            "Duplicate to merge",
            list(others),
            index=None,
            key=f"customers_dupe_pick_{_key(customer_id)}",
            help="One of the customers above.",
        )
        if other is not None:
            _merge_form(customer_id, other, f"customers_merge_{_key(customer_id)}")

    if any(common.can(a) for a in ("customers.consent", "customers.export", "customers.erase")):
        st.markdown("**Privacy**")
        with st.container(border=True):
            _privacy(view)


# ------------------------------------------------------------------ the page

common.require("customers.view")
st.title("Customers")

handoff = st.session_state.pop(HANDOFF_KEY, None)
if handoff:
    _open(str(handoff))

flash = st.session_state.pop("customers_flash", None)
if flash:
    st.success(flash[0], icon=":material/check_circle:")
    if flash[1]:
        st.text(flash[1])

query = st.text_input(
    "Find a customer",
    key="customers_query",
    placeholder="Name, e-mail, phone, @handle or customer id",
    help='Typos, nicknames and swapped names are fine ("jon smth"); phone numbers in any '
    "format; handles as @name, u/name or platform:name.",
)
if query.strip():
    hits = _search_index().search(query, limit=20)
    if not hits:
        st.info("No customer matches that search.")
    else:
        st.dataframe(
            pd.DataFrame(
                [{**h.as_dict(), "handles": " ".join(h.handles)} for h in hits],
                columns=["score", "customer_id", "name", "email", "phone", "handles", "matched"],
            ),
            hide_index=True,
            width="stretch",
        )
        st.selectbox(
            "Open a customer's 360",
            [h.customer_id for h in hits],
            index=None,
            key="customers_pick",
            on_change=_open_picked,
        )

if st.toggle(
    "Likely duplicates across all customers",
    key="customers_all_dupes",
    help="Compares only customers that share an e-mail, phone, order number, handle or name "
    "key; the list is kept for ten minutes or until the next change.",
):
    opts = _options()
    _search_index()  # a settings problem is a message, not a traceback
    all_pairs = _all_duplicates(
        common.settings().database_url,
        opts.default_region,
        opts.account_fields,
        opts.duplicate_min_score,
    )
    st.caption(f"{len(all_pairs):,} likely duplicate pairs (score {opts.duplicate_min_score:g}+).")
    if all_pairs:
        st.dataframe(_pairs_frame(all_pairs[:1000]), hide_index=True, width="stretch")
        pick = st.selectbox(
            "Pair to merge",
            list(range(min(len(all_pairs), 1000))),
            index=None,
            format_func=lambda i: f"{all_pairs[i].customer_id_a} + {all_pairs[i].customer_id_b}",
            key="customers_pair_pick",
        )
        if pick is not None:
            pair = all_pairs[pick]
            _merge_form(pair.customer_id_a, pair.customer_id_b, "customers_pair")

selected = st.session_state.get("customers_selected")
if selected:
    _show_360(str(selected))
elif not query.strip():
    st.caption("Search for a customer to open their 360.")
