"""Run collectors: page, normalise, quarantine, and keep the cursor with the data.

For each stream of a collector the runner loads the saved :class:`CursorState`,
reads pages with :meth:`Collector.pages`, normalises every raw item on its own
(a bad one is quarantined with its raw payload and reason, the rest of the page
is kept), and writes the page's mentions, its quarantined items and the new
cursor state in ONE transaction with :func:`listenwell.store.write_page`.

While a stream's run is in progress the saved state keeps the old lower bound
and adds the running maximum and the token of the next page. A crash (or a
failed page) therefore re-reads at most one page on resume, and never skips
one. When the run reaches the lower bound or the end of the listing, the
running maximum, capped at the run's start time, becomes the new lower bound,
in the transaction of the last page.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from listenwell import store
from listenwell.store import runs

from .base import AuthError, Collector, CollectorError, FatalError, Page, SourceResult, dump_raw

__all__ = ["CursorState", "Timings", "collect", "run_collector"]

log = logging.getLogger(__name__)

#: Called after each committed page with the source, stream and page.
PageHook = Callable[[str, str, Page], None]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class CursorState:
    """A stream's saved cursor.

    Attributes:
        since: Inclusive lower bound on the cursor field: every item at or after
            it was stored by a run that finished. ``None`` before the first run.
        started: Start of the run in progress, or ``None`` when none is.
        running_max: Newest cursor value seen by the run in progress.
        resume: Token of the next page of the run in progress.
    """

    since: datetime | None = None
    started: datetime | None = None
    running_max: datetime | None = None
    resume: str | None = None

    @property
    def in_progress(self) -> bool:
        """Whether a run was interrupted and can be resumed."""
        return self.started is not None

    def dump(self) -> str:
        """The state as stored in ``collection_cursors.value`` (JSON)."""
        data: dict[str, Any] = {"since": _iso(self.since)}
        if self.in_progress:
            data["run"] = {
                "started": _iso(self.started),
                "max": _iso(self.running_max),
                "resume": self.resume,
            }
        return json.dumps(data, sort_keys=True)

    @classmethod
    def load(cls, value: str | None) -> CursorState:
        """Read a saved state; a bare ISO timestamp is taken as ``since``."""
        if not value:
            return cls()
        try:
            data = json.loads(value)
        except ValueError:
            return cls(since=_parse(value))
        if not isinstance(data, dict):
            return cls()
        run = data.get("run") if isinstance(data.get("run"), dict) else None
        return cls(
            since=_parse(data.get("since")),
            started=_parse(run.get("started")) if run else None,
            running_max=_parse(run.get("max")) if run else None,
            resume=run.get("resume") if run and isinstance(run.get("resume"), str) else None,
        )


@dataclass
class Timings:
    """Seconds a pass spent in each phase, for benchmarks (``run_collector(timings=...)``).

    Attributes:
        fetch: Waiting for pages: the HTTP request, the client's decoding and
            any retry waits (inside :meth:`Collector.pages`).
        normalize: Normalising items and checking the bad ones against quarantine.
        store: Writing each page's mentions, quarantined items and cursor.
        pages: Pages timed.
    """

    fetch: float = 0.0
    normalize: float = 0.0
    store: float = 0.0
    pages: int = 0


def _normalize_page(
    collector: Collector, page: Page
) -> tuple[list[store.Mention], list[store.Quarantined]]:
    mentions: list[store.Mention] = []
    bad: list[store.Quarantined] = []
    seen: set[str] = set()
    for raw in page.items:
        try:
            mention = collector.normalize(raw)
        except Exception as exc:  # noqa: BLE001 - a normaliser bug must not block the stream
            reason = (
                exc.reason
                if isinstance(exc, store.RecordError)
                else f"cannot normalise ({type(exc).__name__}: {exc})"
            )
            item = collector.item_id(raw)
            origin = f"{page.endpoint} item {item}" if item else page.endpoint
            bad.append(store.Quarantined(collector.name, reason, dump_raw(raw), origin))
            continue
        if mention.external_id in seen:  # a listing may repeat an item; count it once
            continue
        seen.add(mention.external_id)
        mentions.append(mention)
    return mentions, bad


def _not_yet_quarantined(
    engine: Engine, source: str, bad: list[store.Quarantined], result: SourceResult
) -> list[store.Quarantined]:
    """Drop items quarantined by an earlier read of the same page (a re-read, a resume)."""
    if not bad:
        return bad
    known = runs.quarantined_already(engine, source, [q.raw or "" for q in bad])
    result.quarantined_before += sum(1 for q in bad if q.raw in known)
    return [q for q in bad if q.raw not in known]


def _promoted(state: CursorState, running_max: datetime | None) -> CursorState:
    """The state after a finished run: the running maximum, capped at the run's start."""
    since = state.since
    if running_max is not None:
        capped = min(running_max, state.started) if state.started else running_max
        since = capped if since is None else max(since, capped)
    return CursorState(since=since)


def _run_stream(
    engine: Engine,
    collector: Collector,
    stream: str,
    result: SourceResult,
    now: datetime,
    on_page: PageHook | None,
    should_stop: Callable[[], bool] | None,
    timings: Timings,
) -> None:
    source = collector.name
    clock = time.perf_counter
    state = CursorState.load(store.load_cursor(engine, source, stream))
    if not state.in_progress:
        state = CursorState(since=state.since, started=now)
    bound = None if state.since is None else state.since - collector.overlap
    token = state.resume
    running_max = state.running_max
    started = clock()
    try:
        pages = collector.pages(stream, bound, token)
        first = next(pages, None)
    except AuthError:
        raise
    except FatalError:
        if token is None:
            raise
        # The resume token may have expired: start this run again from the newest page.
        log.warning("%s %s: resume token refused, restarting from the newest page", source, stream)
        pages = collector.pages(stream, bound, None)
        first = next(pages, None)
    timings.fetch += clock() - started
    count = 0
    page = first
    while page is not None:
        count += 1
        started = clock()
        mentions, bad = _normalize_page(collector, page)
        bad = _not_yet_quarantined(engine, source, bad, result)
        timings.normalize += clock() - started
        times = [m.created_at for m in mentions]
        times += [t for t in (page.newest, page.oldest) if t is not None]
        newest = max(times, default=None)
        if newest is not None and (running_max is None or newest > running_max):
            running_max = newest
        reached = bound is not None and any(t < bound for t in times)
        last = page.next is None or reached
        if last:
            saved = _promoted(state, running_max)
        else:
            saved = CursorState(state.since, state.started, running_max, page.next)
        started = clock()
        written = store.write_page(engine, mentions, bad, cursor=(source, stream, saved.dump()))
        timings.store += clock() - started
        timings.pages += 1
        result.new += written.inserted
        result.duplicates += written.duplicates
        result.quarantined += written.quarantined
        result.pages += 1
        if on_page is not None:
            on_page(source, stream, page)
        if last or count >= collector.max_pages or (should_stop and should_stop()):
            pages.close()
            return
        started = clock()
        page = next(pages, None)
        timings.fetch += clock() - started


def run_collector(
    engine: Engine,
    collector: Collector,
    *,
    now: datetime | None = None,
    on_page: PageHook | None = None,
    should_stop: Callable[[], bool] | None = None,
    timings: Timings | None = None,
) -> SourceResult:
    """One pass of ``collector`` over all its streams; its errors are caught and reported.

    An :class:`AuthError` stops the source; any other error stops only its
    stream. Counts and errors are recorded in the run log
    (:mod:`listenwell.store.runs`).

    Args:
        engine: The database.
        collector: The collector.
        now: The run's start time (the cap on the promoted cursor); default now.
        on_page: Called after each page is committed (progress; tests crash here).
        should_stop: Polled after each page; ``True`` ends the pass cleanly, the
            saved state resuming where it stopped.
        timings: Where to add the seconds spent fetching, normalising and
            storing (see :class:`Timings`); a benchmark reads them.

    Returns:
        The counts; ``errors`` lists each failed stream with its reason.
    """
    now = now or datetime.now(UTC)
    result = SourceResult(collector.name)
    run_id = runs.start_run(engine, collector.name, now)
    status = "failed"
    try:
        streams = collector.streams()
        for stream in streams:
            if should_stop and should_stop():
                break
            try:
                _run_stream(
                    engine,
                    collector,
                    stream,
                    result,
                    now,
                    on_page,
                    should_stop,
                    timings if timings is not None else Timings(),
                )
            except AuthError as exc:
                result.errors.append(f"{stream}: {exc}")
                break
            except CollectorError as exc:
                result.errors.append(f"{stream}: {exc}")
        status = "ok" if result.ok else ("error" if result.pages else "failed")
    except AuthError as exc:
        result.errors.append(str(exc))
    except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
        log.exception("collector %s failed", collector.name)
        result.errors.append(f"unexpected {type(exc).__name__}: {exc}")
    finally:
        result.retries = collector.retries
        result.quota = collector.quota
        runs.finish_run(
            engine,
            run_id,
            status=status,
            new=result.new,
            duplicates=result.duplicates,
            quarantined=result.quarantined,
            pages=result.pages,
            retries=result.retries,
            error="; ".join(result.errors)[:4000] or None,
            quota=result.quota,
        )
    return result


def collect(
    engine: Engine,
    collectors: Iterable[Collector],
    *,
    on_page: PageHook | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[SourceResult]:
    """Run several collectors one after the other; one failing never stops the next.

    Returns:
        One result per collector, in order.
    """
    results = []
    for collector in collectors:
        try:
            results.append(
                run_collector(engine, collector, on_page=on_page, should_stop=should_stop)
            )
        finally:
            collector.close()
    return results
