"""``listenwell db``: create, migrate and inspect the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from listenwell import store

from . import state_of
from .io import actor, progress

db_app = typer.Typer(help="Create, migrate and inspect the database.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Create the schema or migrate it to the latest version (safe to run again)."""
    state = state_of(ctx)
    engine = state.engine(require_current=False)
    before = store.migration_status(engine)
    after = store.upgrade(engine)
    done = len(before.pending) - len(after.pending)
    where = store_url(state)
    if done:
        typer.echo(f"applied {done} migration(s); database is up to date: {where}")
    else:
        typer.echo(f"database is already up to date: {where}")


@db_app.command("status")
def status(ctx: typer.Context) -> None:
    """List applied and pending migrations without changing anything."""
    state = state_of(ctx)
    st = store.migration_status(state.engine(require_current=False))
    typer.echo(f"database: {store_url(state)}")
    for name in st.applied:
        typer.echo(f"  applied  {name}")
    for name in st.pending:
        typer.echo(f"  pending  {name}")
    typer.echo("up to date" if st.current else "run `listenwell db upgrade` to apply the pending")


@db_app.command("backup")
def backup(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(help="The backup file to write (a zip), e.g. listenwell.zip.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Back up the whole database into one portable file (SQLite and PostgreSQL alike).

    Reads one consistent snapshot, writes beside PATH and renames at the end, so
    an interrupted backup never leaves a broken file under PATH. The file also
    moves a workspace between databases: restore it into an empty PostgreSQL.
    """
    from listenwell.store.backup import backup as run_backup

    state = state_of(ctx)
    with progress("backup") as bar:
        tasks: dict[str, Any] = {}

        def step(table: str, done: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=None)
            bar.update(tasks[table], completed=done)

        report = run_backup(state.engine(), path, progress=step)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        typer.echo(
            f"backed up {report.rows:,} rows in {len(report.tables)} tables "
            f"(schema {report.revision}) to {path}"
        )


@db_app.command("restore")
def restore(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A file made by `listenwell db backup`.")],
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Overwrite a database that already holds data (asks first)."
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Restore a backup into the configured database, all at once or not at all.

    The target must be empty (a new database is created and migrated) unless
    --replace is given. After the restore the schema is migrated to this
    version's latest.
    """
    from listenwell.store.backup import read_manifest
    from listenwell.store.backup import restore as run_restore

    state = state_of(ctx)
    manifest = read_manifest(path)
    if replace and not yes:
        rows = sum(manifest["tables"].values())
        typer.confirm(
            f"Replace ALL data in {store_url(state)} with the {rows:,} rows of {path}?",
            abort=True,
        )
    with progress("restore") as bar:
        tasks: dict[str, Any] = {}

        def step(table: str, done: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=manifest["tables"].get(table))
            bar.update(tasks[table], completed=done)

        report = run_restore(
            state.engine(require_current=False), path, replace=replace, progress=step
        )
    store.record_audit(
        state.engine(),
        actor(),
        "db.restore",
        "database",
        None,
        {"from": str(path), **report.as_dict()},
    )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        typer.echo(f"restored {report.rows:,} rows in {len(report.tables)} tables from {path}")


@db_app.command("refresh-stats")
def refresh_stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Bring the dashboard's daily counts up to date (new mentions, changed days, and the
    share-of-voice parties of `brand` in the settings).

    The dashboard adds whatever the counts lack live, so its figures are exact
    either way; fresh counts keep its charts fast on millions of mentions. The
    workers and `listenwell enrich` run this on their own; run it by hand after
    a bulk import or a restore.
    """
    from .nlp import refresh_dashboard_counts

    state = state_of(ctx)
    report = refresh_dashboard_counts(state.engine(), state.settings)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        typer.echo(
            f"dashboard counts up to mention {report.watermark:,} "
            f"({report.days:,} day(s) counted in {report.seconds:.1f} s)"
        )


def store_url(state: object) -> str:
    """The database URL with any password hidden."""
    from sqlalchemy.engine import make_url

    settings = state.settings  # type: ignore[attr-defined]
    return make_url(settings.database_url).render_as_string(hide_password=True)


def register(app: typer.Typer) -> None:
    """Add the ``db`` commands to the root app."""
    app.add_typer(db_app, name="db")
