"""Collector run history: when each source last ran, what it stored, what went wrong.

One row per collector pass over a source: started when the pass begins (status
``running``), finished with its counts, errors and the rate-limit state the
source last reported. ``listenwell sources status`` reads it together with the
saved cursors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)

from .models import BigId, CursorRow, JSONType, QuarantineRow, UTCDateTime, metadata, utcnow

__all__ = [
    "RunRecord",
    "collector_runs",
    "finish_run",
    "last_runs",
    "list_cursors",
    "quarantined_already",
    "start_run",
]

collector_runs = Table(
    "collector_runs",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("source", String(40), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    # running, ok, error (some streams failed), failed (nothing could be read)
    Column("status", String(20), nullable=False),
    Column("new", Integer, nullable=False, default=0),
    Column("duplicates", Integer, nullable=False, default=0),
    Column("quarantined", Integer, nullable=False, default=0),
    Column("pages", Integer, nullable=False, default=0),
    Column("retries", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    Column("quota", JSONType, nullable=True),
    Index("ix_collector_runs_source_started_at", "source", "started_at"),
)

_cursors = CursorRow.__table__


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One collector pass over a source."""

    id: int
    source: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    new: int
    duplicates: int
    quarantined: int
    pages: int
    retries: int
    error: str | None
    quota: dict[str, Any] | None


def start_run(engine: Engine, source: str, started_at: datetime | None = None) -> int:
    """Record that a pass over ``source`` has begun; returns the run's id."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(collector_runs)
                .values(
                    source=source,
                    started_at=started_at or utcnow(),
                    status="running",
                    new=0,
                    duplicates=0,
                    quarantined=0,
                    pages=0,
                    retries=0,
                )
                .returning(collector_runs.c.id)
            ).scalar_one()
        )


def finish_run(
    engine: Engine,
    run_id: int,
    *,
    status: str,
    new: int = 0,
    duplicates: int = 0,
    quarantined: int = 0,
    pages: int = 0,
    retries: int = 0,
    error: str | None = None,
    quota: dict[str, Any] | None = None,
) -> None:
    """Record the end of a run with its counts, its error (if any) and the source's quota."""
    with engine.begin() as conn:
        conn.execute(
            update(collector_runs)
            .where(collector_runs.c.id == run_id)
            .values(
                finished_at=utcnow(),
                status=status,
                new=new,
                duplicates=duplicates,
                quarantined=quarantined,
                pages=pages,
                retries=retries,
                error=error,
                quota=quota,
            )
        )


def last_runs(engine: Engine) -> dict[str, RunRecord]:
    """The latest run of every source that ever ran, keyed by source."""
    latest = (
        select(collector_runs.c.source, func.max(collector_runs.c.id).label("id"))
        .group_by(collector_runs.c.source)
        .subquery()
    )
    stmt = select(collector_runs).join(latest, latest.c.id == collector_runs.c.id)
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return {row["source"]: RunRecord(**dict(row)) for row in rows}


def list_cursors(engine: Engine, source: str | None = None) -> list[tuple[str, str, str | None]]:
    """Saved collector cursors as ``(source, stream, value)``, sorted."""
    stmt = select(_cursors.c.source, _cursors.c.stream, _cursors.c.value).order_by(
        _cursors.c.source, _cursors.c.stream
    )
    if source is not None:
        stmt = stmt.where(_cursors.c.source == source)
    with engine.connect() as conn:
        return [(r.source, r.stream, r.value) for r in conn.execute(stmt)]


def quarantined_already(engine: Engine, source: str, raws: list[str]) -> set[str]:
    """Which of ``raws`` are already quarantined for ``source`` (a re-read page's bad items)."""
    table = QuarantineRow.__table__
    if not raws:
        return set()
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.raw).where(table.c.source == source, table.c.raw.in_(set(raws)))
        )
        return {r.raw for r in rows}
