"""The work each job does, independent of how it is scheduled.

Every function here is safe to run again after a crash at any point: enrichment
processes only mentions still lacking a result (each batch commits its results
and vectors together), collection resumes from cursors committed with the data
and deduplicates by ``(source, external_id)``, the sweep is version-guarded and
idempotent at a given time, and retention works in committed batches.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from listenwell import store
from listenwell.config import ENV_CONFIG, Settings, load_settings

__all__ = [
    "Runtime",
    "collect",
    "configured_sources",
    "enrich_finish",
    "enrich_range",
    "pending_ranges",
    "report",
    "retention",
    "runtime",
    "sweep",
]

log = logging.getLogger(__name__)


class Runtime:
    """What a worker process loads once: settings, the engine, the NLP pipeline."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: Engine = store.connect(settings.database_url)
        self._pipeline: Any = None

    @property
    def pipeline(self) -> Any:
        """The enrichment pipeline (models loaded on first use, then kept)."""
        if self._pipeline is None:
            from listenwell.nlp import NlpOptions
            from listenwell.nlp.pipeline import build_pipeline

            options = NlpOptions.from_settings(self.settings)
            self._pipeline = build_pipeline(options, self.settings)
        return self._pipeline

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def runtime(config_path: str | None = None) -> Runtime:
    """The process-wide runtime for ``config_path`` (``None``: ``LISTENWELL_CONFIG`` or the
    default config), made once per config file."""
    return _runtime(config_path or os.environ.get(ENV_CONFIG) or None)


@cache
def _runtime(config_path: str | None) -> Runtime:
    return Runtime(load_settings(Path(config_path) if config_path else None))


def pending_ranges(rt: Runtime, size: int | None = None) -> list[tuple[int, int]]:
    """The per-mention backlog cut into ``[first, end)`` id ranges, one job each."""
    pipeline = rt.pipeline
    first_phase = [s.name for s in (pipeline.phases() or [[]])[0]]
    return store.pending_id_ranges(
        rt.engine,
        first_phase,
        embeddings=pipeline.embedder is not None,
        size=size or rt.settings.jobs.enrich_chunk,
    )


def enrich_range(rt: Runtime, first: int, end: int) -> dict[str, Any]:
    """Run the per-mention stages (phase 0: vectors, language, sentiment, links, intent) on
    the still-pending mentions with ``first <= id < end``."""
    report = rt.pipeline.run(rt.engine, id_range=(first, end), phases=[0])
    out: dict[str, Any] = report.as_dict()
    return out


def first_phase_pending(rt: Runtime) -> int:
    """Mentions still waiting for a phase-0 stage or their vector."""
    _, count = rt.pipeline.pending_by_phase(rt.engine)[0]
    return int(count)


def enrich_finish(rt: Runtime) -> dict[str, Any]:
    """The corpus-level stages (themes), once no per-mention work is pending; then anything
    left over. Returns ``{"waiting": n}`` without doing anything while phase 0 is pending."""
    waiting = first_phase_pending(rt)
    if waiting:
        return {"waiting": waiting}
    out: dict[str, Any] = rt.pipeline.run(rt.engine).as_dict()
    out["stats"] = refresh_stats(rt)  # the dashboard counts the new labels
    return out


def collect(rt: Runtime, source: str) -> dict[str, Any]:
    """One collection pass over ``source`` from its saved cursors."""
    from listenwell.collectors.base import RetryPolicy
    from listenwell.collectors.registry import create
    from listenwell.collectors.runner import run_collector

    collector = create(source, rt.settings, retry=RetryPolicy.from_settings(rt.settings))
    try:
        result = run_collector(rt.engine, collector, should_stop=lambda: False)
    finally:
        collector.close()
    as_dict = getattr(result, "as_dict", None)
    return dict(as_dict()) if callable(as_dict) else {"ok": bool(result.ok)}


def sweep(rt: Runtime, now: datetime | None = None) -> dict[str, Any]:
    """Apply the escalation rules in force to new conversations, run the SLA sweep, and drop
    stale "who has it open" rows."""
    from listenwell.crm.rules import apply_rules, rules_in_force
    from listenwell.store.escalations import sweep as sla_sweep
    from listenwell.store.presence import prune

    when = now or datetime.now(UTC)
    rules = rules_in_force(rt.engine, default_path=rt.settings.escalations.rules_file)
    return {
        "apply": apply_rules(rt.engine, rules, now=when).as_dict(),
        "sweep": sla_sweep(rt.engine, when, rules.policy).as_dict(),
        "rule_version": rules.version,
        "presence_pruned": prune(rt.engine, now=when),
    }


def report(
    rt: Runtime, kind: str, first: date, last: date, fmt: str, output: str
) -> dict[str, Any]:
    """Build the ``kind`` report (feedback, escalations, kpis) and write it to ``output``.

    The file is written beside ``output`` and renamed, so a killed job leaves
    no half-written report; a retry writes it again.
    """
    from listenwell.crm import reports

    engine = rt.engine
    built = reports.build_report(kind, engine, first, last, rt.settings.brand)
    target = Path(output)
    tmp = target.with_name(f".{target.name}.partial")
    size = reports.write_report(built, tmp, fmt)
    tmp.replace(target)
    store.record_audit(
        engine, "system:worker", f"report.{kind}", "file", output, {"format": fmt, "bytes": size}
    )
    return {"kind": kind, "output": output, "bytes": size}


def refresh_stats(rt: Runtime) -> dict[str, Any]:
    """Bring the dashboard's daily counts up to date (:func:`listenwell.store.rollup.refresh`)."""
    from listenwell.store.rollup import refresh
    from listenwell.store.voice import voice_parties

    return refresh(rt.engine, parties=voice_parties(rt.settings.brand)).as_dict()


def retention(rt: Runtime, now: datetime | None = None) -> dict[str, Any]:
    """Apply ``retention.months`` / ``retention.mode``; does nothing when no limit is set."""
    from listenwell.store.retention import apply_retention

    policy = rt.settings.retention
    if policy.months is None:
        return {"skipped": "retention.months is not set"}
    when = now or datetime.now(UTC)
    before = when - timedelta(days=round(30.44 * policy.months))
    return apply_retention(rt.engine, before, policy.mode).as_dict()


def configured_sources(rt: Runtime) -> list[str]:
    """The registered sources whose settings are complete (the others are skipped)."""
    from listenwell.collectors.registry import create, default_registry

    kept = []
    for name in default_registry():
        collector = create(name, rt.settings)
        try:
            if collector.missing() is None:
                kept.append(name)
        finally:
            collector.close()
    return kept
