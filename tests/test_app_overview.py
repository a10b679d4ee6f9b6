"""The Overview page through AppTest: spike alerts, share of voice, themes rising and falling,
drill-down to the mentions behind a chart, and hostile text kept as data.
Also the page's pure chart builders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from app_helpers import app_test
from streamlit.testing.v1 import AppTest

from listenwell import store
from listenwell.app_pages import charts

START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
SPIKE = datetime(2024, 2, 28, 15, tzinfo=UTC)  # the ninth Wednesday, 15:00
END = datetime(2024, 2, 29, 12, 30, tzinfo=UTC)  # the newest mention is just before this
HOSTILE = '<script>alert("x")</script> **bold** [link](javascript:alert(1)) <img src=x onerror=1>'
EVIL = "<b>evil</b>"
WORDS = ["login", "app", "slow", "price", "update", "support"]


def seed_mentions() -> list[store.Mention]:
    """Two mentions an hour (twenty on Monday mornings) for eight and a half weeks, some
    naming the competitor, and a spike on the last Wednesday at 15:00 with new words, a
    new source, a new author and hostile text."""
    out: list[store.Mention] = []
    t, n = START, 0
    while t < END - timedelta(hours=1):
        per_hour = 20 if t.weekday() == 0 and t.hour in (9, 10) else 2
        for k in range(per_hour):
            n += 1
            brand = "Globex" if n % 7 == 0 else "acme vs globex" if n % 11 == 0 else "Acme"
            text = f"{brand} {WORDS[n % len(WORDS)]} {WORDS[(n // 6) % len(WORDS)]}"
            when = t + timedelta(minutes=(3 * k) % 60)
            out.append(store.Mention("x", f"m{n}", when, text, author_handle=f"@u{n % 30}"))
        t += timedelta(hours=1)
    for k in range(30):
        author = "@angry" if k % 2 == 0 else f"@new{k}"
        when = SPIKE + timedelta(minutes=k)
        out.append(
            store.Mention("reddit", f"s{k}", when, "Acme outage, refund now", author_handle=author)
        )
    for k in range(3):
        when = SPIKE + timedelta(minutes=40 + k)
        out.append(store.Mention("reddit", f"h{k}", when, HOSTILE, author_handle=EVIL))
    return out


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'overview.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    store.upsert_mentions(eng, seed_mentions())
    eng.dispose()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"database_url: '{url}'\n"
        "brand: {name: Acme, keywords: [acme], competitors: {Globex: [globex]}}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    return url


def overview(role: str = "agent") -> AppTest:
    at = app_test(role)
    at.run()
    assert not at.exception, at.exception
    return at


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    return next(df.value for df in at.dataframe if column in df.value.columns)


def shown_as_markup(at: AppTest) -> str:
    """Everything on the page that Streamlit renders as markdown."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.error] + [i.value for i in at.info]
    parts += [w.value for w in at.warning] + [s.value for s in at.success]
    parts += [m.label for m in at.metric] + [s.label for s in at.selectbox]
    return "\n".join(str(p) for p in parts)


def chart_titles(at: AppTest) -> list[str]:
    titles = []
    for el in at.get("plotly_chart"):
        layout = json.loads(el.proto.spec).get("layout", {})
        titles.append(str(layout.get("title", {}).get("text", "")))
    return titles


def test_spike_alert_names_its_hour_and_what_changed(seeded):
    at = overview()
    assert any("1 spike alert" in w.value for w in at.warning)
    alerts = frame_with(at, "terms")
    assert len(alerts) == 1
    row = alerts.iloc[0]
    assert pd.Timestamp(row["hour"]) == pd.Timestamp(SPIKE)
    assert row["mentions"] == 2 + 30 + 3 and row["expected"] == 2.0
    assert "outage (new)" in row["terms"] and "refund (new)" in row["terms"]
    assert row["sources"].startswith("reddit 94% (usually 0%)")
    assert "@angry ×15 (new)" in row["authors"]
    assert "Mentions per hour against the usual for that hour of the week" in chart_titles(at)

    # Over the last seven days the Monday-morning peak (ten times a usual hour) is in the
    # window too, and is expected for a Monday morning: still one alert.
    at.segmented_control(key="overview_spike_window").set_value("7 days").run()
    assert not at.exception
    assert len(frame_with(at, "terms")) == 1


def test_share_of_voice_against_the_competitor(seeded):
    mentions = seed_mentions()
    acme = sum("acme" in m.text.lower() for m in mentions)
    globex = sum("globex" in m.text.lower() for m in mentions)
    at = overview()
    totals = frame_with(at, "party").set_index("party")
    assert totals.loc["Acme", "mentions"] == acme
    assert totals.loc["Globex", "mentions"] == globex
    assert totals.loc["Acme", "share %"] == round(100 * acme / (acme + globex), 1)
    assert "Share of voice per week" in chart_titles(at)


def test_drill_down_lists_the_mentions_of_a_bucket(seeded):
    at = overview()
    pick = at.selectbox(key="overview_drill_pick")
    day = "day|" + SPIKE.replace(hour=0).isoformat()
    assert "Mentions, Wed 2024-02-28" in pick.options  # labels; the values are keys
    assert "Spike alert: Mentions, Wed 2024-02-28 15:00 UTC" in pick.options
    pick.set_value(day).run()
    assert not at.exception, at.exception
    rows = frame_with(at, "topic")
    in_day = [m for m in seed_mentions() if m.created_at.date() == SPIKE.date()]
    assert len(rows) == len(in_day)
    assert set(rows["created_at"].dt.date) == {SPIKE.date()}
    assert any(t.value.startswith("Mentions, Wed 2024-02-28") for t in at.text)

    # The spike alert's own option lists the mentions of that hour.
    at.selectbox(key="overview_drill_pick").set_value("spike|" + SPIKE.isoformat()).run()
    rows = frame_with(at, "topic")
    assert len(rows) == 35 and rows["created_at"].min() >= pd.Timestamp(SPIKE)


def test_hostile_text_stays_data(seeded):
    at = overview()
    assert EVIL in frame_with(at, "terms").iloc[0]["authors"]  # a table cell, as text
    at.selectbox(key="overview_drill_pick").set_value("spike|" + SPIKE.isoformat()).run()
    rows = frame_with(at, "topic")
    assert HOSTILE in rows["text"].tolist() and EVIL in rows["author_handle"].tolist()
    markup = shown_as_markup(at)
    assert "<script>" not in markup and "evil" not in markup and "javascript" not in markup


def _themes(url: str) -> dict[str, int]:
    """A theme that rises in the newest week, and one that falls."""
    from listenwell.store.themes import NewTheme, insert_theme

    eng = store.connect(url)
    try:
        rising = insert_theme(eng, NewTheme("outage", None, [("outage", 1.0)], name="Outages"))
        falling = insert_theme(eng, NewTheme("login", None, [("login", 1.0)], name="Login"))
        frame = store.mentions_frame(eng, limit=5000)
        newest_week = frame["created_at"] >= pd.Timestamp("2024-02-26", tz="UTC")
        week_before = ~newest_week & (frame["created_at"] >= pd.Timestamp("2024-02-19", tz="UTC"))
        results = []
        for mid in frame.loc[newest_week, "id"].head(40):
            results.append(store.EnrichmentResult(int(mid), "themes", str(rising), 0.9, "t", "1"))
        for mid in frame.loc[week_before, "id"].head(10):
            results.append(store.EnrichmentResult(int(mid), "themes", str(rising), 0.9, "t", "1"))
        for mid in frame.loc[week_before, "id"].tail(25):
            results.append(store.EnrichmentResult(int(mid), "themes", str(falling), 0.9, "t", "1"))
        for mid in frame.loc[newest_week, "id"].tail(5):
            results.append(store.EnrichmentResult(int(mid), "themes", str(falling), 0.9, "t", "1"))
        store.upsert_enrichments(eng, results)
    finally:
        eng.dispose()
    return {"rising": rising, "falling": falling}


def test_themes_rising_and_falling_drill_to_their_mentions(seeded):
    at = overview()
    assert any("No themes yet" in c.value for c in at.caption)
    themes = _themes(seeded)
    st.cache_data.clear()
    at = overview()
    assert any(t.startswith("Themes rising and falling") for t in chart_titles(at))
    key = f"theme|{themes['rising']}"
    at.selectbox(key="overview_drill_pick").set_value(key).run()
    rows = frame_with(at, "topic")
    assert len(rows) == 50 and set(rows["topic"]) == {"Outages"}


def test_page_with_no_mentions_says_so(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    eng.dispose()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database_url: '{url}'\n", encoding="utf-8")
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    at = overview()
    assert any("No mentions match" in i.value for i in at.info)


# The page's pure chart builders.


def test_selected_reads_the_first_point_with_customdata():
    state = {
        "selection": {"points": [{"x": 1}, {"customdata": ["2024-01-01T00:00:00+00:00", "x"]}]}
    }
    assert charts.selected(state) == ["2024-01-01T00:00:00+00:00", "x"]
    assert charts.selected({"selection": {"points": []}}) is None
    assert charts.selected(None) is None


def test_volume_chart_points_carry_their_bucket_and_source():
    df = pd.DataFrame(
        {
            "bucket": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
            "source": ["x", "<b>r</b>"],
            "mentions": [3, 4],
        }
    )
    fig = charts.volume_chart(df)
    data = {t.name: [list(c) for c in t.customdata] for t in fig.data}
    assert data["x"] == [["2024-01-01T00:00:00+00:00", "x"]]
    assert data["\u2039b\u203ar\u2039/b\u203a"] == [["2024-01-02T00:00:00+00:00", "<b>r</b>"]]


def test_theme_movers_split_rising_and_falling():
    table = pd.DataFrame(
        {
            "theme_id": [1, 2, 3, 4],
            "theme": ["a", "b", "c", "d"],
            "week before": [1, 10, 5, 0],
            "last week": [9, 2, 5, 3],
            "change %": [800.0, -80.0, 0.0, None],
        }
    )
    movers = charts.theme_movers(table, top=5)
    assert movers["theme_id"].tolist() == [1, 4, 2]
    assert movers["change"].tolist() == [8, 3, -8]
    assert movers["direction"].tolist() == ["rising", "rising", "falling"]
    fig = charts.theme_movers_chart(movers)
    assert {t.name for t in fig.data} == {"rising", "falling"}


def test_voice_totals_and_chart():
    df = pd.DataFrame(
        {
            "bucket": pd.to_datetime(["2024-01-01"] * 2 + ["2024-01-08"] * 2, utc=True),
            "party": ["Acme", "Globex"] * 2,
            "mentions": [3, 1, 0, 0],
            "share": [75.0, 25.0, float("nan"), float("nan")],
        }
    )
    totals = charts.voice_totals(df)
    assert totals.to_dict("list") == {
        "party": ["Acme", "Globex"],
        "mentions": [3, 1],
        "share %": [75.0, 25.0],
    }
    fig = charts.voice_chart(df)
    assert [t.name for t in fig.data] == ["Acme", "Globex"]
    assert list(fig.data[0].y[:1]) == [75.0]


def test_spike_chart_marks_alert_hours_and_the_threshold():
    hours = pd.DataFrame(
        {
            "hour": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 11:00"], utc=True),
            "observed": [3, 40],
            "expected": [3.0, 2.0],
            "spread": [1.7, 1.4],
            "score": [0.0, 27.0],
            "flagged": [False, True],
        }
    )
    fig = charts.spike_chart(hours, z=3.0, min_count=10)
    bars, expected, threshold = fig.data
    assert list(bars.marker.color) == ["#60a5fa", "#d62728"]
    assert list(threshold.y) == pytest.approx([10.0, 10.0])  # max(min_count, e + z * spread)
    assert list(expected.y) == [3.0, 2.0]
