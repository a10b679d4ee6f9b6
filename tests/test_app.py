"""The dashboard through Streamlit's AppTest: every page renders, hostile text stays text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import streamlit as st
from app_helpers import app_test
from streamlit.testing.v1 import AppTest

from listenwell import store

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
PAGES = [
    "app_pages/overview.py",
    "app_pages/mentions.py",
    "app_pages/themes.py",
    "app_pages/inbox.py",
    "app_pages/escalations.py",
    "app_pages/customers.py",
    "app_pages/reports.py",
    "app_pages/settings.py",
    "app_pages/quarantine.py",
]
HOSTILE = '<script>alert("x")</script> **bold** [link](javascript:alert(1)) <img src=x onerror=1>'


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    t0 = datetime(2024, 6, 1, 9, tzinfo=UTC)
    mentions = [
        store.Mention(
            "x", str(i), t0 + timedelta(hours=7 * i), f"post {i} @acme", author_handle=f"@u{i % 5}"
        )
        for i in range(40)
    ]
    mentions.append(
        store.Mention(
            "reddit", "t3_h", t0 + timedelta(days=3), HOSTILE, author_handle="<b>evil</b>"
        )
    )
    store.upsert_mentions(eng, mentions)
    store.quarantine(eng, [store.Quarantined("x", "invalid JSON: Expecting value", "{oops")])
    store.upsert_customers(
        eng, [("1", store.Customer("C1", "Jo", handles=store.parse_handles("x:@u1")))]
    )
    eng.dispose()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database_url: '{url}'\nbrand: {{name: Acme}}\n", encoding="utf-8")
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    return cfg


def run_page(page: str | None = None, role: str = "admin") -> AppTest:
    at = app_test(role)
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page)
        at.run()
        assert not at.exception, at.exception
    return at


def all_text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.error] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(seeded, page):
    at = run_page(page)
    assert not at.error


def test_overview_shows_real_numbers(seeded):
    at = run_page()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Mentions"] == "41"
    assert metrics["Authors"] == "6"
    assert metrics["Known customers"] == "1"
    assert metrics["Quarantined records"] == "1"


def test_overview_shows_net_sentiment_once_enriched(seeded):
    at = run_page()
    assert any("run `listenwell enrich`" in c.value for c in at.caption)
    eng = store.connect(store_url(seeded))
    try:
        from sqlalchemy import text

        with eng.begin() as conn:
            for i, label in [(1, "positive"), (2, "positive"), (3, "negative")]:
                conn.execute(
                    text(
                        "INSERT INTO enrichments (mention_id, stage, label, score, model_name,"
                        " model_version, created_at) SELECT id, 'sentiment', :l, 0.9, 'm', '1',"
                        " created_at FROM mentions WHERE source = 'x' AND external_id = :e"
                    ),
                    {"l": label, "e": str(i)},
                )
    finally:
        eng.dispose()
    st.cache_data.clear()
    at = run_page()
    assert {m.label: m.value for m in at.metric}["Net sentiment"] == "+33%"


def store_url(config: Path) -> str:
    import yaml

    return yaml.safe_load(config.read_text(encoding="utf-8"))["database_url"]


def test_sidebar_filter_changes_numbers(seeded):
    at = run_page()
    at.multiselect(key="filter_sources").select("reddit")
    at.run()
    assert {m.label: m.value for m in at.metric}["Mentions"] == "1"
    at.multiselect(key="filter_sources").unselect("reddit")
    at.text_input(key="filter_search").input("post 1")
    at.run()
    assert {m.label: m.value for m in at.metric}["Mentions"] == "11"  # post 1, 10-19


def test_hostile_text_is_data_not_markup(seeded):
    at = run_page("app_pages/mentions.py")
    df = at.dataframe[0].value
    assert HOSTILE in df["text"].tolist()
    assert "<b>evil</b>" in df["author_handle"].tolist()
    # Nothing from a post reaches a markdown element, where it could be interpreted.
    assert "<script>" not in all_text(at) and "evil" not in all_text(at)


def test_quarantine_page_lists_reasons(seeded):
    at = run_page("app_pages/quarantine.py")
    assert at.dataframe[0].value["reason"].tolist() == ["invalid JSON: Expecting value"]


def test_unmigrated_database_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database_url: 'sqlite:///{tmp_path / 'empty.db'}'\n", encoding="utf-8")
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert "listenwell db upgrade" in at.error[0].value


def test_bad_config_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("brand: {nam: typo}\n", encoding="utf-8")
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert "brand.nam: unknown setting" in at.error[0].value


def test_empty_database_invites_an_import(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    eng.dispose()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database_url: '{url}'\n", encoding="utf-8")
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    at = run_page()
    assert any("No mentions yet" in i.value for i in at.sidebar.info)


def _themed(config: Path) -> dict[str, int]:
    """Two themes over the seeded mentions: a growing negative one (with a hostile name)."""
    from listenwell.store.themes import NewTheme, insert_theme

    eng = store.connect(store_url(config))
    try:
        frame = store.mentions_frame(eng, limit=100).sort_values("id")
        ids = frame["id"].tolist()
        battery = insert_theme(eng, NewTheme("battery / charge", None, [("battery", 1.0)]))
        hostile = insert_theme(eng, NewTheme(HOSTILE, None, [("<b>x</b>", 1.0)]))
        results = []
        for n, mid in enumerate(ids):
            theme = battery if n % 4 else hostile
            sentiment = "negative" if theme == battery else "positive"
            results += [
                store.EnrichmentResult(mid, "themes", str(theme), 0.8, "t", "1"),
                store.EnrichmentResult(mid, "sentiment", sentiment, 0.9, "t", "1"),
            ]
        store.upsert_enrichments(eng, results)
    finally:
        eng.dispose()
    return {"battery": battery, "hostile": hostile}


def test_themes_page_shows_themes_sentiment_quotes_and_weekly_change(seeded):
    themes = _themed(seeded)
    at = run_page("app_pages/themes.py")
    assert not at.error
    table = next(df.value for df in at.dataframe if "negative %" in df.value.columns)
    rows = table.set_index("theme_id")
    battery = rows.loc[themes["battery"]]
    assert battery["theme"] == "battery / charge"
    assert battery["negative %"] == 100.0 and battery["positive %"] == 0.0
    assert battery["mentions"] == 30  # 41 mentions, every 4th (11) in the other theme
    # The hostile theme label is data in a table, not markup.
    assert rows.loc[themes["hostile"], "theme"] == HOSTILE
    assert HOSTILE not in all_text(at)
    # The newest week against the one before, computed from the weekly counts.
    weekly = battery[["week before", "last week"]].tolist()
    if weekly[0]:
        assert battery["change %"] == round(100 * (weekly[1] - weekly[0]) / weekly[0], 1)
    quotes = at.dataframe[-1].value
    assert len(quotes) >= 1 and set(quotes["sentiment"]) <= {"negative", "positive"}


def test_themes_page_without_themes_says_how_to_get_them(seeded):
    at = run_page("app_pages/themes.py")
    assert "listenwell enrich" in all_text(at)


def test_mentions_page_explains_a_sentiment_with_the_real_model(seeded):
    at = run_page("app_pages/mentions.py")
    frame = next(df.value for df in at.dataframe if "text" in df.value.columns)
    assert {"sentiment", "intent", "topic", "customer_id"} <= set(frame.columns)
    pick = at.selectbox(key="explain_pick")
    assert pick.options and pick.value is None  # nothing computed until a mention is picked
    assert not [t for t in at.text if str(t.value).startswith("Predicted: ")]
    pick.select_index(0).run()
    assert not at.exception, at.exception
    predicted = [t.value for t in at.text if str(t.value).startswith("Predicted: ")]
    assert predicted and predicted[0].split(": ")[1] in {"negative", "neutral", "positive"}
    assert at.get("plotly_chart")


def test_mentions_csv_is_formula_guarded_and_redacted(tmp_path, monkeypatch):
    import pandas as pd

    from listenwell.app_pages import common
    from listenwell.crm.reports import safe_cell_text

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"database_url: 'sqlite:///{tmp_path / 'x.db'}'\nprivacy: {{redact_exports: true}}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    frame = pd.DataFrame(
        {"text": ['=HYPERLINK("http://evil")', "mail me at jo@example.com"], "n": [1, 2]}
    )
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(common.safe_csv(frame).decode("utf-8"))))
    assert rows[0]["text"] == safe_cell_text('=HYPERLINK("http://evil")')
    assert not rows[0]["text"].startswith("=")
    assert "jo@example.com" not in rows[1]["text"]
    assert [r["n"] for r in rows] == ["1", "2"]
