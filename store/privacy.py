"""Data-subject rights: export everything held about a person, erase them; contact consent.

**Export** (:func:`export_person`, GDPR Art. 15) gathers, as plain JSON-ready
data, the customer's profile (attributes and consent included), handles,
every linked mention (:func:`listenwell.store.customer360.linked_mentions`:
by conversation, confirmed decision, strong link or handle) with its
enrichments, corrections and link decisions, the agents' link decisions
naming the customer (rejections included), the conversations of those
mentions or naming the customer with their notes, replies and escalation
events, the customer's survey answers, and the audit entries about any of these.

**Erasure** (:func:`erase_person`, GDPR Art. 17) runs in one transaction:

* the person's mentions are deleted (by every link kind); the database
  cascades remove their enrichments, embeddings, corrections, link decisions
  and conversations with notes, replies and escalation events;
* conversations naming the customer and surveys of the customer or of those
  conversations are deleted;
* ``links`` results on *other* mentions that name the customer (weak
  suggestions) are deleted; the next ``listenwell enrich`` recomputes them;
* the customer row is deleted (handles and decisions cascade);
* audit entries about the person (the customer, their mentions,
  conversations and replies, or whose detail holds their customer id, name,
  e-mail, phone or a handle) keep who did what and when, but their ``detail``
  is replaced by ``{"erased": HASH}``, and a customer entry's ``entity_id``
  by ``HASH``;
* quarantined records whose payload holds the customer id, name, e-mail,
  phone (any format) or a handle are deleted;
* one ``customer.erase`` audit entry is written with the counts.

``HASH`` is ``sha256:`` and the hex SHA-256 of the customer id
(:func:`customer_hash`). The customer id never stays in clear: whoever knows
an id can check that it was erased, but the log does not reveal whose it was.

**Consent** (:func:`can_contact`): a service reply (answering the person's own
post) is always allowed; a survey needs ``consent_contact`` given; marketing
needs ``consent_marketing`` given. Unknown consent is not consent.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any, Literal, cast

import phonenumbers
from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Table,
    Text,
    and_,
    delete,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy import cast as cast_
from sqlalchemy.sql.elements import ColumnElement

from . import rollup
from .customer360 import linked_mentions
from .engine import using
from .errors import NotFoundError
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
    QuarantineRow,
    ReplyRow,
    SurveyRow,
    utcnow,
)
from .writes import chunked, record_audit

__all__ = [
    "EXPORT_FORMAT",
    "PURPOSES",
    "ErasureReport",
    "Purpose",
    "can_contact",
    "customer_hash",
    "erase_person",
    "export_person",
]

EXPORT_FORMAT = "listenwell.person/1"
"""The ``format`` field of :func:`export_person`'s result."""

Purpose = Literal["service", "survey", "marketing"]
PURPOSES: tuple[str, ...] = ("service", "survey", "marketing")
"""The purposes :func:`can_contact` knows."""

_CHUNK = 500
_MIN_CHARS = 3  # shorter names and handles are not searched for (too many false hits)
_NON_DIGIT = re.compile(r"\D")

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
_quarantine = cast(Table, QuarantineRow.__table__)


def customer_hash(customer_id: str) -> str:
    """``sha256:<hex>`` of a customer id: how the erasure audit entry names the person."""
    return "sha256:" + hashlib.sha256(customer_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What :func:`erase_person` removed.

    Attributes:
        customer_hash: :func:`customer_hash` of the erased customer id.
        mentions: Mentions deleted (with their enrichments, corrections, decisions).
        conversations: Conversations deleted (with notes, replies, escalation events).
        surveys: Survey answers deleted.
        handles: Handles deleted.
        link_results: ``links`` results on other mentions that named the customer.
        audit_scrubbed: Audit entries whose detail was replaced.
        quarantine: Quarantined records deleted.
        texts_scrubbed: Other people's mentions, notes and replies in which their
            handle, name or e-mail was replaced by ``[erased]``.
    """

    customer_hash: str
    mentions: int = 0
    conversations: int = 0
    surveys: int = 0
    handles: int = 0
    link_results: int = 0
    audit_scrubbed: int = 0
    texts_scrubbed: int = 0
    quarantine: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)


# ---------------------------------------------------------------------------- helpers


def _plain(value: Any) -> Any:
    """A value made JSON-ready: times as ISO 8601, bytes left out, containers walked."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _row(row: Row[Any], *, drop: Iterable[str] = ()) -> dict[str, Any]:
    skip = set(drop)
    return {k: _plain(v) for k, v in row._mapping.items() if k not in skip}


def _customer_row(c: Connection, customer_id: str) -> Row[Any]:
    row = c.execute(select(_customers).where(_customers.c.customer_id == customer_id)).first()
    if row is None:
        raise NotFoundError(f"no customer with id {customer_id!r}")
    return row


@dataclass(frozen=True, slots=True)
class _Footprint:
    """The ids of the rows that are about one customer."""

    pk: int
    mention_ids: list[int]
    conversation_ids: list[int]
    reply_ids: list[int]


def _in(col: Any, ids: Sequence[int | str]) -> list[ColumnElement[bool]]:
    """``col IN (...)`` in chunks (SQLite limits bound parameters), to be OR-ed."""
    return [col.in_(list(part)) for part in chunked(ids, _CHUNK)]


def _any(conds: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return or_(*conds) if conds else false()


def _footprint(c: Connection, pk: int) -> _Footprint:
    mine = linked_mentions([pk]).subquery("mine")
    mention_ids = sorted({int(r[0]) for r in c.execute(select(mine.c.mention_id))})
    conv_ids: set[int] = {
        int(r[0]) for r in c.execute(select(_conv.c.id).where(_conv.c.customer_pk == pk))
    }
    for part in chunked(mention_ids, _CHUNK):
        conv_ids.update(
            int(r[0]) for r in c.execute(select(_conv.c.id).where(_conv.c.mention_id.in_(part)))
        )
    convs = sorted(conv_ids)
    reply_ids: list[int] = []
    for part in chunked(convs, _CHUNK):
        reply_ids.extend(
            int(r[0])
            for r in c.execute(select(_replies.c.id).where(_replies.c.conversation_id.in_(part)))
        )
    return _Footprint(pk, mention_ids, convs, sorted(reply_ids))


def _identifiers(c: Connection, row: Row[Any]) -> tuple[list[str], str | None]:
    """Lower-case strings that identify the person in free text, and their phone's digits."""
    found = {str(row.customer_id).lower()}
    for value in (row.name, row.email):
        if value and len(str(value).strip()) >= _MIN_CHARS:
            found.add(str(value).strip().lower())
    for h in c.execute(
        select(_handles.c.handle, _handles.c.display).where(_handles.c.customer_pk == row.id)
    ):
        for value in (h.handle, h.display):
            if value and len(str(value).strip().lstrip("@")) >= _MIN_CHARS:
                found.add(str(value).strip().lstrip("@").lower())
    return sorted(found), _phone_digits(row.phone)


ERASED = "[erased]"


def _scrub_texts(c: Connection, needles: Sequence[str]) -> int:
    """Replace ``needles`` (case-insensitively) by :data:`ERASED` in others' free text.

    Covers mentions (text, author name, raw payload), conversation notes and
    replies. Returns how many rows changed.
    """
    words = [n for n in needles if len(n) >= _MIN_CHARS]
    if not words:
        return 0
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.I)
    changed = 0
    targets: list[tuple[Table, list[str]]] = [
        (_mentions, ["text", "author_name", "raw"]),
        (_notes, ["body"]),
        (_replies, ["body"]),
    ]
    for table, names in targets:
        columns = [table.c[n] for n in names]
        hit = or_(*[_mentions_text(col, words) for col in columns])
        rows = c.execute(select(table.c.id, *columns).where(hit)).all()
        if table is _mentions:  # share of voice reads the text: recount their days
            rollup.mark_dirty(c, [row.id for row in rows])
        for row in rows:
            values = {
                n: pattern.sub(ERASED, getattr(row, n))
                for n in names
                if isinstance(getattr(row, n), str)
            }
            c.execute(update(table).where(table.c.id == row.id).values(**values))
            changed += 1
    return changed


def _phone_digits(phone: str | None, region: str = "US") -> str | None:
    """The national number's digits of a phone (what any written form of it contains)."""
    if not phone:
        return None
    try:
        parsed = phonenumbers.parse(phone, region)
        digits = str(parsed.national_number)
    except phonenumbers.NumberParseException:
        digits = _NON_DIGIT.sub("", phone)
    return digits if len(digits) >= 7 else None


def _mentions_text(value: Any, needles: Sequence[str]) -> ColumnElement[bool]:
    """``value`` (cast to text, lower-cased) contains any of ``needles``."""
    low = func.lower(cast_(value, Text))
    return or_(*[low.contains(n, autoescape=True) for n in needles])


def _audit_about(customer_id: str, fp: _Footprint, needles: Sequence[str]) -> ColumnElement[bool]:
    a = _audit.c
    return or_(
        and_(a.entity == "customer", a.entity_id == customer_id),
        and_(a.entity == "mention", _any(_in(a.entity_id, [str(i) for i in fp.mention_ids]))),
        and_(
            a.entity == "conversation",
            _any(_in(a.entity_id, [str(i) for i in fp.conversation_ids])),
        ),
        and_(a.entity == "reply", _any(_in(a.entity_id, [str(i) for i in fp.reply_ids]))),
        and_(a.detail.is_not(None), _mentions_text(a.detail, needles)),
    )


# ---------------------------------------------------------------------------- export


def export_person(conn: Connection | Engine, customer_id: str) -> dict[str, Any]:
    """Everything held about one customer, JSON-serialisable (GDPR Art. 15).

    Args:
        conn: A connection or an engine.
        customer_id: The brand's id of the customer.

    Returns:
        ``{"format", "exported_at", "customer", "handles", "mentions",
        "link_decisions", "conversations", "surveys", "audit"}``; each mention
        carries its ``enrichments``, ``corrections`` and ``link_decisions``, each
        conversation its ``notes``, ``replies`` and ``escalation_events``.

    Raises:
        NotFoundError: No such customer.
    """
    with using(conn) as c:
        row = _customer_row(c, customer_id)
        pk = int(row.id)
        fp = _footprint(c, pk)
        ids, _ = _identifiers(c, row)
        customer = _row(
            row,
            drop=("id", "consent_contact", "consent_marketing", "consent_profiling"),
        )
        customer["consent"] = {
            "contact": row.consent_contact,
            "marketing": row.consent_marketing,
            "profiling": row.consent_profiling,
            "updated_at": _plain(row.consent_updated_at),
        }
        customer.pop("consent_updated_at", None)
        handles = [
            _row(h, drop=("id", "customer_pk"))
            for h in c.execute(
                select(_handles)
                .where(_handles.c.customer_pk == pk)
                .order_by(_handles.c.platform, _handles.c.handle)
            )
        ]

        def children(
            table: Table, key: Any, ids_: Sequence[int], order: Any
        ) -> dict[int, list[dict[str, Any]]]:
            out: dict[int, list[dict[str, Any]]] = {}
            for part in chunked(ids_, _CHUNK):
                for r in c.execute(select(table).where(key.in_(part)).order_by(order)):
                    out.setdefault(int(r._mapping[key.name]), []).append(_row(r))
            return out

        enrich = children(_enrich, _enrich.c.mention_id, fp.mention_ids, _enrich.c.id)
        corrections = children(
            _corrections, _corrections.c.mention_id, fp.mention_ids, _corrections.c.id
        )
        decisions = children(_decisions, _decisions.c.mention_id, fp.mention_ids, _decisions.c.id)
        mentions: list[dict[str, Any]] = []
        for part in chunked(fp.mention_ids, _CHUNK):
            for m in c.execute(select(_mentions).where(_mentions.c.id.in_(part))):
                item = _row(m)
                item["enrichments"] = enrich.get(int(m.id), [])
                item["corrections"] = corrections.get(int(m.id), [])
                item["link_decisions"] = decisions.get(int(m.id), [])
                mentions.append(item)
        mentions.sort(key=lambda m: (str(m["created_at"]), int(m["id"])))
        own_decisions = [
            _row(d)
            for d in c.execute(
                select(_decisions).where(_decisions.c.customer_pk == pk).order_by(_decisions.c.id)
            )
        ]
        cids = fp.conversation_ids
        notes = children(_notes, _notes.c.conversation_id, cids, _notes.c.id)
        replies = children(_replies, _replies.c.conversation_id, cids, _replies.c.id)
        events = children(_events, _events.c.conversation_id, cids, _events.c.id)
        conversations: list[dict[str, Any]] = []
        for part in chunked(cids, _CHUNK):
            for cv in c.execute(select(_conv).where(_conv.c.id.in_(part))):
                item = _row(cv)
                item["notes"] = notes.get(int(cv.id), [])
                item["replies"] = replies.get(int(cv.id), [])
                item["escalation_events"] = events.get(int(cv.id), [])
                conversations.append(item)
        conversations.sort(key=lambda cv: int(cv["id"]))
        survey_cond = or_(_surveys.c.customer_pk == pk, *_in(_surveys.c.conversation_id, cids))
        surveys = [
            _row(s) for s in c.execute(select(_surveys).where(survey_cond).order_by(_surveys.c.id))
        ]
        audit = [
            _row(a)
            for a in c.execute(
                select(_audit)
                .where(_audit_about(row.customer_id, fp, ids))
                .order_by(_audit.c.at, _audit.c.id)
            )
        ]
    return {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "customer": customer,
        "handles": handles,
        "mentions": mentions,
        "link_decisions": own_decisions,
        "conversations": conversations,
        "surveys": surveys,
        "audit": audit,
    }


# ---------------------------------------------------------------------------- erasure


def erase_person(
    engine: Engine, customer_id: str, actor: str, *, region: str = "US"
) -> ErasureReport:
    """Erase a customer and the personal data about them from every table (GDPR Art. 17).

    See the module documentation for what is removed. Everything happens in
    one transaction, ending with a ``customer.erase`` audit entry that names
    the customer only by :func:`customer_hash`.

    Args:
        engine: The database.
        customer_id: The brand's id of the customer.
        actor: Who erases (kept in the audit entry).
        region: Region (ISO 3166 alpha-2) of the customer's phone number when it
            has no country code; used to find it in quarantined payloads.

    Returns:
        The counts of what was removed.

    Raises:
        NotFoundError: No such customer.
        ValueError: ``actor`` is empty.
    """
    actor = actor.strip()
    if not actor:
        raise ValueError("actor must not be empty")
    hashed = customer_hash(customer_id)
    with engine.begin() as c:
        row = _customer_row(c, customer_id)
        pk = int(row.id)
        fp = _footprint(c, pk)
        needles, _ = _identifiers(c, row)
        phone = _phone_digits(row.phone, region)

        # Audit entries about the person: keep who/what/when, drop the detail.
        scrubbed = 0
        audit_ids = [
            int(r[0])
            for r in c.execute(select(_audit.c.id).where(_audit_about(customer_id, fp, needles)))
        ]
        for part in chunked(audit_ids, _CHUNK):
            scrubbed += c.execute(
                update(_audit).where(_audit.c.id.in_(part)).values(detail={"erased": hashed})
            ).rowcount
            c.execute(
                update(_audit)
                .where(_audit.c.id.in_(part), _audit.c.entity == "customer")
                .values(entity_id=hashed)
            )

        # Quarantined records holding an identifier (a phone in any written form).
        q = _quarantine.c
        held = or_(*[_mentions_text(col, needles) for col in (q.raw, q.origin, q.reason)])
        q_ids = {int(r[0]) for r in c.execute(select(q.id).where(held))}
        if phone:
            tail = phone[-4:]
            for r in c.execute(select(q.id, q.raw).where(q.raw.contains(tail, autoescape=True))):
                if phone in _NON_DIGIT.sub("", str(r.raw or "")):
                    q_ids.add(int(r.id))
        quarantined = 0
        for part in chunked(sorted(q_ids), _CHUNK):
            quarantined += c.execute(delete(_quarantine).where(q.id.in_(part))).rowcount

        surveys = c.execute(
            delete(_surveys).where(
                or_(
                    _surveys.c.customer_pk == pk,
                    *_in(_surveys.c.conversation_id, fp.conversation_ids),
                )
            )
        ).rowcount
        conversations = 0
        for part in chunked(fp.conversation_ids, _CHUNK):
            conversations += c.execute(delete(_conv).where(_conv.c.id.in_(part))).rowcount
        mentions = 0
        rollup.mark_dirty(c, fp.mention_ids, purge=True)  # their days' counts, handles included
        for part in chunked(fp.mention_ids, _CHUNK):
            mentions += c.execute(delete(_mentions).where(_mentions.c.id.in_(part))).rowcount
        # Other people's posts, notes and replies that name them (a brand's reply
        # "@jdoe we're sorry", a note quoting their e-mail): the identifiers are
        # replaced by "[erased]" where they stand; the rest of the text stays.
        named_elsewhere = _scrub_texts(c, needles)
        # Link suggestions naming the customer on mentions that are not theirs.
        named = or_(
            _enrich.c.label == customer_id,
            _mentions_text(_enrich.c.data, [f'"{str(customer_id).lower()}"']),
        )
        link_results = c.execute(delete(_enrich).where(_enrich.c.stage == "links", named)).rowcount

        handles = c.execute(delete(_handles).where(_handles.c.customer_pk == pk)).rowcount
        c.execute(delete(_decisions).where(_decisions.c.customer_pk == pk))
        c.execute(delete(_customers).where(_customers.c.id == pk))

        report = ErasureReport(
            customer_hash=hashed,
            mentions=mentions,
            conversations=conversations,
            surveys=surveys,
            handles=handles,
            link_results=link_results,
            audit_scrubbed=scrubbed,
            quarantine=quarantined,
            texts_scrubbed=named_elsewhere,
        )
        detail = report.as_dict()
        detail.pop("customer_hash")
        record_audit(c, actor, "customer.erase", "customer", hashed, detail)
    return report


# ---------------------------------------------------------------------------- consent


def can_contact(
    conn: Connection | Engine, customer_pk: int, purpose: str = "service"
) -> tuple[bool, str]:
    """Whether a customer may be contacted for a purpose, and why (or why not).

    Args:
        conn: A connection or an engine.
        customer_pk: The customer's row id (``customers.id``).
        purpose: ``service`` (a reply to the customer's own post: always allowed),
            ``survey`` (needs ``consent_contact``) or ``marketing`` (needs
            ``consent_marketing``).

    Returns:
        ``(allowed, reason)``.

    Raises:
        ValueError: An unknown purpose.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}")
    with using(conn) as c:
        row = c.execute(
            select(
                _customers.c.customer_id,
                _customers.c.erased_at,
                _customers.c.consent_contact,
                _customers.c.consent_marketing,
            ).where(_customers.c.id == customer_pk)
        ).first()
    if row is None:
        return False, f"no customer with row id {customer_pk}"
    if row.erased_at is not None:
        return False, f"customer {row.customer_id} was erased"
    if purpose == "service":
        return True, "a service reply to the customer's own post needs no consent"
    flag, what = (
        (row.consent_contact, "contact")
        if purpose == "survey"
        else (row.consent_marketing, "marketing")
    )
    if flag is True:
        return True, f"customer {row.customer_id} gave {what} consent"
    state = "refused or withdrawn" if flag is False else "unknown"
    return False, f"customer {row.customer_id} has not given {what} consent ({state})"
