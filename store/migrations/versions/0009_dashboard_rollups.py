"""Dashboard rollups: mentions per day (source, labels), per day and author, per day and
share-of-voice party.

At 10,000,000 mentions the overview, themes and reports pages spent 8-20 s cold
scanning the 90-day window (``bench/dashboard_bench.py --rows 10000000``). These
tables hold the counts up to a watermark mention id; ``store/rollup.py`` keeps
them and reads them together with what is newer, so the figures stay exact.

The tables start empty, with no watermark (every figure is read live, as
before); ``listenwell db refresh-stats``, ``listenwell enrich`` or the workers'
periodic job fills them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    # A theme's quotes (highest score first) walk this index and stop early instead of
    # sorting every mention of the theme (1.7 s cold for one theme at 10M mentions).
    op.create_index(
        "ix_enrichments_stage_label_score",
        "enrichments",
        ["stage", "label", "score", "mention_id"],
        unique=False,
    )
    op.drop_index("ix_enrichments_stage_label", table_name="enrichments")
    op.create_table(
        "stats_daily",
        sa.Column("id", _ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("sentiment", sa.String(length=200), nullable=True),
        sa.Column("theme_key", sa.String(length=200), nullable=True),
        sa.Column("mentions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_daily")),
    )
    op.create_index(op.f("ix_stats_daily_day"), "stats_daily", ["day"], unique=False)
    op.create_table(
        "stats_authors",
        sa.Column("id", _ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("author_handle", sa.String(length=200), nullable=False),
        sa.Column("mentions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_authors")),
    )
    op.create_index(op.f("ix_stats_authors_day"), "stats_authors", ["day"], unique=False)
    op.create_table(
        "stats_voice",
        sa.Column("id", _ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("party_key", sa.String(length=64), nullable=False),
        sa.Column("mentions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_voice")),
    )
    op.create_index(op.f("ix_stats_voice_day"), "stats_voice", ["day"], unique=False)
    op.create_table(
        "stats_dirty",
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_stats_dirty")),
    )
    op.create_table(
        "stats_state",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", _JSON, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stats_state")),
    )


def downgrade() -> None:
    op.create_index("ix_enrichments_stage_label", "enrichments", ["stage", "label"], unique=False)
    op.drop_index("ix_enrichments_stage_label_score", table_name="enrichments")
    op.drop_table("stats_state")
    op.drop_table("stats_dirty")
    op.drop_index(op.f("ix_stats_voice_day"), table_name="stats_voice")
    op.drop_table("stats_voice")
    op.drop_index(op.f("ix_stats_authors_day"), table_name="stats_authors")
    op.drop_table("stats_authors")
    op.drop_index(op.f("ix_stats_daily_day"), table_name="stats_daily")
    op.drop_table("stats_daily")
