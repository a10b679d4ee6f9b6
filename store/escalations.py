"""Escalations in the store: rule sets, rule outcomes, the SLA sweep, the queue and history.

What is decided lives elsewhere: the rules in ``listenwell.crm.rules`` and the business-time
maths in ``listenwell.crm.sla``. This module reads what they need (:func:`iter_facts`,
:func:`conversations_to_evaluate`) and writes what they decided.

**Writes are set-based and guarded by the optimistic lock.** A batch of changes is sent as
one JSON document and applied by one ``UPDATE ... FROM`` (``json_each`` on SQLite,
``jsonb_to_recordset`` on PostgreSQL) that only touches a conversation still at the
``version`` that was read and still open; ``RETURNING`` says which rows changed, and only
those get their ``escalation_events`` row, in the same transaction. A conversation an agent
changed in between is left alone and picked up by the next pass. The sweep's own write on
SQLite takes the write lock first (``BEGIN IMMEDIATE``), reads the versions under it and
sends the rows still current with ``executemany``: SQLite has one writer, so nothing can
change in between, and this skips building and re-parsing the JSON document.
On PostgreSQL the sweep writes while it assesses: a writer thread applies each range of
conversations (update and events in one statement) inside one transaction while the next
range is assessed, so the server's work overlaps Python's (:class:`_PgSweepWriter`).

**The sweep** (:func:`sweep`) reads every open (``new``, ``open``, ``pending``) conversation
in one query, assesses its SLA clock at ``now`` (a range at a time) and applies at most one
step to each:
a reminder (``reminded_at``, event ``reminded``), an upgrade (priority up, or
``escalation_level`` up; event ``upgraded``; the new stage starts at ``now``) or a final
breach at manager level (event ``breached``, once). It is idempotent: a second pass at the
same ``now`` finds nothing to do. The stage state lives in ``conversations.escalation`` under
``"sla"``: ``since`` (when the stage began), ``paused_s`` (the pause total at that moment)
and ``final`` (the manager-level breach was recorded). Upgrades bump ``version``; reminders
do not, so a reminder never makes an agent's edit fail. A cheap exact screen
(:class:`~listenwell.crm.sla.Screen`) lets only the conversations that may need an action
through to the full assessment.

**Pauses.** The inbox keeps ``paused_s`` in wall-clock seconds; the business time of each
closed pending spell is rebuilt exactly from its audit entries (:func:`pending_spells`),
and a remainder the audit log cannot explain counts as paused business time.
"""

from __future__ import annotations

import bisect
import json
import math
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    case,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.sql.elements import ColumnElement

from listenwell.crm.sla import PRIORITIES, Assessment, Clock, Screen, SlaPolicy, assess

from .corrections import corrections_in_force
from .engine import using
from .errors import NotFoundError, StoreError
from .links import effective_links
from .models import (
    AuditRow,
    ConversationRow,
    CustomerRow,
    EnrichmentRow,
    EscalationEventRow,
    MentionRow,
    RuleSetRow,
    UTCDateTime,
    utcnow,
)
from .writes import chunked, record_audit

__all__ = [
    "OPEN_STATUSES",
    "ConversationEscalation",
    "EscalationEvent",
    "MentionFacts",
    "QueueItem",
    "RuleOutcome",
    "RuleSetRecord",
    "RuleSetConflictError",
    "SweepReport",
    "ToEvaluate",
    "conversation_escalation",
    "conversations_to_evaluate",
    "escalation_columns",
    "escalation_flags",
    "escalation_history",
    "escalation_queue",
    "followers_from_raw",
    "insert_rule_set",
    "iter_facts",
    "latest_rule_set",
    "list_rule_sets",
    "pending_spells",
    "rule_set",
    "sweep",
    "write_rule_outcomes",
]

OPEN_STATUSES: tuple[str, ...] = ("new", "open", "pending")
"""The statuses the sweep and the rules work on; ``resolved`` and ``closed`` are left alone."""

_PLAN_CHUNK = 10_000  # conversations per UPDATE statement
_IN_CHUNK = 500  # ids per IN (...) list

_conversations = cast(Table, ConversationRow.__table__)
_mentions = cast(Table, MentionRow.__table__)
_enrichments = cast(Table, EnrichmentRow.__table__)
_customers = cast(Table, CustomerRow.__table__)
_events = cast(Table, EscalationEventRow.__table__)
_rule_sets = cast(Table, RuleSetRow.__table__)
_audit = cast(Table, AuditRow.__table__)


class RuleSetConflictError(StoreError):
    """Another rule set was saved at the same moment; save again."""


# --------------------------------------------------------------------------- rule sets


@dataclass(frozen=True, slots=True)
class RuleSetRecord:
    """One saved version of the rules (YAML text)."""

    version: int
    text: str
    created_by: str
    created_at: datetime
    note: str | None


def _as_rule_set(row: Any) -> RuleSetRecord:
    return RuleSetRecord(
        version=int(row.version),
        text=row.text,
        created_by=row.created_by,
        created_at=row.created_at,
        note=row.note,
    )


def latest_rule_set(conn: Connection | Engine) -> RuleSetRecord | None:
    """The newest saved rule set (the one in force), or ``None`` if none was ever saved."""
    with using(conn) as c:
        row = c.execute(select(_rule_sets).order_by(_rule_sets.c.version.desc()).limit(1)).first()
    return None if row is None else _as_rule_set(row)


def rule_set(conn: Connection | Engine, version: int) -> RuleSetRecord:
    """One saved version.

    Raises:
        NotFoundError: No such version.
    """
    with using(conn) as c:
        row = c.execute(select(_rule_sets).where(_rule_sets.c.version == version)).first()
    if row is None:
        raise NotFoundError(f"no saved rules version {version}")
    return _as_rule_set(row)


def list_rule_sets(conn: Connection | Engine) -> list[RuleSetRecord]:
    """Every saved version, newest first."""
    with using(conn) as c:
        rows = c.execute(select(_rule_sets).order_by(_rule_sets.c.version.desc())).all()
    return [_as_rule_set(r) for r in rows]


def insert_rule_set(engine: Engine, text_: str, actor: str, note: str | None) -> RuleSetRecord:
    """Save ``text_`` as the next version, with an audit-log entry, in one transaction.

    The text is stored as given; validating it is the caller's job
    (``listenwell.crm.rules.save_rules``).

    Raises:
        RuleSetConflictError: Another version was saved at the same moment.
    """
    from sqlalchemy.exc import IntegrityError

    now = utcnow()
    try:
        with engine.begin() as conn:
            last = conn.execute(select(func.max(_rule_sets.c.version))).scalar_one_or_none()
            version = int(last or 0) + 1
            conn.execute(
                insert(_rule_sets).values(
                    version=version, text=text_, created_by=actor, created_at=now, note=note
                )
            )
            record_audit(
                conn,
                actor,
                "rules.save",
                "rule_set",
                str(version),
                {"note": note, "chars": len(text_)},
            )
    except IntegrityError:
        raise RuleSetConflictError(
            "another rules version was saved at the same moment; save again"
        ) from None
    return RuleSetRecord(version=version, text=text_, created_by=actor, created_at=now, note=note)


# --------------------------------------------------------------------------- facts for rules


@dataclass(frozen=True, slots=True)
class MentionFacts:
    """What the escalation rules look at for one mention.

    Attributes:
        mention_id: The mention.
        source: Where it came from.
        text: Its text, verbatim.
        author_handle: The author's handle as stored.
        created_at: When it was posted.
        rating: A review's stars (1-5), if any.
        sentiment: The sentiment label in force (an agent's correction beats the model).
        sentiment_p: The probability of that label: the model's calibrated score, or 1.0
            for an agent's correction; ``None`` when unknown.
        intent: The intent label in force.
        followers: The author's follower count where the source stored one.
        customer_id: The linked customer (the conversation's, else the link in force).
        segment: That customer's segment.
        lifetime_value: That customer's ``attributes.lifetime_value``, if numeric.
        contacts: ``{days: n}``: mentions by the same author on the same source within the
            last ``days`` days up to this one, this one included.
        conversation_id: The mention's conversation, if it has one.
    """

    mention_id: int
    source: str
    text: str
    author_handle: str | None = None
    created_at: datetime | None = None
    rating: int | None = None
    sentiment: str | None = None
    sentiment_p: float | None = None
    intent: str | None = None
    followers: int | None = None
    customer_id: str | None = None
    segment: str | None = None
    lifetime_value: float | None = None
    contacts: Mapping[int, int] = field(default_factory=dict)
    conversation_id: int | None = None


_FOLLOWER_PATHS: tuple[tuple[str, ...], ...] = (
    ("author", "public_metrics", "followers_count"),
    ("author", "followers_count"),
    ("user", "public_metrics", "followers_count"),
    ("user", "followers_count"),
    ("followers_count",),
    ("author_followers",),
    ("followers",),
)


def followers_from_raw(raw: str | None) -> int | None:
    """The author's follower count in a stored raw payload, or ``None`` where there is none.

    Looks at ``author.public_metrics.followers_count`` (X), then a few flat spellings
    (``author.followers_count``, ``followers_count``, ``author_followers``, ``followers``)
    that imported files use. Never guesses.
    """
    if not raw or "followers" not in raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    for path in _FOLLOWER_PATHS:
        node: Any = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, bool):
            continue
        if isinstance(node, int | float) and node >= 0:
            return int(node)
        if isinstance(node, str) and node.strip().isdigit():
            return int(node.strip())
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", "").strip())
        except ValueError:
            return None
    return None


def _mention_batches(
    conn: Connection,
    mention_ids: Sequence[int] | None,
    since: datetime | None,
    limit: int | None,
    batch_size: int,
    need_reach: bool,
) -> Iterator[list[Any]]:
    conv = _conversations
    # Only payloads that can hold a follower count travel: raw posts can be large.
    raw = case((_mentions.c.raw.like("%followers%"), _mentions.c.raw), else_=None)
    cols: list[Any] = [
        _mentions.c.id,
        _mentions.c.source,
        _mentions.c.text,
        _mentions.c.author_handle,
        _mentions.c.created_at,
        _mentions.c.rating,
        conv.c.id.label("conversation_id"),
        conv.c.customer_pk,
    ]
    if need_reach:
        cols.append(raw.label("raw"))
    base = select(*cols).outerjoin(conv, conv.c.mention_id == _mentions.c.id)
    if mention_ids is not None:
        for chunk in chunked(sorted(set(mention_ids)), batch_size):
            yield list(conn.execute(base.where(_mentions.c.id.in_(chunk)).order_by(_mentions.c.id)))
        return
    last = 0
    left = limit
    while left is None or left > 0:
        size = batch_size if left is None else min(batch_size, left)
        stmt = base.where(_mentions.c.id > last)
        if since is not None:
            stmt = stmt.where(_mentions.c.created_at >= since)
        rows = list(conn.execute(stmt.order_by(_mentions.c.id).limit(size)))
        if not rows:
            return
        yield rows
        last = int(rows[-1].id)
        if left is not None:
            left -= len(rows)


def _labels(conn: Connection, ids: list[int]) -> dict[tuple[int, str], tuple[str, float | None]]:
    out: dict[tuple[int, str], tuple[str, float | None]] = {}
    for chunk in chunked(ids, _IN_CHUNK):
        for r in conn.execute(
            select(
                _enrichments.c.mention_id,
                _enrichments.c.stage,
                _enrichments.c.label,
                _enrichments.c.score,
            ).where(
                _enrichments.c.mention_id.in_(chunk),
                _enrichments.c.stage.in_(("sentiment", "intent")),
                _enrichments.c.label.is_not(None),
            )
        ):
            score = float(r.score) if r.score is not None else None
            out[(int(r.mention_id), r.stage)] = (r.label, score)
        newest = corrections_in_force(None, chunk)
        for r in conn.execute(
            select(newest.c.mention_id, newest.c.stage, newest.c.label).where(
                newest.c.rank == 1, newest.c.stage.in_(("sentiment", "intent"))
            )
        ):
            out[(int(r.mention_id), r.stage)] = (r.label, 1.0)
    return out


def _customers_of(
    conn: Connection, rows: list[Any]
) -> dict[int, tuple[str, str | None, float | None]]:
    """``{mention_id: (customer_id, segment, lifetime_value)}`` for the linked mentions."""
    by_pk = {int(r.id): int(r.customer_pk) for r in rows if r.customer_pk is not None}
    unlinked = [int(r.id) for r in rows if r.customer_pk is None]
    by_cid = {mid: link.customer_id for mid, link in effective_links(conn, unlinked).items()}
    found: dict[Any, tuple[str, str | None, float | None]] = {}
    for key_col, keys in (
        (_customers.c.id, set(by_pk.values())),
        (_customers.c.customer_id, set(by_cid.values())),
    ):
        for chunk in chunked(sorted(keys), _IN_CHUNK):
            for r in conn.execute(
                select(
                    _customers.c.id,
                    _customers.c.customer_id,
                    _customers.c.segment,
                    _customers.c.attributes,
                    _customers.c.erased_at,
                ).where(key_col.in_(chunk))
            ):
                if r.erased_at is not None:
                    continue
                attrs = r.attributes if isinstance(r.attributes, dict) else {}
                value = (r.customer_id, r.segment, _number(attrs.get("lifetime_value")))
                found[int(r.id)] = value
                found[str(r.customer_id)] = value
    out: dict[int, tuple[str, str | None, float | None]] = {}
    for mid, pk in by_pk.items():
        if pk in found:
            out[mid] = found[pk]
    for mid, cid in by_cid.items():
        if cid in found:
            out[mid] = found[cid]
    return out


def _contacts(
    conn: Connection, rows: list[Any], repeat_days: Sequence[int]
) -> dict[int, dict[int, int]]:
    """Per mention, how many mentions its author posted on its source in each window."""
    authored = [r for r in rows if r.author_handle and r.created_at is not None]
    if not authored or not repeat_days:
        return {}
    widest = timedelta(days=max(repeat_days))
    lo = min(r.created_at for r in authored) - widest
    hi = max(r.created_at for r in authored)
    times: dict[tuple[str, str], list[datetime]] = {}
    handles = sorted({r.author_handle for r in authored})
    for chunk in chunked(handles, _IN_CHUNK):
        for r in conn.execute(
            select(_mentions.c.source, _mentions.c.author_handle, _mentions.c.created_at).where(
                _mentions.c.author_handle.in_(chunk),
                _mentions.c.created_at >= lo,
                _mentions.c.created_at <= hi,
            )
        ):
            times.setdefault((r.source, r.author_handle), []).append(r.created_at)
    for stamps in times.values():
        stamps.sort()
    out: dict[int, dict[int, int]] = {}
    for r in authored:
        stamps = times.get((r.source, r.author_handle), [])
        upto = bisect.bisect_right(stamps, r.created_at)
        out[int(r.id)] = {
            days: upto - bisect.bisect_right(stamps, r.created_at - timedelta(days=days))
            for days in repeat_days
        }
    return out


def iter_facts(
    engine: Engine,
    *,
    mention_ids: Sequence[int] | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    repeat_days: Sequence[int] = (),
    need_reach: bool = True,
    need_customer: bool = True,
    batch_size: int = 2000,
) -> Iterator[list[MentionFacts]]:
    """The facts the rules need, in batches: for ``mention_ids``, or every mention by id.

    Args:
        engine: The database.
        mention_ids: These mentions; ``None`` for all mentions (in id order).
        since: Only mentions posted at or after this time (with ``mention_ids=None``).
        limit: At most this many mentions (with ``mention_ids=None``).
        repeat_days: The repeat-contact windows to count (in days).
        need_reach: Read follower counts from the raw payloads.
        need_customer: Look up the linked customer's segment and lifetime value.
        batch_size: Mentions per batch.

    Yields:
        Lists of :class:`MentionFacts`, at most ``batch_size`` long.
    """
    with engine.connect() as conn:
        for rows in _mention_batches(conn, mention_ids, since, limit, batch_size, need_reach):
            ids = [int(r.id) for r in rows]
            labels = _labels(conn, ids)
            customers = _customers_of(conn, rows) if need_customer else {}
            contacts = _contacts(conn, rows, repeat_days)
            batch: list[MentionFacts] = []
            for r in rows:
                mid = int(r.id)
                sent = labels.get((mid, "sentiment"))
                intent = labels.get((mid, "intent"))
                cust = customers.get(mid)
                batch.append(
                    MentionFacts(
                        mention_id=mid,
                        source=r.source,
                        text=r.text,
                        author_handle=r.author_handle,
                        created_at=r.created_at,
                        rating=r.rating,
                        sentiment=sent[0] if sent else None,
                        sentiment_p=sent[1] if sent else None,
                        intent=intent[0] if intent else None,
                        followers=followers_from_raw(r.raw) if need_reach else None,
                        customer_id=cust[0] if cust else None,
                        segment=cust[1] if cust else None,
                        lifetime_value=cust[2] if cust else None,
                        contacts=contacts.get(mid, {}),
                        conversation_id=(
                            int(r.conversation_id) if r.conversation_id is not None else None
                        ),
                    )
                )
            yield batch


# --------------------------------------------------------------------------- set-based writes


# The sweep's write on PostgreSQL, one statement per range: the version-guarded UPDATE and,
# for the rows it changed, their events (every planned change has one). One round trip and
# one parsed document per range, so the writer thread only waits on the server.
_PG_SWEEP_WITH_EVENTS = """
WITH p AS MATERIALIZED (
  SELECT * FROM jsonb_to_recordset(CAST(:plan AS jsonb))
    AS p(id bigint, version int, priority text, level int, sla jsonb, reminded int, bump int,
         kind text, from_level int, to_level int, event_priority text, detail jsonb)
), changed AS (
  UPDATE conversations AS c SET
    priority = coalesce(p.priority, c.priority),
    escalation_level = coalesce(p.level, c.escalation_level),
    escalation = CASE WHEN p.sla IS NULL THEN c.escalation ELSE
        (CASE WHEN jsonb_typeof(c.escalation) = 'object' THEN c.escalation ELSE '{}'::jsonb END)
        || jsonb_build_object('sla', p.sla) END,
    reminded_at = CASE WHEN p.reminded = 1 THEN :now ELSE c.reminded_at END,
    version = c.version + p.bump,
    updated_at = CASE WHEN p.bump = 1 THEN :now ELSE c.updated_at END,
    updated_by = CASE WHEN p.bump = 1 THEN :actor ELSE c.updated_by END
  FROM p
  WHERE c.id = p.id AND c.version = p.version AND c.status IN ('new', 'open', 'pending')
  RETURNING c.id
)
INSERT INTO escalation_events (conversation_id, at, kind, from_level, to_level, priority, actor,
                               detail)
SELECT p.id, :now, p.kind, p.from_level, p.to_level, p.event_priority, :actor, p.detail
FROM p JOIN changed ON changed.id = p.id
ORDER BY p.id
RETURNING conversation_id
"""

_SQLITE_RULES = """
WITH p AS MATERIALIZED (
  SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.version') AS version,
         json_extract(value, '$.priority') AS priority,
         json_extract(value, '$.escalated') AS escalated,
         json_extract(value, '$.rule_version') AS rule_version,
         json_extract(value, '$.escalation') AS escalation,
         json_extract(value, '$.bump') AS bump
  FROM json_each(:plan)
)
UPDATE conversations SET
  priority = p.priority,
  escalated = p.escalated,
  rule_version = p.rule_version,
  escalation = CASE WHEN json_extract(conversations.escalation, '$.sla') IS NULL
      THEN json(p.escalation)
      ELSE json_set(json(p.escalation), '$.sla',
                    json(json_extract(conversations.escalation, '$.sla'))) END,
  version = conversations.version + p.bump,
  updated_at = CASE WHEN p.bump = 1 THEN :now ELSE conversations.updated_at END,
  updated_by = CASE WHEN p.bump = 1 THEN :actor ELSE conversations.updated_by END
FROM p
WHERE conversations.id = p.id AND conversations.version = p.version
  AND conversations.status IN :statuses
RETURNING conversations.id
"""

_PG_RULES = """
UPDATE conversations AS c SET
  priority = p.priority,
  escalated = p.escalated,
  rule_version = p.rule_version,
  escalation = CASE WHEN c.escalation -> 'sla' IS NULL THEN p.escalation
      ELSE p.escalation || jsonb_build_object('sla', c.escalation -> 'sla') END,
  version = c.version + p.bump,
  updated_at = CASE WHEN p.bump = 1 THEN :now ELSE c.updated_at END,
  updated_by = CASE WHEN p.bump = 1 THEN :actor ELSE c.updated_by END
FROM jsonb_to_recordset(CAST(:plan AS jsonb))
  AS p(id bigint, version int, priority text, escalated boolean, rule_version int,
       escalation jsonb, bump int)
WHERE c.id = p.id AND c.version = p.version AND c.status IN :statuses
RETURNING c.id
"""

_SQLITE_EVENTS = """
INSERT INTO escalation_events (conversation_id, at, kind, from_level, to_level, priority, actor,
                               detail)
SELECT json_extract(value, '$.cid'), :now, json_extract(value, '$.kind'),
       json_extract(value, '$.from_level'), json_extract(value, '$.to_level'),
       json_extract(value, '$.priority'), :actor, json_extract(value, '$.detail')
FROM json_each(:events)
"""

_PG_EVENTS = """
INSERT INTO escalation_events (conversation_id, at, kind, from_level, to_level, priority, actor,
                               detail)
SELECT e.cid, :now, e.kind, e.from_level, e.to_level, e.priority, :actor, e.detail
FROM jsonb_to_recordset(CAST(:events AS jsonb))
  AS e(cid bigint, kind text, from_level int, to_level int, priority text, detail jsonb)
"""


_SQLITE_WRITE_CACHE_KIB = 64 * 1024


@contextmanager
def _roomy_cache(conn: Connection) -> Iterator[None]:
    """A larger SQLite page cache for one big write, put back afterwards.

    A catch-up sweep rewrites tens of thousands of rows and their index entries spread
    over the whole table; with SQLite's default 2 MiB cache most pages are read twice
    (about a quarter of the UPDATE's CPU time at 100,000 rows). PostgreSQL: no-op.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    old = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    page = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
    if (-old if old < 0 else old * page // 1024) >= _SQLITE_WRITE_CACHE_KIB:
        yield
        return
    conn.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_WRITE_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {old}")


_SQLITE_OPEN_VERSIONS = (
    "SELECT id, version FROM conversations WHERE id BETWEEN ? AND ? "
    "AND status IN ('new', 'open', 'pending')"
)
_SQLITE_REMIND = "UPDATE conversations SET reminded_at = ? WHERE id = ? AND version = ?"
_SQLITE_UPGRADE = """
UPDATE conversations SET
  priority = ?, escalation_level = ?,
  escalation = json_set(CASE WHEN json_type(escalation) = 'object' THEN escalation ELSE '{}' END,
                        '$.sla', json(?)),
  version = version + 1, updated_at = ?, updated_by = ?
WHERE id = ? AND version = ?
"""
_SQLITE_STATE = """
UPDATE conversations SET
  escalation = json_set(CASE WHEN json_type(escalation) = 'object' THEN escalation ELSE '{}' END,
                        '$.sla', json(?))
WHERE id = ? AND version = ?
"""
_SQLITE_EVENT = (
    "INSERT INTO escalation_events (conversation_id, at, kind, from_level, to_level, "
    "priority, actor, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _run_sweep_sqlite(
    conn: Connection,
    plan: list[dict[str, Any]],
    events: Mapping[int, dict[str, Any]],
    now: datetime,
    actor: str,
) -> set[int]:
    """The sweep's write on SQLite: the same outcome as :data:`_PG_SWEEP_WITH_EVENTS` on PostgreSQL.

    SQLite has one writer at a time, so once this transaction holds the write lock
    (``BEGIN IMMEDIATE``) the versions it reads cannot change under it: the rows still
    at the version the sweep assessed (and still open) are written with ``executemany``,
    without building and re-parsing a JSON plan (at 78,000 upgrades the write went from
    7.4-7.7 s to 4.0-4.5 s). Each ``UPDATE`` keeps its version guard all the same.
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    if not raw.in_transaction:
        raw.execute("BEGIN IMMEDIATE")
    stamp = UTCDateTime()  # the stored form of ``now``, as SQLAlchemy would bind it
    to_db = stamp.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    now_db: Any = stamp.process_bind_param(now, conn.dialect)
    if to_db is not None:
        now_db = to_db(now_db)
    ids = [p["id"] for p in plan]
    current = dict(raw.execute(_SQLITE_OPEN_VERSIONS, (min(ids), max(ids))).fetchall())
    remind: list[tuple[Any, ...]] = []
    upgrade: list[tuple[Any, ...]] = []
    state: list[tuple[Any, ...]] = []
    changed: set[int] = set()
    for p in plan:
        cid, version = p["id"], p["version"]
        if current.get(cid) != version:
            continue  # changed by someone else since the read, or no longer open
        changed.add(cid)
        if p.get("reminded"):
            remind.append((now_db, cid, version))
        elif p.get("bump"):
            upgrade.append((p["priority"], p["level"], p["sla"], now_db, actor, cid, version))
        else:
            state.append((p["sla"], cid, version))
    raw.executemany(_SQLITE_REMIND, remind)
    raw.executemany(_SQLITE_UPGRADE, upgrade)
    raw.executemany(_SQLITE_STATE, state)
    raw.executemany(
        _SQLITE_EVENT,
        [
            (
                e["cid"],
                now_db,
                e["kind"],
                e["from_level"],
                e["to_level"],
                e["priority"],
                actor,
                e["detail"],
            )
            for e in (events[i] for i in sorted(changed) if i in events)
        ],
    )
    return changed


def _compact_json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(rows, separators=(",", ":"))


def _run_plan(
    conn: Connection,
    sql: str,
    plan: list[dict[str, Any]],
    events: Mapping[int, dict[str, Any]],
    now: datetime,
    actor: str,
    statuses: Sequence[str] | None = None,
) -> set[int]:
    """Apply ``plan`` (set-based, version-guarded); insert the events of the rows that changed."""
    stamp = bindparam("now", type_=UTCDateTime())
    params: dict[str, Any] = {"now": now, "actor": actor}
    stmt = text(sql).bindparams(stamp)
    if statuses is not None:
        stmt = stmt.bindparams(bindparam("statuses", expanding=True))
        params["statuses"] = list(statuses)
    changed: set[int] = set()
    for part in chunked(plan, _PLAN_CHUNK):
        params["plan"] = _compact_json(part)
        changed.update(map(int, conn.execute(stmt, params).scalars().all()))
    rows = [events[i] for i in sorted(changed) if i in events]
    ev_sql = _PG_EVENTS if conn.dialect.name == "postgresql" else _SQLITE_EVENTS
    ev_stmt = text(ev_sql).bindparams(bindparam("now", type_=UTCDateTime()))
    for part in chunked(rows, _PLAN_CHUNK):
        conn.execute(
            ev_stmt,
            {"now": now, "actor": actor, "events": _compact_json(part)},
        )
    return changed


# --------------------------------------------------------------------------- rule outcomes


@dataclass(frozen=True, slots=True)
class ToEvaluate:
    """An open conversation the rules in force have not evaluated yet."""

    id: int
    mention_id: int
    version: int
    priority: str
    escalated: bool
    rule_version: int | None


def conversations_to_evaluate(
    conn: Connection | Engine,
    rule_version: int,
    *,
    after_id: int = 0,
    limit: int = 1000,
    statuses: Sequence[str] = OPEN_STATUSES,
) -> list[ToEvaluate]:
    """Conversations whose ``rule_version`` is not ``rule_version``, by id after ``after_id``."""
    c = _conversations
    stmt = (
        select(c.c.id, c.c.mention_id, c.c.version, c.c.priority, c.c.escalated, c.c.rule_version)
        .where(
            c.c.id > after_id,
            c.c.status.in_(list(statuses)),
            (c.c.rule_version.is_(None)) | (c.c.rule_version != rule_version),
        )
        .order_by(c.c.id)
        .limit(limit)
    )
    with using(conn) as cx:
        rows = cx.execute(stmt).all()
    return [
        ToEvaluate(
            id=int(r.id),
            mention_id=int(r.mention_id),
            version=int(r.version),
            priority=r.priority,
            escalated=bool(r.escalated),
            rule_version=r.rule_version,
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What the rules decided for one conversation, ready to write.

    Attributes:
        conversation_id: The conversation.
        version: The ``version`` it was read at (the write is skipped if it moved on).
        priority: Its new priority.
        escalated: Its new escalated flag.
        rule_version: The rules version that decided.
        escalation: The breakdown to store in ``conversations.escalation`` (the SLA stage
            state already there is kept).
        changed: Whether priority or escalated change (bumps ``version``).
        event: The event to record (``escalated`` or ``prioritised``), or ``None``.
        detail: The event's detail.
    """

    conversation_id: int
    version: int
    priority: str
    escalated: bool
    rule_version: int
    escalation: dict[str, Any]
    changed: bool = False
    event: str | None = None
    detail: dict[str, Any] | None = None


def write_rule_outcomes(
    engine: Engine,
    outcomes: Sequence[RuleOutcome],
    *,
    now: datetime | None = None,
    actor: str = "system:rules",
    statuses: Sequence[str] = OPEN_STATUSES,
) -> set[int]:
    """Write the rules' outcomes in one transaction; returns the ids of the rows written.

    A conversation changed by someone else since it was read (another ``version``), or
    no longer in ``statuses``, is skipped and counted as a conflict; it keeps its old
    ``rule_version``, so the next ``apply`` evaluates it again.
    """
    if not outcomes:
        return set()
    when = now or utcnow()
    plan = [
        {
            "id": o.conversation_id,
            "version": o.version,
            "priority": o.priority,
            "escalated": o.escalated,
            "rule_version": o.rule_version,
            "escalation": o.escalation,
            "bump": 1 if o.changed else 0,
        }
        for o in outcomes
    ]
    events = {
        o.conversation_id: {
            "cid": o.conversation_id,
            "kind": o.event,
            "from_level": None,
            "to_level": None,
            "priority": o.priority,
            "detail": o.detail,
        }
        for o in outcomes
        if o.event
    }
    with engine.begin() as conn:
        sql = _PG_RULES if conn.dialect.name == "postgresql" else _SQLITE_RULES
        return _run_plan(conn, sql, plan, events, when, actor, statuses)


# --------------------------------------------------------------------------- the sweep


@dataclass(slots=True)
class SweepReport:
    """What one sweep did.

    Attributes:
        now: The moment it assessed.
        open: Open conversations it looked at.
        reminded: Reminders sent.
        upgraded: Conversations upgraded one step.
        breached: Final breaches recorded at manager level.
        conflicts: Changes skipped because an agent changed the conversation meanwhile.
        read_s: Seconds spent reading the open conversations (one query).
        assess_s: Seconds spent screening and assessing them, pending spells included (on
            PostgreSQL the write runs meanwhile).
        write_s: Seconds from the end of the assessment until the write was committed
            (``read_s + assess_s + write_s`` is the whole pass).
    """

    now: datetime
    open: int = 0
    reminded: int = 0
    upgraded: int = 0
    breached: int = 0
    conflicts: int = 0
    read_s: float = 0.0
    assess_s: float = 0.0
    write_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "now": self.now.isoformat(),
            "open": self.open,
            "reminded": self.reminded,
            "upgraded": self.upgraded,
            "breached": self.breached,
            "conflicts": self.conflicts,
            "seconds": round(self.read_s + self.assess_s + self.write_s, 3),
        }


# The SLA stage state is read as three scalars: decoding 100,000 JSON documents would cost
# more than the rest of the read.
_OPEN_SQL = (
    "SELECT id, version, status, priority, escalation_level, opened_at, first_response_at, "
    "pending_since, paused_s, reminded_at, {since}, {paused}, {final} FROM conversations "
    "WHERE status IN ('new', 'open', 'pending')"
)
_STATE_PG = {
    "since": "escalation -> 'sla' ->> 'since'",
    "paused": "escalation -> 'sla' ->> 'paused_s'",
    "final": "escalation -> 'sla' ->> 'final'",
}
_STATE_SQLITE = {
    "since": "json_extract(escalation, '$.sla.since')",
    "paused": "json_extract(escalation, '$.sla.paused_s')",
    "final": "json_extract(escalation, '$.sla.final')",
}


def _parse_time(value: Any) -> datetime | None:
    """A stored time as an aware datetime (SQLite gives naive-UTC text, PostgreSQL datetimes)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is UTC:
            return value
        # psycopg gives the session's zone (a ZoneInfo even for UTC); arithmetic and
        # comparisons on ``datetime.UTC`` times are several times cheaper.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not isinstance(value, str):
        return None
    if value[-6:-5] not in ("+", "-") and not value.endswith("Z"):
        # SQLite's stored form, naive UTC text: parsed with the zone appended it comes out
        # as a ``datetime.UTC`` time about five times faster than parse-then-``replace``.
        try:
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:
            pass
    when = datetime.fromisoformat(value)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


Spell = tuple[datetime, datetime]


def pending_spells(
    conn: Connection | Engine, conversation_ids: Iterable[int]
) -> dict[int, list[Spell]]:
    """The closed pending spells of conversations, rebuilt from the inbox's audit entries.

    The inbox (``listenwell.store.inbox``) keeps ``paused_s`` in wall-clock seconds and
    audits each status change as ``conversation.update`` with the changed fields:
    entering ``pending`` records ``pending_since``, leaving it records ``paused_s``
    ``[old, new]``. A spell is therefore ``(pending_since, pending_since + new - old)``,
    exact whatever the audit entry's own timestamp.

    Returns:
        ``{conversation_id: [(start, end), ...]}`` in order; conversations without a
        closed spell in the audit log are absent.
    """
    a = _audit
    keys = sorted({str(int(i)) for i in conversation_ids})
    out: dict[int, list[Spell]] = {}
    with using(conn) as cx:
        for chunk in chunked(keys, _IN_CHUNK):
            opened: dict[int, datetime] = {}
            for r in cx.execute(
                select(a.c.entity_id, a.c.detail)
                .where(
                    a.c.entity == "conversation",
                    a.c.action == "conversation.update",
                    a.c.entity_id.in_(chunk),
                )
                .order_by(a.c.id)
            ):
                changes = r.detail.get("changes") if isinstance(r.detail, dict) else None
                if not isinstance(changes, dict):
                    continue
                cid = int(r.entity_id)
                paused = changes.get("paused_s")
                start = opened.pop(cid, None)
                if start is not None and isinstance(paused, list) and len(paused) == 2:
                    old, new = _number(paused[0]), _number(paused[1])
                    if old is not None and new is not None and new >= old:
                        out.setdefault(cid, []).append(
                            (start, start + timedelta(seconds=new - old))
                        )
                since = changes.get("pending_since")
                if isinstance(since, str):
                    try:
                        parsed = _parse_time(since)
                    except ValueError:
                        parsed = None
                    if parsed is not None:
                        opened[cid] = parsed
    return out


def _clock_from(
    *,
    status: str,
    priority: str,
    level: Any,
    opened_at: datetime,
    first_response_at: datetime | None,
    pending_since: datetime | None,
    paused_s: Any,
    reminded_at: datetime | None,
    state: dict[str, Any] | None,
    spells: Sequence[Spell],
) -> Clock:
    """A :class:`Clock` from a conversation row, its SLA stage state and its pending spells.

    ``paused_s`` is wall-clock seconds (the inbox's convention); the spells the audit
    log explains are left out exactly, and any remainder it does not explain counts as
    paused business seconds (never less time for the agent than the truth).
    """
    wall = float(paused_s or 0.0)
    explained = sum((b - a).total_seconds() for a, b in spells)
    unexplained = wall - explained if wall - explained > 1e-3 else 0.0
    state = state or {}
    since = _parse_time(state.get("since"))
    return Clock(
        priority=priority,
        level=int(level or 0),
        opened_at=opened_at,
        first_response_at=first_response_at,
        pending_since=pending_since if status == "pending" else None,
        pauses=tuple(spells),
        paused_s=unexplained,
        reminded_at=reminded_at,
        stage_since=since,
        stage_paused_s=float(state.get("paused_s") or 0.0) if since else 0.0,
        final_breached=bool(state.get("final")),
    )


@dataclass(frozen=True, slots=True)
class _Open:
    id: int
    version: int
    clock: Clock


def _fetch_open(conn: Connection) -> list[Any]:
    """Every open conversation's clock columns, in one query (screened by :func:`_screen_open`)."""
    state_sql = _STATE_PG if conn.dialect.name == "postgresql" else _STATE_SQLITE
    return list(conn.exec_driver_sql(_OPEN_SQL.format(**state_sql)).fetchall())


def _screen_open(conn: Connection, screen: Screen, rows: Sequence[Any]) -> list[_Open]:
    """The rows (from :func:`_fetch_open`) that may need an action, with their full clocks.

    The screen is exact (it never drops a conversation that needs an action), so only the
    few that pass are turned into full clocks, with their pending spells looked up. Each
    stored time is parsed once, here (100,000 rows make every per-row step count).
    """
    parse = _parse_time
    may_act = screen.may_act
    passed: list[tuple[Any, ...]] = []
    for row in rows:
        _, _, status, priority, level, opened, first, pending, _, _, since_raw, _, final = row
        since = parse(since_raw) if since_raw is not None else None
        opened_at = parse(opened)
        first_at = parse(first) if first is not None else None
        pending_at = parse(pending) if status == "pending" and pending is not None else None
        is_final = final in (True, 1, "1", "true")
        level = int(level or 0)
        if may_act(priority, level, since or opened_at, first_at, pending_at, is_final):
            passed.append((row, level, since, opened_at, first_at, pending_at, is_final))
    spells = pending_spells(conn, [int(p[0][0]) for p in passed if p[0][8]])
    items = []
    for row, level, since, opened_at, first_at, pending_at, is_final in passed:
        cid, version, _, priority, _, _, _, _, paused, reminded, _, state_paused, _ = row
        cid = int(cid)
        assert opened_at is not None
        mine = spells.get(cid, ())
        # As :func:`_clock_from`: wall-clock pause seconds the audit log does not explain
        # count as paused business seconds.
        wall = float(paused or 0.0)
        explained = sum((b - a).total_seconds() for a, b in mine) if mine else 0.0
        clock = Clock(
            priority=priority,
            level=level,
            opened_at=opened_at,
            first_response_at=first_at,
            pending_since=pending_at,
            pauses=tuple(mine),
            paused_s=wall - explained if wall - explained > 1e-3 else 0.0,
            reminded_at=parse(reminded) if reminded is not None else None,
            stage_since=since,
            stage_paused_s=(_number(state_paused) or 0.0) if since else 0.0,
            final_breached=is_final,
        )
        items.append(_Open(cid, int(version), clock))
    return items


def _minutes(seconds: float) -> float:
    return round(seconds / 60.0, 2)


@lru_cache(maxsize=256)
def _js(value: str) -> str:
    """A short, often repeated string (metric, stage, priority) as a JSON string."""
    return json.dumps(value)


def _jnum(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else "null"


def _jtime(value: datetime | None) -> str:
    return "null" if value is None else f'"{value.isoformat()}"'


def _detail_json(
    a: Assessment, clock: Clock, policy: SlaPolicy, now: datetime, to_priority: str | None = None
) -> str:
    """An event's ``detail`` as JSON text, written directly (a catch-up pass writes tens of
    thousands; ``json.dumps`` per event was a fifth of the pass's Python time)."""
    if a.action == "remind":
        due = None if a.paused else policy.calendar.add_business_seconds(now, a.remaining_s)
    else:
        due = a.breach_at(policy.calendar)
    tail = f',"to_priority":{_js(to_priority)}}}' if to_priority is not None else "}"
    return (
        f'{{"metric":{_js(a.metric)},"stage":{_js(a.stage)},'
        f'"stage_since":{_jtime(a.stage_since)},'
        f'"target_minutes":{_jnum(_minutes(a.window_s))},'
        f'"elapsed_minutes":{_jnum(_minutes(a.elapsed_s))},"due_at":{_jtime(due)},'
        f'"paused":{"true" if a.paused else "false"},"from_priority":{_js(clock.priority)}' + tail
    )


def _sla_json(since: str | None, paused_s: float, final: bool) -> str:
    since_j = "null" if since is None else _js(since)  # one ``now`` per pass: cached
    final_j = "true" if final else "false"
    return f'{{"since":{since_j},"paused_s":{_jnum(paused_s)},"final":{final_j}}}'


def _pg_sweep_doc(plan: Sequence[dict[str, Any]], events: Mapping[int, dict[str, Any]]) -> str:
    """A range's changes and their events as the JSON array :data:`_PG_SWEEP_WITH_EVENTS`
    reads (``sla`` and ``detail`` are already JSON text)."""
    rows = []
    for p in plan:
        e = events[p["id"]]
        priority, level, sla = p.get("priority"), p.get("level"), p.get("sla")
        fl, tl, ep = e["from_level"], e["to_level"], e["priority"]
        rows.append(
            f'{{"id":{int(p["id"])},"version":{int(p["version"])},'
            f'"priority":{"null" if priority is None else _js(priority)},'
            f'"level":{"null" if level is None else int(level)},'
            f'"sla":{"null" if sla is None else sla},'
            f'"reminded":{int(p.get("reminded", 0))},"bump":{int(p["bump"])},'
            f'"kind":{_js(e["kind"])},"from_level":{"null" if fl is None else int(fl)},'
            f'"to_level":{"null" if tl is None else int(tl)},'
            f'"event_priority":{"null" if ep is None else _js(ep)},"detail":{e["detail"]}}}'
        )
    return "[" + ",".join(rows) + "]"


def _plan_changes(
    items: Sequence[_Open], policy: SlaPolicy, now: datetime
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]], dict[int, str]]:
    """Assess ``items`` at ``now``: the writes to make, their events, and each one's action."""
    plan: list[dict[str, Any]] = []
    events: dict[int, dict[str, Any]] = {}
    kinds: dict[int, str] = {}
    now_iso = now.isoformat()
    for item in items:
        clock = item.clock
        a = assess(policy, clock, now, with_times=False)
        if a.action is None:
            continue
        if a.action == "remind":
            plan.append({"id": item.id, "version": item.version, "reminded": 1, "bump": 0})
            events[item.id] = {
                "cid": item.id,
                "kind": "reminded",
                "from_level": clock.level,
                "to_level": clock.level,
                "priority": clock.priority,
                "detail": _detail_json(a, clock, policy, now),
            }
        elif a.action == "upgrade":
            assert a.to_priority is not None and a.to_level is not None
            plan.append(
                {
                    "id": item.id,
                    "version": item.version,
                    "priority": a.to_priority,
                    "level": a.to_level,
                    "sla": _sla_json(now_iso, clock.paused_s, False),
                    "bump": 1,
                }
            )
            events[item.id] = {
                "cid": item.id,
                "kind": "upgraded",
                "from_level": clock.level,
                "to_level": a.to_level,
                "priority": a.to_priority,
                "detail": _detail_json(a, clock, policy, now, a.to_priority),
            }
        else:  # final breach at manager level, recorded once
            since_iso = clock.stage_since.isoformat() if clock.stage_since else None
            sla = _sla_json(since_iso, clock.stage_paused_s, True)
            plan.append({"id": item.id, "version": item.version, "sla": sla, "bump": 0})
            events[item.id] = {
                "cid": item.id,
                "kind": "breached",
                "from_level": clock.level,
                "to_level": clock.level,
                "priority": clock.priority,
                "detail": _detail_json(a, clock, policy, now),
            }
        kinds[item.id] = a.action
    return plan, events, kinds


_SWEEP_CHUNK = 5_000  # open conversations screened and assessed per range


class _SweepAborted(Exception):
    """The main thread gave up: the writer thread rolls the pass back."""


class _PgSweepWriter:
    """Writes the sweep's ranges in ONE transaction on a thread of its own (PostgreSQL).

    The main thread assesses the next range of open conversations while this thread's
    statements run on the server, so the server's work (most of a catch-up pass) overlaps
    Python's. The pass stays all-or-nothing: one transaction, committed by :meth:`close`
    once every range is written, rolled back by :meth:`abort` or when a statement fails (the
    error is raised in the main thread at its next :meth:`put` or at :meth:`close`).

    The thread starts at the first change, so a quiet pass opens no transaction at all.
    SQLite does not use it: ``sqlite3`` takes the GIL back after every row it steps, so a
    writer thread queues behind the assessing thread at each row (measured: 8.9 s of
    writing instead of 3-4 at 100,000 open conversations; ``docs/benchmarks.md``).
    """

    _END = object()

    def __init__(self, engine: Engine, now: datetime, actor: str) -> None:
        self.engine, self.now, self.actor = engine, now, actor
        self.changed: set[int] = set()
        self.error: BaseException | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stmt = text(_PG_SWEEP_WITH_EVENTS).bindparams(bindparam("now", type_=UTCDateTime()))
        self._params = {"now": now, "actor": actor}

    def _run(self) -> None:
        try:
            with self.engine.begin() as conn:
                while True:
                    item = self._queue.get()
                    if item is self._END:
                        break
                    if item is None:  # abort: leave the block by an exception, rolling back
                        raise _SweepAborted
                    self.changed.update(
                        int(cid)
                        for cid in conn.execute(self._stmt, {**self._params, "plan": item})
                        .scalars()
                        .all()
                    )
        except _SweepAborted:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.error = exc

    def put(self, plan: list[dict[str, Any]], events: Mapping[int, dict[str, Any]]) -> None:
        """Queue one range's changes (raises the writer's error, if it has failed).

        The caller's thread builds the document, so the writer thread only waits on the server.
        """
        if self.error is not None:
            raise self.error
        if not plan:
            return
        doc = _pg_sweep_doc(plan, events)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sla-sweep-writer", daemon=True)
            self._thread.start()
        self._queue.put(doc)

    def close(self) -> set[int]:
        """Wait for the writes and commit; returns the ids of the conversations changed."""
        if self._thread is not None:
            self._queue.put(self._END)
            self._thread.join()
        if self.error is not None:
            raise self.error
        return self.changed

    def abort(self) -> None:
        """Roll back whatever was written (the caller failed)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()


def sweep(
    engine: Engine, now: datetime, policy: SlaPolicy, *, actor: str = "system:sla"
) -> SweepReport:
    """One pass over the open conversations: reminders, one-step upgrades, final breaches.

    The open conversations are read in one query, then screened and assessed a range at a
    time. On PostgreSQL a writer thread applies each range's changes while the next range
    is assessed, all in one transaction (:class:`_PgSweepWriter`); SQLite writes them all
    at the end.

    Args:
        engine: The database.
        now: The moment to assess (timezone-aware); events are stamped with it.
        policy: The SLA policy in force.
        actor: Who the changes and events are recorded as.

    Returns:
        The counts and timings. Running it again at the same ``now`` changes nothing.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    report = SweepReport(now=now)
    screen = Screen(policy, now)
    kinds: dict[int, str] = {}
    plan: list[dict[str, Any]] = []  # SQLite: every change, written at the end
    events: dict[int, dict[str, Any]] = {}
    planned = 0
    changed: set[int] = set()
    writer = _PgSweepWriter(engine, now, actor) if engine.dialect.name == "postgresql" else None
    t0 = time.perf_counter()
    try:
        with engine.connect() as conn:
            rows = _fetch_open(conn)
            report.open = len(rows)
            t1 = time.perf_counter()
            for part in chunked(rows, _SWEEP_CHUNK):
                part_plan, part_events, part_kinds = _plan_changes(
                    _screen_open(conn, screen, part), policy, now
                )
                planned += len(part_plan)
                kinds.update(part_kinds)
                if writer is not None:
                    writer.put(part_plan, part_events)
                else:
                    plan += part_plan
                    events.update(part_events)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    t2 = time.perf_counter()
    if writer is not None:
        changed = writer.close()
    elif plan:
        with engine.begin() as conn, _roomy_cache(conn):
            changed = _run_sweep_sqlite(conn, plan, events, now, actor)
    for cid in changed:
        kind = kinds[cid]
        if kind == "remind":
            report.reminded += 1
        elif kind == "upgrade":
            report.upgraded += 1
        else:
            report.breached += 1
    report.conflicts = planned - len(changed)
    t3 = time.perf_counter()
    report.read_s, report.assess_s, report.write_s = t1 - t0, t2 - t1, t3 - t2
    return report


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One row of the escalation queue.

    Attributes:
        conversation_id: The conversation.
        mention_id: Its mention.
        status: ``new``, ``open`` or ``pending``.
        priority: Its priority.
        escalated: Whether the rules escalated it.
        level: ``escalation_level`` (0-3); :data:`~listenwell.crm.sla.LEVELS` names them.
        assignee: Who has it, if anyone.
        source: The mention's source.
        author_handle: The mention's author.
        text: The mention's text.
        created_at: When the mention was posted.
        rules: The rules that fired.
        sla: The SLA clock at the queue's ``now``.
    """

    conversation_id: int
    mention_id: int
    status: str
    priority: str
    escalated: bool
    level: int
    assignee: str | None
    source: str
    author_handle: str | None
    text: str
    created_at: datetime
    rules: tuple[str, ...]
    sla: Assessment


def _rules_fired(escalation: Any) -> tuple[str, ...]:
    if not isinstance(escalation, dict):
        return ()
    rules = escalation.get("rules")
    return tuple(str(r) for r in rules) if isinstance(rules, list) else ()


def _clock_of(r: Any, spells: Sequence[Spell]) -> Clock:
    state = r.escalation.get("sla") if isinstance(r.escalation, dict) else None
    return _clock_from(
        status=r.status,
        priority=r.priority,
        level=r.escalation_level,
        opened_at=r.opened_at,
        first_response_at=r.first_response_at,
        pending_since=r.pending_since,
        paused_s=r.paused_s,
        reminded_at=r.reminded_at,
        state=state if isinstance(state, dict) else None,
        spells=spells,
    )


_RANK = {p: i for i, p in enumerate(PRIORITIES)}


def escalation_queue(
    conn: Connection | Engine,
    policy: SlaPolicy,
    now: datetime,
    *,
    everything: bool = False,
    limit: int | None = None,
) -> list[QueueItem]:
    """Open escalated or upgraded conversations, most urgent first, then least SLA time left.

    Args:
        conn: A connection or an engine.
        policy: The SLA policy in force (for the time left).
        now: The moment the time left is measured at.
        everything: Every open conversation, not only escalated or upgraded ones.
        limit: At most this many rows.

    Returns:
        Rows ordered by priority (urgent first), then escalation level (highest first),
        then business time left (overdue first; a paused clock counts its time left).
    """
    c, m = _conversations, _mentions
    stmt = (
        select(
            c.c.id,
            c.c.mention_id,
            c.c.status,
            c.c.priority,
            c.c.escalated,
            c.c.escalation_level,
            c.c.assignee,
            c.c.escalation,
            c.c.opened_at,
            c.c.first_response_at,
            c.c.pending_since,
            c.c.paused_s,
            c.c.reminded_at,
            m.c.source,
            m.c.author_handle,
            m.c.text,
            m.c.created_at,
        )
        .join(m, m.c.id == c.c.mention_id)
        .where(c.c.status.in_(OPEN_STATUSES))
    )
    if not everything:
        stmt = stmt.where((c.c.escalated.is_(True)) | (c.c.escalation_level > 0))
    with using(conn) as cx:
        rows = cx.execute(stmt).all()
        spells = pending_spells(cx, [int(r.id) for r in rows if r.paused_s])
    items = [
        QueueItem(
            conversation_id=int(r.id),
            mention_id=int(r.mention_id),
            status=r.status,
            priority=r.priority,
            escalated=bool(r.escalated),
            level=int(r.escalation_level or 0),
            assignee=r.assignee,
            source=r.source,
            author_handle=r.author_handle,
            text=r.text,
            created_at=r.created_at,
            rules=_rules_fired(r.escalation),
            sla=assess(policy, _clock_of(r, spells.get(int(r.id), ())), now),
        )
        for r in rows
    ]
    items.sort(
        key=lambda i: (-_RANK.get(i.priority, 1), -i.level, i.sla.remaining_s, i.conversation_id)
    )
    return items if limit is None else items[:limit]


@dataclass(frozen=True, slots=True)
class EscalationEvent:
    """One step of a conversation's escalation history."""

    id: int
    conversation_id: int
    at: datetime
    kind: str
    from_level: int | None
    to_level: int | None
    priority: str | None
    actor: str
    detail: dict[str, Any] | None


def escalation_history(conn: Connection | Engine, conversation_id: int) -> list[EscalationEvent]:
    """A conversation's escalation events, oldest first."""
    e = _events
    with using(conn) as cx:
        rows = cx.execute(
            select(e).where(e.c.conversation_id == conversation_id).order_by(e.c.at, e.c.id)
        ).all()
    return [
        EscalationEvent(
            id=int(r.id),
            conversation_id=int(r.conversation_id),
            at=r.at,
            kind=r.kind,
            from_level=r.from_level,
            to_level=r.to_level,
            priority=r.priority,
            actor=r.actor,
            detail=r.detail if isinstance(r.detail, dict) else None,
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class ConversationEscalation:
    """A conversation's escalation fields, its mention, and its SLA clock."""

    conversation_id: int
    mention_id: int
    status: str
    priority: str
    escalated: bool
    level: int
    rule_version: int | None
    escalation: dict[str, Any]
    source: str
    author_handle: str | None
    text: str
    clock: Clock


def conversation_escalation(
    conn: Connection | Engine, conversation_id: int
) -> ConversationEscalation:
    """One conversation's escalation fields and clock.

    Raises:
        NotFoundError: No such conversation.
    """
    c, m = _conversations, _mentions
    with using(conn) as cx:
        r = cx.execute(
            select(c, m.c.source, m.c.author_handle, m.c.text)
            .join(m, m.c.id == c.c.mention_id)
            .where(c.c.id == conversation_id)
        ).first()
        if r is None:
            raise NotFoundError(f"no conversation {conversation_id}")
        spells = pending_spells(cx, [conversation_id]).get(conversation_id, [])
    return ConversationEscalation(
        conversation_id=int(r.id),
        mention_id=int(r.mention_id),
        status=r.status,
        priority=r.priority,
        escalated=bool(r.escalated),
        level=int(r.escalation_level or 0),
        rule_version=r.rule_version,
        escalation=r.escalation if isinstance(r.escalation, dict) else {},
        source=r.source,
        author_handle=r.author_handle,
        text=r.text,
        clock=_clock_of(r, spells),
    )


# --------------------------------------------------------------------------- the export


def escalation_columns(mention_id: ColumnElement[Any]) -> tuple[Any, Any]:
    """The export's ``escalated`` and ``priority`` for the outer query's mention.

    Two correlated scalar subqueries on ``conversations`` (unique on ``mention_id``, so
    each is one index lookup); NULL for a mention without a conversation. Use them in place
    of ``literal(None)`` in ``store.queries``::

        escalated, priority = escalation_columns(M.c.id)
        ... escalated.label("escalated"), priority.label("priority") ...
    """
    c = _conversations
    escalated = select(c.c.escalated).where(c.c.mention_id == mention_id).scalar_subquery()
    priority = select(c.c.priority).where(c.c.mention_id == mention_id).scalar_subquery()
    return escalated, priority


def escalation_flags(
    conn: Connection | Engine, mention_ids: Iterable[int]
) -> dict[int, tuple[bool, str]]:
    """``{mention_id: (escalated, priority)}`` for the mentions that have a conversation."""
    c = _conversations
    out: dict[int, tuple[bool, str]] = {}
    with using(conn) as cx:
        for chunk in chunked(sorted(set(mention_ids)), _IN_CHUNK):
            for r in cx.execute(
                select(c.c.mention_id, c.c.escalated, c.c.priority).where(c.c.mention_id.in_(chunk))
            ):
                out[int(r.mention_id)] = (bool(r.escalated), r.priority)
    return out
