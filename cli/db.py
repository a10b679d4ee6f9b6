"""``listenwell db``: create, migrate and inspect the database."""

from __future__ import annotations

import typer

from listenwell import store

from . import state_of

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


def store_url(state: object) -> str:
    """The database URL with any password hidden."""
    from sqlalchemy.engine import make_url

    settings = state.settings  # type: ignore[attr-defined]
    return make_url(settings.database_url).render_as_string(hide_password=True)


def register(app: typer.Typer) -> None:
    """Add the ``db`` commands to the root app."""
    app.add_typer(db_app, name="db")
