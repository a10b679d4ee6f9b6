"""Throw-away databases for the benchmarks (SQLite files or PostgreSQL databases)."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def fresh_db(
    kind: str, workdir: Path, pg_admin: str = DEFAULT_PG
) -> tuple[str, Callable[[], None]]:
    """An empty database of ``kind`` (sqlite or postgresql); returns its URL and a cleanup."""
    if kind == "sqlite":
        return f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}", lambda: None
    name = f"listenwell_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(pg_admin).set(database=name).render_as_string(hide_password=False), drop


def add_db_options(parser: argparse.ArgumentParser, *, default: str) -> None:
    """Add ``--db sqlite|postgres|both`` and ``--pg URL`` to a benchmark's parser."""
    parser.add_argument(
        "--db",
        choices=["sqlite", "postgres", "both"],
        default=default,
        help=f"Database(s) to write into (default: {default}).",
    )
    parser.add_argument(
        "--pg",
        default=DEFAULT_PG,
        help="PostgreSQL URL used to create throw-away databases (with --db postgres|both).",
    )


def db_kinds(choice: str) -> list[str]:
    """The database kinds named by a ``--db`` value, in the order they are measured."""
    return (
        ["sqlite", "postgresql"]
        if choice == "both"
        else ["postgresql" if choice == "postgres" else "sqlite"]
    )
