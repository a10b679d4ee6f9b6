"""Overview, for everyone: volume and net sentiment over time, spike alerts, share of voice
against competitors and the themes rising and falling.

Every chart drills down: click a bar (or pick it under "Show mentions for…" at
the bottom) to list the mentions behind it. The page only calls cached store
queries and the pure builders in :mod:`listenwell.app_pages.charts`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypedDict

import pandas as pd
import streamlit as st

from listenwell import store
from listenwell.app_pages import charts, common
from listenwell.store.spikes import SpikeReport, mentions_between, spike_report
from listenwell.store.voice import share_of_voice, voice_parties

SPIKE_Z = 3.0
SPIKE_WEEKS = 8
DRILL_ROWS = 200
FREQ_STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
WINDOWS = {"24 hours": 24, "48 hours": 48, "7 days": 168}

Parties = tuple[tuple[str, tuple[str, ...]], ...]


class Drill(TypedDict, total=False):
    """The mentions behind one chart element: a time span narrowed by one label, or a theme.

    A plain dict at run time: the page script runs afresh on every rerun, so a
    class of its own would be a new class each time and fail ``isinstance``
    against what the previous run put in session state.
    """

    origin: str
    """The chart (or ``pick`` for the selectbox) whose panel shows them."""
    label: str
    start: datetime
    end: datetime
    source: str
    sentiment: str
    party: str
    theme: str


# Cached queries of this page (filters and settings are the cache keys).


@common._cached
def _spikes(url: str, f: store.MentionFilter, window_hours: int, min_count: int) -> SpikeReport:
    return spike_report(
        common._engine(url),
        f,
        window_hours=window_hours,
        weeks=SPIKE_WEEKS,
        min_count=min_count,
        z=SPIKE_Z,
        timeout_s=common.settings().query_timeout_s,
    )


@common._cached
def _voice(url: str, f: store.MentionFilter, parties: Parties) -> pd.DataFrame:
    return share_of_voice(
        common._engine(url), dict(parties), f, timeout_s=common.settings().query_timeout_s
    )


@common._cached
def _drilled(url: str, f: store.MentionFilter, drill: Drill, keywords: tuple[str, ...]) -> Any:
    narrowed = f
    if "source" in drill:
        narrowed = replace(narrowed, sources=(drill["source"],))
    if "sentiment" in drill:
        narrowed = replace(narrowed, sentiments=(drill["sentiment"],))
    if "theme" in drill:
        narrowed = replace(narrowed, topics=(drill["theme"],))
    timeout = common.settings().query_timeout_s
    if "start" not in drill or "end" not in drill:
        return store.mentions_frame(
            common._engine(url), narrowed, limit=DRILL_ROWS, timeout_s=timeout
        )
    return mentions_between(
        common._engine(url),
        narrowed,
        drill["start"],
        drill["end"],
        keywords=keywords,
        limit=DRILL_ROWS,
        timeout_s=timeout,
    )


# Drill-down: chart selections and the fallback selectbox set one Drill in session state.


def _when(start: datetime, freq: str) -> str:
    if freq == "hour":
        return f"{start:%a %Y-%m-%d %H:00} UTC"
    if freq == "week":
        return f"week of {start:%Y-%m-%d}"
    return f"{start:%a %Y-%m-%d}"


def _time_drill(
    origin: str,
    key: object,
    freq: str,
    *,
    source: str | None = None,
    sentiment: str | None = None,
    party: str | None = None,
) -> Drill:
    start = pd.Timestamp(str(key)).to_pydatetime()
    drill = Drill(origin=origin, start=start, end=start + FREQ_STEP[freq])
    named = []
    if source is not None:
        drill["source"] = source
        named.append(f"source {source}")
    if sentiment is not None:
        drill["sentiment"] = sentiment
        named.append(sentiment)
    if party is not None:
        drill["party"] = party
        named.append(f"naming {party}")
    drill["label"] = " · ".join([f"Mentions, {_when(start, freq)}", *named])
    return drill


def _on_select(
    chart_key: str, to_drill: Callable[[list[object]], Drill | None]
) -> Callable[[], None]:
    """A chart's selection callback: the first selected point becomes the drill-down."""

    def picked() -> None:
        data = charts.selected(st.session_state.get(chart_key))
        drill = to_drill(data) if data else None
        if drill is not None:
            st.session_state["overview_drill"] = drill

    return picked


def _drill_panel(origin: str, f: store.MentionFilter, parties: dict[str, tuple[str, ...]]) -> None:
    """The mentions of the current drill-down, under the chart it came from."""
    drill = st.session_state.get("overview_drill")
    if not isinstance(drill, dict) or drill.get("origin") != origin:
        return
    keywords = parties.get(drill["party"], ()) if "party" in drill else ()
    rows = common.query(_drilled, f, drill, tuple(keywords))
    with st.container(border=True):
        # The label holds source, party or theme names: shown as text, never as markdown.
        st.text(f"{drill['label']}: {len(rows):,} shown (newest first, at most {DRILL_ROWS})")
        if rows.empty:
            st.caption("No mentions match.")
            return
        st.dataframe(
            rows[["created_at", "source", "author_handle", "text", "sentiment", "topic"]],
            hide_index=True,
            width="stretch",
            key=f"overview_drill_rows_{origin}",
            column_config={
                "created_at": st.column_config.DatetimeColumn(
                    "When (UTC)", format="YYYY-MM-DD HH:mm"
                ),
                "source": "Source",
                "author_handle": "Author",
                "text": st.column_config.TextColumn("Text", width="large"),
                "sentiment": "Sentiment",
                "topic": "Theme",
            },
        )


def _plot(fig: Any, key: str, on_pick: Callable[[], None]) -> None:
    st.plotly_chart(fig, width="stretch", key=key, on_select=on_pick, selection_mode="points")


# The page.

st.title("Overview")
f = common.filters()
s = common.settings()
parties = voice_parties(s.brand)
counts = common.query(common.overview_counts, f)

c1, c2, c3, c4 = st.columns(4)
c1.metric("Mentions", f"{counts['mentions']:,}", help="Mentions matching the sidebar filters.")
c2.metric("Authors", f"{counts['authors']:,}", help="Distinct author handles among them.")
c3.metric("Known customers", f"{counts['customers']:,}", help="Customers in the CRM.")
c4.metric(
    "Quarantined records",
    f"{counts['quarantined']:,}",
    help="Input records that were not stored; see the Quarantine page for reasons.",
)

if counts["mentions"] == 0:
    st.info("No mentions match these filters.")
    st.stop()

# Spike alerts.
st.subheader("Spike alerts", help="Hours with far more mentions than that hour of the week has.")
left, right = st.columns([1, 1])
window_name = left.segmented_control(
    "Window", list(WINDOWS), default="48 hours", key="overview_spike_window"
)
min_count = right.number_input(
    "Alert from (mentions in an hour)",
    min_value=1,
    value=10,
    step=1,
    key="overview_spike_min",
    help="Quiet hours never alert, however unusual.",
)
window_hours = WINDOWS.get(window_name or "48 hours", 48)
report = common.query(_spikes, f, window_hours, int(min_count))
if report.now is not None:
    st.caption(
        f"Each hour of the {window_name or '48 hours'} up to {report.now:%Y-%m-%d %H:%M} UTC "
        f"(the newest mention) against the same hour of the week over the {SPIKE_WEEKS} weeks "
        f"before: an alert needs {int(min_count)}+ mentions and a robust z-score of "
        f"{SPIKE_Z:g}+. Weekly peaks are expected, not alerts."
    )
alerts = list(report.alerts)
if alerts:
    st.warning(f"{len(alerts)} spike alert(s) in this window.", icon=":material/warning:")
    table = charts.alert_table(alerts)

    def _alert_picked() -> None:
        state = st.session_state.get("overview_alerts")
        rows = state["selection"]["rows"] if state else []
        if rows:
            a = alerts[int(rows[0])]
            st.session_state["overview_drill"] = _time_drill("spikes", a.hour.isoformat(), "hour")

    # What changed (terms, sources, authors) comes from posts: table cells, not markdown.
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        key="overview_alerts",
        on_select=_alert_picked,
        selection_mode="single-row",
        column_config={
            "hour": st.column_config.DatetimeColumn("Hour (UTC)", format="ddd YYYY-MM-DD HH:00"),
            "mentions": "Mentions",
            "expected": st.column_config.NumberColumn("Expected", format="%.1f"),
            "score": st.column_config.NumberColumn("Score", format="%.1f"),
            "hours": st.column_config.NumberColumn("Hours", help="Consecutive alert hours."),
            "terms": st.column_config.TextColumn("New or rising terms", width="medium"),
            "sources": st.column_config.TextColumn("Sources up", width="medium"),
            "authors": st.column_config.TextColumn("Most active authors", width="medium"),
        },
    )
else:
    st.success("No spikes: every hour was within its usual range.", icon=":material/check:")
_plot(
    charts.spike_chart(report.hours, z=SPIKE_Z, min_count=int(min_count)),
    "overview_chart_spikes",
    _on_select("overview_chart_spikes", lambda d: _time_drill("spikes", d[0], "hour")),
)
_drill_panel("spikes", f, parties)

# Volume and net sentiment over time.
st.subheader("Mentions and net sentiment over time")
freq = (
    st.segmented_control(
        "Granularity",
        ["hour", "day", "week"],
        default="day",
        key="overview_freq",
        help="Size of each time bucket (UTC).",
    )
    or "day"
)
volume = common.query(common.mention_volume, f, freq)
_plot(
    charts.volume_chart(volume),
    "overview_chart_volume",
    _on_select(
        "overview_chart_volume",
        lambda d: _time_drill("volume", d[0], freq, source=str(d[1])),
    ),
)
_drill_panel("volume", f, parties)

sentiment = common.query(common.sentiment_volume, f, freq)
net = charts.net_sentiment(sentiment)
if net is None:
    st.caption("No sentiment yet: run `listenwell enrich` to add it.")
else:
    enriched = int(sentiment["mentions"].sum())
    st.metric(
        "Net sentiment",
        f"{net:+.0f}%",
        help=f"(positive - negative) / all, over the {enriched:,} enriched mentions matching "
        "the filters.",
    )
    _plot(
        charts.sentiment_chart(sentiment),
        "overview_chart_sentiment",
        _on_select(
            "overview_chart_sentiment",
            lambda d: _time_drill("sentiment", d[0], freq, sentiment=str(d[1])),
        ),
    )
    _drill_panel("sentiment", f, parties)

# Share of voice.
st.subheader(
    "Share of voice",
    help="Mentions containing a party's keywords (setting `brand.keywords`, and "
    "`brand.competitors`: name -> keywords), case-insensitive; a mention naming two "
    "parties counts for both.",
)
voice = common.query(_voice, f, tuple(parties.items()))
if len(parties) < 2:
    st.info("Name competitors under `brand.competitors` in the settings to compare with them.")
totals = charts.voice_totals(voice)
if totals.empty or int(totals["mentions"].sum()) == 0:
    st.caption("No mention matching the filters names the brand or a competitor.")
else:
    left, right = st.columns([1, 3])
    left.dataframe(
        totals,
        hide_index=True,
        width="stretch",
        column_config={
            "party": "Who",
            "mentions": "Mentions",
            "share %": st.column_config.ProgressColumn(
                "Share", min_value=0, max_value=100, format="%.0f%%"
            ),
        },
    )
    with right:
        _plot(
            charts.voice_chart(voice),
            "overview_chart_voice",
            _on_select(
                "overview_chart_voice",
                lambda d: _time_drill("voice", d[0], "week", party=str(d[1])),
            ),
        )
    _drill_panel("voice", f, parties)


# Themes rising and falling: the newest week against the week before, so only two weeks are read.
st.subheader("Themes rising and falling", help="Newest week against the week before.")
newest_week: date = counts["last"].date() - timedelta(days=counts["last"].weekday())
week_before = newest_week - timedelta(days=7)
two_weeks = (
    datetime.combine(week_before, time.min, tzinfo=UTC),
    datetime.combine(newest_week + timedelta(days=7), time.min, tzinfo=UTC),
)
theme_weeks = common.query(
    common.theme_volume, replace(f, start=max(week_before, f.start) if f.start else week_before)
)
movers = charts.theme_movers(charts.theme_table(theme_weeks))
theme_names = dict(zip(movers["theme_id"].astype(int), movers["theme"].astype(str), strict=True))


def _theme_drill_of(origin: str, theme_id: int) -> Drill:
    """The mentions of a moving theme in the two weeks compared."""
    label = f"Mentions of theme {theme_id}: {theme_names[theme_id]}, weeks of {week_before}"
    return Drill(
        origin=origin,
        label=f"{label} and {newest_week}",
        theme=theme_names[theme_id],
        start=two_weeks[0],
        end=two_weeks[1],
    )


if theme_weeks.empty:
    st.caption("No themes yet: `listenwell enrich` fits them (see the Feedback themes page).")
elif movers.empty:
    st.caption("No theme moved between the last two weeks.")
else:

    def _theme_drill(data: list[object]) -> Drill | None:
        tid = int(str(data[0]))
        return _theme_drill_of("themes", tid) if tid in theme_names else None

    _plot(
        charts.theme_movers_chart(movers),
        "overview_chart_themes",
        _on_select("overview_chart_themes", _theme_drill),
    )
    _drill_panel("themes", f, parties)

# Sources, authors and the latest mentions.
left, right = st.columns([1, 2])
with left:
    sources = common.query(common.source_counts, f)
    if len(sources) > 1:
        st.plotly_chart(charts.source_bar(sources), width="stretch")
    authors = common.query(common.top_authors, f, 10)
    st.plotly_chart(
        charts.ranking_bar(authors, "author_handle", "mentions", title="Most active authors"),
        width="stretch",
    )
with right:
    st.subheader("Latest mentions")
    latest = common.query(common.mentions_frame, f, 20)
    # st.dataframe renders cell text as text: no HTML or markdown is interpreted.
    st.dataframe(
        latest[["created_at", "source", "author_handle", "text"]],
        hide_index=True,
        width="stretch",
        column_config={
            "created_at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
            "source": "Source",
            "author_handle": "Author",
            "text": st.column_config.TextColumn("Text", width="large"),
        },
    )

# The fallback for every chart (and for AppTest, which cannot click): pick what to list.
st.subheader("Mentions behind the charts")
options: dict[str, Drill] = {}
for a in alerts:
    drill = _time_drill("pick", a.hour.isoformat(), "hour")
    options[f"spike|{a.hour.isoformat()}"] = {**drill, "label": "Spike alert: " + drill["label"]}
for bucket in sorted(volume["bucket"].unique(), reverse=True):
    drill = _time_drill("pick", pd.Timestamp(bucket).isoformat(), freq)
    options[f"{freq}|{pd.Timestamp(bucket).isoformat()}"] = drill
for tid in theme_names:
    options[f"theme|{tid}"] = _theme_drill_of("pick", tid)


def _picked() -> None:
    key = st.session_state.get("overview_drill_pick")
    if key in options:
        st.session_state["overview_drill"] = options[key]


st.selectbox(
    "Show mentions for…",
    list(options),
    index=None,
    format_func=lambda k: options[k]["label"],
    key="overview_drill_pick",
    on_change=_picked,
    placeholder="A spike alert, a time bucket or a theme",
    help="Or click a bar in any chart above.",
)
_drill_panel("pick", f, parties)
