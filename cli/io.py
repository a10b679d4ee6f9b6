"""``listenwell import`` and ``listenwell export``: files in and out of the store."""

from __future__ import annotations

import csv
import getpass
import json
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from listenwell import store
from listenwell.collectors.files import FileFormatError, read_customers, read_mentions

from . import CliError, current_user, state_of

import_app = typer.Typer(help="Import customers or mentions from files.", no_args_is_help=True)
export_app = typer.Typer(help="Export data to files.", no_args_is_help=True)
quarantine_app = typer.Typer(
    help="Inspect records that were not stored, and why.", no_args_is_help=True
)

T = TypeVar("T")
_MAX_SHOWN = 10

EncodingOpt = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="The file's encoding if it is not UTF-8 and has no BOM, e.g. latin-1 or cp1252.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the counts as one JSON object.")]


def actor() -> str:
    """Who runs the command, for the audit log: ``user:<name>`` under ``--as``, else the
    operator's login as ``cli:<login>``."""
    user = current_user()
    if user is not None:
        return str(user.actor)
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def progress(label: str, unit: str = "rows") -> Progress:
    """A progress display on stderr; silent when stderr is not a terminal."""
    console = Console(stderr=True)
    return Progress(
        SpinnerColumn(),
        TextColumn(f"{label} [progress.description]{{task.description}}"),
        BarColumn(),
        TextColumn(f"{{task.completed:,.0f}} {unit}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )


def _counted(items: Iterator[T], prog: Progress, task: Any) -> Iterator[T]:
    for n, item in enumerate(items, start=1):
        if n % 1000 == 0:
            prog.update(task, completed=n)
        yield item


def _check_encoding(encoding: str | None) -> None:
    if encoding is None:
        return
    import codecs

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise CliError(f"unknown encoding {encoding!r}") from None


@import_app.command("mentions")
def import_mentions(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A .jsonl or .csv file (optionally .gz).")],
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="Source name for records without one (e.g. a review export)."
        ),
    ] = None,
    encoding: EncodingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import mentions or reviews; idempotent on (source, external_id).

    Fields: source, external_id, created_at (ISO 8601), author_handle,
    author_name, text, url, and optionally rating (1-5) and in_reply_to.
    Bad records go to quarantine with their reason and line number; the
    import goes on. Text is stored verbatim.
    """
    _check_encoding(encoding)
    state = state_of(ctx)
    engine = state.engine()
    shown: list[str] = []

    def note(item: store.Mention | store.Quarantined) -> store.Mention | store.Quarantined:
        if isinstance(item, store.Quarantined) and len(shown) < _MAX_SHOWN:
            where = (item.origin or "").rsplit(":", 1)[-1]
            shown.append(f"  line {where}: {item.reason}")
        return item

    try:
        items = read_mentions(path, encoding=encoding, default_source=source)
        with progress("importing") as prog:
            task = prog.add_task(path.name, total=None)
            result = store.upsert_mentions(
                engine,
                (note(i) for i in _counted(items, prog, task)),
                batch_size=state.settings.batch_size,
            )
    except FileFormatError as exc:
        raise CliError(str(exc)) from None
    counts = {
        "file": str(path),
        "new": result.inserted,
        "duplicates": result.duplicates,
        "quarantined": result.quarantined,
    }
    store.record_audit(engine, actor(), "import.mentions", "file", str(path), counts)
    if as_json:
        typer.echo(json.dumps(counts))
    else:
        typer.echo(
            f"imported {path.name}: {result.inserted:,} new, {result.duplicates:,} duplicates, "
            f"{result.quarantined:,} quarantined"
        )
    if shown:
        typer.echo("quarantined (see `listenwell quarantine list`):", err=True)
        for line in shown:
            typer.echo(line, err=True)
        if result.quarantined > len(shown):
            typer.echo(f"  ... and {result.quarantined - len(shown):,} more", err=True)


@import_app.command("customers")
def import_customers(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A CSV file with a header row.")],
    encoding: EncodingOpt = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with code 1 if any row was rejected.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import customers from CSV; upsert by customer_id.

    Header: customer_id,name,email,phone,handles,segment; any extra columns are
    kept as attributes. handles is ;-separated platform:handle, e.g.
    x:@jdoe;reddit:u/jdoe. Bad rows are reported with line number and reason;
    good rows are still imported.
    """
    _check_encoding(encoding)
    state = state_of(ctx)
    engine = state.engine()
    errors: list[tuple[str, str]] = []

    def good_rows() -> Iterator[tuple[str, store.Customer]]:
        for lineno, customer, reason in read_customers(path, encoding=encoding):
            if customer is None:
                errors.append((f"line {lineno}", reason or "unreadable row"))
            else:
                yield f"line {lineno}", customer

    try:
        with progress("importing") as prog:
            task = prog.add_task(path.name, total=None)
            result = store.upsert_customers(
                engine, _counted(good_rows(), prog, task), actor=actor()
            )
    except FileFormatError as exc:
        raise CliError(str(exc)) from None
    errors.extend(result.errors)
    errors.sort(key=lambda e: int(e[0].split()[-1]))
    counts = {
        "file": str(path),
        "new": result.inserted,
        "updated": result.updated,
        "rejected": len(errors),
    }
    if as_json:
        typer.echo(json.dumps({**counts, "errors": [f"{w}: {r}" for w, r in errors]}))
    else:
        typer.echo(
            f"imported {path.name}: {result.inserted:,} new, {result.updated:,} updated, "
            f"{len(errors):,} rejected"
        )
        for where, reason in errors[:_MAX_SHOWN]:
            typer.echo(f"  {where}: {reason}", err=True)
        if len(errors) > _MAX_SHOWN:
            typer.echo(f"  ... and {len(errors) - _MAX_SHOWN:,} more", err=True)
    if strict and errors:
        raise typer.Exit(1)


@export_app.command("mentions")
def export_mentions(
    ctx: typer.Context,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="CSV file to write ('-' for stdout).")
    ],
    since: Annotated[
        str | None, typer.Option("--since", help="First day to include (YYYY-MM-DD).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Last day to include (YYYY-MM-DD).")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Only these sources (repeatable).")
    ] = None,
    formula_guard: Annotated[
        bool,
        typer.Option(
            "--formula-guard/--no-formula-guard",
            help="Prefix text that a spreadsheet would run as a formula (starting with = + - @) "
            "with a ' so opening the file is safe; --no-formula-guard keeps text verbatim.",
        ),
    ] = True,
) -> None:
    """Export mentions with their enrichment columns as CSV (one row per mention).

    Columns: source, external_id, created_at, author_handle, author_name, text,
    url, rating, in_reply_to, sentiment, sentiment_score, topic, customer_id,
    link_confidence, link_evidence, escalated, priority, theme_id, intent,
    language. Columns of stages that have not run are empty. With the setting
    privacy.redact_exports, e-mail addresses, phone numbers and card numbers in
    the text are replaced by [email], [phone] and [card].
    """
    from listenwell.crm.reports import safe_cell_text

    state = state_of(ctx)
    redact_text = None
    if state.settings.privacy.redact_exports:
        from listenwell.crm.pii import redact

        region = state.settings.linking.default_region
        kinds = tuple(state.settings.privacy.redact_kinds)

        def redact_text(value: str) -> str:
            return str(redact(value, kinds, region=region))

    engine = state.engine()
    filters = store.MentionFilter(
        start=_parse_day(since, "--since"),
        end=_parse_day(until, "--until"),
        sources=tuple(source or ()),
    )
    n = 0
    handle = sys.stdout if str(output) == "-" else None
    try:
        f = handle or output.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    try:
        writer = csv.DictWriter(f, fieldnames=store.EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        with progress("exporting") as prog:
            task = prog.add_task(output.name, total=None)
            for row in store.iter_export_rows(engine, filters):
                if isinstance(row.get("link_evidence"), dict | list):
                    row["link_evidence"] = json.dumps(row["link_evidence"], ensure_ascii=False)
                for column in _TEXT_COLUMNS:
                    value = row.get(column)
                    if isinstance(value, str):
                        if redact_text is not None and column in _PERSONAL_COLUMNS:
                            value = redact_text(value)
                        row[column] = safe_cell_text(value) if formula_guard else value
                writer.writerow(row)
                n += 1
                if n % 1000 == 0:
                    prog.update(task, completed=n)
    finally:
        if handle is None:
            f.close()
    if handle is None:
        typer.echo(f"exported {n:,} mentions to {output}")
    store.record_audit(engine, actor(), "export.mentions", "file", str(output), {"rows": n})


# Free text a person or a source wrote: formula-guarded, and redacted where configured.
_TEXT_COLUMNS = ("author_handle", "author_name", "text", "url", "topic", "link_evidence")
_PERSONAL_COLUMNS = ("author_name", "text")


def _parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option} must be a date like 2024-01-31, got {value!r}") from None


@quarantine_app.command("list")
def quarantine_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many to show.")] = 20,
) -> None:
    """Show the newest quarantined records with their reason and origin."""
    engine = state_of(ctx).engine()
    df = store.quarantine_frame(engine, limit=limit)
    if df.empty:
        typer.echo("no quarantined records")
        return
    for row in df.itertuples():
        raw = (row.raw or "").replace("\n", " ")
        raw = raw if len(raw) <= 80 else raw[:77] + "..."
        typer.echo(f"{row.received_at:%Y-%m-%d %H:%M} {row.source} {row.origin or ''}")
        typer.echo(f"    reason: {row.reason}")
        typer.echo(f"    raw:    {raw}")


def register(app: typer.Typer) -> None:
    """Add the ``import``, ``export`` and ``quarantine`` commands to the root app."""
    app.add_typer(import_app, name="import")
    app.add_typer(export_app, name="export")
    app.add_typer(quarantine_app, name="quarantine")
