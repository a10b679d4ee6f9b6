"""Schema migrations through Alembic: upgrade, and list applied and pending ones without writing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from .errors import MigrationError, SchemaOutOfDateError

if TYPE_CHECKING:  # Alembic is imported on first use: most commands only read the version
    from alembic.config import Config

__all__ = ["MigrationStatus", "ensure_current", "migration_status", "upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class MigrationStatus:
    """Which migrations a database has, and which it still needs."""

    applied: list[str]
    pending: list[str]

    @property
    def current(self) -> bool:
        """Whether no migration is pending."""
        return not self.pending


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _ordered_revisions() -> list[tuple[str, str]]:
    """All revisions as ``(id, message)``, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config())
    revs = list(script.walk_revisions("base", "heads"))
    return [(r.revision, r.doc or "") for r in reversed(revs)]


def migration_status(engine: Engine) -> MigrationStatus:
    """Read which migrations are applied and pending. Writes nothing.

    Raises:
        MigrationError: The database cannot be read.
    """
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
    except SQLAlchemyError as exc:
        raise MigrationError(f"cannot read the schema version: {exc.__class__.__name__}") from None
    ordered = _ordered_revisions()
    names = [f"{rev} {doc}".strip() for rev, doc in ordered]
    if not current:
        return MigrationStatus(applied=[], pending=names)
    ids = [rev for rev, _ in ordered]
    head = max(ids.index(c) for c in current if c in ids) if set(current) & set(ids) else -1
    if head < 0:
        raise MigrationError(
            f"the database is at revision {', '.join(current)}, unknown to this version of "
            "Listenwell (was it made by a newer one?)"
        )
    return MigrationStatus(applied=names[: head + 1], pending=names[head + 1 :])


def upgrade(engine: Engine, revision: str = "head") -> MigrationStatus:
    """Create or migrate the schema; idempotent. Each migration runs in one transaction.

    Returns:
        The status after upgrading.

    Raises:
        MigrationError: A migration failed; the database is left at the last good revision.
    """
    from alembic import command

    cfg = _config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", exc)
        raise MigrationError(f"migration failed: {str(orig).splitlines()[0]}") from None
    return migration_status(engine)


def ensure_current(engine: Engine) -> None:
    """Raise unless every migration is applied.

    Raises:
        SchemaOutOfDateError: Migrations are pending; the message says what to run.
    """
    status = migration_status(engine)
    if status.pending:
        raise SchemaOutOfDateError(
            f"the database needs {len(status.pending)} migration(s); run `listenwell db upgrade`"
        )
