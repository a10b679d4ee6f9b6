"""Opening the database: one engine per URL, with the pragmas and limits we rely on."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from .errors import DatabaseUnavailableError, QueryTimeoutError

__all__ = ["connect", "read_connection", "using", "writing"]


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the dashboard read while a collector writes; NORMAL is durable at
    # checkpoints and much faster for bulk imports.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def connect(url: str, *, echo: bool = False) -> Engine:
    """Create an engine for ``url`` (SQLite or PostgreSQL).

    For a SQLite file, the parent directory is created if needed.

    Args:
        url: A SQLAlchemy URL.
        echo: Log every statement (debugging).

    Returns:
        The engine. Dispose of it when done.

    Raises:
        DatabaseUnavailableError: The directory for a SQLite file cannot be created.
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):
            try:
                Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailableError(
                    f"cannot create the folder for {db}: {exc}"
                ) from None
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    kwargs.update(pool_pre_ping=True, connect_args={"connect_timeout": 10})
    return create_engine(parsed, **kwargs)


class _Borrowed:
    """Lend the caller's connection to a ``with`` block without closing it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __enter__(self) -> Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None


def using(
    conn: Connection | Engine, timeout_s: float | None = None
) -> AbstractContextManager[Connection]:
    """A ``with`` block's connection: the caller's own (left open), or a new one from an engine.

    Store functions take a connection (to run inside the caller's transaction) or
    an engine; this gives them one either way. With ``timeout_s``, a new
    connection is a :func:`read_connection` under that time limit.
    """
    if isinstance(conn, Engine):
        return read_connection(conn, timeout_s) if timeout_s is not None else conn.connect()
    return _Borrowed(conn)


def writing(conn: Connection | Engine) -> AbstractContextManager[Connection]:
    """A ``with`` block's connection for writes: the caller's own (inside the caller's
    transaction, left open), or a new transaction from an engine, committed at the end."""
    return conn.begin() if isinstance(conn, Engine) else _Borrowed(conn)


@contextmanager
def read_connection(
    engine: Engine, timeout_s: float, *, snapshot: bool = False
) -> Iterator[Connection]:
    """A connection whose statements are stopped after ``timeout_s`` seconds.

    PostgreSQL gets ``SET LOCAL statement_timeout``; SQLite gets a progress
    handler that interrupts the statement once the deadline has passed (the
    approach datasette uses).

    With ``snapshot``, every statement on the connection sees the same committed
    state (``REPEATABLE READ`` on PostgreSQL, one deferred transaction on SQLite),
    for readers that combine several queries into one figure (``store/rollup.py``).

    Raises:
        QueryTimeoutError: A statement ran past the limit.
        DatabaseUnavailableError: The database cannot be reached.
    """
    try:
        conn = engine.connect()
    except OperationalError as exc:
        raise DatabaseUnavailableError(_one_line(exc)) from None
    try:
        with conn.begin():
            if engine.dialect.name == "postgresql":
                if snapshot:  # must come before the transaction's first query
                    conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
                conn.execute(text(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}"))
                yield conn
            else:
                raw = conn.connection.driver_connection
                assert raw is not None
                if snapshot and not raw.in_transaction:
                    # The sqlite3 module opens no transaction for reads by itself.
                    conn.exec_driver_sql("BEGIN")
                deadline = time.monotonic() + timeout_s
                raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
                try:
                    yield conn
                finally:
                    raw.set_progress_handler(None, 0)
    except DBAPIError as exc:
        message = str(exc.orig).lower()
        if "interrupted" in message or "statement timeout" in message or "canceling" in message:
            raise QueryTimeoutError(
                f"the query took longer than {timeout_s:g} s and was stopped; narrow the filters"
            ) from None
        raise
    finally:
        conn.close()


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
