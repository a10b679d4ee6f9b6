"""Backup and restore: one portable file for SQLite and PostgreSQL alike.

A backup is a zip file holding ``manifest.json`` (format, schema revision, row
counts, column kinds) and one JSON-lines file per table. Because it is written
from the reflected schema, not from the models, it restores a database of any
Listenwell schema revision, and it can move a workspace between databases
(SQLite to PostgreSQL for a growing team, or back).

Guarantees:
- :func:`backup` writes to a temporary file beside ``path`` and renames it at
  the end, so an interrupted backup never leaves a half file under the name.
  Rows are read in one transaction (a consistent snapshot on both databases).
- :func:`restore` checks the whole file before it writes, then restores every
  table in ONE transaction: it either restores everything or changes nothing.
  It refuses a target that already holds data unless ``replace=True``.
"""

from __future__ import annotations

import base64
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import (
    JSON,
    Connection,
    Date,
    DateTime,
    Engine,
    LargeBinary,
    MetaData,
    Table,
    and_,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from .errors import StoreError
from .migrate import migration_status, upgrade
from .models import utcnow

__all__ = ["FORMAT", "BackupError", "BackupReport", "backup", "read_manifest", "restore"]

FORMAT = "listenwell-backup"
VERSION = 1
_CHUNK = 5_000
_SKIP = {"alembic_version"}

Progress = Callable[[str, int], None]
"""Called with (table name, rows done so far in that table)."""


class BackupError(StoreError):
    """A backup that cannot be written, read or restored; the message says why."""


@dataclass
class BackupReport:
    """What a backup or restore did: the schema revision and rows per table."""

    path: str
    revision: str
    dialect: str
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Rows over all tables."""
        return sum(self.tables.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "path": self.path,
            "revision": self.revision,
            "dialect": self.dialect,
            "rows": self.rows,
            "tables": self.tables,
        }


def _kind(col_type: Any) -> str:
    if isinstance(col_type, DateTime):
        return "datetime"
    if isinstance(col_type, Date):
        return "date"
    if isinstance(col_type, LargeBinary):
        return "binary"
    if isinstance(col_type, JSON):
        return "json"
    return "plain"


def _encode(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        if value.tzinfo is None:  # SQLite keeps naive UTC
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if kind == "date":
        return value.isoformat()
    if kind == "binary":
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _decoder(kind: str, dialect: str) -> Callable[[Any], Any]:
    if kind == "datetime":

        def dt(v: Any) -> Any:
            if v is None:
                return None
            value = datetime.fromisoformat(v).astimezone(UTC)
            return value.replace(tzinfo=None) if dialect == "sqlite" else value

        return dt
    if kind == "date":
        return lambda v: None if v is None else date.fromisoformat(v)
    if kind == "binary":
        return lambda v: None if v is None else base64.b64decode(v)
    return lambda v: v


def _reflect(conn: Connection) -> MetaData:
    meta = MetaData()
    meta.reflect(conn)
    for name in list(meta.tables):
        if name in _SKIP:
            meta.remove(meta.tables[name])
    return meta


def _current_revision(engine: Engine) -> str:
    status = migration_status(engine)
    if status.pending:
        raise BackupError(
            f"the database needs {len(status.pending)} migration(s) first: "
            "run `listenwell db upgrade`"
        )
    return status.applied[-1].split()[0]


def _rows(conn: Connection, table: Table) -> Iterator[tuple[Any, ...]]:
    order = list(table.primary_key.columns) or list(table.columns)
    result = conn.execution_options(stream_results=True, yield_per=_CHUNK).execute(
        select(table).order_by(*order)
    )
    for row in result:
        yield tuple(row)


def backup(engine: Engine, path: Path, *, progress: Progress | None = None) -> BackupReport:
    """Write every table of ``engine`` to the backup file ``path`` (replaced atomically)."""
    revision = _current_revision(engine)
    path = Path(path)
    if path.is_dir():
        raise BackupError(f"{path} is a folder; give a file name such as listenwell.backup.zip")
    report = BackupReport(str(path), revision, engine.dialect.name)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            kinds: dict[str, list[list[str]]] = {}
            with engine.connect() as conn, conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
                meta = _reflect(conn)
                for table in meta.sorted_tables:
                    cols = [(c.name, _kind(c.type)) for c in table.columns]
                    kinds[table.name] = [[n, k] for n, k in cols]
                    count = 0
                    with zf.open(f"tables/{table.name}.jsonl", "w") as raw:
                        for row in _rows(conn, table):
                            values = [_encode(k, v) for (_, k), v in zip(cols, row, strict=True)]
                            raw.write(json.dumps(values, ensure_ascii=False).encode("utf-8"))
                            raw.write(b"\n")
                            count += 1
                            if progress and count % _CHUNK == 0:
                                progress(table.name, count)
                    report.tables[table.name] = count
                    if progress:
                        progress(table.name, count)
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "revision": revision,
                "dialect": report.dialect,
                "created_at": utcnow().isoformat(),
                "tables": report.tables,
                "columns": kinds,
            }
            zf.writestr("manifest.json", json.dumps(manifest, indent=2))
        os.replace(tmp, path)
    except OSError as exc:
        raise BackupError(f"cannot write {path}: {exc.strerror or exc}") from None
    except SQLAlchemyError as exc:
        raise BackupError(f"reading the database failed: {type(exc).__name__}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return report


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a backup file, checked to be one this version can restore."""
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            names = set(zf.namelist())
    except FileNotFoundError:
        raise BackupError(f"no such backup file: {path}") from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise BackupError(f"{path} is not a Listenwell backup ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a Listenwell backup (no {FORMAT} manifest)")
    if manifest.get("version") != VERSION:
        raise BackupError(
            f"{path} is backup format {manifest.get('version')}; this Listenwell reads {VERSION}"
        )
    missing = [t for t in manifest["tables"] if f"tables/{t}.jsonl" not in names]
    if missing:
        raise BackupError(f"{path} is incomplete: no data for {', '.join(missing)}")
    return manifest


def _has_rows(conn: Connection, meta: MetaData) -> list[str]:
    return [
        t.name
        for t in meta.sorted_tables
        if conn.execute(select(func.count()).select_from(t)).scalar_one()
    ]


def _lines(zf: zipfile.ZipFile, name: str) -> Iterator[list[Any]]:
    with zf.open(f"tables/{name}.jsonl") as raw:
        stream: IO[bytes] = raw
        for n, line in enumerate(stream, 1):
            try:
                values = json.loads(line)
            except ValueError:
                raise BackupError(f"the backup's {name} table is damaged at row {n}") from None
            if not isinstance(values, list):
                raise BackupError(f"the backup's {name} table is damaged at row {n}")
            yield values


def restore(
    engine: Engine, path: Path, *, replace: bool = False, progress: Progress | None = None
) -> BackupReport:
    """Restore the backup ``path`` into ``engine``: everything in one transaction, or nothing.

    An empty database (no schema yet) is first migrated to the backup's schema
    revision; after the restore it is migrated to this version's latest. A
    database at another revision must be empty and new, so data never meets a
    schema it was not written for.
    """
    path = Path(path)
    manifest = read_manifest(path)
    revision = str(manifest["revision"])
    status = migration_status(engine)
    at = status.applied[-1].split()[0] if status.applied else None
    if at is None:
        upgrade(engine, revision)
    elif at != revision:
        raise BackupError(
            f"the backup is at schema revision {revision} and this database at {at}: "
            "restore into a new, empty database (it is migrated after the restore)"
        )
    dialect = engine.dialect.name
    report = BackupReport(str(path), revision, dialect)
    try:
        with zipfile.ZipFile(path) as zf, engine.begin() as conn:
            meta = _reflect(conn)
            unknown = [t for t in manifest["tables"] if t not in meta.tables]
            if unknown:
                raise BackupError(f"the backup has tables this schema lacks: {', '.join(unknown)}")
            filled = _has_rows(conn, meta)
            if filled and not replace:
                raise BackupError(
                    f"the database already holds data ({', '.join(filled[:4])}"
                    f"{'…' if len(filled) > 4 else ''}); pass --replace to overwrite it"
                )
            for table in reversed(meta.sorted_tables):
                conn.execute(table.delete())
            for table in meta.sorted_tables:
                if table.name not in manifest["tables"]:
                    continue
                report.tables[table.name] = _restore_table(
                    conn, zf, table, manifest["columns"][table.name], dialect, progress
                )
            if dialect == "postgresql":
                _reset_sequences(conn, meta)
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", exc)
        first = str(orig).splitlines()[0] if str(orig) else type(exc).__name__
        raise BackupError(f"restore failed, nothing was changed: {first}") from None
    except zipfile.BadZipFile as exc:
        raise BackupError(f"{path} is damaged ({exc}); nothing was changed") from None
    upgrade(engine)
    return report


def _restore_table(
    conn: Connection,
    zf: zipfile.ZipFile,
    table: Table,
    columns: list[list[str]],
    dialect: str,
    progress: Progress | None,
) -> int:
    names = [n for n, _ in columns]
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise BackupError(f"the backup's {table.name} has columns this schema lacks: {missing}")
    decoders = [_decoder(k, dialect) for _, k in columns]
    # Columns that point into the same table (e.g. a theme merged into a newer one) are
    # filled after all rows are in, so row order cannot break the foreign key.
    self_refs = [fk.parent.name for fk in table.foreign_keys if fk.column.table.name == table.name]
    pk = [c.name for c in table.primary_key.columns]
    later: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    count = 0
    for values in _lines(zf, table.name):
        if len(values) != len(names):
            raise BackupError(f"the backup's {table.name} table is damaged at row {count + 1}")
        row = {n: d(v) for n, d, v in zip(names, decoders, values, strict=True)}
        if self_refs and any(row.get(c) is not None for c in self_refs):
            later.append(
                {**{f"k_{c}": row[c] for c in pk}, **{f"v_{c}": row[c] for c in self_refs}}
            )
            row.update(dict.fromkeys(self_refs))
        batch.append(row)
        count += 1
        if len(batch) >= _CHUNK:
            conn.execute(table.insert(), batch)
            batch.clear()
            if progress:
                progress(table.name, count)
    if batch:
        conn.execute(table.insert(), batch)
    if later:
        stmt = (
            update(table)
            .where(and_(*(table.c[c] == bindparam(f"k_{c}") for c in pk)))
            .values({c: bindparam(f"v_{c}") for c in self_refs})
        )
        conn.execute(stmt, later)
    if progress:
        progress(table.name, count)
    return count


def _reset_sequences(conn: Connection, meta: MetaData) -> None:
    for table in meta.sorted_tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1:
            continue
        seq = conn.execute(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": pk[0].name}
        ).scalar()
        if seq:
            conn.execute(
                text(
                    f'SELECT setval(:s, coalesce((SELECT max("{pk[0].name}") FROM "{table.name}"),'
                    " 0) + 1, false)"
                ),
                {"s": seq},
            )
