"""Retention: delete or anonymise mentions older than a cut-off, in bounded batches.

``delete`` removes the mention and everything derived from it (enrichments,
embeddings, conversations and their notes and replies, through the foreign
keys' ``ON DELETE CASCADE``). ``anonymise`` keeps the row and its labels, so
trends and KPIs over old periods stay right, but blanks what identifies or
quotes a person: the text, the author, the URL and the raw payload, and drops
the vector (it encodes the text). Each batch is its own transaction, so a
killed run keeps what it finished and the next run goes on from there; both
modes are idempotent. The run is audit-logged with its counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

from sqlalchemy import Engine, Table, and_, delete, select, update

from . import rollup
from .embeddings import embeddings as _embeddings
from .models import MentionRow
from .writes import record_audit

__all__ = ["ANONYMISED_TEXT", "RetentionReport", "apply_retention"]

ANONYMISED_TEXT = "[removed by the retention policy]"
_M = cast(Table, MentionRow.__table__)
_BATCH = 5_000


@dataclass(frozen=True)
class RetentionReport:
    """What one retention run changed."""

    mode: str
    before: datetime
    mentions: int

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {"mode": self.mode, "before": self.before.isoformat(), "mentions": self.mentions}


def apply_retention(
    engine: Engine,
    before: datetime,
    mode: Literal["delete", "anonymise"],
    *,
    actor: str = "system:retention",
    batch_size: int = _BATCH,
) -> RetentionReport:
    """Delete or anonymise every mention created before ``before`` (timezone-aware)."""
    if before.tzinfo is None:
        raise ValueError("before must be timezone-aware")
    if mode not in ("delete", "anonymise"):
        raise ValueError(f"unknown retention mode {mode!r}")
    old = _M.c.created_at < before
    if mode == "anonymise":
        old = and_(old, _M.c.text != ANONYMISED_TEXT)
    done = 0
    while True:
        with engine.begin() as conn:
            ids = (
                conn.execute(select(_M.c.id).where(old).order_by(_M.c.id).limit(batch_size))
                .scalars()
                .all()
            )
            if not ids:
                break
            rollup.mark_dirty(conn, ids, purge=True)  # their days' counts, handles included
            if mode == "delete":
                conn.execute(delete(_M).where(_M.c.id.in_(ids)))
            else:
                conn.execute(
                    update(_M)
                    .where(_M.c.id.in_(ids))
                    .values(
                        text=ANONYMISED_TEXT,
                        author_handle=None,
                        author_name=None,
                        url=None,
                        raw=None,
                    )
                )
                conn.execute(delete(_embeddings).where(_embeddings.c.mention_id.in_(ids)))
            done += len(ids)
    report = RetentionReport(mode, before, done)
    record_audit(engine, actor, "retention.apply", "mentions", None, report.as_dict())
    return report
