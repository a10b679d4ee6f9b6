"""The embedded scheduler: the same jobs on timers, in one process (SQLite needs nothing more).

One loop runs each kind of work when it is due: collection of every configured
source (``jobs.collect_every_s``), enrichment of new mentions
(``jobs.enrich_every_s``, then the dashboard's counts), the escalation sweep
(``escalations.sweep_interval_s``) and retention (daily). Work runs one item at a
time, so nothing overlaps, and a failed item is logged and retried at its next
turn without stopping the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import work

__all__ = ["Due", "run_local"]

log = logging.getLogger(__name__)

DAY_S = 24 * 3600.0


@dataclass
class Due:
    """One kind of work and when it runs next (monotonic seconds)."""

    name: str
    every_s: float
    run: Callable[[], dict[str, Any]]
    next_at: float = field(default=0.0)


def _enrich(rt: work.Runtime) -> dict[str, Any]:
    out: dict[str, Any] = rt.pipeline.run(rt.engine).as_dict()
    out["stats"] = work.refresh_stats(rt)  # the dashboard's counts of the new labels
    return out


def _plan(rt: work.Runtime) -> list[Due]:
    s = rt.settings
    plan = [
        Due(f"collect:{source}", s.jobs.collect_every_s, lambda src=source: work.collect(rt, src))
        for source in work.configured_sources(rt)
    ]
    plan.append(Due("enrich", s.jobs.enrich_every_s, lambda: _enrich(rt)))
    plan.append(Due("sweep", s.escalations.sweep_interval_s, lambda: work.sweep(rt)))
    plan.append(Due("retention", DAY_S, lambda: work.retention(rt)))
    return plan


def run_local(
    rt: work.Runtime,
    stop: threading.Event,
    *,
    once: bool = False,
    on_result: Callable[[str, dict[str, Any] | None, BaseException | None], None] | None = None,
) -> list[str]:
    """Run the due work until ``stop`` is set (or one round with ``once``); returns names run."""
    plan = _plan(rt)
    ran: list[str] = []
    while not stop.is_set():
        now = time.monotonic()
        for item in plan:
            if stop.is_set():
                break
            if item.next_at > now:
                continue
            result: dict[str, Any] | None = None
            error: BaseException | None = None
            try:
                result = item.run()
            except Exception as exc:  # noqa: BLE001 - one failure must not stop the others
                error = exc
                log.warning("%s failed: %s", item.name, exc)
            ran.append(item.name)
            if on_result is not None:
                on_result(item.name, result, error)
            item.next_at = time.monotonic() + item.every_s
        if once:
            break
        wait = min(item.next_at for item in plan) - time.monotonic()
        stop.wait(max(0.2, min(wait, 5.0)))
    return ran
