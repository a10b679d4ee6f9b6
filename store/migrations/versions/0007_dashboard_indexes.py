"""Dashboard indexes: covering date-range reads, enrichment labels, inbox orders.

Measured with ``bench/dashboard_bench.py`` at 1,000,000 mentions (see
docs/benchmarks.md):

- ``mentions (created_at, source, author_handle)``: counts, volume per source and
  top authors over a date range read this index alone, never the mention rows.
- ``enrichments (stage, mention_id, label)``: a stage's labels without the result
  rows (index-only scans on PostgreSQL; SQLite uses it once it has statistics).
- ``conversations (priority, opened_at)``, ``(status, priority, opened_at)`` and
  ``(opened_at)``: the inbox's orders (most pressing first, newest first) as index
  ranges instead of a sort of every conversation.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_mentions_created_at_source_author_handle", "mentions",
     ["created_at", "source", "author_handle"]),
    ("ix_enrichments_stage_mention_id_label", "enrichments", ["stage", "mention_id", "label"]),
    ("ix_conversations_priority_opened_at", "conversations", ["priority", "opened_at"]),
    ("ix_conversations_status_priority_opened_at", "conversations",
     ["status", "priority", "opened_at"]),
    ("ix_conversations_opened_at", "conversations", ["opened_at"]),
]  # fmt: skip


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
