"""The store's exceptions: small, named, one line of docstring each."""

from __future__ import annotations

__all__ = [
    "DatabaseUnavailableError",
    "MigrationError",
    "NotFoundError",
    "QueryTimeoutError",
    "RecordError",
    "SchemaOutOfDateError",
    "StoreError",
]


class StoreError(Exception):
    """Base class for every error raised by ``listenwell.store``."""


class DatabaseUnavailableError(StoreError):
    """The database cannot be opened or reached."""


class MigrationError(StoreError):
    """Applying or reading the schema migrations failed."""


class SchemaOutOfDateError(StoreError):
    """The database schema is older than this version of Listenwell expects."""


class NotFoundError(StoreError):
    """A requested row does not exist."""


class QueryTimeoutError(StoreError):
    """A read query ran past its time limit and was stopped."""


class RecordError(StoreError):
    """One input record is invalid; ``reason`` says why. It is quarantined, not stored."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
