"""What every page shares: settings, the engine, cached queries and the sidebar filters."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, NoReturn, ParamSpec, TypeVar

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from listenwell import store
from listenwell.config import ConfigError, Settings, load_settings
from listenwell.crm import auth
from listenwell.store.users import SignInError, User, authenticate, ensure_user, get_user

__all__ = [
    "actor",
    "can",
    "current_user",
    "engine",
    "fail",
    "filters",
    "require",
    "settings",
    "sidebar",
    "signed_in_user",
]

QUERY_TTL_S = 60
P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str) -> NoReturn:
    """Show a one-line error on the page and stop it (never a traceback)."""
    st.error(message, icon=":material/error:")
    st.stop()


@st.cache_resource(show_spinner=False)
def _settings() -> Settings:
    return load_settings()


def settings() -> Settings:
    """The validated settings, or a clear error on the page."""
    try:
        return _settings()
    except ConfigError as exc:
        fail(f"Configuration problem: {exc}")


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    return store.connect(url)


def engine() -> Engine:
    """The database engine, checked to be reachable and migrated."""
    s = settings()
    try:
        eng = _engine(s.database_url)
        store.ensure_current(eng)
    except store.SchemaOutOfDateError as exc:
        fail(f"The database is not ready: {exc}.")
    except store.StoreError as exc:
        fail(f"Cannot open the database: {exc}")
    return eng


def _cached(fn: Callable[P, R]) -> Callable[P, R]:
    """Cache a query by its filter arguments, keyed on the database URL."""
    cached: Callable[P, R] = st.cache_data(ttl=QUERY_TTL_S, max_entries=64, show_spinner=False)(fn)
    return cached


def redactor() -> Callable[[str], str] | None:
    """The redaction ``privacy.redact_exports`` asks for in exports (``None``: off)."""
    s = settings()
    if not s.privacy.redact_exports:
        return None
    from listenwell.crm.pii import redact

    kinds, region = tuple(s.privacy.redact_kinds), s.linking.default_region

    def redact_text(value: str) -> str:
        return str(redact(value, kinds, region=region))

    return redact_text


def safe_csv(frame: pd.DataFrame, personal: tuple[str, ...] = ("author_name", "text")) -> bytes:
    """``frame`` as CSV the way ``listenwell export mentions`` writes text: every text cell
    guarded against spreadsheet formulas, and the ``personal`` columns redacted when
    ``privacy.redact_exports`` is on."""
    from listenwell.crm.reports import safe_cell_text

    redact = redactor()
    out = frame.copy()
    for column in out.columns:
        kind = out[column].dtype
        if not (pd.api.types.is_object_dtype(kind) or pd.api.types.is_string_dtype(kind)):
            continue

        def clean(value: Any, column: str = column) -> Any:
            if not isinstance(value, str):
                return value
            if redact is not None and column in personal:
                value = redact(value)
            return safe_cell_text(value)

        out[column] = out[column].map(clean)
    return out.to_csv(index=False).encode("utf-8")


@_cached
def overview_counts(url: str, f: store.MentionFilter) -> dict[str, Any]:
    """Cached :func:`store.overview_counts`."""
    return store.overview_counts(_engine(url), f, timeout_s=settings().query_timeout_s)


@_cached
def mention_volume(url: str, f: store.MentionFilter, freq: str) -> pd.DataFrame:
    """Cached :func:`store.mention_volume`."""
    return store.mention_volume(_engine(url), f, freq=freq, timeout_s=settings().query_timeout_s)


@_cached
def sentiment_volume(url: str, f: store.MentionFilter, freq: str) -> pd.DataFrame:
    """Cached :func:`store.sentiment_volume`."""
    return store.sentiment_volume(_engine(url), f, freq=freq, timeout_s=settings().query_timeout_s)


@_cached
def source_counts(url: str, f: store.MentionFilter) -> pd.DataFrame:
    """Cached :func:`store.source_counts`."""
    return store.source_counts(_engine(url), f, timeout_s=settings().query_timeout_s)


@_cached
def top_authors(url: str, f: store.MentionFilter, limit: int) -> pd.DataFrame:
    """Cached :func:`store.top_authors`."""
    return store.top_authors(_engine(url), f, limit=limit, timeout_s=settings().query_timeout_s)


@_cached
def mentions_frame(url: str, f: store.MentionFilter, limit: int) -> pd.DataFrame:
    """Cached :func:`store.mentions_frame`."""
    return store.mentions_frame(_engine(url), f, limit=limit, timeout_s=settings().query_timeout_s)


@_cached
def theme_volume(url: str, f: store.MentionFilter) -> pd.DataFrame:
    """Cached :func:`store.theme_volume` (weekly)."""
    return store.theme_volume(_engine(url), f, freq="week", timeout_s=settings().query_timeout_s)


@_cached
def theme_detail(url: str, theme_id: int, quotes: int) -> Any:
    """Cached :func:`listenwell.store.themes.theme_detail`."""
    from listenwell.store.themes import theme_detail as detail

    return detail(_engine(url), theme_id, quotes=quotes)


@st.cache_resource(show_spinner="Loading the sentiment model…")
def _sentiment_stage(kind: str, model_dir: str | None) -> Any:
    from listenwell.nlp import create_stage

    return create_stage(f"sentiment.{kind}", model_dir=model_dir, threads=1)


def explain_sentiment(text: str, top: int = 8) -> tuple[str | None, list[tuple[str, float]]]:
    """The configured sentiment model's label for ``text`` and the words that drove it.

    Returns ``(None, [])`` when sentiment is switched off; a model that cannot
    be loaded becomes a message on the page.
    """
    nlp = settings().nlp
    if nlp.sentiment_model == "off":
        return None, []
    from listenwell.nlp import NlpError

    try:
        stage = _sentiment_stage(nlp.sentiment_model, nlp.sentiment_model_dir)
        label = stage.run([text])[0].label
        return label, stage.explain(text, top)
    except NlpError as exc:
        fail(f"The sentiment model could not explain this: {exc}")


@_cached
def filter_options(url: str) -> Any:
    """Cached :func:`listenwell.store.filters.filter_options`."""
    from listenwell.store.filters import filter_options as options

    return options(_engine(url), timeout_s=settings().query_timeout_s)


@_cached
def data_range(url: str) -> tuple[date | None, date | None, list[str]]:
    """First and last day with mentions, and the sources present (for filter defaults)."""
    from listenwell.store.queries import data_range as first_last_sources

    first, last, sources = first_last_sources(_engine(url), timeout_s=settings().query_timeout_s)
    return (first.date() if first else None, last.date() if last else None, sources)


def query(fn: Any, *args: Any) -> Any:
    """Run a cached query; a slow or failed query becomes a message, not a traceback."""
    try:
        return fn(settings().database_url, *args)
    except store.QueryTimeoutError as exc:
        fail(f"That view took too long: {exc}.")
    except store.StoreError as exc:
        fail(f"The database could not answer: {exc}")


# ------------------------------------------------------------------ sign-in and roles

SESSION_KEY = "listenwell_session"
"""Session-state key of the signed-in session: ``{"username", "signed_in_at", "last_seen"}``."""


def _start_session(username: str) -> None:
    now = time.time()
    st.session_state[SESSION_KEY] = {"username": username, "signed_in_at": now, "last_seen": now}


def _sign_in_form() -> None:
    st.title("Listenwell")
    st.caption(f"Sign in to {settings().brand.name}'s social CRM.")
    with st.form("sign_in"):
        username = st.text_input("Username", key="sign_in_username")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            user = authenticate(engine(), username, password)
        except SignInError as exc:
            st.error(f"Sign-in refused: {exc}.", icon=":material/lock:")
        except store.StoreError as exc:
            st.error(f"The database could not check the sign-in: {exc}")
        else:
            _start_session(user.username)
            st.rerun()
    st.caption("No account yet? An admin adds one with `listenwell users add NAME --role ROLE`.")


def signed_in_user() -> User:
    """The signed-in user; otherwise draw the sign-in form (or sign in the demo user) and stop.

    A session expires after ``dashboard.session_idle_min`` minutes without an
    action or ``dashboard.session_max_hours`` after sign-in. The user's role is
    read from the database on every run, so a role change or a disabled
    account takes effect at once.
    """
    s = settings()
    eng = engine()
    session = st.session_state.get(SESSION_KEY)
    now = time.time()
    if isinstance(session, dict):
        idle = now - float(session.get("last_seen", 0))
        age = now - float(session.get("signed_in_at", 0))
        if idle > s.dashboard.session_idle_min * 60 or age > s.dashboard.session_max_hours * 3600:
            del st.session_state[SESSION_KEY]
            session = None
            st.warning("Your session expired. Please sign in again.", icon=":material/timer_off:")
    if not isinstance(session, dict) and s.dashboard.sign_in == "demo":
        first = next(iter(auth.DEMO_USERS))
        role, name = auth.DEMO_USERS[first]
        try:
            ensure_user(eng, first, role, name, actor="demo")
        except store.StoreError as exc:
            fail(f"Cannot create the demo user: {exc}")
        _start_session(first)
        session = st.session_state[SESSION_KEY]
    if not isinstance(session, dict):
        # Only the sign-in page while signed out: no page links of an earlier session stay.
        st.navigation(
            [st.Page(_sign_in_form, title="Sign in", icon=":material/login:", url_path="signin")],
            position="hidden",
        ).run()
        st.stop()
    try:
        user = get_user(eng, str(session["username"]))
    except store.NotFoundError:
        user = None
    except store.StoreError as exc:
        fail(f"The database could not answer: {exc}")
    if user is None or user.disabled:
        del st.session_state[SESSION_KEY]
        fail("This account no longer exists or was disabled. Reload the page to sign in.")
    session["last_seen"] = now
    st.session_state["listenwell_user"] = user
    return user


def current_user() -> User:
    """The signed-in user (``app.py`` makes sure there is one before a page runs)."""
    user = st.session_state.get("listenwell_user")
    if not isinstance(user, User):
        fail("You are not signed in. Reload the page to sign in.")
    return user


def can(action: str) -> bool:
    """Whether the signed-in user's role may do ``action`` (see ``listenwell.crm.auth``)."""
    user = st.session_state.get("listenwell_user")
    return isinstance(user, User) and auth.can(user.role, action)


def require(action: str) -> None:
    """Stop the page with a clear message unless the signed-in user may do ``action``."""
    if not can(action):
        user = st.session_state.get("listenwell_user")
        role = user.role if isinstance(user, User) else "signed-out"
        what = auth.PERMISSIONS[action][1].lower()
        fail(f"Your role ({role}) cannot {what}. Ask an admin if you need to.")


def actor() -> str:
    """Who changes are audit-logged as: ``user:<username>``."""
    return current_user().actor


def _account_box(user: User) -> None:
    s = settings()
    st.caption(f"Signed in as `{user.username}` ({user.role})")
    if s.dashboard.sign_in == "demo":
        names = list(auth.DEMO_USERS)
        pick = st.selectbox(
            "Demo user",
            names,
            index=names.index(user.username) if user.username in names else 0,
            format_func=lambda n: f"{auth.DEMO_USERS[n][1]}",
            key="demo_user",
            help="The demo has one passwordless user per role; switch to see each one's job.",
        )
        if pick != user.username:
            role, name = auth.DEMO_USERS[pick]
            ensure_user(engine(), pick, role, name, actor="demo")
            _start_session(pick)
            st.rerun()
    elif st.button("Sign out", key="sign_out", icon=":material/logout:"):
        st.session_state.pop(SESSION_KEY, None)
        st.session_state.pop("listenwell_user", None)
        st.rerun()


def sidebar() -> None:
    """Draw the shared filters; pages read them with :func:`filters`."""
    s = settings()
    engine()
    first, last, sources = query(data_range)
    with st.sidebar:
        st.caption(f"Brand: **{s.brand.name}**")
        user = st.session_state.get("listenwell_user")
        if isinstance(user, User):
            _account_box(user)
        if first is None or last is None:
            st.info("No mentions yet. Import some with `listenwell import mentions FILE`.")
            st.session_state["filters"] = store.MentionFilter()
            return
        default_start = max(first, last - timedelta(days=90))
        picked = st.date_input(
            "Date range",
            value=(default_start, last),
            min_value=first,
            max_value=max(last, date.today()),
            key="filter_dates",
            help="Mentions created on these days (UTC), both ends included.",
        )
        start, end = picked if isinstance(picked, tuple) and len(picked) == 2 else (first, last)
        chosen = st.multiselect(
            "Sources",
            sources,
            key="filter_sources",
            help="Leave empty for all sources.",
        )
        sentiments = st.multiselect(
            "Sentiment",
            ["negative", "neutral", "positive"],
            key="filter_sentiments",
            help="The label in force: an agent's correction, else the model's. Empty: all.",
        )
        options = query(filter_options)
        themes = st.multiselect(
            "Themes",
            list(options.themes),
            key="filter_themes",
            help="Feedback themes (merged themes count as their survivor). Empty: all.",
        )
        segments = st.multiselect(
            "Customer segment",
            list(options.segments),
            key="filter_segments",
            help="Only mentions linked to customers of these segments. Empty: everyone.",
        )
        search = st.text_input(
            "Text contains", key="filter_search", help="Case-insensitive; matched literally."
        )
    st.session_state["filters"] = store.MentionFilter(
        start=start,
        end=end,
        sources=tuple(chosen),
        sentiments=tuple(sentiments),
        topics=tuple(themes),
        segments=tuple(segments),
        search=search.replace("\x00", "").strip() or None,
    )


def filters() -> store.MentionFilter:
    """The filters chosen in the sidebar."""
    f = st.session_state.get("filters")
    return f if isinstance(f, store.MentionFilter) else store.MentionFilter()
