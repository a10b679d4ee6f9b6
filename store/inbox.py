"""The inbox: one conversation per mention, its status, assignee, tags, notes and replies.

Statuses and the transitions allowed between them (:data:`TRANSITIONS`)::

    new      -> open, pending, resolved, closed
    open     -> pending, resolved, closed
    pending  -> open, resolved, closed
    resolved -> open (reopen), closed
    closed   -> open (reopen)

Nothing goes back to ``new``: a conversation is new until someone acts on it.

**Optimistic locking.** Every change names the ``version`` it was made on
(``expected_version``) and bumps it by one. The write is ``UPDATE ... WHERE
id = ? AND version = ?`` and its row count is checked, in one transaction with
the audit-log entry, so of two agents working from the same version exactly
one wins and the other gets a :class:`ConflictError` that says who changed the
conversation, when, and the version it is at now. A change that changes
nothing (setting the status it already has, adding a tag it already has) is
not written and does not bump the version. System changes that agents can see
(a first reply sent turns ``new`` into ``open``) bump the version too; filling
in the customer link (:func:`link_customers`) does not, since no agent edits it.

**SLA clock fields**, kept here so that every status change keeps them right:

* ``first_response_at``: when the first reply was *sent* (:func:`mark_reply`).
* ``pending_since``: set on entering ``pending``, cleared on leaving it.
* ``paused_s``: on leaving ``pending``, the time spent there is added, in plain
  wall-clock seconds. An SLA that counts business hours converts it (or
  recomputes it from ``pending_since`` and the audit log).
* ``resolved_at``: set on entering ``resolved`` (or ``closed`` straight from an
  open state) and cleared on reopening.

**Replies** go ``draft -> sending -> sent | failed``; a failed reply can be sent
again (``failed -> sending``). A crash between the platform's answer and the
database write leaves a reply ``sending``: :func:`list_replies` with
``status="sending"`` finds them. Replies are never deleted.

Every change is written to the audit log (``audit_log``) with who, what and when.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    Table,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from .engine import using
from .errors import NotFoundError, StoreError, check_cursor_parts, check_text_inputs
from .links import effective_links
from .models import (
    ConversationNoteRow,
    ConversationRow,
    CustomerRow,
    MentionRow,
    ReplyRow,
    utcnow,
)
from .writes import record_audit

if TYPE_CHECKING:  # pandas is imported on first use
    import pandas as pd

__all__ = [
    "ACTIVE_STATUSES",
    "KEEP",
    "MAX_NOTE_CHARS",
    "PRIORITIES",
    "REPLY_LIMITS",
    "REPLY_STATUSES",
    "STATUSES",
    "TRANSITIONS",
    "ConflictError",
    "Conversation",
    "ConversationPage",
    "InvalidTransitionError",
    "Note",
    "Reply",
    "ReplyStateError",
    "ReplyTarget",
    "ThreadItem",
    "add_note",
    "claim_reply",
    "create_reply",
    "ensure_conversations",
    "get_conversation",
    "get_reply",
    "inbox_counts",
    "link_customers",
    "list_conversations",
    "list_notes",
    "list_replies",
    "mark_reply",
    "normalize_tag",
    "thread",
    "update_conversation",
]

STATUSES: Final = ("new", "open", "pending", "resolved", "closed")
"""Every conversation status, in workflow order."""

ACTIVE_STATUSES: Final = ("new", "open", "pending")
"""The statuses that still need work (what the inbox shows by default)."""

PRIORITIES: Final = ("urgent", "high", "normal", "low")
"""Priorities, most pressing first (the escalation rules set them)."""

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "new": frozenset({"open", "pending", "resolved", "closed"}),
    "open": frozenset({"pending", "resolved", "closed"}),
    "pending": frozenset({"open", "resolved", "closed"}),
    "resolved": frozenset({"open", "closed"}),
    "closed": frozenset({"open"}),
}
"""The statuses each status may change to."""

REPLY_STATUSES: Final = ("draft", "sending", "sent", "failed")
"""Every reply status."""

REPLY_LIMITS: Final[dict[str, int]] = {"x": 280, "reddit": 10_000}
"""The longest reply each platform takes, in characters (X counts by its own rules; a
reply of up to 280 characters without links is always within them)."""

MAX_NOTE_CHARS: Final = 10_000
_MAX_TAG_CHARS = 50
_MAX_NAME_CHARS = 200
_MAX_ERROR_CHARS = 1_000
_DEFAULT_REPLY_LIMIT = 20_000
_DEFAULT_TIMEOUT_S = 15.0
_THREAD_DEPTH = 20

_conv = cast(Table, ConversationRow.__table__)
_notes = cast(Table, ConversationNoteRow.__table__)
_replies = cast(Table, ReplyRow.__table__)
_mentions = cast(Table, MentionRow.__table__)
_customers = cast(Table, CustomerRow.__table__)


class _Keep(Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP
"""Leave a field as it is (the default of :func:`update_conversation`'s ``assignee``)."""


class ConflictError(StoreError):
    """Someone changed the conversation since the caller read it; reload and try again."""

    def __init__(
        self,
        conversation_id: int,
        expected_version: int,
        version: int,
        changed_by: str | None,
        changed_at: datetime | None,
    ) -> None:
        self.conversation_id = conversation_id
        self.expected_version = expected_version
        self.version = version
        self.changed_by = changed_by
        self.changed_at = changed_at
        super().__init__(
            f"conversation {conversation_id} was changed by {changed_by or 'someone'}"
            f"{_when(changed_at)} (now version {version}, you had version {expected_version}); "
            "reload and try again"
        )


class InvalidTransitionError(StoreError):
    """The status change is not one of the allowed transitions."""


class ReplyStateError(StoreError):
    """The reply is not in a state that allows this step (e.g. it was already sent)."""


def _when(at: datetime | None) -> str:
    if at is None:
        return ""
    at = at.astimezone(UTC)
    if at.date() == utcnow().date():
        return f" at {at:%H:%M} UTC"
    return f" at {at:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True, slots=True)
class Conversation:
    """One inbox item with its mention and, where linked, its customer.

    Attributes:
        id: The conversation's id (the case id).
        mention_id: The mention it is about.
        status: new, open, pending, resolved or closed.
        assignee: Who works on it, if anyone.
        tags: Its tags, normalised (lower case).
        priority: urgent, high, normal or low.
        escalated: Whether the escalation rules raised it.
        escalation_level: 0 none, 1 raised priority, 2 supervisor, 3 manager.
        version: The optimistic lock: pass it back as ``expected_version``.
        paused_s: Wall-clock seconds spent ``pending`` so far (closed periods only).
        source: The mention's source (``reddit``, ``x``, ...).
        external_id: The mention's id on its platform.
        customer_pk: The linked customer's row id, if linked.
        customer_id: The linked customer's own id, if linked.
        customer_name: The linked customer's name, if known.
    """

    id: int
    mention_id: int
    status: str
    assignee: str | None
    tags: tuple[str, ...]
    priority: str
    escalated: bool
    escalation_level: int
    opened_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    pending_since: datetime | None
    paused_s: float
    version: int
    created_at: datetime
    updated_at: datetime
    updated_by: str | None
    source: str
    external_id: str
    author_handle: str | None
    author_name: str | None
    text: str
    url: str | None
    in_reply_to: str | None
    mentioned_at: datetime
    customer_pk: int | None
    customer_id: str | None
    customer_name: str | None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (times as ISO 8601 text, tags as a list)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class ConversationPage:
    """One page of :func:`list_conversations`.

    Attributes:
        items: The conversations of this page.
        next_after: Pass it as ``after`` for the next page; ``None`` on the last page.
    """

    items: list[Conversation]
    next_after: str | None

    def frame(self) -> pd.DataFrame:
        """The page as a DataFrame, one row per conversation (for the dashboard)."""
        import pandas as pd

        columns = list(Conversation.__slots__)
        return pd.DataFrame(
            [[getattr(c, name) for name in columns] for c in self.items], columns=columns
        )


@dataclass(frozen=True, slots=True)
class Note:
    """An internal note (never sent to the customer)."""

    id: int
    conversation_id: int
    author: str
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply: draft, sending, sent (with the platform's id) or failed (with the reason)."""

    id: int
    conversation_id: int
    body: str
    status: str
    error: str | None
    platform: str
    external_id: str | None
    template: str | None
    attempts: int
    actor: str
    created_at: datetime
    sent_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (times as ISO 8601 text)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """What a sender needs to post one reply, once :func:`claim_reply` marked it ``sending``.

    Attributes:
        reply_id: The reply.
        conversation_id: Its conversation.
        platform: Where it goes (the mention's source).
        body: The text to post.
        in_reply_to: The platform id of the mention answered.
        attempt: Which attempt this is (1 for the first).
    """

    reply_id: int
    conversation_id: int
    platform: str
    body: str
    in_reply_to: str
    attempt: int


@dataclass(frozen=True, slots=True)
class ThreadItem:
    """One entry of a conversation's thread, in time order.

    Attributes:
        kind: ``mention``, ``note`` or ``reply``.
        at: When it was written (a reply: when sent, else when drafted).
        author: Who wrote it (a handle, an agent).
        text: What it says.
        ref: The id of the mention, note or reply.
        relation: For mentions: ``this`` (the conversation's mention), ``parent`` (a
            post it answers, up the ``in_reply_to`` chain), ``earlier`` (the same
            author before) or ``later`` (the same author answering it or our replies
            afterwards). For replies: their status.
        detail: For a failed reply, the reason; else ``None``.
    """

    kind: str
    at: datetime
    author: str | None
    text: str
    ref: int
    relation: str | None = None
    detail: str | None = None


# -- helpers ---------------------------------------------------------------------------------


def _check_name(value: str, what: str) -> str:
    name = " ".join(str(value).split())
    if not name:
        raise ValueError(f"{what} must not be empty")
    if len(name) > _MAX_NAME_CHARS:
        raise ValueError(f"{what} is longer than {_MAX_NAME_CHARS} characters")
    return name


def normalize_tag(tag: str) -> str:
    """A tag as stored: trimmed, lower case; letters, digits and ``-_:/.`` only.

    Raises:
        ValueError: The tag is empty, too long or has other characters.
    """
    value = str(tag).strip().lower()
    if not value:
        raise ValueError("a tag must not be empty")
    if len(value) > _MAX_TAG_CHARS:
        raise ValueError(f"tag {tag!r} is longer than {_MAX_TAG_CHARS} characters")
    if not all(ch.isalnum() or ch in "-_:/." for ch in value):
        raise ValueError(f"tag {tag!r} may only have letters, digits and - _ : / .")
    return value


def _one_line(text: str, limit: int) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _insert_for(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _conversation_select() -> Select[Any]:
    return select(
        _conv.c.id,
        _conv.c.mention_id,
        _conv.c.status,
        _conv.c.assignee,
        _conv.c.tags,
        _conv.c.priority,
        _conv.c.escalated,
        _conv.c.escalation_level,
        _conv.c.opened_at,
        _conv.c.first_response_at,
        _conv.c.resolved_at,
        _conv.c.pending_since,
        _conv.c.paused_s,
        _conv.c.version,
        _conv.c.created_at,
        _conv.c.updated_at,
        _conv.c.updated_by,
        _mentions.c.source,
        _mentions.c.external_id,
        _mentions.c.author_handle,
        _mentions.c.author_name,
        _mentions.c.text,
        _mentions.c.url,
        _mentions.c.in_reply_to,
        _mentions.c.created_at.label("mentioned_at"),
        _conv.c.customer_pk,
        _customers.c.customer_id,
        _customers.c.name.label("customer_name"),
    ).select_from(
        _conv.join(_mentions, _mentions.c.id == _conv.c.mention_id).outerjoin(
            _customers, _customers.c.id == _conv.c.customer_pk
        )
    )


def _to_conversation(r: Row[Any]) -> Conversation:
    tags = r.tags if isinstance(r.tags, list) else []
    return Conversation(
        id=int(r.id),
        mention_id=int(r.mention_id),
        status=r.status,
        assignee=r.assignee,
        tags=tuple(str(t) for t in tags),
        priority=r.priority,
        escalated=bool(r.escalated),
        escalation_level=int(r.escalation_level or 0),
        opened_at=r.opened_at,
        first_response_at=r.first_response_at,
        resolved_at=r.resolved_at,
        pending_since=r.pending_since,
        paused_s=float(r.paused_s or 0.0),
        version=int(r.version),
        created_at=r.created_at,
        updated_at=r.updated_at,
        updated_by=r.updated_by,
        source=r.source,
        external_id=r.external_id,
        author_handle=r.author_handle,
        author_name=r.author_name,
        text=r.text,
        url=r.url,
        in_reply_to=r.in_reply_to,
        mentioned_at=r.mentioned_at,
        customer_pk=r.customer_pk,
        customer_id=r.customer_id,
        customer_name=r.customer_name,
    )


def _to_reply(r: Row[Any]) -> Reply:
    return Reply(
        id=int(r.id),
        conversation_id=int(r.conversation_id),
        body=r.body,
        status=r.status,
        error=r.error,
        platform=r.platform,
        external_id=r.external_id,
        template=r.template,
        attempts=int(r.attempts or 0),
        actor=r.actor,
        created_at=r.created_at,
        sent_at=r.sent_at,
    )


def _to_note(r: Row[Any]) -> Note:
    return Note(
        id=int(r.id),
        conversation_id=int(r.conversation_id),
        author=r.author,
        body=r.body,
        created_at=r.created_at,
    )


# -- creating conversations ------------------------------------------------------------------


def _customer_pks(conn: Connection, mention_ids: Sequence[int]) -> dict[int, int]:
    """mention id -> customer row id, where the mention's link in force is strong or confirmed."""
    links = effective_links(conn, mention_ids)
    if not links:
        return {}
    wanted = sorted({link.customer_id for link in links.values()})
    pks = dict(
        conn.execute(
            select(_customers.c.customer_id, _customers.c.id).where(
                _customers.c.customer_id.in_(wanted)
            )
        ).all()
    )
    return {
        mid: int(pks[link.customer_id]) for mid, link in links.items() if link.customer_id in pks
    }


def ensure_conversations(
    engine: Engine,
    *,
    batch_size: int = 1000,
    on_batch: Callable[[int, int], None] | None = None,
) -> int:
    """Create the conversation of every mention that has none; idempotent.

    Mentions are read in id order, ``batch_size`` at a time (keyset pagination),
    and each batch is written in its own transaction with one audit-log entry,
    so an interrupted run keeps what it wrote and a re-run carries on. A new
    conversation is ``new`` with ``normal`` priority, opened at the mention's
    time, and linked to a customer where the mention's link in force is a
    strong linker result or an agent's confirmation (see
    :func:`listenwell.store.links.effective_links`); otherwise its customer is
    empty until :func:`link_customers` fills it.

    Args:
        engine: The database.
        batch_size: Mentions per transaction.
        on_batch: Called after each batch with the mentions looked at and the
            conversations created in it (progress bars).

    Returns:
        How many conversations were created.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    created = 0
    last = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(_mentions.c.id, _mentions.c.created_at)
                .select_from(_mentions.outerjoin(_conv, _conv.c.mention_id == _mentions.c.id))
                .where(_conv.c.id.is_(None), _mentions.c.id > last)
                .order_by(_mentions.c.id)
                .limit(batch_size)
            ).all()
            if not rows:
                return created
            last = int(rows[-1].id)
            pks = _customer_pks(conn, [int(r.id) for r in rows])
            now = utcnow()
            values = [
                {
                    "mention_id": r.id,
                    "customer_pk": pks.get(int(r.id)),
                    "status": "new",
                    "assignee": None,
                    "tags": [],
                    "priority": "normal",
                    "escalated": False,
                    "escalation_level": 0,
                    "opened_at": r.created_at,
                    "paused_s": 0.0,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                    "updated_by": "system",
                }
                for r in rows
            ]
            stmt = (
                _insert_for(conn, _conv)
                .on_conflict_do_nothing(index_elements=["mention_id"])
                .returning(_conv.c.id)
            )
            new = len(conn.execute(stmt, values).all())
            if new:
                record_audit(
                    conn,
                    "system",
                    "conversation.create",
                    "conversation",
                    None,
                    {"created": new, "mention_ids": [int(rows[0].id), last]},
                )
            created += new
        if on_batch is not None:
            on_batch(len(rows), new)


def link_customers(engine: Engine, *, batch_size: int = 1000) -> int:
    """Fill in the customer of conversations created before their mention was linked.

    Only conversations without a customer are looked at; the link is the
    mention's link in force, as for :func:`ensure_conversations`. The version
    is not bumped (no agent edits the link here), but each batch is audited.

    Args:
        engine: The database.
        batch_size: Conversations per transaction.

    Returns:
        How many conversations got a customer.
    """
    linked = 0
    last = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(_conv.c.id, _conv.c.mention_id)
                .where(_conv.c.customer_pk.is_(None), _conv.c.id > last)
                .order_by(_conv.c.id)
                .limit(batch_size)
            ).all()
            if not rows:
                return linked
            last = int(rows[-1].id)
            pks = _customer_pks(conn, [int(r.mention_id) for r in rows])
            done: list[int] = []
            for r in rows:
                pk = pks.get(int(r.mention_id))
                if pk is not None:
                    conn.execute(
                        update(_conv)
                        .where(_conv.c.id == r.id, _conv.c.customer_pk.is_(None))
                        .values(customer_pk=pk)
                    )
                    done.append(int(r.id))
            if done:
                record_audit(
                    conn,
                    "system",
                    "conversation.link",
                    "conversation",
                    None,
                    {"linked": len(done), "conversation_ids": done[:100]},
                )
            linked += len(done)


# -- reading ---------------------------------------------------------------------------------


def get_conversation(conn: Connection | Engine, conv_id: int) -> Conversation:
    """One conversation with its mention and customer.

    Raises:
        NotFoundError: There is no conversation ``conv_id``.
    """
    with using(conn) as c:
        row = c.execute(_conversation_select().where(_conv.c.id == conv_id)).first()
    if row is None:
        raise NotFoundError(f"no conversation with id {conv_id}")
    return _to_conversation(row)


def _rank() -> ColumnElement[int]:
    return case(
        {p: i for i, p in enumerate(PRIORITIES)}, value=_conv.c.priority, else_=len(PRIORITIES)
    )


def _encode_after(order: str, c: Conversation) -> str:
    if order == "priority":
        rank = PRIORITIES.index(c.priority) if c.priority in PRIORITIES else len(PRIORITIES)
        return f"p|{rank}|{c.opened_at.isoformat()}|{c.id}"
    return f"n|{c.opened_at.isoformat()}|{c.id}"


def _decode_after(order: str, after: str) -> tuple[int | None, datetime, int]:
    parts = after.split("|")
    try:
        if order == "priority" and len(parts) == 4 and parts[0] == "p":
            rank, at, ident = int(parts[1]), datetime.fromisoformat(parts[2]), int(parts[3])
            check_cursor_parts(at, ident)
            if not 0 <= rank <= len(PRIORITIES):
                raise ValueError(rank)
            return rank, at, ident
        if order == "newest" and len(parts) == 3 and parts[0] == "n":
            at, ident = datetime.fromisoformat(parts[1]), int(parts[2])
            check_cursor_parts(at, ident)
            return None, at, ident
    except ValueError:
        pass
    raise ValueError(f"invalid page cursor {after!r} for order {order!r}")


def _tag_filter(dialect: str, tag: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return _conv.c.tags.op("@>")(literal(json.dumps([tag])).cast(JSONB))
    each = func.json_each(_conv.c.tags).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == tag))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_conversations(
    conn: Connection | Engine,
    *,
    status: str | Sequence[str] | None = None,
    assignee: str | None = None,
    tag: str | None = None,
    escalated: bool | None = None,
    priority: str | Sequence[str] | None = None,
    search: str | None = None,
    limit: int = 50,
    after: str | None = None,
    order: str = "priority",
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> ConversationPage:
    """One page of conversations, filtered, by keyset pagination.

    ``order="priority"`` puts the most pressing first (urgent, high, normal, low)
    and, within a priority, the longest waiting first; ``order="newest"`` puts
    the newest mentions first. Pages never use OFFSET, so page 1000 is as fast
    as page 1.

    The priority order is read as one index range per priority, most pressing
    first, starting at the cursor's, and stops as soon as the page is full
    (:func:`_priority_rows`): ``(priority, opened_at)``, or ``(status, priority,
    opened_at)`` once per status when statuses are filtered. Newest first reads
    the ``(opened_at)`` index backwards.

    Args:
        conn: A connection, or an engine (then the query runs under ``timeout_s``).
        status: Only these statuses (one or several); ``None`` means all.
        assignee: Only conversations assigned to this agent; ``""`` means unassigned.
        tag: Only conversations with this tag.
        escalated: Only escalated (``True``) or not escalated (``False``) ones.
        priority: Only these priorities.
        search: Only those whose mention text or author handle contains this
            (case-insensitive; a bound parameter, never SQL).
        limit: At most this many (1 to 1000).
        after: The previous page's ``next_after``.
        order: ``priority`` or ``newest``.
        timeout_s: Statement time limit when given an engine.

    Returns:
        The page and the cursor of the next one.

    Raises:
        ValueError: A filter value is unknown, or ``after`` is not a cursor of this order.
        QueryTimeoutError: The query ran past ``timeout_s``.
    """
    check_text_inputs(assignee=assignee, tag=tag, search=search)
    if order not in ("priority", "newest"):
        raise ValueError("order must be 'priority' or 'newest'")
    if not 1 <= limit <= 1000:
        raise ValueError("limit must be between 1 and 1000")
    statuses = (status,) if isinstance(status, str) else tuple(status or ())
    for s in statuses:
        if s not in STATUSES:
            raise ValueError(f"unknown status {s!r} (use {', '.join(STATUSES)})")
    priorities = (priority,) if isinstance(priority, str) else tuple(priority or ())
    for p in priorities:
        if p not in PRIORITIES:
            raise ValueError(f"unknown priority {p!r} (use {', '.join(PRIORITIES)})")
    conds: list[ColumnElement[bool]] = []
    if assignee is not None:
        name = assignee.strip()
        conds.append(_conv.c.assignee.is_(None) if not name else _conv.c.assignee == name)
    if escalated is not None:
        conds.append(_conv.c.escalated.is_(escalated))
    if search:
        pattern = f"%{_escape_like(search)}%"
        conds.append(
            or_(
                _mentions.c.text.ilike(pattern, escape="\\"),
                _mentions.c.author_handle.ilike(pattern, escape="\\"),
            )
        )
    cursor = _decode_after(order, after) if after else None

    def run(c: Connection) -> list[Row[Any]]:
        where = [*conds, _tag_filter(c.dialect.name, normalize_tag(tag))] if tag else conds
        if order == "priority":
            return _priority_rows(c, where, statuses, priorities, cursor, limit + 1)
        keys: list[ColumnElement[Any]] = [_conv.c.opened_at, _conv.c.id]
        where = list(where)
        if statuses:
            where.append(_conv.c.status.in_(statuses))
        if priorities:
            where.append(_conv.c.priority.in_(priorities))
        if cursor is not None:
            where.append(_after(keys, cursor[1:], descending=True))
        stmt = (
            _conversation_select()
            .where(*where)
            .order_by(*(k.desc() for k in keys))
            .limit(limit + 1)
        )
        return list(c.execute(stmt).all())

    with using(conn, timeout_s) as c:
        rows = run(c)
    items = [_to_conversation(r) for r in rows[:limit]]
    next_after = _encode_after(order, items[-1]) if len(rows) > limit and items else None
    return ConversationPage(items, next_after)


_T = TypeVar("_T")

_RANGE_WINDOW = 2000
"""Index entries of one priority's range that :func:`_priority_rows` reads per query when
other filters apply; a range that yields too few matches within it is left to one sorted query."""


def _inline(value: _T) -> BindParameter[_T]:
    """``value`` written into the SQL text rather than bound: the priority, status and
    limits that tell :func:`_priority_rows`' statements apart. psycopg prepares a
    statement it has run five times on a connection, and PostgreSQL then plans it
    once for any values; with these bound, a search over the active statuses at
    1,000,000 mentions took 1.6-3.5 s from the sixth call on instead of 80-100 ms.
    They are our own constants and integers, never user input."""
    return literal(value, literal_execute=True)


def _priority_rows(
    c: Connection,
    conds: Sequence[ColumnElement[bool]],
    statuses: Sequence[str],
    priorities: Sequence[str],
    cursor: tuple[int | None, datetime, int] | None,
    want: int,
) -> list[Row[Any]]:
    """The first ``want`` conversations in priority order (:func:`_rank`, then
    ``opened_at``, then ``id``) that pass ``conds``, after ``cursor``.

    The same rows as ``ORDER BY`` :func:`_rank` (a ``CASE``, which no index can
    serve, so the database would join and sort every conversation), read as
    index ranges instead: one per priority, most pressing first, each in
    ``(opened_at, id)`` order with ``LIMIT`` what the page still lacks,
    stopping once the page is full. The cursor's priority is read from just
    after its ``(opened_at, id)``, those after it whole, those before it not at
    all. With a status filter each priority is read once per status (the
    ``(status, priority, opened_at)`` index; otherwise ``(priority,
    opened_at)``) and the parts merged by ``(opened_at, id)``: Python orders
    these timestamps as both databases do (PostgreSQL ``timestamptz``,
    SQLite's fixed-width UTC text).

    Filters the index does not cover (``conds``: assignee, escalation, search,
    tag) may match few rows of a range, and walking a long range row by row
    costs more than one scan and sort. So with ``conds`` a range is read
    :data:`_RANGE_WINDOW` index entries at most; where that leaves the page
    short and the range goes on, the rest of the page (from this priority on)
    is one query ordered by :func:`_rank` after all, as before. A priority
    outside :data:`PRIORITIES` (``_rank`` ``len(PRIORITIES)``) cannot be
    stored: the column is ``NOT NULL`` under the ``priority_known`` check.
    """
    statuses = tuple(dict.fromkeys(statuses))
    first = 0 if cursor is None else cursor[0] or 0
    ranks = [
        i for i, p in enumerate(PRIORITIES) if i >= first and (not priorities or p in priorities)
    ]
    order = (_conv.c.opened_at, _conv.c.id)
    rows: list[Row[Any]] = []
    for rank in ranks:
        span: list[ColumnElement[bool]] = [_conv.c.priority == _inline(PRIORITIES[rank])]
        if cursor is not None and rank == cursor[0]:
            at, last = cursor[1], cursor[2]
            # The leading ``>=`` bounds the index range; the OR settles ties on opened_at.
            span += [
                _conv.c.opened_at >= at,
                or_(_conv.c.opened_at > at, and_(_conv.c.opened_at == at, _conv.c.id > last)),
            ]
        need = want - len(rows)
        parts: list[Row[Any]] = []
        for status in statuses or (None,):
            where = span if status is None else [*span, _conv.c.status == _inline(status)]
            if not conds:
                stmt = _conversation_select().where(*where).order_by(*order).limit(_inline(need))
                parts.extend(c.execute(stmt).all())
                continue
            window = (
                select(*order).where(*where).order_by(*order).limit(_inline(_RANGE_WINDOW))
            ).subquery()
            stmt = (
                _conversation_select()
                .join(window, window.c.id == _conv.c.id)
                .where(*conds)
                .order_by(window.c.opened_at, window.c.id)
                .limit(_inline(need))
            )
            found = c.execute(stmt).all()
            parts.extend(found)
            beyond = select(_conv.c.id).where(*where).order_by(*order)
            beyond = beyond.offset(_inline(_RANGE_WINDOW))
            if len(found) < need and c.execute(beyond.limit(1)).first() is not None:
                return rows + _rank_sorted(c, conds, statuses, priorities, cursor, rank, need)
        if len(statuses) > 1:
            parts.sort(key=lambda r: (r.opened_at, r.id))
        rows.extend(parts[:need])
        if len(rows) >= want:
            break
    return rows


def _rank_sorted(
    c: Connection,
    conds: Sequence[ColumnElement[bool]],
    statuses: Sequence[str],
    priorities: Sequence[str],
    cursor: tuple[int | None, datetime, int] | None,
    rank: int,
    limit: int,
) -> list[Row[Any]]:
    """The first ``limit`` conversations from priority ``rank`` on, by one query ordered
    by :func:`_rank`, ``opened_at`` and ``id``: a scan and sort, for sparse filters.

    The earlier priorities are left out by the rank itself, not by a list of the
    later ones, so that SQLite scans the table rather than walking an index.
    """
    where = list(conds)
    if statuses:
        where.append(_conv.c.status.in_(statuses))
    if priorities:
        where.append(_conv.c.priority.in_(priorities))
    keys: list[ColumnElement[Any]] = [_rank(), _conv.c.opened_at, _conv.c.id]
    if cursor is not None and cursor[0] == rank:
        where.append(_after(keys, cursor, descending=False))
    elif rank > 0:
        where.append(keys[0] >= rank)
    stmt = _conversation_select().where(*where).order_by(*keys).limit(limit)
    return list(c.execute(stmt).all())


def _after(
    keys: Sequence[ColumnElement[Any]], values: Sequence[Any], *, descending: bool
) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys`` (the keyset condition).

    Spelled out as ``k1 > v1 OR (k1 = v1 AND k2 > v2) ...`` rather than a row-value
    comparison, so each value is bound with its column's type (UTC timestamps).
    """
    terms: list[ColumnElement[bool]] = []
    for i, (key, value) in enumerate(zip(keys, values, strict=True)):
        equal = [k == v for k, v in zip(keys[:i], values[:i], strict=True)]
        beyond = key < value if descending else key > value
        terms.append(and_(*equal, beyond))
    return or_(*terms)


def inbox_counts(
    conn: Connection | Engine, *, timeout_s: float = _DEFAULT_TIMEOUT_S
) -> dict[str, int]:
    """How many conversations are in each status (every status is present, zero or more)."""
    stmt = select(_conv.c.status, func.count()).group_by(_conv.c.status)
    with using(conn, timeout_s) as c:
        rows = c.execute(stmt).all()
    found = {str(r[0]): int(r[1]) for r in rows}
    return {s: int(found.get(s, 0)) for s in STATUSES}


# -- changing ---------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _plan(
    row: Row[Any],
    status: str | None,
    assignee: str | None | _Keep,
    add: Sequence[str],
    remove: Sequence[str],
    now: datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The column values to write and the audit description of the change."""
    values: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    if status is not None and status != row.status:
        allowed = TRANSITIONS[row.status]
        if status not in allowed:
            raise InvalidTransitionError(
                f"conversation {row.id} is {row.status}: it can become "
                f"{' or '.join(s for s in STATUSES if s in allowed)}, not {status}"
            )
        values["status"] = status
        changes["status"] = [row.status, status]
        if row.status == "pending":
            since = row.pending_since
            elapsed = max(0.0, (now - since).total_seconds()) if since is not None else 0.0
            values["pending_since"] = None
            values["paused_s"] = float(row.paused_s or 0.0) + elapsed
            changes["paused_s"] = [float(row.paused_s or 0.0), values["paused_s"]]
        if status == "pending":
            values["pending_since"] = now
            changes["pending_since"] = _iso(now)
        if status in ("resolved", "closed") and row.resolved_at is None:
            values["resolved_at"] = now
            changes["resolved_at"] = _iso(now)
        elif status in ("open", "pending") and row.resolved_at is not None:
            values["resolved_at"] = None  # reopened
            changes["resolved_at"] = None
    if assignee is not KEEP and assignee != row.assignee:
        values["assignee"] = assignee
        changes["assignee"] = [row.assignee, assignee]
    tags = [str(t) for t in (row.tags if isinstance(row.tags, list) else [])]
    added = [t for t in dict.fromkeys(add) if t not in tags and t not in remove]
    removed = [t for t in dict.fromkeys(remove) if t in tags]
    if added or removed:
        values["tags"] = [t for t in tags if t not in removed] + added
        changes["tags"] = {"added": added, "removed": removed}
    return values, changes


def _conflict(conn: Connection, conv_id: int, expected: int) -> ConflictError:
    row = conn.execute(
        select(_conv.c.version, _conv.c.updated_by, _conv.c.updated_at).where(_conv.c.id == conv_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no conversation with id {conv_id}")
    return ConflictError(conv_id, expected, int(row.version), row.updated_by, row.updated_at)


def update_conversation(
    engine: Engine,
    conv_id: int,
    *,
    expected_version: int,
    actor: str,
    status: str | None = None,
    assignee: str | None | _Keep = KEEP,
    add_tags: Sequence[str] = (),
    remove_tags: Sequence[str] = (),
    now: datetime | None = None,
) -> Conversation:
    """Change a conversation's status, assignee or tags, if nobody changed it meanwhile.

    The update, the SLA clock fields that go with a status change (see the
    module docstring) and the audit-log entry (``conversation.update``, with
    each field's old and new value) are written in one transaction, as
    ``UPDATE ... WHERE id = ? AND version = ?``. A change that changes nothing
    writes nothing and keeps the version.

    Args:
        engine: The database.
        conv_id: The conversation.
        expected_version: The version the caller's view was read at.
        actor: Who makes the change.
        status: The new status, or ``None`` to keep it.
        assignee: The new assignee; ``None`` or ``""`` unassigns; :data:`KEEP` keeps it.
        add_tags: Tags to add (normalised with :func:`normalize_tag`).
        remove_tags: Tags to remove; removing a tag it does not have is no change.
        now: The time of the change (tests); default now.

    Returns:
        The conversation as it is now.

    Raises:
        ConflictError: The conversation is no longer at ``expected_version``.
        InvalidTransitionError: ``status`` cannot follow the current status.
        NotFoundError: There is no conversation ``conv_id``.
        ValueError: An unknown status, an empty actor, or an invalid tag.
    """
    actor = _check_name(actor, "actor")
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r} (use {', '.join(STATUSES)})")
    if assignee is not KEEP:
        assignee = _check_name(assignee, "assignee") if assignee and assignee.strip() else None
    add = [normalize_tag(t) for t in add_tags]
    remove = [normalize_tag(t) for t in remove_tags]
    now = now or utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(_conv).where(_conv.c.id == conv_id)).first()
        if row is None:
            raise NotFoundError(f"no conversation with id {conv_id}")
        if int(row.version) != expected_version:
            raise ConflictError(
                conv_id, expected_version, int(row.version), row.updated_by, row.updated_at
            )
        values, changes = _plan(row, status, assignee, add, remove, now)
        if values:
            version = expected_version + 1
            result = conn.execute(
                update(_conv)
                .where(_conv.c.id == conv_id, _conv.c.version == expected_version)
                .values(**values, version=version, updated_at=now, updated_by=actor)
            )
            if result.rowcount != 1:  # changed between our read and our write
                raise _conflict(conn, conv_id, expected_version)
            record_audit(
                conn,
                actor,
                "conversation.update",
                "conversation",
                str(conv_id),
                {"changes": changes, "version": version},
            )
        return get_conversation(conn, conv_id)


def add_note(engine: Engine, conv_id: int, *, author: str, body: str) -> Note:
    """Add an internal note; audited as ``conversation.note``. Notes do not bump the version.

    Raises:
        NotFoundError: There is no conversation ``conv_id``.
        ValueError: The author or body is empty, or the body is too long.
    """
    author = _check_name(author, "author")
    text = body.strip()
    if not text:
        raise ValueError("a note must not be empty")
    if len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"a note is at most {MAX_NOTE_CHARS:,} characters")
    now = utcnow()
    with engine.begin() as conn:
        if conn.execute(select(_conv.c.id).where(_conv.c.id == conv_id)).first() is None:
            raise NotFoundError(f"no conversation with id {conv_id}")
        note_id = conn.execute(
            insert(_notes)
            .values(conversation_id=conv_id, author=author, body=text, created_at=now)
            .returning(_notes.c.id)
        ).scalar_one()
        record_audit(
            conn,
            author,
            "conversation.note",
            "conversation",
            str(conv_id),
            {"note_id": int(note_id), "chars": len(text)},
        )
    return Note(int(note_id), conv_id, author, text, now)


def list_notes(conn: Connection | Engine, conv_id: int) -> list[Note]:
    """A conversation's notes, oldest first."""
    with using(conn) as c:
        rows = c.execute(
            select(_notes).where(_notes.c.conversation_id == conv_id).order_by(_notes.c.id)
        ).all()
    return [_to_note(r) for r in rows]


# -- the thread -------------------------------------------------------------------------------

_MENTION_COLS = (
    _mentions.c.id,
    _mentions.c.source,
    _mentions.c.external_id,
    _mentions.c.created_at,
    _mentions.c.author_handle,
    _mentions.c.text,
    _mentions.c.in_reply_to,
)


def thread(conn: Connection | Engine, conv_id: int, *, earlier: int = 20) -> list[ThreadItem]:
    """Everything about a conversation in time order: mentions, notes and replies.

    The mentions are the conversation's own, the posts it answers (up its
    ``in_reply_to`` chain, same source), the same author's earlier mentions in
    that source (the newest ``earlier`` of them), and the same author's later
    mentions that answer it or one of our sent replies.

    Raises:
        NotFoundError: There is no conversation ``conv_id``.
    """
    with using(conn) as c:
        conv = get_conversation(c, conv_id)
        seen: dict[int, tuple[Any, str]] = {}
        root = c.execute(select(*_MENTION_COLS).where(_mentions.c.id == conv.mention_id)).one()
        seen[int(root.id)] = (root, "this")
        parent, depth = root.in_reply_to, 0
        while parent and depth < _THREAD_DEPTH:
            up = c.execute(
                select(*_MENTION_COLS).where(
                    _mentions.c.source == root.source, _mentions.c.external_id == parent
                )
            ).first()
            if up is None or int(up.id) in seen:
                break
            seen[int(up.id)] = (up, "parent")
            parent, depth = up.in_reply_to, depth + 1
        replies = c.execute(
            select(_replies).where(_replies.c.conversation_id == conv_id).order_by(_replies.c.id)
        ).all()
        if root.author_handle:
            same_author = and_(
                _mentions.c.source == root.source,
                _mentions.c.author_handle == root.author_handle,
                _mentions.c.id != root.id,
            )
            for r in c.execute(
                select(*_MENTION_COLS)
                .where(same_author, _mentions.c.created_at <= root.created_at)
                .order_by(_mentions.c.created_at.desc(), _mentions.c.id.desc())
                .limit(earlier)
            ):
                seen.setdefault(int(r.id), (r, "earlier"))
            answered = [root.external_id] + [r.external_id for r in replies if r.external_id]
            for r in c.execute(
                select(*_MENTION_COLS)
                .where(
                    same_author,
                    _mentions.c.created_at >= root.created_at,
                    _mentions.c.in_reply_to.in_(answered),
                )
                .order_by(_mentions.c.created_at, _mentions.c.id)
                .limit(earlier)
            ):
                seen.setdefault(int(r.id), (r, "later"))
        notes = list_notes(c, conv_id)
    items = [
        ThreadItem("mention", r.created_at, r.author_handle, r.text, int(r.id), relation)
        for r, relation in seen.values()
    ]
    items += [ThreadItem("note", n.created_at, n.author, n.body, n.id) for n in notes]
    items += [
        ThreadItem(
            "reply",
            r.sent_at or r.created_at,
            r.actor,
            r.body,
            int(r.id),
            r.status,
            r.error if r.status == "failed" else None,
        )
        for r in replies
    ]
    order = {"mention": 0, "reply": 1, "note": 2}
    items.sort(key=lambda i: (i.at, order[i.kind], i.ref))
    return items


# -- replies ----------------------------------------------------------------------------------


def create_reply(
    engine: Engine,
    conv_id: int,
    *,
    body: str,
    actor: str,
    template: str | None = None,
) -> Reply:
    """Save a reply draft to a conversation (audited as ``reply.draft``).

    The platform is the mention's source. Drafting is possible for any source;
    sending only where a sender exists (``listenwell.crm.replies``).

    Args:
        engine: The database.
        conv_id: The conversation answered.
        body: The text, verbatim (it is not a template here).
        actor: Who writes it.
        template: The canned reply it was made from, if any (kept for reports).

    Raises:
        NotFoundError: There is no conversation ``conv_id``.
        ValueError: An empty or too long body, or an empty actor.
    """
    actor = _check_name(actor, "actor")
    text = body.strip()
    if not text:
        raise ValueError("a reply must not be empty")
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(
            select(_mentions.c.source)
            .select_from(_conv.join(_mentions, _mentions.c.id == _conv.c.mention_id))
            .where(_conv.c.id == conv_id)
        ).first()
        if row is None:
            raise NotFoundError(f"no conversation with id {conv_id}")
        platform = str(row.source)
        limit = REPLY_LIMITS.get(platform, _DEFAULT_REPLY_LIMIT)
        if len(text) > limit:
            raise ValueError(
                f"a reply on {platform} is at most {limit:,} characters; this one has {len(text):,}"
            )
        reply_id = conn.execute(
            insert(_replies)
            .values(
                conversation_id=conv_id,
                body=text,
                status="draft",
                platform=platform,
                template=template,
                attempts=0,
                actor=actor,
                created_at=now,
            )
            .returning(_replies.c.id)
        ).scalar_one()
        record_audit(
            conn,
            actor,
            "reply.draft",
            "reply",
            str(reply_id),
            {"conversation_id": conv_id, "platform": platform, "template": template},
        )
    return Reply(
        int(reply_id), conv_id, text, "draft", None, platform, None, template, 0, actor, now, None
    )


def get_reply(conn: Connection | Engine, reply_id: int) -> Reply:
    """One reply.

    Raises:
        NotFoundError: There is no reply ``reply_id``.
    """
    with using(conn) as c:
        row = c.execute(select(_replies).where(_replies.c.id == reply_id)).first()
    if row is None:
        raise NotFoundError(f"no reply with id {reply_id}")
    return _to_reply(row)


def list_replies(
    conn: Connection | Engine,
    *,
    status: str | Sequence[str] | None = None,
    conversation_id: int | None = None,
    limit: int = 100,
) -> list[Reply]:
    """Replies, newest first: all, or those of some statuses or of one conversation.

    ``status="sending"`` lists replies that are being sent, or whose sending was
    interrupted between the platform's answer and the database write (a crash):
    check the platform before sending those again.
    """
    statuses = (status,) if isinstance(status, str) else tuple(status or ())
    for s in statuses:
        if s not in REPLY_STATUSES:
            raise ValueError(f"unknown reply status {s!r} (use {', '.join(REPLY_STATUSES)})")
    stmt = select(_replies).order_by(_replies.c.id.desc()).limit(limit)
    if statuses:
        stmt = stmt.where(_replies.c.status.in_(statuses))
    if conversation_id is not None:
        stmt = stmt.where(_replies.c.conversation_id == conversation_id)
    with using(conn) as c:
        return [_to_reply(r) for r in c.execute(stmt)]


def claim_reply(engine: Engine, reply_id: int, *, actor: str) -> ReplyTarget:
    """Mark a draft or failed reply ``sending`` (one more attempt) before posting it.

    Only one caller can claim a reply: the change is ``UPDATE ... WHERE status = ?``
    with its row count checked, so two agents pressing "send" post it once.
    Audited as ``reply.sending``.

    Raises:
        NotFoundError: There is no reply ``reply_id``.
        ReplyStateError: The reply is sent, or already being sent.
    """
    actor = _check_name(actor, "actor")
    with engine.begin() as conn:
        row = conn.execute(
            select(
                _replies.c.id,
                _replies.c.status,
                _replies.c.attempts,
                _replies.c.body,
                _replies.c.platform,
                _replies.c.conversation_id,
                _mentions.c.external_id,
            )
            .select_from(
                _replies.join(_conv, _conv.c.id == _replies.c.conversation_id).join(
                    _mentions, _mentions.c.id == _conv.c.mention_id
                )
            )
            .where(_replies.c.id == reply_id)
        ).first()
        if row is None:
            raise NotFoundError(f"no reply with id {reply_id}")
        if row.status == "sent":
            raise ReplyStateError(f"reply {reply_id} was already sent")
        if row.status == "sending":
            raise ReplyStateError(_sending_message(reply_id))
        attempt = int(row.attempts or 0) + 1
        result = conn.execute(
            update(_replies)
            .where(_replies.c.id == reply_id, _replies.c.status == row.status)
            .values(status="sending", attempts=attempt)
        )
        if result.rowcount != 1:
            raise ReplyStateError(_sending_message(reply_id))
        record_audit(
            conn,
            actor,
            "reply.sending",
            "reply",
            str(reply_id),
            {"conversation_id": int(row.conversation_id), "attempt": attempt},
        )
    return ReplyTarget(
        reply_id=reply_id,
        conversation_id=int(row.conversation_id),
        platform=str(row.platform),
        body=str(row.body),
        in_reply_to=str(row.external_id),
        attempt=attempt,
    )


def _sending_message(reply_id: int) -> str:
    return (
        f"reply {reply_id} is being sent, or its sending was interrupted; check the platform, "
        "then send it again with --force (see `listenwell inbox replies --stuck`)"
    )


def mark_reply(
    engine: Engine,
    reply_id: int,
    *,
    status: str,
    actor: str,
    external_id: str | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> Reply:
    """Record how sending a reply ended: ``sent`` (with the platform's id) or ``failed``.

    The reply must be ``sending``. On ``sent``: ``sent_at`` is set, the error is
    cleared and, in the same transaction, the conversation gets its
    ``first_response_at`` if it had none and goes from ``new`` to ``open``
    (bumping its version and audited as ``conversation.update``). On
    ``failed``: the reason is kept on one line and the reply stays, to be sent
    again. A reply abandoned while ``sending`` is marked ``failed`` the same way.

    Args:
        engine: The database.
        reply_id: The reply.
        status: ``sent`` or ``failed``.
        actor: Who sent it.
        external_id: The platform's id of the posted reply (``sent``), if known.
        error: Why it failed (``failed``).
        now: The time (tests); default now.

    Raises:
        NotFoundError: There is no reply ``reply_id``.
        ReplyStateError: The reply is not ``sending``.
        ValueError: ``status`` is neither ``sent`` nor ``failed``.
    """
    if status not in ("sent", "failed"):
        raise ValueError("status must be 'sent' or 'failed'")
    actor = _check_name(actor, "actor")
    now = now or utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(_replies).where(_replies.c.id == reply_id)).first()
        if row is None:
            raise NotFoundError(f"no reply with id {reply_id}")
        if row.status != "sending":
            raise ReplyStateError(f"reply {reply_id} is {row.status}, not sending")
        if status == "sent":
            values: dict[str, Any] = {
                "status": "sent",
                "external_id": external_id,
                "sent_at": now,
                "error": None,
            }
            detail: dict[str, Any] = {"external_id": external_id, "attempt": int(row.attempts)}
        else:
            reason = _one_line(error or "unknown error", _MAX_ERROR_CHARS)
            values = {"status": "failed", "error": reason}
            detail = {"error": reason, "attempt": int(row.attempts)}
        result = conn.execute(
            update(_replies)
            .where(_replies.c.id == reply_id, _replies.c.status == "sending")
            .values(**values)
        )
        if result.rowcount != 1:
            raise ReplyStateError(f"reply {reply_id} is no longer sending")
        detail["conversation_id"] = int(row.conversation_id)
        record_audit(conn, actor, f"reply.{status}", "reply", str(reply_id), detail)
        if status == "sent":
            _first_response(conn, int(row.conversation_id), actor, now)
        updated = conn.execute(select(_replies).where(_replies.c.id == reply_id)).one()
    return _to_reply(updated)


def _first_response(conn: Connection, conv_id: int, actor: str, now: datetime) -> None:
    """A sent reply: set ``first_response_at`` if unset, and ``new`` becomes ``open``."""
    conv = conn.execute(
        select(_conv.c.status, _conv.c.first_response_at, _conv.c.version).where(
            _conv.c.id == conv_id
        )
    ).one()
    values: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    if conv.first_response_at is None:
        values["first_response_at"] = now
        changes["first_response_at"] = _iso(now)
    if conv.status == "new":
        values["status"] = "open"
        changes["status"] = ["new", "open"]
    if not values:
        return
    version = conn.execute(
        update(_conv)
        .where(_conv.c.id == conv_id)
        .values(**values, version=_conv.c.version + 1, updated_at=now, updated_by=actor)
        .returning(_conv.c.version)
    ).scalar_one()
    record_audit(
        conn,
        actor,
        "conversation.update",
        "conversation",
        str(conv_id),
        {"changes": changes, "version": int(version), "cause": "reply sent"},
    )
