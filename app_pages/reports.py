"""Reports: the feedback, escalation and KPI reports as CSV, XLSX, HTML or PDF, and a
row-level CSV export of the mentions the sidebar filters select.

The reports are :mod:`listenwell.crm.reports`' own builders and renderers, so a
download is the same file ``listenwell report KIND`` writes. Files are rendered
only when a download button is clicked (and audit-logged then), never on every
run of the page. The row-level export streams :func:`listenwell.store.iter_export_rows`
with the same formula guard and configured redaction as ``listenwell export mentions``.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from typing import Any

import streamlit as st

from listenwell import store
from listenwell.app_pages import common
from listenwell.crm import reports
from listenwell.crm.reports import Report

KINDS = {
    "feedback": "Feedback themes",
    "escalations": "Escalations and SLAs",
    "kpis": "KPIs",
}
"""The reports, by the name ``listenwell report`` gives them."""

MIME = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html",
    "pdf": "application/pdf",
}

# As ``listenwell export mentions`` (listenwell.cli.io): free text a person or a source wrote
# is formula-guarded, and the personal columns are redacted where the settings say so.
TEXT_COLUMNS = ("author_handle", "author_name", "text", "url", "topic", "link_evidence")
PERSONAL_COLUMNS = ("author_name", "text")


# ------------------------------------------------------------------ cached reads


@common._cached
def _default_period(url: str) -> tuple[date, date]:
    """The last 30 days of data (see :func:`listenwell.crm.reports.default_period`)."""
    period: tuple[date, date] = reports.default_period(
        common._engine(url), timeout_s=common.settings().query_timeout_s
    )
    return period


@common._cached
def _report(url: str, kind: str, start: date, end: date) -> Report:
    """One report as data (its tables are shown; files are rendered on download)."""
    s = common.settings()
    return reports.build_report(
        kind, common._engine(url), start, end, s.brand, timeout_s=s.query_timeout_s
    )


# ------------------------------------------------------------------ file builders


def _report_file(report: Report, kind: str, fmt: str, name: str, actor: str) -> Callable[[], bytes]:
    """The report rendered as ``fmt`` when its button is clicked, audited as the CLI does."""
    eng = common.engine()

    def build() -> bytes:
        data: bytes = reports.render(report, fmt)
        store.record_audit(
            eng,
            actor,
            f"report.{kind}",
            "download",
            name,
            {
                "format": fmt,
                "from": report.period[0].isoformat(),
                "to": report.period[1].isoformat(),
                "bytes": len(data),
                "rows": {s.title: len(s.table) for s in report.sections},
            },
        )
        return data

    return build


def _export_csv(
    engine: Any,
    f: store.MentionFilter,
    *,
    formula_guard: bool,
    redact_text: Callable[[str], str] | None,
) -> tuple[bytes, int]:
    """Every mention matching ``f`` as the CSV ``listenwell export mentions`` writes, and its
    row count. Rows are encoded as they are written (spilling to a temporary file past
    16 MiB), so only the finished file's bytes are held in memory."""
    spool = tempfile.SpooledTemporaryFile(max_size=16 * 2**20)
    out = io.TextIOWrapper(spool, encoding="utf-8", newline="")
    writer = csv.DictWriter(out, fieldnames=store.EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in store.iter_export_rows(engine, f):
        if isinstance(row.get("link_evidence"), dict | list):
            row["link_evidence"] = json.dumps(row["link_evidence"], ensure_ascii=False)
        for column in TEXT_COLUMNS:
            value = row.get(column)
            if isinstance(value, str):
                if redact_text is not None and column in PERSONAL_COLUMNS:
                    value = redact_text(value)
                row[column] = reports.safe_cell_text(value) if formula_guard else value
        writer.writerow(row)
        n += 1
    out.flush()
    out.detach()
    with spool:
        spool.seek(0)
        return spool.read(), n


def _mentions_file(
    f: store.MentionFilter, formula_guard: bool, name: str, actor: str
) -> Callable[[], bytes]:
    """The row-level export, built when its button is clicked and audited then."""
    eng = common.engine()
    redact_text = common.redactor()

    def build() -> bytes:
        data, n = _export_csv(eng, f, formula_guard=formula_guard, redact_text=redact_text)
        detail = {k: v for k, v in asdict(f).items() if v not in (None, ())}
        store.record_audit(
            eng,
            actor,
            "export.mentions",
            "download",
            name,
            {
                "rows": n,
                "formula_guard": formula_guard,
                "redacted": redact_text is not None,
                "filters": json.loads(json.dumps(detail, default=str)),
            },
        )
        return data

    return build


# ------------------------------------------------------------------ the page parts


def _period() -> tuple[date, date] | None:
    first, last = common.query(_default_period)
    picked = st.date_input(
        "Period",
        value=(first, last),
        key="reports_period",
        help="Whole days (UTC), both ends included. Default: the last 30 days with data.",
    )
    if not isinstance(picked, tuple) or len(picked) != 2:
        st.info("Pick the last day of the period too.")
        return None
    return picked[0], picked[1]


def _reports_part() -> None:
    kind = st.segmented_control(
        "Report",
        list(KINDS),
        format_func=KINDS.__getitem__,
        default="feedback",
        required=True,
        key="reports_kind",
    )
    period = _period()
    if kind is None or period is None:
        return
    start, end = period
    try:
        report: Report = common.query(_report, kind, start, end)
    except ValueError as exc:
        common.fail(f"That report cannot be built: {exc}.")
    st.subheader(report.title, anchor=False)
    st.caption(f"{report.period_text} (UTC), built {report.generated_at:%Y-%m-%d %H:%M} UTC.")
    actor = common.actor()
    for col, fmt in zip(st.columns(len(reports.FORMATS)), reports.FORMATS, strict=True):
        name = f"{kind}-report-{start.isoformat()}-{end.isoformat()}.{fmt}"
        col.download_button(
            f"Download {fmt.upper()}",
            data=_report_file(report, kind, fmt, name, actor),
            file_name=name,
            mime=MIME[fmt],
            key=f"reports_download_{fmt}",
            on_click="ignore",
            icon=":material/download:",
            width="stretch",
        )
    for section in report.sections:
        st.markdown(f"**{section.title}**")
        for note in section.notes:
            st.caption(note)
        if section.table.empty:
            st.caption("Nothing in this period.")
        else:
            st.dataframe(section.table, hide_index=True, width="stretch")


def _export_part() -> None:
    st.divider()
    st.subheader("Row-level export", anchor=False)
    if not common.can("data.export"):
        st.caption("Your role cannot download row-level exports; a manager, analyst or admin can.")
        return
    f = common.filters()
    counts = common.query(common.overview_counts, f)
    st.caption(
        "Every mention the sidebar filters select, one row each, with its enrichment columns: "
        "the same file as `listenwell export mentions`. The file is built when you click; "
        "for millions of rows the command line is quicker."
    )
    st.metric("Mentions matching the filters", f"{int(counts['mentions']):,}")
    guard = st.checkbox(
        "Guard spreadsheet formulas",
        value=True,
        key="reports_formula_guard",
        help="Prefix text that a spreadsheet would run as a formula (starting with = + - @) "
        "with a ' so opening the file is safe. Untick only for tools that read raw text.",
    )
    if common.settings().privacy.redact_exports:
        st.caption(
            "E-mail addresses, phone numbers and card numbers in authors' names and texts are "
            "replaced by [email], [phone] and [card] (setting `privacy.redact_exports`)."
        )
    days = [d.isoformat() for d in (f.start, f.end) if d is not None]
    name = "-".join(["mentions", *days]) + ".csv"
    st.download_button(
        "Download the filtered mentions (CSV)",
        data=_mentions_file(f, guard, name, common.actor()),
        file_name=name,
        mime="text/csv",
        key="reports_export",
        on_click="ignore",
        icon=":material/table_view:",
        disabled=int(counts["mentions"]) == 0,
    )


# ------------------------------------------------------------------ the page

common.require("reports.view")
st.title("Reports")
st.caption(
    "Reports to take to meetings. Each downloads as CSV (all tables, with a section column), "
    "XLSX (a sheet per section, with charts), HTML (one self-contained page) or PDF."
)
_reports_part()
_export_part()
