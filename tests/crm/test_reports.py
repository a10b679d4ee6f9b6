"""Reports: built as data, rendered to CSV, XLSX, HTML and PDF (over SQLite and PostgreSQL)."""

from __future__ import annotations

import io
from datetime import date
from html.parser import HTMLParser

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, insert

from listenwell.config.settings import BrandSettings
from listenwell.crm import reports
from listenwell.store.models import ThemeRow
from tests.store.crm_seed import at, conversation, enrich, escalation, mention, survey

HOSTILE = "<script>alert(1)</script>"
START, END = date(2024, 5, 1), date(2024, 5, 31)


def seed(engine: Engine) -> dict[str, int]:
    """Two themes over two weeks, escalated conversations, events and surveys."""
    with engine.begin() as c:
        late = int(
            c.execute(
                insert(ThemeRow.__table__).values(label="late parcel", name=HOSTILE)
            ).inserted_primary_key[0]
        )
        app = int(
            c.execute(insert(ThemeRow.__table__).values(label="app crash")).inserted_primary_key[0]
        )
        ids = []
        for day, text, theme, sentiment in [
            (13, f"parcel late again {HOSTILE}", late, "negative"),
            (14, '=HYPERLINK("http://evil","x")', late, "negative"),
            (21, "parcel late, thanks anyway", late, "positive"),
            (22, "still waiting for the parcel \u2603 \u4e2d", late, "neutral"),
            (23, "-2+3 the app crashed", app, "negative"),
            (1, "old news, outside the period", app, "negative"),
        ]:
            month = 4 if text.startswith("old news") else 5
            mid = mention(c, at(day, month=month), text=text, author="@jo")
            enrich(c, mid, "themes", str(theme))
            enrich(c, mid, "sentiment", sentiment)
            ids.append(mid)
        esc = {"rules": ["angry vip"], "reasons": [
            {"rule": "angry vip", "condition": "keywords", "value": "late", "threshold": None},
            {"rule": "angry vip", "condition": "followers", "value": 9000, "threshold": 1000},
        ]}  # fmt: skip
        met = conversation(c, ids[0], at(13, 12), priority="high", escalated=True,
                           escalation_level=1, escalation=esc,
                           first_response_at=at(13, 12, 30), resolved_at=at(14))  # fmt: skip
        breached = conversation(c, ids[1], at(14, 9), priority="urgent", escalated=True,
                                escalation_level=2, escalation={"rules": ["@sum(1)"]},
                                first_response_at=at(14, 11))  # fmt: skip
        conversation(c, ids[2], at(21), priority="normal")  # not escalated
        escalation(c, breached, at(14, 10), kind="upgraded")
        escalation(c, met, at(13, 12, 5), kind="escalated")
        survey(c, "csat", 5, at(14))
        survey(c, "csat", 2, at(21))
        survey(c, "nps", 10, at(22))
    return {"late": late, "app": app, "met": met, "breached": breached}


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    seed(engine)
    return engine


def test_feedback_report_data(seeded: Engine) -> None:
    rep = reports.feedback_report(seeded, START, END, BrandSettings(name="Acme"))
    assert rep.title.startswith("Acme")
    themes, quotes, sentiment = (s.table for s in rep.sections)
    assert [s.title for s in rep.sections] == ["Themes", "Quotes", "Sentiment"]
    top = themes.iloc[0]
    assert top["theme"] == HOSTILE and top["mentions"] == 4
    assert top["negative %"] == 50.0
    # Week of 20 May (last week of data) against the week of 13 May.
    assert top["last week of period"] == 2 and top["week before that"] == 2
    assert themes.set_index("theme").loc["app crash", "mentions"] == 1  # April left out
    assert len(quotes[quotes.theme == HOSTILE]) == 3
    assert "outside the period" not in " ".join(quotes["quote"])
    assert sentiment[["negative", "neutral", "positive"]].to_numpy().sum() == 5
    assert rep.sections[0].chart is not None


def test_escalations_report_data(seeded: Engine) -> None:
    rep = reports.escalations_report(seeded, START, END, now=at(31))
    table, by_priority, upgrades = (s.table for s in rep.sections)
    assert len(table) == 2
    first = table.iloc[0]
    assert first["SLA status"] == "met" and first["level"] == "priority raised"
    assert first["reasons"] == "angry vip (keywords, followers)"
    assert first["first response (min)"] == 30.0
    assert table.iloc[1]["SLA status"] == "breached"
    counts = by_priority.set_index("priority")
    assert counts.loc["urgent", "SLA breached"] == 1 and counts.loc["high", "SLA met"] == 1
    assert counts.loc["high", "SLA compliance %"] == 100.0
    assert list(upgrades["event"]) == ["upgraded"]
    assert "50.0%" in rep.sections[0].notes[0]


def test_kpis_report_data(seeded: Engine) -> None:
    rep = reports.kpis_report(seeded, START, END, BrandSettings(name="Acme"), now=at(31))
    kpi, volume, trend = (s.table for s in rep.sections)
    values = kpi.set_index("kpi")["value"]
    assert values["mentions"] == 5 and values["csat"] == 50.0
    assert len(volume) == 31 and volume["mentions"].sum() == 5
    assert set(trend.columns) >= {"week", "net sentiment", "CSAT %", "NPS"}


def test_bad_period(seeded: Engine) -> None:
    with pytest.raises(ValueError):
        reports.kpis_report(seeded, END, START)


def test_default_period(seeded: Engine) -> None:
    assert reports.default_period(seeded) == (date(2024, 4, 24), date(2024, 5, 23))


def test_default_period_empty(engine: Engine) -> None:
    start, end = reports.default_period(engine)
    assert (end - start).days == 29


# --------------------------------------------------------------------------- renderers


@pytest.fixture
def report(seeded: Engine) -> reports.Report:
    return reports.feedback_report(seeded, START, END, BrandSettings(name="Acme"))


def test_csv(report: reports.Report, seeded: Engine) -> None:
    df = pd.read_csv(io.BytesIO(reports.render_csv(report)))
    assert df.columns[0] == "section"
    assert set(df["section"]) == {"Themes", "Quotes", "Sentiment"}
    themes = df[df.section == "Themes"]
    assert HOSTILE in set(themes["theme"])
    quotes = set(df[df.section == "Quotes"]["quote"])
    assert '\'=HYPERLINK("http://evil","x")' in quotes
    assert not any(str(q).startswith(("=", "+", "-", "@")) for q in quotes)
    esc = reports.escalations_report(seeded, START, END, now=at(31))
    df = pd.read_csv(io.BytesIO(reports.render_csv(esc)))
    assert "'@sum(1)" in set(df["reasons"].dropna())


def test_xlsx(report: reports.Report) -> None:
    wb = load_workbook(io.BytesIO(reports.render_xlsx(report)))
    assert wb.sheetnames == ["Report", "Themes", "Quotes", "Sentiment"]
    assert wb["Report"]["A1"].value == "Acme: feedback themes"
    ws = wb["Themes"]
    headers = [c.value for c in ws[1]]
    assert headers[:3] == ["theme_id", "theme", "mentions"]
    assert ws.cell(2, 2).value == HOSTILE and ws.cell(2, 3).value == 4
    assert ws.cell(1, 1).font.bold
    assert len(ws._charts) == 1
    assert len(wb["Sentiment"]._charts) == 1
    quotes = [r[2] for r in wb["Quotes"].iter_rows(min_row=2, values_only=True)]
    assert '\'=HYPERLINK("http://evil","x")' in quotes
    assert all(not str(q).startswith(("=", "+", "-", "@")) for q in quotes)


def test_xlsx_kpis_and_escalations(seeded: Engine) -> None:
    rep = reports.kpis_report(seeded, START, END, now=at(31))
    wb = load_workbook(io.BytesIO(reports.render_xlsx(rep)))
    assert wb.sheetnames == ["Report", "KPIs", "Volume", "Trends"]
    assert [c.value for c in wb["KPIs"][1]] == ["kpi", "value", "unit", "period"]
    assert len(wb["Volume"]._charts) == 1
    rep = reports.escalations_report(seeded, START, END, now=at(31))
    wb = load_workbook(io.BytesIO(reports.render_xlsx(rep)))
    ws = wb["Escalations"]
    headers = [c.value for c in ws[1]]
    row = dict(zip(headers, [c.value for c in ws[2]], strict=True))
    assert row["SLA status"] == "met" and row["opened"].day == 13
    assert len(wb["By priority"]._charts) == 1


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.text: list[str] = []
        self.csp: str | None = None
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        a = dict(attrs)
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = a.get("content")
        assert not any(k.startswith("on") for k in a), f"event handler on <{tag}>"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)


def test_html(report: reports.Report) -> None:
    page = reports.render_html(report).decode("utf-8")
    parser = _Scripts()
    parser.feed(page)
    assert HOSTILE in "".join(parser.text)  # shown as text...
    assert page.count("<script") == len(parser.scripts)
    assert HOSTILE not in page  # ...never as markup
    assert parser.csp is not None and "default-src 'none'" in parser.csp
    bundle = [s for s in parser.scripts if "plotly.js" in s[:2000]]
    assert len(bundle) == 1  # plotly's bundle, inline, once
    for script in parser.scripts:
        if script in bundle:
            continue
        assert (
            "Plotly.newPlot" in script
            or script == "window.PlotlyConfig = {MathJaxConfig: 'local'};"
        )
        assert "<script" not in script.lower() and "</" not in script  # data never closes it
    assert "cdn" not in page.split("<body>")[0].lower()
    assert 'src="http' not in page


def test_pdf(report: reports.Report, seeded: Engine) -> None:
    data = reports.render_pdf(report)
    assert data.startswith(b"%PDF") and len(data) > 2000
    for rep in (
        reports.escalations_report(seeded, START, END, now=at(31)),
        reports.kpis_report(seeded, START, END, now=at(31)),
    ):
        data = reports.render_pdf(rep)
        assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")


def test_empty_reports_render(engine: Engine) -> None:
    for rep in (
        reports.feedback_report(engine, START, END),
        reports.escalations_report(engine, START, END),
        reports.kpis_report(engine, START, END),
    ):
        for fmt in reports.FORMATS:
            assert reports.render(rep, fmt)


def test_helpers() -> None:
    assert reports.safe_cell_text("=1+1") == "'=1+1"
    assert reports.safe_cell_text("\tx") == "'\tx"
    assert reports.safe_cell_text("fine") == "fine"
    assert reports._latin1("caf\u00e9 \u201cok\u201d \u4e2d") == 'caf\u00e9 "ok" ?'
    with pytest.raises(ValueError):
        reports.render(reports.Report("t", (START, END)), "docx")
