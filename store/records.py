"""The records that flow into the store: plain values, no SQL.

Collectors and importers build these; the store writes them. Checking an input
record and turning it into one of these is done by pure functions that raise
:class:`RecordError` with a reason, so the caller can quarantine the record
and carry on.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import RecordError

__all__ = [
    "MAX_TEXT_CHARS",
    "MENTION_FIELDS",
    "Customer",
    "Handle",
    "Mention",
    "check_text",
    "normalize_handle",
    "parse_handles",
    "parse_timestamp",
]

# The fields of a mention as files, collectors and exports name them (the import format).
MENTION_FIELDS = (
    "source",
    "external_id",
    "created_at",
    "author_handle",
    "author_name",
    "text",
    "url",
    "rating",
    "in_reply_to",
)

# A 1 MB post is stored verbatim; beyond 2 million characters a record is quarantined.
MAX_TEXT_CHARS = 2_000_000
_MAX_ID_CHARS = 200
# How far in the future a timestamp may be (clock skew) before it is taken as wrong.
_FUTURE_SLACK = timedelta(days=1)

PLATFORM_ALIASES = {"twitter": "x", "x": "x", "reddit": "reddit"}
_X_HANDLE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_REDDIT_HANDLE = re.compile(r"^[A-Za-z0-9_-]{3,20}$")
_OTHER_HANDLE = re.compile(r"^\S{1,200}$")


@dataclass(slots=True)
class Mention:
    """A post, comment or review to store.

    ``text`` is kept verbatim (HTML and all); ``raw`` is the record exactly as
    received, for audit and quarantine.
    """

    source: str
    external_id: str
    created_at: datetime
    text: str
    author_handle: str | None = None
    author_name: str | None = None
    url: str | None = None
    rating: int | None = None
    in_reply_to: str | None = None
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class Handle:
    """A platform handle: ``handle`` normalised for matching, ``display`` as given."""

    platform: str
    handle: str
    display: str


@dataclass(slots=True)
class Customer:
    """A known customer, keyed by the brand's own ``customer_id``."""

    customer_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    segment: str | None = None
    handles: list[Handle] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)


def check_text(value: Any, what: str = "text", *, allow_empty: bool = False) -> str:
    """Check a text field that will be stored verbatim.

    Raises:
        RecordError: Not a string, empty (unless allowed), too long, or holding
            characters no database can store (NUL, lone surrogates).
    """
    if type(value) is str and value.isascii() and "\x00" not in value:
        if len(value) > MAX_TEXT_CHARS:
            raise RecordError(
                f"{what} is too long ({len(value):,} characters > {MAX_TEXT_CHARS:,})"
            )
        if not allow_empty and not value.strip():
            raise RecordError(f"{what} is empty")
        return value
    if not isinstance(value, str):
        raise RecordError(f"{what} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise RecordError(f"{what} is empty")
    if len(value) > MAX_TEXT_CHARS:
        raise RecordError(f"{what} is too long ({len(value):,} characters > {MAX_TEXT_CHARS:,})")
    if "\x00" in value:
        raise RecordError(f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(f"{what} contains bytes that are not valid UTF-8") from None
    return value


def check_id(value: object, what: str) -> str:
    """Check an identifier: a non-empty string (or integer) of at most 200 characters."""
    if isinstance(value, bool) or value is None:
        raise RecordError(f"{what} is missing")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise RecordError(f"{what} must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise RecordError(f"{what} is missing")
    if len(value) > _MAX_ID_CHARS:
        raise RecordError(f"{what} is longer than {_MAX_ID_CHARS} characters")
    return check_text(value, what)


def parse_timestamp(value: Any, *, now: datetime | None = None) -> datetime:
    """Parse an ISO 8601 timestamp (or epoch seconds) into an aware UTC datetime.

    A timestamp without a zone is taken to be UTC.

    Raises:
        RecordError: Missing, unparseable, or more than a day in the future.
    """
    if value is None or value == "":
        raise RecordError("created_at is missing")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise RecordError(f"created_at is not a valid time: {value!r}")
        try:
            parsed = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise RecordError(f"created_at is out of range: {value!r}") from None
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise RecordError(f"created_at is not ISO 8601: {value[:40]!r}") from None
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    else:
        raise RecordError(f"created_at must be a string, got {type(value).__name__}")
    if parsed > (now or datetime.now(UTC)) + _FUTURE_SLACK:
        raise RecordError(f"created_at is in the future: {parsed.isoformat()}")
    return parsed


def normalize_handle(platform: str, handle: str) -> Handle:
    """Normalise ``platform`` and ``handle`` for matching.

    ``twitter`` becomes ``x``; ``@`` and ``u/`` prefixes go; X and Reddit
    handles are case-insensitive, so they are lower-cased.

    Raises:
        RecordError: The handle is not valid for its platform.
    """
    plat = platform.strip().lower()
    plat = PLATFORM_ALIASES.get(plat, plat)
    display = handle.strip()
    if not plat or not re.fullmatch(r"[a-z0-9_.-]{1,40}", plat):
        raise RecordError(f"unknown platform {platform!r}")
    if plat == "x":
        core = display.removeprefix("@")
        if not _X_HANDLE.match(core):
            raise RecordError(f"invalid X handle {display!r}")
    elif plat == "reddit":
        core = re.sub(r"^/?u/", "", display)
        if not _REDDIT_HANDLE.match(core):
            raise RecordError(f"invalid Reddit handle {display!r}")
    else:
        core = display
        if not _OTHER_HANDLE.match(core):
            raise RecordError(f"invalid {plat} handle {display!r}")
    return Handle(platform=plat, handle=core.lower(), display=display)


def parse_handles(value: str | None) -> list[Handle]:
    """Parse ``x:@jdoe;reddit:u/jdoe`` into handles.

    Raises:
        RecordError: An entry lacks ``platform:`` or is invalid, or a platform
            and handle repeat.
    """
    handles: list[Handle] = []
    seen: set[tuple[str, str]] = set()
    for part in (value or "").split(";"):
        part = part.strip()
        if not part:
            continue
        platform, sep, handle = part.partition(":")
        if not sep or not handle.strip():
            raise RecordError(f"handle {part!r} is not platform:handle")
        h = normalize_handle(platform, handle)
        if (h.platform, h.handle) in seen:
            raise RecordError(f"handle {part!r} is listed twice")
        seen.add((h.platform, h.handle))
        handles.append(h)
    return handles
