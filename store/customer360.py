"""Customer 360: one customer's profile, timeline and satisfaction trend; contact reminders.

**A customer's mentions** (:func:`linked_mentions`) are those

* whose conversation names the customer (``conversations.customer_pk``),
* that an agent confirmed for the customer (``link_decisions``),
* whose ``links`` result is *strong* for the customer and not rejected by an
  agent for that mention (as in :func:`listenwell.store.links.effective_links`), or
* whose author handle is one of the customer's handles on the same platform
  (the mention's ``source`` equals the handle's ``platform``; handles compared
  normalised: lower case, without ``@`` or ``u/``).

Erased customers have no mentions.

**The timeline** merges, newest first, the customer's mentions, the replies,
internal notes, escalation events and status changes (``conversation.update``
entries of the audit log) of their conversations, and their survey answers.
It is paged by a cursor (``before``): only the keys of the events are sorted in
the database, and the details are read for one page, so a customer with tens
of thousands of events stays fast.

**Sentiment** is the label in force: an agent's newest correction, else the
model's label; it counts +1 (positive), 0 (neutral) and -1 (negative).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Select,
    String,
    Table,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
    union,
    union_all,
)
from sqlalchemy import cast as cast_
from sqlalchemy.sql.elements import ColumnElement

from .engine import using
from .errors import NotFoundError, check_cursor_parts
from .models import (
    AuditRow,
    ConversationNoteRow,
    ConversationRow,
    CorrectionRow,
    CustomerRow,
    EnrichmentRow,
    EscalationEventRow,
    HandleRow,
    LinkDecisionRow,
    MentionRow,
    ReplyRow,
    SurveyRow,
    UTCDateTime,
)

if TYPE_CHECKING:  # pandas is imported on first use
    import pandas as pd

__all__ = [
    "EVENT_KINDS",
    "REMINDER_KINDS",
    "Customer360",
    "SatisfactionPoint",
    "TimelineEvent",
    "customer_360",
    "label_in_force",
    "linked_mentions",
    "reminders",
    "sentiment_value",
    "time_bucket",
]

EVENT_KINDS = ("mention", "reply", "note", "survey", "escalation", "status")
"""The kinds of timeline event."""

REMINDER_KINDS = ("due_today", "overdue_follow_up", "silent")
"""The kinds of reminder :func:`reminders` lists."""

_DEFAULT_TIMEOUT_S = 15.0
_MAX_PAGE = 1000
_TEXT_CHARS = 500

_customers = cast(Table, CustomerRow.__table__)
_handles = cast(Table, HandleRow.__table__)
_mentions = cast(Table, MentionRow.__table__)
_enrich = cast(Table, EnrichmentRow.__table__)
_decisions = cast(Table, LinkDecisionRow.__table__)
_corrections = cast(Table, CorrectionRow.__table__)
_conv = cast(Table, ConversationRow.__table__)
_notes = cast(Table, ConversationNoteRow.__table__)
_replies = cast(Table, ReplyRow.__table__)
_events = cast(Table, EscalationEventRow.__table__)
_surveys = cast(Table, SurveyRow.__table__)
_audit = cast(Table, AuditRow.__table__)


# ---------------------------------------------------------------------------- shared SQL


def label_in_force(stage: str, mention_id: Any = None) -> ColumnElement[Any]:
    """The label in force of ``stage`` for a mention: the newest correction, else the model's.

    Args:
        stage: ``sentiment``, ``intent``, ...
        mention_id: The column holding the mention's id (default ``mentions.id``).

    Returns:
        A correlated scalar expression.
    """
    mid = _mentions.c.id if mention_id is None else mention_id
    corrected = (
        select(_corrections.c.label)
        .where(_corrections.c.mention_id == mid, _corrections.c.stage == stage)
        .order_by(_corrections.c.created_at.desc(), _corrections.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    model = (
        select(_enrich.c.label)
        .where(_enrich.c.mention_id == mid, _enrich.c.stage == stage)
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(corrected, model)


def sentiment_value(label: ColumnElement[Any]) -> ColumnElement[Any]:
    """+1 for ``positive``, -1 for ``negative``, 0 for ``neutral``, NULL otherwise."""
    return case(
        (label == "positive", 1), (label == "negative", -1), (label == "neutral", 0), else_=None
    )


def time_bucket(dialect: str, col: Any, freq: str) -> ColumnElement[Any]:
    """The start (UTC) of the day, ISO week (Monday) or month holding ``col``.

    Args:
        dialect: ``sqlite`` or ``postgresql``.
        col: A timestamp column.
        freq: ``day``, ``week`` or ``month``.

    Raises:
        ValueError: Another ``freq``.
    """
    if freq not in ("day", "week", "month"):
        raise ValueError("freq must be day, week or month")
    if dialect == "postgresql":
        return func.date_trunc(freq, func.timezone("UTC", col))
    if freq == "week":
        return func.strftime(
            "%Y-%m-%d 00:00:00", col, func.printf("-%d days", (func.strftime("%w", col) + 6) % 7)
        )
    return func.strftime("%Y-%m-01 00:00:00" if freq == "month" else "%Y-%m-%d 00:00:00", col)


def linked_mentions(customer_pks: Sequence[int] | None = None) -> Select[Any]:
    """``(customer_pk, mention_id)`` for every mention linked to a customer (see module doc).

    Args:
        customer_pks: Only these customers (``customers.id``); default all.

    Returns:
        A ``UNION`` (duplicates removed) to use as a subquery or CTE.
    """
    live = _customers.c.erased_at.is_(None)

    def only(col: Any) -> list[ColumnElement[bool]]:
        return [] if customer_pks is None else [col.in_(list(customer_pks))]

    by_conv = select(_conv.c.customer_pk, _conv.c.mention_id).where(
        _conv.c.customer_pk.is_not(None), *only(_conv.c.customer_pk)
    )
    confirmed = select(_decisions.c.customer_pk, _decisions.c.mention_id).where(
        _decisions.c.decision == "confirmed", *only(_decisions.c.customer_pk)
    )
    rejected = exists().where(
        _decisions.c.mention_id == _enrich.c.mention_id,
        _decisions.c.customer_pk == _customers.c.id,
        _decisions.c.decision == "rejected",
    )
    strong = (
        select(_customers.c.id, _enrich.c.mention_id)
        .select_from(_enrich.join(_customers, _customers.c.customer_id == _enrich.c.label))
        .where(
            _enrich.c.stage == "links",
            _enrich.c.data["strength"].as_string() == "strong",
            ~rejected,
            *only(_customers.c.id),
        )
    )
    author = func.lower(_mentions.c.author_handle)
    by_handle = (
        select(_handles.c.customer_pk, _mentions.c.id)
        .select_from(
            _handles.join(
                _mentions,
                and_(
                    _mentions.c.source == _handles.c.platform,
                    or_(
                        author == _handles.c.handle,
                        author == literal("@") + _handles.c.handle,
                        author == literal("u/") + _handles.c.handle,
                        author == literal("/u/") + _handles.c.handle,
                    ),
                ),
            )
        )
        .where(*only(_handles.c.customer_pk))
    )
    both = union(by_conv, confirmed, strong, by_handle).subquery("linked_any")
    return (
        select(both.c.customer_pk.label("customer_pk"), both.c.mention_id.label("mention_id"))
        .select_from(both.join(_customers, _customers.c.id == both.c.customer_pk))
        .where(live)
    )


# ---------------------------------------------------------------------------- the 360 view


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One thing that happened with a customer.

    Attributes:
        at: When (UTC).
        kind: One of :data:`EVENT_KINDS`.
        id: The row's id in its own table (mention, reply, note, survey,
            escalation event or audit entry).
        platform: The platform of the mention concerned (``survey``: the survey source).
        text: The mention's or note's text, the reply's body (first 500
            characters), or a one-line summary.
        mention_id: The mention concerned, where there is one.
        conversation_id: The conversation concerned, where there is one.
        detail: Kind-specific values (reply status, survey score, escalation level...).
    """

    at: datetime
    kind: str
    id: int
    platform: str | None
    text: str
    mention_id: int | None = None
    conversation_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def cursor(self) -> str:
        """The ``before`` value that pages on after this event."""
        return f"{self.at.astimezone(UTC).isoformat()}|{self.kind}|{self.id}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO 8601 time)."""
        return {
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "kind": self.kind,
            "id": self.id,
            "platform": self.platform,
            "text": self.text,
            "mention_id": self.mention_id,
            "conversation_id": self.conversation_id,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class SatisfactionPoint:
    """One month of a customer's satisfaction.

    Attributes:
        month: The first day of the month.
        mentions: Mentions with a sentiment label in force.
        sentiment: Their mean sentiment (+1/0/-1), ``None`` without any.
        csat_answers: CSAT answers that month.
        csat_mean: Their mean score (1-5).
        nps_answers: NPS answers that month.
        nps: % promoters (9-10) minus % detractors (0-6), -100 to 100.
    """

    month: date
    mentions: int = 0
    sentiment: float | None = None
    csat_answers: int = 0
    csat_mean: float | None = None
    nps_answers: int = 0
    nps: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "month": self.month.isoformat(),
            "mentions": self.mentions,
            "sentiment": self.sentiment,
            "csat_answers": self.csat_answers,
            "csat_mean": self.csat_mean,
            "nps_answers": self.nps_answers,
            "nps": self.nps,
        }


@dataclass(frozen=True, slots=True)
class Customer360:
    """Everything known about one customer, with one page of their timeline.

    Attributes:
        customer_id: The brand's id.
        name: Full name.
        email: E-mail.
        phone: Phone.
        segment: The ``segment`` column.
        attributes: The extra columns of the customer import.
        lifetime_value: ``attributes["lifetime_value"]`` as a number, where it is one.
        consent: ``contact``, ``marketing``, ``profiling``: True, False or None (unknown).
        handles: ``platform:display`` of each handle.
        counts: Events of each kind in the whole timeline.
        timeline: One page of events, newest first.
        next_before: The ``before`` cursor of the next page (``None``: this is the last).
        satisfaction: Per month, oldest first (only with ``trend=True``).
    """

    customer_id: str
    name: str | None
    email: str | None
    phone: str | None
    segment: str | None
    attributes: dict[str, Any]
    lifetime_value: float | None
    consent: dict[str, bool | None]
    handles: list[str]
    counts: dict[str, int]
    timeline: list[TimelineEvent]
    next_before: str | None
    satisfaction: list[SatisfactionPoint]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "customer_id": self.customer_id,
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "segment": self.segment,
            "attributes": self.attributes,
            "lifetime_value": self.lifetime_value,
            "consent": self.consent,
            "handles": self.handles,
            "counts": self.counts,
            "timeline": [e.as_dict() for e in self.timeline],
            "next_before": self.next_before,
            "satisfaction": [p.as_dict() for p in self.satisfaction],
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).replace(",", "").strip())
    except ValueError:
        return None


def _parse_cursor(before: str) -> tuple[datetime, str, int]:
    try:
        at_text, kind, ident = before.rsplit("|", 2)
        at = datetime.fromisoformat(at_text)
        if kind not in EVENT_KINDS:
            raise ValueError(kind)
        check_cursor_parts(at, int(ident))
        return (
            (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)),
            kind,
            int(ident),
        )
    except ValueError:
        raise ValueError(f"not a timeline cursor: {before!r}") from None


def _utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite values that bypassed the column type
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _event_keys(pk: int) -> tuple[Select[Any], Any]:
    """A UNION ALL of ``(at, kind, id)`` over the customer's events, and the mentions CTE."""
    mine = linked_mentions([pk]).cte("mine")
    convs = (
        select(_conv.c.id)
        .where(or_(_conv.c.mention_id.in_(select(mine.c.mention_id)), _conv.c.customer_pk == pk))
        .scalar_subquery()
    )
    parts = [
        select(
            _mentions.c.created_at.label("at"), literal("mention").label("kind"), _mentions.c.id
        ).where(_mentions.c.id.in_(select(mine.c.mention_id))),
        select(
            func.coalesce(_replies.c.sent_at, _replies.c.created_at).label("at"),
            literal("reply"),
            _replies.c.id,
        ).where(_replies.c.conversation_id.in_(convs)),
        select(_notes.c.created_at, literal("note"), _notes.c.id).where(
            _notes.c.conversation_id.in_(convs)
        ),
        select(_surveys.c.answered_at, literal("survey"), _surveys.c.id).where(
            _surveys.c.customer_pk == pk
        ),
        select(_events.c.at, literal("escalation"), _events.c.id).where(
            _events.c.conversation_id.in_(convs)
        ),
        select(_audit.c.at, literal("status"), _audit.c.id).where(
            _audit.c.entity == "conversation",
            _audit.c.action == "conversation.update",
            _audit.c.entity_id.in_(select(cast_(_conv.c.id, String)).where(_conv.c.id.in_(convs))),
        ),
    ]
    keys = union_all(*parts).subquery("events")
    return select(keys.c.at, keys.c.kind, keys.c.id), mine


def customer_360(
    conn: Connection | Engine,
    customer_id: str,
    *,
    limit: int = 50,
    before: str | None = None,
    trend: bool = True,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> Customer360:
    """One customer's profile, handles, event counts, one page of timeline and satisfaction trend.

    Args:
        conn: A connection or an engine (an engine's reads run under ``timeout_s``).
        customer_id: The brand's id of the customer.
        limit: Events per page (1 to 1000).
        before: A cursor (:attr:`TimelineEvent.cursor` of the last event shown, or
            :attr:`Customer360.next_before`): the page starts after it.
        trend: Compute the monthly satisfaction trend.
        timeout_s: Statement time limit when ``conn`` is an engine.

    Returns:
        The customer 360.

    Raises:
        NotFoundError: No such customer, or the customer was erased.
        ValueError: ``before`` is not a cursor.
    """
    limit = max(1, min(limit, _MAX_PAGE))
    cursor = _parse_cursor(before) if before else None
    with using(conn, timeout_s) as c:
        row = c.execute(select(_customers).where(_customers.c.customer_id == customer_id)).first()
        if row is None:
            raise NotFoundError(f"no customer with id {customer_id!r}")
        if row.erased_at is not None:
            raise NotFoundError(f"customer {customer_id!r} was erased")
        pk = int(row.id)
        handles = [
            f"{h.platform}:{h.display}"
            for h in c.execute(
                select(_handles.c.platform, _handles.c.display)
                .where(_handles.c.customer_pk == pk)
                .order_by(_handles.c.platform, _handles.c.handle)
            )
        ]
        keys, mine = _event_keys(pk)
        ev = keys.subquery("ev")
        counts = {k: 0 for k in EVENT_KINDS}
        for kind, n in c.execute(select(ev.c.kind, func.count()).group_by(ev.c.kind)):
            counts[str(kind)] = int(n)
        page_stmt = select(ev.c.at, ev.c.kind, ev.c.id)
        if cursor is not None:
            at, kind, ident = cursor
            page_stmt = page_stmt.where(
                tuple_(ev.c.at, ev.c.kind, ev.c.id)
                < tuple_(literal(at, UTCDateTime()), literal(kind), literal(ident, Integer()))
            )
        page_stmt = page_stmt.order_by(ev.c.at.desc(), ev.c.kind.desc(), ev.c.id.desc()).limit(
            limit + 1
        )
        page = [(_utc(r[0]), str(r[1]), int(r[2])) for r in c.execute(page_stmt)]
        more = len(page) > limit
        page = page[:limit]
        events = _details(c, page)
        satisfaction = _satisfaction(c, pk) if trend else []
    attributes = dict(row.attributes or {})
    return Customer360(
        customer_id=row.customer_id,
        name=row.name,
        email=row.email,
        phone=row.phone,
        segment=row.segment,
        attributes=attributes,
        lifetime_value=_number(attributes.get("lifetime_value")),
        consent={
            "contact": row.consent_contact,
            "marketing": row.consent_marketing,
            "profiling": row.consent_profiling,
        },
        handles=handles,
        counts=counts,
        timeline=events,
        next_before=events[-1].cursor if more and events else None,
        satisfaction=satisfaction,
    )


def _short(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= _TEXT_CHARS else text[:_TEXT_CHARS] + "…"


def _details(c: Connection, page: list[tuple[datetime, str, int]]) -> list[TimelineEvent]:
    ids: dict[str, list[int]] = {k: [] for k in EVENT_KINDS}
    for _at, kind, ident in page:
        ids[kind].append(ident)
    found: dict[tuple[str, int], TimelineEvent] = {}
    r: Any
    conv_mention = _mentions.join(_conv, _conv.c.mention_id == _mentions.c.id)
    if ids["mention"]:
        for r in c.execute(
            select(
                _mentions.c.id,
                _mentions.c.created_at,
                _mentions.c.source,
                _mentions.c.text,
                _mentions.c.author_handle,
                _mentions.c.url,
                _conv.c.id.label("conv_id"),
                _conv.c.status,
                label_in_force("sentiment").label("sentiment"),
            )
            .select_from(_mentions.outerjoin(_conv, _conv.c.mention_id == _mentions.c.id))
            .where(_mentions.c.id.in_(ids["mention"]))
        ):
            found["mention", r.id] = TimelineEvent(
                _utc(r.created_at),
                "mention",
                r.id,
                r.source,
                _short(r.text),
                r.id,
                r.conv_id,
                {
                    "author_handle": r.author_handle,
                    "url": r.url,
                    "sentiment": r.sentiment,
                    "status": r.status,
                },
            )
    if ids["reply"]:
        for r in c.execute(
            select(
                _replies.c.id,
                func.coalesce(_replies.c.sent_at, _replies.c.created_at).label("at"),
                _replies.c.platform,
                _replies.c.body,
                _replies.c.status,
                _replies.c.actor,
                _replies.c.conversation_id,
                _conv.c.mention_id,
            )
            .select_from(_replies.join(_conv, _conv.c.id == _replies.c.conversation_id))
            .where(_replies.c.id.in_(ids["reply"]))
        ):
            found["reply", r.id] = TimelineEvent(
                _utc(r.at),
                "reply",
                r.id,
                r.platform,
                _short(r.body),
                r.mention_id,
                r.conversation_id,
                {"status": r.status, "actor": r.actor},
            )
    if ids["note"]:
        for r in c.execute(
            select(
                _notes.c.id,
                _notes.c.created_at,
                _notes.c.body,
                _notes.c.author,
                _notes.c.conversation_id,
                _mentions.c.id.label("mention_id"),
                _mentions.c.source,
            )
            .select_from(_notes.join(conv_mention, _conv.c.id == _notes.c.conversation_id))
            .where(_notes.c.id.in_(ids["note"]))
        ):
            found["note", r.id] = TimelineEvent(
                _utc(r.created_at),
                "note",
                r.id,
                r.source,
                _short(r.body),
                r.mention_id,
                r.conversation_id,
                {"author": r.author},
            )
    if ids["survey"]:
        for r in c.execute(select(_surveys).where(_surveys.c.id.in_(ids["survey"]))):
            scale = "5" if r.kind == "csat" else "10"
            text = f"{r.kind.upper()} {r.score}/{scale}"
            if r.comment:
                text += f": {_short(r.comment)}"
            found["survey", r.id] = TimelineEvent(
                _utc(r.answered_at),
                "survey",
                r.id,
                r.source,
                text,
                None,
                r.conversation_id,
                {"survey_kind": r.kind, "score": r.score, "external_id": r.external_id},
            )
    if ids["escalation"]:
        for r in c.execute(
            select(_events, _mentions.c.id.label("mention_id"), _mentions.c.source)
            .select_from(_events.join(conv_mention, _conv.c.id == _events.c.conversation_id))
            .where(_events.c.id.in_(ids["escalation"]))
        ):
            text = r.kind
            if r.to_level is not None:
                text += f" to level {r.to_level}"
            if r.priority:
                text += f" ({r.priority})"
            found["escalation", r.id] = TimelineEvent(
                _utc(r.at),
                "escalation",
                r.id,
                r.source,
                text,
                r.mention_id,
                r.conversation_id,
                {"event": r.kind, "to_level": r.to_level, "actor": r.actor},
            )
    if ids["status"]:
        audit = c.execute(select(_audit).where(_audit.c.id.in_(ids["status"]))).all()
        conv_ids = sorted({int(a.entity_id) for a in audit if str(a.entity_id).isdigit()})
        where = {
            r.id: (r.mention_id, r.source)
            for r in c.execute(
                select(_conv.c.id, _conv.c.mention_id, _mentions.c.source)
                .select_from(conv_mention)
                .where(_conv.c.id.in_(conv_ids))
            )
        }
        for a in audit:
            conv_id = int(a.entity_id) if str(a.entity_id).isdigit() else None
            mention_id, source = where.get(conv_id or -1, (None, None))
            changes = (a.detail or {}).get("changes") or {}
            found["status", a.id] = TimelineEvent(
                _utc(a.at),
                "status",
                a.id,
                source,
                _changes_text(changes),
                mention_id,
                conv_id,
                {"actor": a.actor, "changes": changes},
            )
    return [found[kind, ident] for _at, kind, ident in page if (kind, ident) in found]


def _changes_text(changes: Any) -> str:
    if not isinstance(changes, dict) or not changes:
        return "updated"
    parts = []
    for name, value in changes.items():
        if isinstance(value, list | tuple) and len(value) == 2:
            parts.append(f"{name} {value[0]} → {value[1]}")
        elif isinstance(value, dict) and {"old", "new"} <= set(value):
            parts.append(f"{name} {value['old']} → {value['new']}")
        else:
            parts.append(f"{name} {value}")
    return "; ".join(parts)


def _month(value: Any) -> date:
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    assert isinstance(value, datetime | date)
    return date(value.year, value.month, 1)


def _satisfaction(c: Connection, pk: int) -> list[SatisfactionPoint]:
    dialect = c.dialect.name
    mine = linked_mentions([pk]).subquery("mine")
    value = sentiment_value(label_in_force("sentiment"))
    month = time_bucket(dialect, _mentions.c.created_at, "month").label("month")
    sentiment_rows = c.execute(
        select(month, func.count(value).label("n"), func.avg(value).label("mean"))
        .where(_mentions.c.id.in_(select(mine.c.mention_id)))
        .group_by(month)
    ).all()
    smonth = time_bucket(dialect, _surveys.c.answered_at, "month").label("month")
    survey_rows = c.execute(
        select(
            smonth,
            _surveys.c.kind,
            func.count().label("n"),
            func.avg(_surveys.c.score).label("mean"),
            func.sum(case((_surveys.c.score >= 9, 1), else_=0)).label("promoters"),
            func.sum(case((_surveys.c.score <= 6, 1), else_=0)).label("detractors"),
        )
        .where(_surveys.c.customer_pk == pk)
        .group_by(smonth, _surveys.c.kind)
    ).all()
    points: dict[date, dict[str, Any]] = {}
    for r in sentiment_rows:
        p = points.setdefault(_month(r.month), {})
        p["mentions"] = int(r.n)
        p["sentiment"] = None if r.mean is None else round(float(r.mean), 4)
    for r in survey_rows:
        p = points.setdefault(_month(r.month), {})
        n = int(r.n)
        if r.kind == "csat":
            p["csat_answers"] = n
            p["csat_mean"] = round(float(r.mean), 4)
        else:
            p["nps_answers"] = n
            p["nps"] = round(100.0 * (int(r.promoters) - int(r.detractors)) / n, 4)
    return [SatisfactionPoint(month=m, **points[m]) for m in sorted(points)]


# ---------------------------------------------------------------------------- reminders


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def reminders(
    conn: Connection | Engine,
    *,
    today: date,
    silent_days: int = 90,
    follow_up_days: int = 3,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """Customers and conversations that need contact, as of ``today`` (UTC days).

    Three kinds, listed in this order:

    * ``due_today``: the customer's ``next_contact`` attribute is ``today``
      (ISO date, or a timestamp on that day); or a conversation has been
      ``pending`` for exactly ``follow_up_days`` days today (its follow-up is due).
    * ``overdue_follow_up``: an ``open`` or ``pending`` conversation whose last
      activity (the latest of its opening, last update, reply and note) is before
      ``today - follow_up_days`` and that is not due today.
    * ``silent``: a customer who has mentions but none since ``today - silent_days``.

    Erased customers are never listed.

    Args:
        conn: A connection or an engine.
        today: The day to plan for.
        silent_days: Days without a mention after which a customer is silent.
        follow_up_days: Days after which a waiting conversation needs a follow-up.
        timeout_s: Statement time limit when ``conn`` is an engine.

    Returns:
        Columns ``kind``, ``customer_id``, ``name``, ``conversation_id``,
        ``since`` (the date the reminder counts from), ``days`` (whole days since
        then), ``detail``; within a kind, the longest-waiting first.
    """
    import pandas as pd

    if silent_days < 1 or follow_up_days < 0:
        raise ValueError("silent_days must be at least 1 and follow_up_days at least 0")
    start = _day_start(today)
    rows: list[dict[str, Any]] = []
    live = _customers.c.erased_at.is_(None)
    with using(conn, timeout_s) as c:
        next_contact = func.substr(_customers.c.attributes["next_contact"].as_string(), 1, 10)
        for planned in c.execute(
            select(_customers.c.customer_id, _customers.c.name)
            .where(live, next_contact == today.isoformat())
            .order_by(_customers.c.customer_id)
        ):
            rows.append(
                _reminder(
                    "due_today",
                    planned.customer_id,
                    planned.name,
                    None,
                    start,
                    start,
                    "next_contact",
                )
            )
        last_reply = (
            select(func.max(func.coalesce(_replies.c.sent_at, _replies.c.created_at)))
            .where(_replies.c.conversation_id == _conv.c.id)
            .scalar_subquery()
        )
        last_note = (
            select(func.max(_notes.c.created_at))
            .where(_notes.c.conversation_id == _conv.c.id)
            .scalar_subquery()
        )
        active = c.execute(
            select(
                _conv.c.id,
                _conv.c.status,
                _conv.c.opened_at,
                _conv.c.updated_at,
                _conv.c.pending_since,
                last_reply.label("last_reply"),
                last_note.label("last_note"),
                _customers.c.customer_id,
                _customers.c.name,
                _customers.c.erased_at,
            )
            .select_from(_conv.outerjoin(_customers, _customers.c.id == _conv.c.customer_pk))
            .where(_conv.c.status.in_(("open", "pending")))
            .order_by(_conv.c.id)
        ).all()
        due_convs: set[int] = set()
        for r in active:
            if r.erased_at is not None:
                continue
            if r.status == "pending" and r.pending_since is not None:
                due = (_utc(r.pending_since) + timedelta(days=follow_up_days)).date()
                if due == today:
                    due_convs.add(r.id)
                    rows.append(
                        _reminder(
                            "due_today",
                            r.customer_id,
                            r.name,
                            r.id,
                            _utc(r.pending_since),
                            start,
                            f"pending since {_utc(r.pending_since).date()}: follow up",
                        )
                    )
        cutoff = start - timedelta(days=follow_up_days)
        for r in active:
            if r.erased_at is not None or r.id in due_convs:
                continue
            last = max(
                _utc(v)
                for v in (r.opened_at, r.updated_at, r.last_reply, r.last_note)
                if v is not None
            )
            if last < cutoff:
                rows.append(
                    _reminder(
                        "overdue_follow_up",
                        r.customer_id,
                        r.name,
                        r.id,
                        last,
                        start,
                        f"{r.status}, no activity since {last.date()}",
                    )
                )
        mine = linked_mentions().subquery("mine")
        last_mention = func.max(_mentions.c.created_at).label("last_mention")
        for quiet in c.execute(
            select(_customers.c.customer_id, _customers.c.name, last_mention)
            .select_from(
                mine.join(_mentions, _mentions.c.id == mine.c.mention_id).join(
                    _customers, _customers.c.id == mine.c.customer_pk
                )
            )
            .group_by(_customers.c.customer_id, _customers.c.name)
            .having(last_mention < literal(start - timedelta(days=silent_days), UTCDateTime()))
        ):
            last = _utc(quiet.last_mention)
            rows.append(
                _reminder(
                    "silent",
                    quiet.customer_id,
                    quiet.name,
                    None,
                    last,
                    start,
                    f"no mention since {last.date()}",
                )
            )
    columns = ["kind", "customer_id", "name", "conversation_id", "since", "days", "detail"]
    df = pd.DataFrame(rows, columns=columns)
    if df.empty:
        return df
    df["order"] = df["kind"].map({k: i for i, k in enumerate(REMINDER_KINDS)})
    df = df.sort_values(["order", "days", "customer_id"], ascending=[True, False, True])
    df = df.drop(columns="order").reset_index(drop=True)
    df["conversation_id"] = df["conversation_id"].astype("Int64")
    return df


def _reminder(
    kind: str,
    customer_id: str | None,
    name: str | None,
    conversation_id: int | None,
    since: datetime,
    start: datetime,
    detail: str,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "customer_id": customer_id,
        "name": name,
        "conversation_id": conversation_id,
        "since": since.date(),
        "days": (start.date() - since.date()).days,
        "detail": detail,
    }
