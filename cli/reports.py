"""``listenwell report feedback|escalations|kpis``: meeting reports as CSV, XLSX, HTML or PDF."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer

from . import CliError, state_of
from .io import actor, progress

__all__ = ["register", "report_app"]

report_app = typer.Typer(
    help="Reports to take to meetings: feedback themes with quotes, escalations and SLA "
    "compliance, KPIs with charts; as CSV, XLSX, HTML or PDF.",
    no_args_is_help=True,
)

_SUFFIXES = {".csv": "csv", ".xlsx": "xlsx", ".html": "html", ".htm": "html", ".pdf": "pdf"}

OutputOpt = Annotated[
    Path,
    typer.Option(
        "--output",
        "-o",
        help="The file to write (folders are created). Its suffix (.csv, .xlsx, .html, .pdf) "
        "gives the format unless --format is given.",
        dir_okay=False,
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="csv (all tables in one file, with a 'section' column), xlsx (a sheet per "
        "section, with charts), html (one self-contained page) or pdf. "
        "Default: from the --output suffix.",
    ),
]
FromOpt = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="First day (YYYY-MM-DD, UTC). Default: 29 days before --to.",
    ),
]
ToOpt = Annotated[
    str | None,
    typer.Option(
        "--to",
        help="Last day, inclusive (YYYY-MM-DD, UTC). Default: the newest day with data "
        "(mentions, conversations or surveys), so the default period is the last 30 days of data.",
    ),
]


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option} must be a date like 2024-01-31, got {value!r}") from None


def _format(fmt: str | None, output: Path) -> str:
    from listenwell.crm.reports import FORMATS

    if fmt is not None:
        fmt = fmt.lower().lstrip(".")
        if fmt not in FORMATS:
            raise CliError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        return fmt
    suffix = output.suffix.lower()
    if suffix not in _SUFFIXES:
        raise CliError(
            f"cannot tell the format from {output.name!r}: give --format "
            f"({', '.join(FORMATS)}) or an output ending in .csv, .xlsx, .html or .pdf"
        )
    return _SUFFIXES[suffix]


def _run(
    ctx: typer.Context,
    kind: str,
    start: str | None,
    end: str | None,
    fmt: str | None,
    output: Path,
) -> None:
    from listenwell.crm import reports

    first, last = _day(start, "--from"), _day(end, "--to")
    chosen = _format(fmt, output)
    if str(output) == "-":
        raise CliError("--output must be a file, not '-'")
    if output.is_dir():
        raise CliError(f"--output {output} is a folder; give a file name")
    state = state_of(ctx)
    engine = state.engine()
    if first is None and last is None:
        first, last = reports.default_period(engine)
    elif last is None:  # only --from: up to the newest day with data
        assert first is not None
        last = max(first, reports.default_period(engine)[1])
    elif first is None:
        first = last - timedelta(days=29)
    assert first is not None and last is not None
    if last < first:
        raise CliError("--to is before --from")
    with progress("building") as prog:
        task = prog.add_task(f"{kind} report", total=None)
        report = reports.build_report(kind, engine, first, last, state.settings.brand)
        prog.update(task, description=f"{kind} report as {chosen}")
        try:
            size = reports.write_report(report, output, chosen)
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    rows = {s.title: len(s.table) for s in report.sections}
    detail = {
        "format": chosen,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "bytes": size,
        "rows": rows,
    }
    from listenwell import store

    store.record_audit(engine, actor(), f"report.{kind}", "file", str(output), detail)
    typer.echo(
        f"wrote the {kind} report for {first} to {last} to {output} ({chosen}, {size:,} bytes)"
    )


@report_app.command("feedback")
def report_feedback(
    ctx: typer.Context,
    output: OutputOpt,
    start: FromOpt = None,
    end: ToOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Feedback themes: volume, sentiment shares, week-over-week change and top quotes of
    each theme, and sentiment over time."""
    _run(ctx, "feedback", start, end, fmt, output)


@report_app.command("escalations")
def report_escalations(
    ctx: typer.Context,
    output: OutputOpt,
    start: FromOpt = None,
    end: ToOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Escalated conversations opened in the period (priority, level, reasons, times, SLA
    status), SLA compliance per priority, and automatic upgrades (SLA in wall-clock time)."""
    _run(ctx, "escalations", start, end, fmt, output)


@report_app.command("kpis")
def report_kpis(
    ctx: typer.Context,
    output: OutputOpt,
    start: FromOpt = None,
    end: ToOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Customer-care KPIs of the period, with mention volume and weekly net sentiment, CSAT
    and NPS trends."""
    _run(ctx, "kpis", start, end, fmt, output)


def register(app: typer.Typer) -> None:
    """Add the ``report`` command group to the root app."""
    app.add_typer(report_app, name="report")
