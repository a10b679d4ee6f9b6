"""The store's exceptions: small, named, one line of docstring each."""

from __future__ import annotations

__all__ = [
    "InvalidInputError",
    "check_cursor_parts",
    "check_text_inputs",
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


class InvalidInputError(StoreError, ValueError):
    """A search, filter or cursor value that no stored row can match (e.g. it holds NUL)."""


MAX_ID = 2**63 - 1


def check_text_inputs(**values: object) -> None:
    """Refuse search and filter text holding NUL: no stored text can contain it, SQLite's
    LIKE would read it as the end of the pattern, and PostgreSQL refuses it outright.

    Raises:
        InvalidInputError: Naming the first offending input.
    """
    for name, value in values.items():
        items = value if isinstance(value, list | tuple | set | frozenset) else (value,)
        if any(isinstance(v, str) and "\x00" in v for v in items):
            raise InvalidInputError(f"{name} cannot contain NUL characters")


def check_cursor_parts(at: object, *numbers: int) -> None:
    """Refuse cursor numbers beyond the id range and times the database cannot hold.

    Raises:
        ValueError: The cursor cannot come from one of our pages.
    """
    from datetime import UTC, datetime

    if any(n < 0 or n > MAX_ID for n in numbers):
        raise ValueError("cursor number out of range")
    if isinstance(at, datetime):
        try:
            converted = at.astimezone(UTC)
        except OverflowError:
            raise ValueError("cursor time out of range") from None
        if not 1900 <= converted.year <= 9000:
            raise ValueError("cursor time out of range")
