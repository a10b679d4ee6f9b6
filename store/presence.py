"""Who has a conversation open, and who changed it: presence and the conversation's activity.

**Presence.** While a user looks at a conversation the dashboard calls
:func:`touch` (on each render and on a timer), which upserts ``presence``
``(conversation_id, username) -> seen_at``; :func:`viewers` lists the others
seen within the last few minutes, so an agent sees "also open by ..." before
answering a customer someone else is already answering. :func:`leave` drops a
user's row when they move on; :func:`prune` clears old rows. Presence is a hint,
not a lock: the inbox's optimistic locking is what keeps edits consistent.

**Activity.** :func:`activity` reads a conversation's entries in the audit log,
newest first: its changes (``conversation.*``), its replies (``reply.*``) and
the link decisions on its mention (``link.*``), each with who and when, and
:func:`describe` turns one entry into a line of text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, and_, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from .engine import using, writing
from .errors import NotFoundError
from .models import AuditRow, ConversationRow, PresenceRow, ReplyRow, utcnow

__all__ = [
    "PRESENCE_WINDOW",
    "Activity",
    "Viewer",
    "activity",
    "describe",
    "leave",
    "prune",
    "touch",
    "viewers",
]

PRESENCE_WINDOW = timedelta(minutes=5)
"""How recently a user must have been seen on a conversation to count as having it open."""

_P = cast(Table, PresenceRow.__table__)
_A = cast(Table, AuditRow.__table__)
_R = cast(Table, ReplyRow.__table__)
_C = cast(Table, ConversationRow.__table__)
_MAX_REPLIES = 500  # replies of one conversation whose audit entries are read
_SHOWN = ("status", "assignee", "tags", "priority")


@dataclass(frozen=True, slots=True)
class Viewer:
    """Someone who has a conversation open: ``username``, last seen at ``seen_at``."""

    username: str
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class Activity:
    """One audit-log entry about a conversation.

    Attributes:
        at: When.
        actor: Who (``user:<name>``, ``system``, ``cli:<name>`` ...).
        action: What, e.g. ``conversation.update``, ``reply.sent``, ``link.confirmed``.
        detail: The entry's detail as stored.
    """

    at: datetime
    actor: str
    action: str
    detail: dict[str, Any] | None

    @property
    def summary(self) -> str:
        """One line saying what changed (see :func:`describe`)."""
        return describe(self.action, self.detail)


def touch(
    engine: Engine | Connection,
    conversation_id: int,
    username: str,
    *,
    now: datetime | None = None,
) -> None:
    """Record that ``username`` has conversation ``conversation_id`` open now.

    Raises:
        NotFoundError: There is no such conversation.
        ValueError: ``username`` is empty.
    """
    who = username.strip()
    if not who:
        raise ValueError("username must not be empty")
    at = now or utcnow()
    try:
        with writing(engine) as c:
            if c.execute(select(_C.c.id).where(_C.c.id == conversation_id)).first() is None:
                raise NotFoundError(f"no conversation with id {conversation_id}")
            ins: Any = (
                postgresql.insert(_P) if c.dialect.name == "postgresql" else sqlite.insert(_P)
            )
            c.execute(
                ins.values(
                    conversation_id=conversation_id, username=who, seen_at=at
                ).on_conflict_do_update(
                    index_elements=["conversation_id", "username"], set_={"seen_at": at}
                )
            )
    except IntegrityError:  # the conversation was deleted meanwhile
        raise NotFoundError(f"no conversation with id {conversation_id}") from None


def leave(engine: Engine | Connection, conversation_id: int, username: str) -> None:
    """Forget that ``username`` has conversation ``conversation_id`` open (no error if not)."""
    with writing(engine) as c:
        c.execute(
            delete(_P).where(_P.c.conversation_id == conversation_id, _P.c.username == username)
        )


def viewers(
    conn: Connection | Engine,
    conversation_id: int,
    *,
    within: timedelta = PRESENCE_WINDOW,
    exclude: str | None = None,
    now: datetime | None = None,
) -> list[Viewer]:
    """Who has had ``conversation_id`` open within ``within`` of ``now``, most recent first.

    Args:
        conn: A connection or an engine.
        conversation_id: The conversation.
        within: How recently they must have been seen.
        exclude: Leave this username out (the one asking).
        now: The time to measure from (tests); default now.
    """
    since = (now or utcnow()) - within
    stmt = (
        select(_P.c.username, _P.c.seen_at)
        .where(_P.c.conversation_id == conversation_id, _P.c.seen_at >= since)
        .order_by(_P.c.seen_at.desc(), _P.c.username)
    )
    if exclude is not None:
        stmt = stmt.where(_P.c.username != exclude)
    with using(conn) as c:
        return [Viewer(str(r.username), r.seen_at) for r in c.execute(stmt)]


def prune(
    engine: Engine | Connection,
    *,
    older_than: timedelta = timedelta(days=1),
    now: datetime | None = None,
) -> int:
    """Delete presence rows not refreshed for ``older_than``; returns how many."""
    before = (now or utcnow()) - older_than
    with writing(engine) as c:
        return int(c.execute(delete(_P).where(_P.c.seen_at < before)).rowcount or 0)


def activity(
    conn: Connection | Engine,
    conversation_id: int,
    *,
    mention_id: int | None = None,
    limit: int = 20,
) -> list[Activity]:
    """The audit-log entries about a conversation, newest first.

    Its own entries (``entity = 'conversation'``), those of its replies, and,
    with ``mention_id``, the link decisions on that mention. Each part is read
    through the audit log's ``(entity, entity_id)`` index.

    Args:
        conn: A connection or an engine.
        conversation_id: The conversation.
        mention_id: Its mention, to include the link decisions.
        limit: At most this many entries.
    """
    with using(conn) as c:
        reply_ids = [
            str(r)
            for r in c.execute(
                select(_R.c.id)
                .where(_R.c.conversation_id == conversation_id)
                .order_by(_R.c.id.desc())
                .limit(_MAX_REPLIES)
            ).scalars()
        ]
        parts: list[ColumnElement[bool]] = [
            and_(_A.c.entity == "conversation", _A.c.entity_id == str(conversation_id))
        ]
        if reply_ids:
            parts.append(and_(_A.c.entity == "reply", _A.c.entity_id.in_(reply_ids)))
        if mention_id is not None:
            parts.append(
                and_(
                    _A.c.entity == "mention",
                    _A.c.entity_id == str(mention_id),
                    _A.c.action.like("link.%"),
                )
            )
        rows = c.execute(
            select(_A.c.at, _A.c.actor, _A.c.action, _A.c.detail)
            .where(or_(*parts))
            .order_by(_A.c.at.desc(), _A.c.id.desc())
            .limit(max(1, limit))
        ).all()
    return [
        Activity(
            at=r.at,
            actor=str(r.actor),
            action=str(r.action),
            detail=r.detail if isinstance(r.detail, dict) else None,
        )
        for r in rows
    ]


def _field(name: str, value: Any) -> str:
    if name == "tags" and isinstance(value, Mapping):
        added = [f"+{t}" for t in value.get("added") or []]
        removed = [f"-{t}" for t in value.get("removed") or []]
        return "tags " + " ".join(added + removed)
    if isinstance(value, list) and len(value) == 2:
        old, new = (v if v not in (None, "") else "-" for v in value)
        return f"{name.replace('_', ' ')} {old} -> {new}"
    return name.replace("_", " ")


def describe(action: str, detail: Mapping[str, Any] | None) -> str:
    """One line for an audit entry about a conversation, e.g. ``status new -> open``."""
    d = detail or {}
    if action == "conversation.update":
        changes = d.get("changes")
        changes = changes if isinstance(changes, Mapping) else {}
        # A fixed order: PostgreSQL's JSONB does not keep the keys' order.
        shown = [_field(k, changes[k]) for k in _SHOWN if k in changes]
        text = "; ".join(shown) or "updated"
        if d.get("cause"):
            text += f" ({d['cause']})"
        return text
    if action == "conversation.note":
        return "added a note"
    if action == "conversation.create":
        return "conversation created"
    if action == "conversation.link":
        return "customer linked"
    if action.startswith("reply."):
        what = action.split(".", 1)[1]
        text = {"draft": "drafted a reply", "sending": "sending a reply"}.get(what, f"reply {what}")
        if what == "failed" and d.get("error"):
            text += f": {d['error']}"
        return text
    if action.startswith("link."):
        customer = d.get("customer_id")
        return f"link {action.split('.', 1)[1]}" + (f" (customer {customer})" if customer else "")
    return action
