"""SQLAlchemy 2 table definitions. Alembic migrations in ``migrations/`` create them.

Raw mentions and what the NLP stages derive from them live in separate tables:
a mention row is what the source said, verbatim; an ``enrichments`` row is one
stage's result for one mention, with the model name and version that made it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AuditRow",
    "Base",
    "CalibrationRow",
    "ConversationNoteRow",
    "ConversationRow",
    "CorrectionRow",
    "CursorRow",
    "CustomerRow",
    "EnrichmentRow",
    "EscalationEventRow",
    "HandleRow",
    "LinkDecisionRow",
    "MentionRow",
    "QuarantineRow",
    "ReplyRow",
    "RuleSetRow",
    "SegmentRow",
    "SurveyRow",
    "ThemeEventRow",
    "ThemeRow",
    "UTCDateTime",
    "UserRow",
    "SavedViewRow",
    "PresenceRow",
    "StatsAuthorRow",
    "StatsDailyRow",
    "StatsDirtyRow",
    "StatsStateRow",
    "StatsVoiceRow",
    "metadata",
    "utcnow",
]

# Stable constraint names, so migrations can refer to them on both databases.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# JSON on SQLite, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# 64-bit ids on PostgreSQL; SQLite's INTEGER PRIMARY KEY is already 64-bit and a rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no timezone type, so values are stored there as naive UTC;
    PostgreSQL gets ``timestamptz``. Naive input is taken to be UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base bound to the shared ``metadata``."""

    metadata = metadata


class CustomerRow(Base):
    """A known customer of the brand."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str | None] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(50), index=True)
    segment: Mapped[str | None] = mapped_column(String(100), index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Consent: None = unknown, True = given, False = refused or withdrawn.
    consent_contact: Mapped[bool | None] = mapped_column(Boolean)
    consent_marketing: Mapped[bool | None] = mapped_column(Boolean)
    consent_profiling: Mapped[bool | None] = mapped_column(Boolean)
    consent_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HandleRow(Base):
    """One platform handle of a customer; a handle belongs to at most one customer."""

    __tablename__ = "customer_handles"
    __table_args__ = (UniqueConstraint("platform", "handle"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_pk: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(40))
    # Normalised for matching (lower case, no "@" or "u/"); ``display`` keeps what was given.
    handle: Mapped[str] = mapped_column(String(200))
    display: Mapped[str] = mapped_column(String(200))


class MentionRow(Base):
    """A post, comment or review as the source gave it. Text is stored verbatim."""

    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint("rating IS NULL OR (rating >= 1 AND rating <= 5)", name="rating_range"),
        Index("ix_mentions_created_at", "created_at"),
        Index("ix_mentions_source_created_at", "source", "created_at"),
        Index("ix_mentions_author_handle", "author_handle"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    author_handle: Mapped[str | None] = mapped_column(String(200))
    author_name: Mapped[str | None] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[int | None] = mapped_column(Integer)
    # The external_id, in the same source, of the post this one replies to.
    in_reply_to: Mapped[str | None] = mapped_column(String(200))
    # The record exactly as received (a JSON line, or a CSV row as JSON).
    raw: Mapped[str | None] = mapped_column(Text)
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EnrichmentRow(Base):
    """One NLP stage's result for one mention, kept apart from the raw mention."""

    __tablename__ = "enrichments"
    __table_args__ = (
        UniqueConstraint("mention_id", "stage"),
        # A theme's mentions nearest its centroid first (quotes), read in index order;
        # migration 0009 (it replaced the (stage, label) index, its prefix).
        Index("ix_enrichments_stage_label_score", "stage", "label", "score", "mention_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(40))
    label: Mapped[str | None] = mapped_column(String(200))
    score: Mapped[float | None] = mapped_column(Float)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CursorRow(Base):
    """Where a collector stream stopped; saved in the transaction of the mentions it covers."""

    __tablename__ = "collection_cursors"

    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    # The stream name holds the whole query, which can be long: Text, not a bounded VARCHAR.
    stream: Mapped[str] = mapped_column(Text, primary_key=True, default="")
    value: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuarantineRow(Base):
    """An input record that was not stored, with the raw payload and the reason."""

    __tablename__ = "quarantine"
    __table_args__ = (Index("ix_quarantine_source_received_at", "source", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    origin: Mapped[str | None] = mapped_column(Text)  # file path and line, or API endpoint
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditRow(Base):
    """Who changed what, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str | None] = mapped_column(String(100))
    entity_id: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class ThemeRow(Base):
    """A feedback theme. Its id is stable: refits map old themes to new ones instead of renumbering.

    ``label`` is the automatic label (top terms); ``name`` is what a user called
    it and wins over ``label`` where set. A merged theme keeps its row with
    ``status='merged'`` and ``merged_into`` pointing at the survivor, so old
    references still resolve.
    """

    __tablename__ = "themes"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'merged', 'retired')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    label: Mapped[str] = mapped_column(String(300))
    name: Mapped[str | None] = mapped_column(String(200))
    terms: Mapped[list[Any] | None] = mapped_column(JSONType)
    # How the theme came to be: cluster, user (defined from examples), merge, split.
    origin: Mapped[str] = mapped_column(String(20), default="cluster")
    status: Mapped[str] = mapped_column(String(20), default="active", index=True)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("themes.id", ondelete="SET NULL"))
    # Mean embedding of the theme's mentions (float32 bytes), used to map refits and assign.
    centroid: Mapped[bytes | None] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer, default=0)
    # Mention ids a user gave as examples (user-defined themes).
    examples: Mapped[list[Any] | None] = mapped_column(JSONType)
    fit_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ThemeEventRow(Base):
    """One step of the themes' history: a fit, refit mapping, merge, split, rename or pin."""

    __tablename__ = "theme_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200), default="system")
    fit_id: Mapped[str | None] = mapped_column(String(100))
    from_ids: Mapped[list[Any] | None] = mapped_column(JSONType)
    to_ids: Mapped[list[Any] | None] = mapped_column(JSONType)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class LinkDecisionRow(Base):
    """An agent's decision on a mention-to-customer link; re-runs respect it."""

    __tablename__ = "link_decisions"
    __table_args__ = (
        UniqueConstraint("mention_id", "customer_pk"),
        CheckConstraint("decision IN ('confirmed', 'rejected')", name="decision_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mention_id: Mapped[int] = mapped_column(
        ForeignKey("mentions.id", ondelete="CASCADE"), index=True
    )
    customer_pk: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    decision: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)


class CorrectionRow(Base):
    """An agent's override of a stage's label on one mention (sentiment, themes, intent).

    Every correction is kept (history); the newest per (mention, stage) is the
    one in force. ``model_label`` is what the model said when the agent
    corrected it, so the corrections double as a labelled set for measuring drift.
    """

    __tablename__ = "corrections"
    __table_args__ = (Index("ix_corrections_mention_id_stage", "mention_id", "stage"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(200))
    model_label: Mapped[str | None] = mapped_column(String(200))
    model_name: Mapped[str | None] = mapped_column(String(200))
    model_version: Mapped[str | None] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class CalibrationRow(Base):
    """A workspace's recalibration of one stage's model, fitted on its agents' corrections."""

    __tablename__ = "calibrations"

    stage: Mapped[str] = mapped_column(String(40), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(100), primary_key=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    n_corrections: Mapped[int] = mapped_column(Integer)
    fitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConversationRow(Base):
    """The inbox item of one mention: status, assignee, tags, priority, escalation and SLA clock.

    ``version`` is the optimistic lock: every change must name the version it
    read and bumps it; a change made on an out-of-date version is refused.
    """

    __tablename__ = "conversations"
    __table_args__ = (
        CheckConstraint(
            "status IN ('new', 'open', 'pending', 'resolved', 'closed')", name="status_known"
        ),
        CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name="priority_known"),
        Index("ix_conversations_escalated_status", "escalated", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mention_id: Mapped[int] = mapped_column(
        ForeignKey("mentions.id", ondelete="CASCADE"), unique=True
    )
    customer_pk: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default="new")
    assignee: Mapped[str | None] = mapped_column(String(200), index=True)
    tags: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    priority: Mapped[str] = mapped_column(String(20), default="normal")
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    # 0 none, 1 raised priority, 2 supervisor, 3 manager (automatic upgrades climb this).
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    # Why it escalated: the rules that fired and each condition's contribution.
    escalation: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    rule_version: Mapped[int | None] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Wall-clock seconds spent pending on the customer (the SLA engine turns the pending
    # spells into business time); the SLA clock does not run then.
    paused_s: Mapped[float] = mapped_column(Float, default=0.0)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(200))


class ConversationNoteRow(Base):
    """An internal note on a conversation (never sent to the customer)."""

    __tablename__ = "conversation_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    author: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReplyRow(Base):
    """A reply to a conversation: a draft, on its way, sent (with the platform's id) or failed."""

    __tablename__ = "replies"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'sending', 'sent', 'failed')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    error: Mapped[str | None] = mapped_column(Text)
    platform: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str | None] = mapped_column(String(200))
    template: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EscalationEventRow(Base):
    """One step of a conversation's escalation history: escalated, upgraded, reminded, breached."""

    __tablename__ = "escalation_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(30))
    from_level: Mapped[int | None] = mapped_column(Integer)
    to_level: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[str | None] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200), default="system")
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class RuleSetRow(Base):
    """One saved version of the escalation rules and SLA policies (YAML); the newest is in force."""

    __tablename__ = "rule_sets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)


class SurveyRow(Base):
    """One CSAT or NPS answer, linked to a customer and the conversation it rates where known."""

    __tablename__ = "surveys"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint("kind IN ('csat', 'nps')", name="kind_known"),
        CheckConstraint(
            "(kind = 'csat' AND score BETWEEN 1 AND 5) "
            "OR (kind = 'nps' AND score BETWEEN 0 AND 10)",
            name="score_range",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    customer_pk: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SegmentRow(Base):
    """A rule-based customer segment (its definition is evaluated by queries, not stored lists)."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserRow(Base):
    """A dashboard user: a role and an argon2 password hash (never the password).

    ``failed_attempts`` and ``locked_until`` rate-limit sign-in per account.
    """

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'manager', 'agent', 'analyst')", name="role_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SavedViewRow(Base):
    """A named set of filters a user saved on one dashboard page (e.g. the inbox)."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("owner", "page", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    page: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(100))
    filters: Mapped[dict[str, Any]] = mapped_column(JSONType)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PresenceRow(Base):
    """Who has a conversation open right now (refreshed while they look at it)."""

    __tablename__ = "presence"

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    username: Mapped[str] = mapped_column(String(200), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


# -- The dashboard's rollups (migration 0009, store/rollup.py) -------------------------------
# Counts of the mentions with ids up to the watermark, per UTC day, except the days
# listed in ``stats_dirty``: readers add the mentions past the watermark, the dirty
# days and the agents' corrections live, so every figure equals the live query's.


class StatsDailyRow(Base):
    """Mentions per UTC day, source and model labels (sentiment, theme key)."""

    __tablename__ = "stats_daily"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    source: Mapped[str] = mapped_column(String(40))
    # The model's labels (agents' corrections are applied when read); None = no result.
    sentiment: Mapped[str | None] = mapped_column(String(200))
    theme_key: Mapped[str | None] = mapped_column(String(200))
    mentions: Mapped[int] = mapped_column(Integer)


class StatsAuthorRow(Base):
    """Mentions per UTC day, source and author handle (distinct authors, top authors)."""

    __tablename__ = "stats_authors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    source: Mapped[str] = mapped_column(String(40))
    author_handle: Mapped[str] = mapped_column(String(200))
    mentions: Mapped[int] = mapped_column(Integer)


class StatsVoiceRow(Base):
    """Mentions per UTC day and source naming one share-of-voice party (its keyword set)."""

    __tablename__ = "stats_voice"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    source: Mapped[str] = mapped_column(String(40))
    # store.voice.party_key of the party's keywords (a settings change counts anew).
    party_key: Mapped[str] = mapped_column(String(64))
    mentions: Mapped[int] = mapped_column(Integer)


class StatsDirtyRow(Base):
    """A UTC day whose rollup rows are out of date (read live until the next refresh)."""

    __tablename__ = "stats_dirty"

    day: Mapped[date] = mapped_column(Date, primary_key=True)


class StatsStateRow(Base):
    """The rollups' watermark: mentions with ids up to it are counted (row ``mentions``);
    one row ``voice:<party key>`` per share-of-voice party counted, with its keywords."""

    __tablename__ = "stats_state"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    watermark: Mapped[int] = mapped_column(BigInteger, default=0)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


# Dashboard read paths at 1,000,000 mentions (migration 0007, bench/dashboard_bench.py):
# date-range aggregates read the covering mentions index alone; a stage's labels come
# from the enrichments index; the inbox's orders are index ranges.
Index(
    "ix_mentions_created_at_source_author_handle",
    MentionRow.created_at,
    MentionRow.source,
    MentionRow.author_handle,
)
Index(
    "ix_enrichments_stage_mention_id_label",
    EnrichmentRow.stage,
    EnrichmentRow.mention_id,
    EnrichmentRow.label,
)
Index("ix_conversations_priority_opened_at", ConversationRow.priority, ConversationRow.opened_at)
# Also serves (status, priority) lookups: migration 0010 dropped that index, its prefix.
Index(
    "ix_conversations_status_priority_opened_at",
    ConversationRow.status,
    ConversationRow.priority,
    ConversationRow.opened_at,
)
Index("ix_conversations_opened_at", ConversationRow.opened_at)

# Customer 360 finds a customer's mentions by handle (``source`` and
# ``lower(author_handle)``, store/customer360.py); migration 0008. PostgreSQL only:
# SQLite cannot reflect expression indexes, so the drift test could not compare it.
Index(
    "ix_mentions_source_lower_author_handle",
    MentionRow.source,
    func.lower(MentionRow.author_handle),
).ddl_if(dialect="postgresql")
