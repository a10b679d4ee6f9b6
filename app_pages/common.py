"""What every page shares: settings, the engine, cached queries and the sidebar filters."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, NoReturn

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from listenwell import store
from listenwell.config import ConfigError, Settings, load_settings

__all__ = ["engine", "fail", "filters", "settings", "sidebar"]

QUERY_TTL_S = 60


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


def _cached(fn: Any) -> Any:
    """Cache a query by its filter arguments, keyed on the database URL."""
    return st.cache_data(ttl=QUERY_TTL_S, max_entries=64, show_spinner=False)(fn)


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
def data_range(url: str) -> tuple[date | None, date | None, list[str]]:
    """First and last day with mentions, and the sources present (for filter defaults)."""
    eng = _engine(url)
    counts = store.overview_counts(eng, timeout_s=settings().query_timeout_s)
    sources = store.source_counts(eng, timeout_s=settings().query_timeout_s)["source"].tolist()
    first, last = counts["first"], counts["last"]
    return (first.date() if first else None, last.date() if last else None, sorted(sources))


def query(fn: Any, *args: Any) -> Any:
    """Run a cached query; a slow or failed query becomes a message, not a traceback."""
    try:
        return fn(settings().database_url, *args)
    except store.QueryTimeoutError as exc:
        fail(f"That view took too long: {exc}.")
    except store.StoreError as exc:
        fail(f"The database could not answer: {exc}")


def sidebar() -> None:
    """Draw the shared filters; pages read them with :func:`filters`."""
    s = settings()
    engine()
    first, last, sources = query(data_range)
    with st.sidebar:
        st.caption(f"Brand: **{s.brand.name}**")
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
        search = st.text_input(
            "Text contains", key="filter_search", help="Case-insensitive; matched literally."
        )
    st.session_state["filters"] = store.MentionFilter(
        start=start, end=end, sources=tuple(chosen), search=search.strip() or None
    )


def filters() -> store.MentionFilter:
    """The filters chosen in the sidebar."""
    f = st.session_state.get("filters")
    return f if isinstance(f, store.MentionFilter) else store.MentionFilter()
