"""Feedback themes and their history, link decisions, label corrections, recalibrations.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "themes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("label", sa.String(length=300), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("terms", JSONType, nullable=True),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("merged_into", BigId, nullable=True),
        sa.Column("centroid", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("examples", JSONType, nullable=True),
        sa.Column("fit_id", sa.String(length=100), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'merged', 'retired')", name=op.f("ck_themes_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["merged_into"],
            ["themes.id"],
            name=op.f("fk_themes_merged_into_themes"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_themes")),
    )
    op.create_index(op.f("ix_themes_status"), "themes", ["status"], unique=False)
    op.create_table(
        "theme_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("fit_id", sa.String(length=100), nullable=True),
        sa.Column("from_ids", JSONType, nullable=True),
        sa.Column("to_ids", JSONType, nullable=True),
        sa.Column("detail", JSONType, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_theme_events")),
    )
    op.create_index(op.f("ix_theme_events_at"), "theme_events", ["at"], unique=False)
    op.create_table(
        "link_decisions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("mention_id", BigId, nullable=False),
        sa.Column("customer_pk", BigId, nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("decided_at", When, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "decision IN ('confirmed', 'rejected')",
            name=op.f("ck_link_decisions_decision_known"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.id"],
            name=op.f("fk_link_decisions_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mention_id"],
            ["mentions.id"],
            name=op.f("fk_link_decisions_mention_id_mentions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_decisions")),
        sa.UniqueConstraint(
            "mention_id", "customer_pk", name=op.f("uq_link_decisions_mention_id_customer_pk")
        ),
    )
    op.create_index(
        op.f("ix_link_decisions_customer_pk"), "link_decisions", ["customer_pk"], unique=False
    )
    op.create_index(
        op.f("ix_link_decisions_mention_id"), "link_decisions", ["mention_id"], unique=False
    )
    op.create_table(
        "corrections",
        sa.Column("id", BigId, nullable=False),
        sa.Column("mention_id", BigId, nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("model_label", sa.String(length=200), nullable=True),
        sa.Column("model_name", sa.String(length=200), nullable=True),
        sa.Column("model_version", sa.String(length=100), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["mention_id"],
            ["mentions.id"],
            name=op.f("fk_corrections_mention_id_mentions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
    )
    op.create_index(
        "ix_corrections_mention_id_stage", "corrections", ["mention_id", "stage"], unique=False
    )
    op.create_index(op.f("ix_corrections_created_at"), "corrections", ["created_at"], unique=False)
    op.create_table(
        "calibrations",
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("params", JSONType, nullable=False),
        sa.Column("n_corrections", sa.Integer(), nullable=False),
        sa.Column("fitted_at", When, nullable=False),
        sa.PrimaryKeyConstraint(
            "stage", "model_name", "model_version", name=op.f("pk_calibrations")
        ),
    )


def downgrade() -> None:
    op.drop_table("calibrations")
    op.drop_table("corrections")
    op.drop_table("link_decisions")
    op.drop_table("theme_events")
    op.drop_table("themes")
