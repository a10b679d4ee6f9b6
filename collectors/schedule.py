"""Collect on a schedule: one loop per source, so runs of a source never overlap.

Each source gets its own thread that runs a pass, then waits for the next tick
of its interval. A pass that outlasts the interval makes the loop skip the
ticks it missed instead of queueing them (no overlap, no burst). Setting the
``stop`` event ends every loop after the page in progress.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence

__all__ = ["parse_interval", "run_every"]

log = logging.getLogger(__name__)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

#: ``run_once(source, should_stop)``: one pass over ``source``.
RunOnce = Callable[[str, Callable[[], bool]], None]


def parse_interval(text: str) -> float:
    """Parse ``90s``, ``5m``, ``1h`` or plain seconds into seconds.

    Raises:
        ValueError: Not a positive duration.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h)")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError("the interval must be more than 0 seconds")
    return seconds


def _loop(source: str, interval: float, run_once: RunOnce, stop: threading.Event) -> None:
    start = time.monotonic()
    tick = 0
    while not stop.is_set():
        try:
            run_once(source, stop.is_set)
        except Exception:  # noqa: BLE001 - a failed pass must not end the schedule
            log.exception("collecting %s failed", source)
        elapsed = time.monotonic() - start
        tick = max(tick + 1, math.ceil(elapsed / interval))
        stop.wait(max(0.0, start + tick * interval - time.monotonic()))


def run_every(
    interval: float, sources: Sequence[str], run_once: RunOnce, stop: threading.Event
) -> None:
    """Run ``run_once`` for each source every ``interval`` seconds until ``stop`` is set.

    Returns once every source's loop has finished its pass in progress. A
    KeyboardInterrupt (Ctrl-C) sets ``stop`` and waits for the loops the same way.
    """
    threads = [
        threading.Thread(
            target=_loop, args=(s, interval, run_once, stop), name=f"collect-{s}", daemon=True
        )
        for s in sources
    ]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
    except KeyboardInterrupt:
        stop.set()
        for t in threads:
            t.join()
        raise
