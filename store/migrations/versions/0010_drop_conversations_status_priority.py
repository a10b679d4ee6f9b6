"""Drop ``ix_conversations_status_priority``: its columns lead ``(status, priority, opened_at)``.

Migration 0007 added ``ix_conversations_status_priority_opened_at`` for the inbox's orders;
every lookup the two-column index served, the three-column one serves as well. Each change
of a conversation's priority paid for both: on the SLA sweep's catch-up pass (78,000
upgrades among 100,000 open conversations, ``bench/sweep_bench.py``) dropping it took the
SQLite write from 1.70 s to 1.45-1.56 s, and PostgreSQL maintains one index entry fewer
per updated row (each of its nine indexes cost about 0.15 s of the 1.5 s ``UPDATE``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

NAME = "ix_conversations_status_priority"


def upgrade() -> None:
    op.drop_index(NAME, table_name="conversations")


def downgrade() -> None:
    op.create_index(NAME, "conversations", ["status", "priority"], unique=False)
