"""Small row builders for the CRM store tests (customer 360, surveys, KPIs, segments).

Rows are inserted directly, with controlled times, so each test states exactly
what the database holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert

from listenwell.store.models import (
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
)


def at(day: int, hour: int = 12, minute: int = 0, month: int = 5, year: int = 2024) -> datetime:
    """A UTC time in May 2024 by default."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _id(conn: Connection, table: Any, **values: Any) -> int:
    return int(conn.execute(insert(table).values(**values)).inserted_primary_key[0])


def customer(conn: Connection, customer_id: str, **kw: Any) -> int:
    values: dict[str, Any] = {"customer_id": customer_id, "attributes": {}}
    values.update(kw)
    return _id(conn, CustomerRow.__table__, **values)


def handle(conn: Connection, pk: int, platform: str, name: str) -> int:
    return _id(
        conn,
        HandleRow.__table__,
        customer_pk=pk,
        platform=platform,
        handle=name.lower().lstrip("@"),
        display=name,
    )


_n = {"mention": 0}


def mention(
    conn: Connection,
    when: datetime,
    text: str = "hello",
    source: str = "x",
    author: str | None = None,
) -> int:
    _n["mention"] += 1
    return _id(
        conn,
        MentionRow.__table__,
        source=source,
        external_id=f"m{_n['mention']}",
        created_at=when,
        text=text,
        author_handle=author,
    )


def enrich(conn: Connection, mention_id: int, stage: str, label: str | None, **data: Any) -> None:
    _id(
        conn,
        EnrichmentRow.__table__,
        mention_id=mention_id,
        stage=stage,
        label=label,
        score=0.9,
        data=data or None,
        model_name="test",
        model_version="1",
    )


def correct(conn: Connection, mention_id: int, stage: str, label: str) -> None:
    _id(
        conn,
        CorrectionRow.__table__,
        mention_id=mention_id,
        stage=stage,
        label=label,
        actor="ann",
    )


def decide(conn: Connection, mention_id: int, pk: int, decision: str) -> None:
    _id(
        conn,
        LinkDecisionRow.__table__,
        mention_id=mention_id,
        customer_pk=pk,
        decision=decision,
        actor="ann",
    )


def conversation(
    conn: Connection,
    mention_id: int,
    opened_at: datetime,
    *,
    customer_pk: int | None = None,
    status: str = "new",
    priority: str = "normal",
    **kw: Any,
) -> int:
    values = {
        "mention_id": mention_id,
        "customer_pk": customer_pk,
        "status": status,
        "priority": priority,
        "opened_at": opened_at,
        "tags": [],
        "created_at": opened_at,
        "updated_at": kw.pop("updated_at", opened_at),
    }
    values.update(kw)
    return _id(conn, ConversationRow.__table__, **values)


def reply(conn: Connection, conv_id: int, when: datetime, body: str = "thanks", **kw: Any) -> int:
    values = {
        "conversation_id": conv_id,
        "body": body,
        "status": "sent",
        "platform": "x",
        "actor": "ann",
        "created_at": when,
        "sent_at": when,
    }
    values.update(kw)
    return _id(conn, ReplyRow.__table__, **values)


def note(conn: Connection, conv_id: int, when: datetime, body: str = "a note") -> int:
    return _id(
        conn,
        ConversationNoteRow.__table__,
        conversation_id=conv_id,
        author="ann",
        body=body,
        created_at=when,
    )


def escalation(conn: Connection, conv_id: int, when: datetime, kind: str = "escalated") -> int:
    return _id(
        conn,
        EscalationEventRow.__table__,
        conversation_id=conv_id,
        at=when,
        kind=kind,
        to_level=1,
        priority="high",
    )


def status_change(conn: Connection, conv_id: int, when: datetime, old: str, new: str) -> int:
    return _id(
        conn,
        AuditRow.__table__,
        at=when,
        actor="ann",
        action="conversation.update",
        entity="conversation",
        entity_id=str(conv_id),
        detail={"changes": {"status": [old, new]}},
    )


_s = {"n": 0}


def survey(
    conn: Connection,
    kind: str,
    score: int,
    when: datetime,
    *,
    customer_pk: int | None = None,
    conversation_id: int | None = None,
    comment: str | None = None,
) -> int:
    _s["n"] += 1
    return _id(
        conn,
        SurveyRow.__table__,
        source="test",
        external_id=f"s{_s['n']}",
        kind=kind,
        score=score,
        answered_at=when,
        customer_pk=customer_pk,
        conversation_id=conversation_id,
        comment=comment,
    )
