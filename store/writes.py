"""Every write to the database: bulk idempotent upserts, quarantine, cursors, audit log.

Bulk writes take any iterable and chunk it (``batch_size``). Mentions are
idempotent on ``(source, external_id)``: a mention already stored is left as
it is and counted as a duplicate, so nothing stored is ever lost or changed
by a re-import. Customers are upserted on ``customer_id``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, Table, delete, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from .errors import RecordError
from .models import AuditRow, CursorRow, CustomerRow, HandleRow, MentionRow, QuarantineRow, utcnow
from .records import MENTION_FIELDS, Customer, Mention

__all__ = [
    "CustomerWriteResult",
    "Quarantined",
    "WriteResult",
    "chunked",
    "load_cursor",
    "quarantine",
    "record_audit",
    "save_cursor",
    "upsert_customers",
    "upsert_mentions",
    "write_page",
]

T = TypeVar("T")

_mentions = cast(Table, MentionRow.__table__)
_customers = cast(Table, CustomerRow.__table__)
_handles = cast(Table, HandleRow.__table__)
_quarantine = cast(Table, QuarantineRow.__table__)
_cursors = cast(Table, CursorRow.__table__)
_audit = cast(Table, AuditRow.__table__)


@dataclass(frozen=True, slots=True)
class Quarantined:
    """An input record that could not be stored, and why."""

    source: str
    reason: str
    raw: str | None
    origin: str | None = None


@dataclass(slots=True)
class WriteResult:
    """Counts from a bulk mention write."""

    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0

    def add(self, other: WriteResult) -> None:
        """Add another result's counts to this one."""
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined


@dataclass(slots=True)
class CustomerWriteResult:
    """Counts from a customer upsert; ``errors`` pairs a row's label with its reason."""

    inserted: int = 0
    updated: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of at most ``size`` items from any iterable, lazily."""
    if size < 1:
        raise ValueError("size must be at least 1")
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _insert_for(conn: Connection, table: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


_MENTION_COLUMNS = (*MENTION_FIELDS, "raw", "collected_at")


def _mention_sql(dialect: str) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    return (
        f"INSERT INTO mentions ({', '.join(_MENTION_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(_MENTION_COLUMNS))}) "
        "ON CONFLICT (source, external_id) DO NOTHING"
    )


def _sqlite_time(value: datetime) -> str:
    # Exactly the text SQLAlchemy's SQLite DateTime writes (naive UTC, microseconds), so
    # range filters compare like with like.
    if value.tzinfo is not None:
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        value = value.replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _as_is(value: datetime) -> datetime:
    return value


def _insert_mentions(conn: Connection, batch: Sequence[Mention]) -> WriteResult:
    """Insert a batch with one driver-level executemany; conflicts are skipped and counted.

    This is the hot path of every import and collector run, so it bypasses
    SQLAlchemy's per-row statement compilation and type processing; both
    drivers report the summed row count of an executemany, which is the number
    of new rows.
    """
    if not batch:
        return WriteResult()
    sqlite = conn.dialect.name == "sqlite"
    when: Callable[[datetime], Any] = _sqlite_time if sqlite else _as_is
    stamp = when(utcnow())
    params = [
        (
            m.source,
            m.external_id,
            when(m.created_at),
            m.author_handle,
            m.author_name,
            m.text,
            m.url,
            m.rating,
            m.in_reply_to,
            m.raw,
            stamp,
        )
        for m in batch
    ]
    inserted = conn.exec_driver_sql(_mention_sql(conn.dialect.name), params).rowcount
    return WriteResult(inserted=inserted, duplicates=len(batch) - inserted)


def _insert_quarantine(conn: Connection, records: Sequence[Quarantined]) -> None:
    if records:
        now = utcnow()
        conn.execute(
            insert(_quarantine),
            [
                {
                    "source": q.source,
                    "reason": q.reason,
                    "raw": q.raw,
                    "origin": q.origin,
                    "received_at": now,
                }
                for q in records
            ],
        )


def _save_cursor(conn: Connection, source: str, stream: str, value: str | None) -> None:
    stmt = _insert_for(conn, _cursors).values(
        source=source, stream=stream, value=value, updated_at=utcnow()
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["source", "stream"],
        set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
    )
    conn.execute(stmt)


def write_page(
    engine: Engine,
    mentions: Sequence[Mention],
    quarantined: Sequence[Quarantined] = (),
    *,
    cursor: tuple[str, str, str | None] | None = None,
) -> WriteResult:
    """Write one page of mentions, its quarantined records and its cursor in ONE transaction.

    A crash leaves either all of it or none of it, so a collector that resumes
    from the saved cursor never skips a mention.

    Args:
        engine: The database.
        mentions: Mentions to insert; those already stored are counted as duplicates.
        quarantined: Records of the page that could not be normalised.
        cursor: ``(source, stream, value)`` to save with the page, or ``None``.

    Returns:
        The counts for this page.
    """
    with engine.begin() as conn:
        result = _insert_mentions(conn, mentions)
        _insert_quarantine(conn, quarantined)
        if cursor is not None:
            _save_cursor(conn, *cursor)
    result.quarantined = len(quarantined)
    return result


def upsert_mentions(
    engine: Engine,
    items: Iterable[Mention | Quarantined],
    *,
    batch_size: int = 10_000,
    on_batch: Callable[[WriteResult], None] | None = None,
) -> WriteResult:
    """Store mentions from any iterable, in batches, idempotently on ``(source, external_id)``.

    The iterable may mix :class:`Mention` and :class:`Quarantined` items, so a
    reader can stream a file and route bad records to quarantine in the same
    pass. Each batch commits on its own: a failure keeps what was written, and a
    re-run skips it as duplicates.

    Args:
        engine: The database.
        items: Mentions and quarantined records, in any number.
        batch_size: Items per transaction.
        on_batch: Called after each batch with that batch's counts (progress bars).

    Returns:
        The total counts.
    """
    total = WriteResult()
    for chunk in _read_ahead(chunked(items, batch_size)):
        good = [i for i in chunk if isinstance(i, Mention)]
        bad = [i for i in chunk if isinstance(i, Quarantined)]
        result = write_page(engine, good, bad)
        total.add(result)
        if on_batch is not None:
            on_batch(result)
    return total


_DONE = object()


def _read_ahead(chunks: Iterator[list[T]], depth: int = 2) -> Iterator[list[T]]:
    """Produce chunks in a background thread while the caller writes the previous ones.

    Parsing holds the GIL but the database drivers release it while they work,
    so on two cores reading and writing overlap. At most ``depth`` chunks wait
    in memory, so memory stays flat; an error in the reader is raised here.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        q.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            q.put(exc)

    thread = threading.Thread(target=produce, name="listenwell-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def quarantine(engine: Engine, records: Iterable[Quarantined]) -> int:
    """Store records that could not be processed, with their reason. Returns how many."""
    n = 0
    for chunk in chunked(records, 1000):
        with engine.begin() as conn:
            _insert_quarantine(conn, chunk)
        n += len(chunk)
    return n


def save_cursor(engine: Engine, source: str, value: str | None, stream: str = "") -> None:
    """Save a collector's cursor on its own (prefer :func:`write_page` to save it with data)."""
    with engine.begin() as conn:
        _save_cursor(conn, source, stream, value)


def load_cursor(engine: Engine, source: str, stream: str = "") -> str | None:
    """The saved cursor of a collector stream, or ``None`` if it never ran."""
    with engine.connect() as conn:
        return conn.execute(
            select(_cursors.c.value).where(_cursors.c.source == source, _cursors.c.stream == stream)
        ).scalar_one_or_none()


def record_audit(
    conn: Connection | Engine,
    actor: str,
    action: str,
    entity: str | None = None,
    entity_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an entry to the audit log (inside the caller's transaction if given one)."""
    values = {
        "at": utcnow(),
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "detail": detail,
    }
    if isinstance(conn, Engine):
        with conn.begin() as c:
            c.execute(insert(_audit).values(**values))
    else:
        conn.execute(insert(_audit).values(**values))


def upsert_customers(
    engine: Engine,
    customers: Iterable[tuple[str, Customer]],
    *,
    batch_size: int = 500,
    actor: str = "system",
) -> CustomerWriteResult:
    """Insert or update customers by ``customer_id``; their handles are replaced.

    Attributes are merged into those already stored. A customer whose handle
    already belongs to another customer is not written; it is reported in
    ``errors`` with its label (e.g. ``line 12``) and the others are still written.

    Args:
        engine: The database.
        customers: ``(label, customer)`` pairs; the label names the row in errors.
        batch_size: Customers per transaction.
        actor: Who is importing, for the audit log.
    """
    result = CustomerWriteResult()
    for chunk in chunked(customers, batch_size):
        with engine.begin() as conn:
            ins, upd, errs = _upsert_customer_chunk(conn, chunk)
            result.inserted += ins
            result.updated += upd
            result.errors.extend(errs)
            if ins or upd:
                record_audit(
                    conn,
                    actor,
                    "customers.upsert",
                    "customer",
                    None,
                    {"inserted": ins, "updated": upd},
                )
    return result


def _upsert_customer_chunk(
    conn: Connection, chunk: list[tuple[str, Customer]]
) -> tuple[int, int, list[tuple[str, str]]]:
    errors: list[tuple[str, str]] = []
    # Later rows for the same customer_id win, as in any upsert.
    latest: dict[str, tuple[str, Customer]] = {}
    for label, c in chunk:
        latest[c.customer_id] = (label, c)
    ids = list(latest)
    existing = {
        row.customer_id: (row.id, row.attributes or {})
        for row in conn.execute(
            select(_customers.c.customer_id, _customers.c.id, _customers.c.attributes).where(
                _customers.c.customer_id.in_(ids)
            )
        )
    }
    # Who owns each handle named in this chunk now.
    keys = {(h.platform, h.handle) for _, c in latest.values() for h in c.handles}
    owners: dict[tuple[str, str], str] = {}
    if keys:
        rows = conn.execute(
            select(_handles.c.platform, _handles.c.handle, _customers.c.customer_id)
            .join(_customers, _customers.c.id == _handles.c.customer_pk)
            .where(tuple_(_handles.c.platform, _handles.c.handle).in_(list(keys)))
        )
        owners = {(r.platform, r.handle): r.customer_id for r in rows}
    claimed: dict[tuple[str, str], str] = {}
    accepted: list[tuple[str, Customer]] = []
    for label, c in latest.values():
        try:
            for h in c.handles:
                key = (h.platform, h.handle)
                owner = owners.get(key) or claimed.get(key)
                if owner is not None and owner != c.customer_id:
                    raise RecordError(
                        f"handle {h.platform}:{h.display} already belongs to customer {owner}"
                    )
            for h in c.handles:
                claimed[(h.platform, h.handle)] = c.customer_id
            accepted.append((label, c))
        except RecordError as exc:
            errors.append((label, exc.reason))
    now = utcnow()
    inserted = updated = 0
    new_rows = [
        {
            "customer_id": c.customer_id,
            "name": c.name,
            "email": c.email,
            "phone": c.phone,
            "segment": c.segment,
            "attributes": c.attributes,
            "created_at": now,
            "updated_at": now,
        }
        for _, c in accepted
        if c.customer_id not in existing
    ]
    if new_rows:
        conn.execute(insert(_customers), new_rows)
        inserted = len(new_rows)
    for _, c in accepted:
        if c.customer_id in existing:
            pk, attrs = existing[c.customer_id]
            conn.execute(
                update(_customers)
                .where(_customers.c.id == pk)
                .values(
                    name=c.name,
                    email=c.email,
                    phone=c.phone,
                    segment=c.segment,
                    attributes={**attrs, **c.attributes},
                    updated_at=now,
                )
            )
            updated += 1
    if accepted:
        pks = dict(
            conn.execute(
                select(_customers.c.customer_id, _customers.c.id).where(
                    _customers.c.customer_id.in_([c.customer_id for _, c in accepted])
                )
            ).all()
        )
        conn.execute(delete(_handles).where(_handles.c.customer_pk.in_(list(pks.values()))))
        handle_rows = [
            {
                "customer_pk": pks[c.customer_id],
                "platform": h.platform,
                "handle": h.handle,
                "display": h.display,
            }
            for _, c in accepted
            for h in c.handles
        ]
        if handle_rows:
            conn.execute(insert(_handles), handle_rows)
    return inserted, updated, errors
