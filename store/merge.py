"""Changes to one customer record made from the dashboard: merging duplicates, setting consent.

**Merging** (:func:`merge_customers`) folds a *duplicate* customer into a
*survivor*, in one transaction:

* the duplicate's handles, conversations and survey answers move to the survivor;
* agents' link decisions move too; where both customers have a decision on
  the same mention, the newer one is kept (as a later decision on a pair
  replaces an earlier one);
* ``links`` results that name the duplicate (as the link or as a suggestion)
  are rewritten to name the survivor, so linked mentions stay linked without
  a new ``listenwell enrich``;
* the profile keeps the survivor's values; a blank name, e-mail, phone or
  segment is filled from the duplicate; attributes are merged with the
  survivor's winning; consent is the more careful of the two: refused if
  either refused, else given if either gave it, else unknown;
* the duplicate row is deleted and one ``customer.merge`` audit entry is written.

**Consent** (:func:`set_consent`) changes the contact, marketing and
profiling flags (given, refused or unknown), with a ``customer.consent``
audit entry listing what changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, cast

from sqlalchemy import Connection, Engine, Row, Table, Text, delete, or_, select, update
from sqlalchemy import cast as cast_

from .engine import writing
from .errors import NotFoundError, StoreError
from .models import (
    ConversationRow,
    CustomerRow,
    EnrichmentRow,
    HandleRow,
    LinkDecisionRow,
    SurveyRow,
    utcnow,
)
from .writes import record_audit

__all__ = [
    "CONSENT_PURPOSES",
    "MergeError",
    "MergeReport",
    "merge_customers",
    "set_consent",
]

CONSENT_PURPOSES = ("contact", "marketing", "profiling")
"""The consent flags a customer has (``customers.consent_<purpose>``)."""

_PROFILE = ("name", "email", "phone", "segment")
_LINK_STAGE = "links"

_customers = cast(Table, CustomerRow.__table__)
_handles = cast(Table, HandleRow.__table__)
_decisions = cast(Table, LinkDecisionRow.__table__)
_conv = cast(Table, ConversationRow.__table__)
_surveys = cast(Table, SurveyRow.__table__)
_enrich = cast(Table, EnrichmentRow.__table__)


class MergeError(StoreError):
    """Two customers that cannot be merged (the same customer, or an erased one)."""


@dataclass(frozen=True, slots=True)
class MergeReport:
    """What :func:`merge_customers` moved.

    Attributes:
        survivor_id: The customer kept.
        duplicate_id: The customer folded into it (now deleted).
        handles: Handles moved.
        conversations: Conversations moved.
        surveys: Survey answers moved.
        link_decisions: Agents' link decisions moved.
        link_decisions_dropped: Decisions dropped because the other customer had a
            newer one on the same mention.
        link_results: ``links`` results rewritten to name the survivor.
        filled: Profile fields the survivor lacked, filled from the duplicate.
    """

    survivor_id: str
    duplicate_id: str
    handles: int = 0
    conversations: int = 0
    surveys: int = 0
    link_decisions: int = 0
    link_decisions_dropped: int = 0
    link_results: int = 0
    filled: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        out = asdict(self)
        out["filled"] = list(self.filled)
        return out


def _check_actor(actor: str) -> str:
    actor = actor.strip()
    if not actor:
        raise ValueError("actor must not be empty")
    return actor


def _live_row(c: Connection, customer_id: str, *, lock: bool = False) -> Row[Any]:
    stmt = select(_customers).where(_customers.c.customer_id == customer_id)
    if lock:
        stmt = stmt.with_for_update()
    row = c.execute(stmt).first()
    if row is None:
        raise NotFoundError(f"no customer with id {customer_id!r}")
    if row.erased_at is not None:
        raise MergeError(f"customer {customer_id!r} was erased")
    return row


def _careful(a: bool | None, b: bool | None) -> bool | None:
    """Refused if either refused, else given if either gave it, else unknown."""
    if a is False or b is False:
        return False
    if a is True or b is True:
        return True
    return None


def _move_decisions(c: Connection, dup_pk: int, surv_pk: int) -> tuple[int, int]:
    """Move the duplicate's link decisions to the survivor; the newer wins on a clash."""
    d = _decisions.c
    theirs = c.execute(
        select(d.id, d.mention_id, d.decided_at).where(d.customer_pk == dup_pk)
    ).all()
    if not theirs:
        return 0, 0
    ours = {
        int(r.mention_id): r
        for r in c.execute(
            select(d.id, d.mention_id, d.decided_at).where(
                d.customer_pk == surv_pk, d.mention_id.in_([int(r.mention_id) for r in theirs])
            )
        )
    }
    moved = dropped = 0
    for r in theirs:
        clash = ours.get(int(r.mention_id))
        if clash is not None:
            if r.decided_at > clash.decided_at:
                c.execute(delete(_decisions).where(d.id == clash.id))
            else:
                c.execute(delete(_decisions).where(d.id == r.id))
                dropped += 1
                continue
            dropped += 1
        c.execute(update(_decisions).where(d.id == r.id).values(customer_pk=surv_pk))
        moved += 1
    return moved, dropped


def _relabel_links(c: Connection, dup: Row[Any], surv: Row[Any]) -> int:
    """Rewrite ``links`` results naming the duplicate (link or suggestion) to the survivor."""
    dup_id, surv_id = str(dup.customer_id), str(surv.customer_id)
    text = cast_(_enrich.c.data, Text)
    needles = {dup_id, json.dumps(dup_id)[1:-1]}
    rows = c.execute(
        select(_enrich.c.id, _enrich.c.label, _enrich.c.data).where(
            _enrich.c.stage == _LINK_STAGE,
            or_(
                _enrich.c.label == dup_id,
                *[text.contains(n, autoescape=True) for n in needles],
            ),
        )
    ).all()
    changed = 0
    for r in rows:
        data = dict(r.data or {})
        label = r.label
        touched = False
        if label == dup_id:
            label = surv_id
            data["customer_pk"] = int(surv.id)
            touched = True
        suggestions: list[Any] = []
        seen: set[str] = set()
        for s in data.get("suggestions") or []:
            if isinstance(s, dict) and s.get("customer_id") == dup_id:
                s = {**s, "customer_id": surv_id, "customer_pk": int(surv.id)}
                touched = True
            sid = s.get("customer_id") if isinstance(s, dict) else None
            if sid is not None and (sid == label or sid in seen):
                touched = True  # the survivor is the link itself, or already suggested
                continue
            if sid is not None:
                seen.add(str(sid))
            suggestions.append(s)
        if not touched:
            continue
        if "suggestions" in data:
            data["suggestions"] = suggestions
        c.execute(update(_enrich).where(_enrich.c.id == r.id).values(label=label, data=data))
        changed += 1
    return changed


def merge_customers(
    engine: Engine | Connection, survivor_id: str, duplicate_id: str, *, actor: str
) -> MergeReport:
    """Fold the customer ``duplicate_id`` into ``survivor_id`` (see the module documentation).

    Args:
        engine: The database (or a connection inside the caller's transaction).
        survivor_id: The brand's id of the customer that is kept.
        duplicate_id: The brand's id of the customer that is folded in and deleted.
        actor: Who merges (kept in the audit entry).

    Returns:
        What was moved.

    Raises:
        NotFoundError: Either customer does not exist.
        MergeError: The two ids are the same, or either customer was erased.
        ValueError: ``actor`` is empty.
    """
    actor = _check_actor(actor)
    if survivor_id == duplicate_id:
        raise MergeError("a customer cannot be merged into itself")
    with writing(engine) as c:
        surv = _live_row(c, survivor_id, lock=True)
        dup = _live_row(c, duplicate_id, lock=True)
        surv_pk, dup_pk = int(surv.id), int(dup.id)
        handles = c.execute(
            update(_handles).where(_handles.c.customer_pk == dup_pk).values(customer_pk=surv_pk)
        ).rowcount
        conversations = c.execute(
            update(_conv).where(_conv.c.customer_pk == dup_pk).values(customer_pk=surv_pk)
        ).rowcount
        surveys = c.execute(
            update(_surveys).where(_surveys.c.customer_pk == dup_pk).values(customer_pk=surv_pk)
        ).rowcount
        moved, dropped = _move_decisions(c, dup_pk, surv_pk)
        link_results = _relabel_links(c, dup, surv)

        values: dict[str, Any] = {}
        filled: list[str] = []
        for name in _PROFILE:
            mine, theirs = getattr(surv, name), getattr(dup, name)
            if (
                (mine is None or not str(mine).strip())
                and theirs is not None
                and str(theirs).strip()
            ):
                values[name] = theirs
                filled.append(name)
        values["attributes"] = {**dict(dup.attributes or {}), **dict(surv.attributes or {})}
        for purpose in CONSENT_PURPOSES:
            col = f"consent_{purpose}"
            values[col] = _careful(getattr(surv, col), getattr(dup, col))
        stamps = [t for t in (surv.consent_updated_at, dup.consent_updated_at) if t is not None]
        values["consent_updated_at"] = max(stamps) if stamps else None
        created = [t for t in (surv.created_at, dup.created_at) if t is not None]
        if created:
            values["created_at"] = min(created)
        values["updated_at"] = utcnow()
        # Nothing points at the duplicate any more: it goes before the survivor is updated.
        c.execute(delete(_customers).where(_customers.c.id == dup_pk))
        c.execute(update(_customers).where(_customers.c.id == surv_pk).values(**values))
        report = MergeReport(
            survivor_id=survivor_id,
            duplicate_id=duplicate_id,
            handles=int(handles),
            conversations=int(conversations),
            surveys=int(surveys),
            link_decisions=moved,
            link_decisions_dropped=dropped,
            link_results=link_results,
            filled=tuple(filled),
        )
        record_audit(c, actor, "customer.merge", "customer", survivor_id, report.as_dict())
    return report


def set_consent(
    engine: Engine | Connection,
    customer_id: str,
    consent: Mapping[str, bool | None],
    *,
    actor: str,
) -> dict[str, tuple[bool | None, bool | None]]:
    """Set a customer's consent flags: ``True`` given, ``False`` refused, ``None`` unknown.

    Flags not named in ``consent`` keep their value. When any changes,
    ``consent_updated_at`` is set to now and a ``customer.consent`` audit entry
    records each change as ``[old, new]``.

    Args:
        engine: The database (or a connection inside the caller's transaction).
        customer_id: The brand's id of the customer.
        consent: ``{purpose: value}`` for purposes in :data:`CONSENT_PURPOSES`.
        actor: Who changes it (kept in the audit entry).

    Returns:
        ``{purpose: (old, new)}`` for the flags that changed (empty: nothing changed).

    Raises:
        NotFoundError: No such customer, or the customer was erased.
        ValueError: An unknown purpose, a value that is not True/False/None, or an empty actor.
    """
    actor = _check_actor(actor)
    for purpose, value in consent.items():
        if purpose not in CONSENT_PURPOSES:
            raise ValueError(
                f"unknown consent {purpose!r}; choose from {', '.join(CONSENT_PURPOSES)}"
            )
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"consent {purpose} must be True, False or None")
    with writing(engine) as c:
        row = c.execute(
            select(_customers).where(_customers.c.customer_id == customer_id).with_for_update()
        ).first()
        if row is None or row.erased_at is not None:
            raise NotFoundError(f"no customer with id {customer_id!r}")
        changes: dict[str, tuple[bool | None, bool | None]] = {}
        for purpose, value in consent.items():
            old = getattr(row, f"consent_{purpose}")
            if old != value:
                changes[purpose] = (old, value)
        if changes:
            c.execute(
                update(_customers)
                .where(_customers.c.id == row.id)
                .values(
                    consent_updated_at=utcnow(),
                    **{f"consent_{p}": new for p, (_, new) in changes.items()},
                )
            )
            record_audit(
                c,
                actor,
                "customer.consent",
                "customer",
                customer_id,
                {"changes": {p: [old, new] for p, (old, new) in changes.items()}},
            )
    return changes
