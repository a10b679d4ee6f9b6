"""Links between mentions and customers: agents' decisions, and the link in force per mention.

The ``links`` NLP stage (``listenwell.nlp.linking``) stores one ``enrichments``
row per mention under the stage name :data:`LINK_STAGE`: ``label`` is the best
candidate's ``customer_id``, ``score`` its confidence, and ``data`` holds
``customer_pk``, ``strength`` (``"strong"`` or ``"weak"``), ``evidence`` and
``suggestions``. Only a ``strong`` result is a link; a ``weak`` one (a fuzzy
name match alone, or two customers with strong evidence at once) is a
suggestion for an agent and is never exported as a link.

Agents confirm or reject a link with :func:`decide_link`. A decision is kept
in ``link_decisions`` (one row per mention and customer; a later decision on
the same pair replaces the earlier one) and written to the audit log in the
same transaction. The stored ``links`` result of that mention is deleted at
the same time, so the next ``listenwell enrich`` recomputes that one mention
with the decision applied.

:func:`effective_links` is what exports read: per mention, the newest
confirmed decision wins (confidence 1.0, evidence ``agent``); otherwise a
strong ``links`` result counts unless an agent rejected that customer for that
mention; erased customers are never linked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .engine import using
from .enrich import EnrichmentResult
from .errors import NotFoundError
from .models import (
    ConversationRow,
    CustomerRow,
    EnrichmentRow,
    HandleRow,
    LinkDecisionRow,
    MentionRow,
    utcnow,
)
from .writes import chunked, record_audit

__all__ = [
    "DECISIONS",
    "LINK_STAGE",
    "CustomerCard",
    "EffectiveLink",
    "LinkDecision",
    "customer_cards",
    "decide_link",
    "effective_links",
    "evidence_text",
    "linker_result",
    "list_decisions",
]

LINK_STAGE = "links"
"""The stage name the linker's results are stored under (``enrichments.stage``)."""

DECISIONS = ("confirmed", "rejected")
"""The decisions an agent can take on a link."""

_IN_CHUNK = 500  # ids per IN (...) clause

_customers = cast(Table, CustomerRow.__table__)
_handles = cast(Table, HandleRow.__table__)
_mentions = cast(Table, MentionRow.__table__)
_decisions = cast(Table, LinkDecisionRow.__table__)
_enrichments = cast(Table, EnrichmentRow.__table__)


@dataclass(frozen=True, slots=True)
class CustomerCard:
    """What matching needs to know about one customer.

    Attributes:
        pk: The row id (``customers.id``).
        customer_id: The brand's own id.
        name: Full name as stored.
        email: E-mail as stored.
        phone: Phone number as stored (any formatting).
        handles: ``(platform, handle)`` pairs, handles normalised (lower case,
            no ``@`` or ``u/``).
        attributes: The extra columns of the customer import (order numbers,
            account numbers, country, ...).
        erased: Whether the customer was erased (such customers are never linked).
    """

    pk: int
    customer_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    handles: tuple[tuple[str, str], ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)
    erased: bool = False


@dataclass(frozen=True, slots=True)
class LinkDecision:
    """An agent's decision on one mention-to-customer link."""

    mention_id: int
    customer_pk: int
    customer_id: str
    decision: str
    actor: str
    decided_at: datetime
    note: str | None = None


@dataclass(frozen=True, slots=True)
class EffectiveLink:
    """The link in force for one mention, as exports show it.

    Attributes:
        customer_id: The linked customer's id.
        confidence: 1.0 for a confirmed link, else the linker's confidence.
        evidence_text: One line, e.g. ``handle x:@jdoe (0.95); email j***e@example.com (0.97)``.
    """

    customer_id: str
    confidence: float
    evidence_text: str


def customer_cards(
    conn: Connection | Engine, *, include_erased: bool = False
) -> list[CustomerCard]:
    """Every customer with their handles, for building a matching index.

    Args:
        conn: A connection or an engine.
        include_erased: Also return erased customers (flagged ``erased``).

    Returns:
        The customers in ``customer_id`` order.
    """
    stmt = select(
        _customers.c.id,
        _customers.c.customer_id,
        _customers.c.name,
        _customers.c.email,
        _customers.c.phone,
        _customers.c.attributes,
        _customers.c.erased_at,
    ).order_by(_customers.c.customer_id)
    if not include_erased:
        stmt = stmt.where(_customers.c.erased_at.is_(None))
    with using(conn) as c:
        rows = c.execute(stmt).all()
        handles: dict[int, list[tuple[str, str]]] = {}
        for pk, platform, handle in c.execute(
            select(_handles.c.customer_pk, _handles.c.platform, _handles.c.handle).order_by(
                _handles.c.id
            )
        ):
            handles.setdefault(pk, []).append((platform, handle))
    return [
        CustomerCard(
            pk=r.id,
            customer_id=r.customer_id,
            name=r.name,
            email=r.email,
            phone=r.phone,
            handles=tuple(handles.get(r.id, ())),
            attributes=dict(r.attributes or {}),
            erased=r.erased_at is not None,
        )
        for r in rows
    ]


def decide_link(
    engine: Engine,
    mention_id: int,
    customer_id: str,
    decision: str,
    actor: str,
    note: str | None = None,
) -> LinkDecision:
    """Record an agent's decision on linking a mention to a customer.

    The decision replaces any earlier one on the same mention and customer; it
    is written with an audit-log entry (``link.confirmed`` or ``link.rejected``)
    in one transaction, and the mention's stored ``links`` result is deleted so
    that the next enrichment run recomputes it with the decision applied.

    Args:
        engine: The database.
        mention_id: The mention's id (``mentions.id``).
        customer_id: The brand's id of the customer.
        decision: ``"confirmed"`` or ``"rejected"``.
        actor: Who decided (kept with the decision and in the audit log).
        note: Why, optionally.

    Returns:
        The stored decision.

    Raises:
        ValueError: ``decision`` is unknown or ``actor`` is empty.
        NotFoundError: No such mention, no such customer, or the customer was erased.
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    actor = actor.strip()
    if not actor:
        raise ValueError("actor must not be empty")
    now = utcnow()
    with engine.begin() as conn:
        if conn.execute(select(_mentions.c.id).where(_mentions.c.id == mention_id)).first() is None:
            raise NotFoundError(f"no mention with id {mention_id}")
        row = conn.execute(
            select(_customers.c.id, _customers.c.erased_at).where(
                _customers.c.customer_id == customer_id
            )
        ).first()
        if row is None:
            raise NotFoundError(f"no customer with id {customer_id!r}")
        if row.erased_at is not None:
            raise NotFoundError(f"customer {customer_id!r} was erased and cannot be linked")
        values = {
            "mention_id": mention_id,
            "customer_pk": row.id,
            "decision": decision,
            "actor": actor,
            "decided_at": now,
            "note": note,
        }
        ins: Any = (
            postgresql.insert(_decisions)
            if conn.dialect.name == "postgresql"
            else sqlite.insert(_decisions)
        )
        conn.execute(
            ins.values(**values).on_conflict_do_update(
                index_elements=["mention_id", "customer_pk"],
                set_={k: values[k] for k in ("decision", "actor", "decided_at", "note")},
            )
        )
        conn.execute(
            delete(_enrichments).where(
                _enrichments.c.mention_id == mention_id, _enrichments.c.stage == LINK_STAGE
            )
        )
        # The mention's conversation follows the decision at once (canned replies and the
        # customer 360 read it), without waiting for the next enrichment run.
        conv = cast(Table, ConversationRow.__table__)
        if decision == "confirmed":
            conn.execute(
                update(conv).where(conv.c.mention_id == mention_id).values(customer_pk=row.id)
            )
        else:
            conn.execute(
                update(conv)
                .where(conv.c.mention_id == mention_id, conv.c.customer_pk == row.id)
                .values(customer_pk=None)
            )
        record_audit(
            conn,
            actor,
            f"link.{decision}",
            "mention",
            str(mention_id),
            {"customer_id": customer_id, "note": note},
        )
    return LinkDecision(
        mention_id=mention_id,
        customer_pk=int(row.id),
        customer_id=customer_id,
        decision=decision,
        actor=actor,
        decided_at=now,
        note=note,
    )


def list_decisions(
    conn: Connection | Engine,
    mention_id: int | None = None,
    *,
    mention_ids: Iterable[int] | None = None,
    limit: int | None = None,
) -> list[LinkDecision]:
    """Agents' link decisions, newest first.

    Args:
        conn: A connection or an engine.
        mention_id: Only the decisions on this mention.
        mention_ids: Only the decisions on these mentions.
        limit: At most this many.

    Returns:
        The decisions, newest first (ties by id, newest first).
    """
    base = (
        select(
            _decisions.c.mention_id,
            _decisions.c.customer_pk,
            _customers.c.customer_id,
            _decisions.c.decision,
            _decisions.c.actor,
            _decisions.c.decided_at,
            _decisions.c.note,
        )
        .join(_customers, _customers.c.id == _decisions.c.customer_pk)
        .order_by(_decisions.c.decided_at.desc(), _decisions.c.id.desc())
    )
    if mention_id is not None:
        base = base.where(_decisions.c.mention_id == mention_id)
    stmts = [base]
    if mention_ids is not None:
        stmts = [
            base.where(_decisions.c.mention_id.in_(chunk))
            for chunk in chunked(sorted(set(mention_ids)), _IN_CHUNK)
        ]
    out: list[LinkDecision] = []
    with using(conn) as c:
        for stmt in stmts:
            if limit is not None:
                stmt = stmt.limit(max(0, limit - len(out)))
            out.extend(
                LinkDecision(
                    mention_id=r.mention_id,
                    customer_pk=r.customer_pk,
                    customer_id=r.customer_id,
                    decision=r.decision,
                    actor=r.actor,
                    decided_at=r.decided_at,
                    note=r.note,
                )
                for r in c.execute(stmt)
            )
    if mention_ids is not None:
        out.sort(key=lambda d: d.decided_at, reverse=True)
    return out


def linker_result(conn: Connection | Engine, mention_id: int) -> EnrichmentResult | None:
    """The ``links`` stage's stored result for one mention, if it has one."""
    stmt = select(_enrichments).where(
        _enrichments.c.mention_id == mention_id, _enrichments.c.stage == LINK_STAGE
    )
    with using(conn) as c:
        r = c.execute(stmt).first()
    if r is None:
        return None
    return EnrichmentResult(
        mention_id=r.mention_id,
        stage=r.stage,
        label=r.label,
        score=r.score,
        model_name=r.model_name,
        model_version=r.model_version,
        data=dict(r.data or {}),
    )


def evidence_text(evidence: Sequence[dict[str, Any]]) -> str:
    """One line describing a link's evidence: ``kind value (weight)`` joined by ``; ``.

    Args:
        evidence: The ``evidence`` list of a ``links`` result.
    """
    parts = []
    for item in evidence:
        kind = str(item.get("kind", "?"))
        value = item.get("value")
        weight = item.get("weight")
        text = f"{kind} {value}" if value not in (None, "") else kind
        if isinstance(weight, int | float):
            text += f" ({weight:.2f})"
        parts.append(text)
    return "; ".join(parts)


def effective_links(
    conn: Connection | Engine, mention_ids: Iterable[int]
) -> dict[int, EffectiveLink]:
    """The link in force for each of ``mention_ids`` (mentions without one are left out).

    Per mention: the newest ``confirmed`` decision wins (confidence 1.0,
    evidence ``agent <actor>``); otherwise the ``links`` result counts only if
    its ``strength`` is ``"strong"`` and no agent rejected that customer for
    that mention. Erased customers are never linked, whatever was decided.

    Args:
        conn: A connection or an engine.
        mention_ids: The mentions to look up (any number; queried in chunks).

    Returns:
        ``{mention_id: EffectiveLink}``.
    """
    ids = sorted(set(mention_ids))
    out: dict[int, EffectiveLink] = {}
    if not ids:
        return out
    with using(conn) as c:
        for chunk in chunked(ids, _IN_CHUNK):
            decided: dict[int, list[Any]] = {}
            for r in c.execute(
                select(
                    _decisions.c.mention_id,
                    _decisions.c.customer_pk,
                    _decisions.c.decision,
                    _decisions.c.actor,
                    _decisions.c.note,
                    _customers.c.customer_id,
                    _customers.c.erased_at,
                )
                .join(_customers, _customers.c.id == _decisions.c.customer_pk)
                .where(_decisions.c.mention_id.in_(chunk))
                .order_by(_decisions.c.decided_at.desc(), _decisions.c.id.desc())
            ):
                decided.setdefault(r.mention_id, []).append(r)
            results = c.execute(
                select(
                    _enrichments.c.mention_id,
                    _enrichments.c.label,
                    _enrichments.c.score,
                    _enrichments.c.data,
                    _customers.c.id.label("pk"),
                    _customers.c.erased_at,
                )
                .join(_customers, _customers.c.customer_id == _enrichments.c.label)
                .where(
                    _enrichments.c.mention_id.in_(chunk),
                    _enrichments.c.stage == LINK_STAGE,
                    _enrichments.c.label.is_not(None),
                )
            ).all()
            model = {r.mention_id: r for r in results}
            for mid in chunk:
                link = _effective(decided.get(mid, []), model.get(mid))
                if link is not None:
                    out[mid] = link
    return out


def _effective(decisions: list[Any], result: Any) -> EffectiveLink | None:
    for d in decisions:  # newest first
        if d.decision == "confirmed" and d.erased_at is None:
            text = f"agent {d.actor} (confirmed)"
            if d.note:
                text += f": {d.note}"
            return EffectiveLink(customer_id=d.customer_id, confidence=1.0, evidence_text=text)
    if result is None or result.erased_at is not None:
        return None
    data = result.data if isinstance(result.data, dict) else {}
    if data.get("strength") != "strong":
        return None
    rejected = {d.customer_pk for d in decisions if d.decision == "rejected"}
    if result.pk in rejected:
        return None
    evidence = data.get("evidence")
    return EffectiveLink(
        customer_id=str(result.label),
        confidence=float(result.score) if result.score is not None else 0.0,
        evidence_text=evidence_text(evidence if isinstance(evidence, list) else []),
    )
