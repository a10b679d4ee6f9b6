"""File sources: mentions and reviews from JSONL or CSV, customers from CSV.

Files are streamed, never loaded whole, so memory stays flat however large
they are. Each record is normalised by a pure function that returns a record
or raises :class:`~listenwell.store.RecordError`; the reader turns that into a
:class:`~listenwell.store.Quarantined` item with the line number, so one bad
row never stops an import.

Encodings: UTF-8 (with or without BOM) and UTF-16 with a BOM are detected;
anything else is read as UTF-8, and a line that is not valid UTF-8 is
quarantined with its raw bytes unless ``encoding`` names the file's encoding.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from listenwell.store import (
    Customer,
    Mention,
    Quarantined,
    RecordError,
    check_text,
    parse_handles,
    parse_timestamp,
)
from listenwell.store.records import check_id

__all__ = [
    "CUSTOMER_COLUMNS",
    "FileFormatError",
    "normalize_customer",
    "normalize_mention",
    "read_customers",
    "read_mentions",
]

_REQUIRED_MENTION = ("source", "external_id", "created_at", "text")
CUSTOMER_COLUMNS = ("customer_id", "name", "email", "phone", "handles", "segment")

# A CSV field may hold a whole 1 MB post.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class FileFormatError(Exception):
    """A whole file cannot be read (missing, unknown format, no header): nothing was imported."""


# ---------------------------------------------------------------------------
# Pure normalisers


def _opt_str(raw: dict[str, Any], key: str, *, limit: int = 2000) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if type(value) is str and len(value) <= limit and value.isascii() and "\x00" not in value:
        return value.strip() or None  # the common case, checked cheaply
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RecordError(f"{key} must be a string, got {type(value).__name__}")
    value = check_text(value.strip(), key, allow_empty=True)
    if len(value) > limit:
        raise RecordError(f"{key} is longer than {limit} characters")
    return value or None


def _rating(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        raise RecordError(f"rating must be a number from 1 to 5, got {str(value)[:20]!r}") from None
    if not number.is_integer() or not 1 <= number <= 5:
        raise RecordError(f"rating must be a whole number from 1 to 5, got {str(value)[:20]!r}")
    return int(number)


def normalize_mention(raw: dict[str, Any], *, raw_text: str | None = None) -> Mention:
    """Turn one input record into a :class:`Mention`.

    Args:
        raw: The record's fields (a JSON object or a CSV row).
        raw_text: The record exactly as read, kept as the mention's raw payload.

    Raises:
        RecordError: A required field is missing or a field is invalid.
    """
    missing = [k for k in _REQUIRED_MENTION if raw.get(k) in (None, "")]
    # A review may have a star rating and no text.
    if missing == ["text"] and raw.get("rating") not in (None, ""):
        missing = []
    if missing:
        raise RecordError("missing required field(s): " + ", ".join(missing))
    source = check_id(raw["source"], "source").lower()
    if len(source) > 40:
        raise RecordError("source is longer than 40 characters")
    text = raw.get("text")
    text = "" if text is None else text
    rating = _rating(raw.get("rating"))
    if isinstance(text, str) and not text.strip() and rating is None:
        raise RecordError("text is empty")
    return Mention(
        source=source,
        external_id=check_id(raw["external_id"], "external_id"),
        created_at=parse_timestamp(raw["created_at"]),
        text=check_text(text, "text", allow_empty=True),
        author_handle=_opt_str(raw, "author_handle", limit=200),
        author_name=_opt_str(raw, "author_name", limit=300),
        url=_opt_str(raw, "url"),
        rating=rating,
        in_reply_to=_opt_str(raw, "in_reply_to", limit=200),
        raw=raw_text if raw_text is not None else json.dumps(raw, ensure_ascii=False),
    )


def normalize_customer(raw: dict[str, Any]) -> Customer:
    """Turn one customer CSV row into a :class:`Customer`; extra columns become attributes.

    Raises:
        RecordError: ``customer_id`` is missing, or an e-mail, phone or handle is invalid.
    """
    customer_id = check_id(raw.get("customer_id"), "customer_id")
    email = _opt_str(raw, "email", limit=320)
    if email is not None and (email.count("@") != 1 or " " in email or "." not in email):
        raise RecordError(f"invalid email {email!r}")
    phone = _opt_str(raw, "phone", limit=50)
    if phone is not None:
        digits = sum(ch.isdigit() for ch in phone)
        if not 5 <= digits <= 15 or any(ch.isalpha() for ch in phone):
            raise RecordError(f"invalid phone {phone!r}")
    attributes = {}
    for key, value in raw.items():
        if key in CUSTOMER_COLUMNS or key is None:
            continue
        attributes[str(key)] = check_text(value or "", f"column {key}", allow_empty=True)
    return Customer(
        customer_id=customer_id,
        name=_opt_str(raw, "name", limit=300),
        email=email.lower() if email else None,
        phone=phone,
        segment=(_opt_str(raw, "segment", limit=100) or "").lower() or None,
        handles=parse_handles(_opt_str(raw, "handles")),
        attributes=attributes,
    )


# ---------------------------------------------------------------------------
# Streaming readers


def _open_binary(path: Path) -> IO[bytes]:
    if not path.exists():
        raise FileFormatError(f"file not found: {path}")
    if path.is_dir():
        raise FileFormatError(f"{path} is a folder, not a file")
    try:
        return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
    except OSError as exc:
        raise FileFormatError(f"cannot open {path}: {exc.strerror or exc}") from None


def _text_lines(binary: IO[bytes], encoding: str | None) -> Iterator[tuple[str, bool]]:
    """Yield ``(line, ok)``; ``ok`` is False where the bytes did not decode (surrogate-escaped)."""
    head = binary.peek(4)[:4] if isinstance(binary, io.BufferedReader) else b""
    if encoding is None:
        if head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"
    if encoding is not None and codecs.lookup(encoding).name not in ("utf-8",):
        # A declared or BOM-detected encoding: decode the stream as such.
        reader = io.TextIOWrapper(binary, encoding=encoding, errors="surrogateescape", newline="")
        try:
            for line in reader:
                yield line, not _has_surrogates(line)
        finally:
            reader.detach()  # the caller closes the binary file
        return
    first = True
    for bline in binary:
        if first and bline.startswith(codecs.BOM_UTF8):
            bline = bline[3:]
        first = False
        try:
            yield bline.decode("utf-8"), True
        except UnicodeDecodeError:
            yield bline.decode("utf-8", errors="surrogateescape"), False


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable(text: str, limit: int = 100_000) -> str:
    """Text safe to store in quarantine: undecodable bytes shown as \\xNN, NULs as \\x00."""
    out = text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")
    out = out.replace("\x00", "\\x00")
    return out if len(out) <= limit else out[:limit] + f"... [{len(out) - limit} more characters]"


def read_mentions(
    path: str | Path, *, encoding: str | None = None, default_source: str | None = None
) -> Iterator[Mention | Quarantined]:
    """Stream a ``.jsonl`` or ``.csv`` file (optionally ``.gz``) as mentions and quarantined items.

    Args:
        path: The file.
        encoding: The file's encoding when it is not UTF-8 and has no BOM.
        default_source: Used where a record has no ``source`` (e.g. a review export).

    Raises:
        FileFormatError: The file is missing, of unknown format, or a CSV without the
            required header. Problems in single records never raise.
    """
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    kind = suffixes[-1] if suffixes else ""
    if kind == ".jsonl" or kind == ".ndjson":
        return _read_jsonl(path, encoding, default_source)
    if kind == ".csv":
        return _read_mentions_csv(path, encoding, default_source)
    raise FileFormatError(f"{path.name}: expected a .jsonl or .csv file (optionally .gz)")


def _read_jsonl(
    path: Path, encoding: str | None, default_source: str | None
) -> Iterator[Mention | Quarantined]:
    origin_base = str(path)
    with _open_binary(path) as binary:
        for lineno, (line, ok) in enumerate(_text_lines(binary, encoding), start=1):
            stripped = line.strip()
            if not stripped:
                continue
            origin = f"{origin_base}:{lineno}"
            source = default_source or "import"
            if not ok:
                yield Quarantined(
                    source, "line is not valid UTF-8 (use --encoding)", _printable(line), origin
                )
                continue
            try:
                raw = json.loads(stripped)
            except (json.JSONDecodeError, RecursionError) as exc:
                reason = f"invalid JSON: {exc.msg}" if hasattr(exc, "msg") else "invalid JSON"
                yield Quarantined(source, reason, _printable(stripped), origin)
                continue
            if not isinstance(raw, dict):
                yield Quarantined(
                    source,
                    f"expected a JSON object, got {type(raw).__name__}",
                    _printable(stripped),
                    origin,
                )
                continue
            if default_source and raw.get("source") in (None, ""):
                raw["source"] = default_source
            try:
                yield normalize_mention(raw, raw_text=stripped)
            except RecordError as exc:
                src = raw.get("source") if isinstance(raw.get("source"), str) else source
                yield Quarantined(str(src)[:200], exc.reason, _printable(stripped), origin)


def _csv_rows(
    path: Path, encoding: str | None, required: Iterable[str]
) -> Iterator[tuple[int, dict[str, Any] | None, str, str | None]]:
    """Yield ``(line, row or None, raw, error)`` for each CSV record after the header."""
    with _open_binary(path) as binary:
        lines = _text_lines(binary, encoding)
        bad_lines: set[int] = set()
        counter = {"n": 0}

        def text_only() -> Iterator[str]:
            for line, ok in lines:
                counter["n"] += 1
                if not ok:
                    bad_lines.add(counter["n"])
                yield line

        reader = csv.reader(text_only(), strict=False)
        try:
            header = next(reader)
        except StopIteration:
            raise FileFormatError(f"{path.name} is empty") from None
        except csv.Error as exc:
            raise FileFormatError(f"{path.name}: cannot read the CSV header ({exc})") from None
        header = [h.strip().lower() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise FileFormatError(
                f"{path.name}: the header lacks column(s) {', '.join(missing)} "
                f"(found: {', '.join(header) or 'nothing'})"
            )
        if len(set(header)) != len(header):
            raise FileFormatError(f"{path.name}: the header repeats a column name")
        while True:
            start = counter["n"] + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, None, "", f"malformed CSV: {exc}"
                continue
            if not values or all(not v.strip() for v in values):
                continue
            raw = _printable(json.dumps(values, ensure_ascii=False))
            if any(n in bad_lines for n in range(start, counter["n"] + 1)):
                yield start, None, raw, "row is not valid UTF-8 (use --encoding)"
                continue
            if len(values) != len(header):
                yield (
                    start,
                    None,
                    raw,
                    f"row has {len(values)} fields, the header has {len(header)}",
                )
                continue
            yield start, dict(zip(header, values, strict=True)), raw, None


def _read_mentions_csv(
    path: Path, encoding: str | None, default_source: str | None
) -> Iterator[Mention | Quarantined]:
    required = [
        f for f in _REQUIRED_MENTION if f != "text" and not (default_source and f == "source")
    ]
    for lineno, row, raw, error in _csv_rows(path, encoding, required):
        origin = f"{path}:{lineno}"
        source = default_source or "import"
        if row is None:
            yield Quarantined(source, error or "unreadable row", raw, origin)
            continue
        if default_source and not row.get("source"):
            row["source"] = default_source
        try:
            yield normalize_mention(row)
        except RecordError as exc:
            src = row.get("source") or source
            yield Quarantined(str(src)[:200], exc.reason, _printable(json.dumps(row)), origin)


def read_customers(
    path: str | Path, *, encoding: str | None = None
) -> Iterator[tuple[int, Customer | None, str | None]]:
    """Stream a customer CSV as ``(line, customer, None)`` or ``(line, None, reason)``.

    Raises:
        FileFormatError: The file is missing or its header lacks ``customer_id``.
    """
    path = Path(path)
    for lineno, row, _raw, error in _csv_rows(path, encoding, ["customer_id"]):
        if row is None:
            yield lineno, None, error
            continue
        try:
            yield lineno, normalize_customer(row), None
        except RecordError as exc:
            yield lineno, None, exc.reason
