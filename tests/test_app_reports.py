"""The Reports page through AppTest: each report in each format, and the row-level export."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from app_helpers import app_test, open_page
from cli_helpers import run
from openpyxl import load_workbook
from sqlalchemy import select
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from listenwell import store
from listenwell.store.models import AuditRow
from tests.crm.test_reports import HOSTILE, seed
from tests.store.crm_seed import at, enrich, mention

PAGE = "app_pages/reports.py"
START, END = date(2024, 5, 1), date(2024, 5, 31)
A = AuditRow.__table__
PII_TEXT = "mail me at jo.doe@example.com or call +1 415 555 0101"
TITLES = {
    "feedback": "Acme: feedback themes",
    "escalations": "Escalations and SLA compliance",
    "kpis": "Acme: customer-care KPIs",
}
SECTIONS = {
    "feedback": {"Themes", "Quotes", "Sentiment"},
    "escalations": {"Escalations", "By priority", "Upgrades"},
    "kpis": {"KPIs", "Volume", "Trends"},
}


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Themes, escalations and surveys in May 2024 (tests/crm/test_reports.py), plus reddit
    mentions holding personal data; exports redact it (``privacy.redact_exports``)."""
    url = f"sqlite:///{tmp_path / 'reports.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    seed(eng)
    with eng.begin() as c:
        for day, sentiment in [(15, "negative"), (16, "positive"), (17, "negative")]:
            mid = mention(c, at(day), f"{PII_TEXT} ({day})", source="reddit", author="@ann")
            enrich(c, mid, "sentiment", sentiment)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"database_url: '{url}'\nbrand: {{name: Acme}}\nprivacy: {{redact_exports: true}}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], Any]]:
    """``file name -> callable giving the bytes`` of each download button drawn."""
    found: dict[str, Callable[[], Any]] = {}
    add_deferred = MediaFileManager.add_deferred

    def record_deferred(self, fn, mimetype, coordinates, file_name=None, **kw):
        found.pop(str(file_name), None)  # the newest run's button last
        found[str(file_name)] = fn
        return add_deferred(self, fn, mimetype, coordinates, file_name=file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record_deferred)
    return found


def page(role: str = "analyst") -> AppTest:
    at_ = open_page(app_test(role), PAGE)
    at_.date_input(key="reports_period").set_value((START, END)).run()
    assert not at_.exception, at_.exception
    return at_


def audit(db: Any, action: str) -> list[Any]:
    with db.connect() as c:
        return c.execute(select(A).where(A.c.action == action).order_by(A.c.id)).all()


def markup(at_: AppTest) -> str:
    parts = [m.value for m in at_.markdown] + [c.value for c in at_.caption]
    parts += [e.value for e in at_.error] + [i.value for i in at_.info]
    parts += [s.value for s in at_.subheader] + [t.value for t in at_.title]
    return "\n".join(str(p) for p in parts)


def test_each_report_downloads_in_every_format(db, downloads):
    at_ = page("analyst")
    for kind, title in TITLES.items():
        at_.segmented_control(key="reports_kind").set_value(kind).run()
        assert not at_.exception and not at_.error, at_.exception
        assert at_.subheader[0].value == title
        names = {
            f: f"{kind}-report-2024-05-01-2024-05-31.{f}" for f in ("csv", "xlsx", "html", "pdf")
        }
        assert set(names.values()) <= set(downloads)
        assert not audit(db, f"report.{kind}")  # nothing is rendered until a click

        table = pd.read_csv(io.BytesIO(downloads[names["csv"]]()))
        assert not table.empty and set(table["section"]) <= SECTIONS[kind]
        book = load_workbook(io.BytesIO(downloads[names["xlsx"]]()))
        assert book.sheetnames == ["Report", *sorted(SECTIONS[kind], key=_order(kind))]
        page_html = downloads[names["html"]]().decode("utf-8")
        assert title in page_html and "Content-Security-Policy" in page_html
        assert downloads[names["pdf"]]().startswith(b"%PDF")

        entries = audit(db, f"report.{kind}")
        assert [e.detail["format"] for e in entries] == ["csv", "xlsx", "html", "pdf"]
        assert {e.actor for e in entries} == {"user:test-analyst"}
        assert entries[0].detail["from"] == "2024-05-01" and entries[0].entity_id == names["csv"]
        downloads.clear()


def _order(kind: str) -> Callable[[str], int]:
    order = {
        "feedback": ["Themes", "Quotes", "Sentiment"],
        "escalations": ["Escalations", "By priority", "Upgrades"],
        "kpis": ["KPIs", "Volume", "Trends"],
    }[kind]
    return order.index


def test_report_tables_show_hostile_text_as_data(db):
    at_ = page("agent")
    themes = next(d.value for d in at_.dataframe if "theme" in d.value.columns)
    assert HOSTILE in themes["theme"].tolist()
    shown = markup(at_)
    assert "<script>" not in shown and "HYPERLINK" not in shown


def _export(at_: AppTest, downloads: dict[str, Callable[[], Any]]) -> pd.DataFrame:
    """The row-level export the last run drew, as strings."""
    name = [n for n in downloads if n.startswith("mentions")][-1]
    data = downloads[name]()
    return pd.read_csv(io.BytesIO(data), keep_default_na=False, dtype=str)


def test_row_level_export_honours_the_sidebar_filters(db, downloads):
    at_ = page("analyst")
    at_.date_input(key="filter_dates").set_value((START, END)).run()
    every = _export(at_, downloads)
    assert len(every) == 8 and set(every["source"]) == {"x", "reddit"}  # April left out
    at_.multiselect(key="filter_sources").select("reddit").run()
    assert {m.label: m.value for m in at_.metric}["Mentions matching the filters"] == "3"
    reddit = _export(at_, downloads)
    assert len(reddit) == 3 and set(reddit["source"]) == {"reddit"}
    at_.multiselect(key="filter_sentiments").select("negative").run()
    negative = _export(at_, downloads)
    assert sorted(negative["created_at"]) == ["2024-05-15T12:00:00Z", "2024-05-17T12:00:00Z"]
    assert set(negative["sentiment"]) == {"negative"}
    # Personal data is redacted as the settings ask, in the text and nowhere else.
    assert all("[email]" in t and "[phone]" in t for t in negative["text"])
    assert not any("jo.doe@example.com" in t for t in negative["text"])
    (entry, *_) = audit(db, "export.mentions")
    assert entry.actor == "user:test-analyst" and entry.detail["rows"] == 8
    last = audit(db, "export.mentions")[-1]
    assert last.detail["filters"]["sources"] == ["reddit"] and last.detail["redacted"] is True


def test_row_level_export_is_the_cli_export(db, downloads, capsys, tmp_path):
    at_ = page("manager")
    at_.date_input(key="filter_dates").set_value((START, END)).run()
    at_.multiselect(key="filter_sources").select("x").run()
    name = [n for n in downloads if n.startswith("mentions")][-1]
    assert name == "mentions-2024-05-01-2024-05-31.csv"
    ours = downloads[name]()
    out = tmp_path / "cli.csv"
    import os

    code, _, err = run(
        capsys, "--config", os.environ["LISTENWELL_CONFIG"], "export", "mentions",
        "--since", "2024-05-01", "--until", "2024-05-31", "--source", "x", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert ours == out.read_bytes()
    rows = pd.read_csv(io.BytesIO(ours), keep_default_na=False, dtype=str)
    # The formula guard is on: a formula in a post is text in a spreadsheet.
    assert '\'=HYPERLINK("http://evil","x")' in rows["text"].tolist()
    assert "'-2+3 the app crashed" in rows["text"].tolist()


def test_formula_guard_can_be_turned_off(db, downloads):
    at_ = page("analyst")
    at_.date_input(key="filter_dates").set_value((START, END)).run()
    at_.checkbox(key="reports_formula_guard").uncheck().run()
    rows = _export(at_, downloads)
    assert '=HYPERLINK("http://evil","x")' in rows["text"].tolist()
    assert audit(db, "export.mentions")[-1].detail["formula_guard"] is False


def test_agent_gets_reports_but_no_row_level_export(db, downloads):
    at_ = page("agent")
    assert [d.label for d in at_.download_button] == [
        "Download CSV",
        "Download XLSX",
        "Download HTML",
        "Download PDF",
    ]
    assert not [n for n in downloads if n.startswith("mentions")]
    assert "Your role cannot download row-level exports" in markup(at_)


def test_reports_page_refuses_a_role_without_reports(db):
    from listenwell.store.users import User

    direct = AppTest.from_file(str(Path(__file__).resolve().parents[1] / PAGE), default_timeout=60)
    direct.session_state["listenwell_user"] = User("nobody", "visitor")
    direct.run()
    assert not direct.exception
    assert "cannot open and download" in direct.error[0].value
    assert not direct.download_button
