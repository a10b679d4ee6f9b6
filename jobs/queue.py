"""The PostgreSQL task queue: Procrastinate jobs over :mod:`listenwell.jobs.work`.

Queues: ``enrich`` (one job per id range, plus ``enrich_finish`` for themes),
``collect`` (one job per source pass), ``maintenance`` (sweep, retention,
the dashboard's counts, requeueing stalled jobs) and ``reports``. Periodic jobs
(the escalation sweep every minute, stalled-job recovery every minute, the
dashboard's counts every five minutes, retention daily) are deferred
by the workers themselves; Procrastinate makes sure each periodic tick runs once
however many workers there are.

Exactly-once, in practice: a job's ``lock`` keeps two jobs on the same range or
source from running at the same time; a job whose worker died is found through
the worker heartbeats (``jobs.stalled_after_s``) and retried; and the work
itself is idempotent (see :mod:`listenwell.jobs.work`).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import procrastinate
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url

from listenwell.config import Settings

from . import work

__all__ = [
    "QueueError",
    "blueprint",
    "conninfo",
    "defer_collect",
    "defer_enrich",
    "defer_report",
    "defer_sweep",
    "ensure_schema",
    "make_app",
    "queue_status",
    "requeue_stalled",
]

log = logging.getLogger(__name__)
RETRY = procrastinate.RetryStrategy(max_attempts=5, wait=5, exponential_wait=2)

blueprint = procrastinate.Blueprint()


class QueueError(Exception):
    """The task queue cannot be used as asked (e.g. the database is SQLite)."""


def conninfo(database_url: str) -> str:
    """A libpq connection string for ``database_url`` (a SQLAlchemy PostgreSQL URL)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise QueueError(
            "the task queue needs PostgreSQL (database_url is "
            f"{url.get_backend_name()}); on SQLite, `listenwell worker` runs the jobs in-process"
        )
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))


def make_app(settings: Settings) -> procrastinate.App:
    """A Procrastinate app on the configured PostgreSQL database, with Listenwell's tasks."""
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo(settings.database_url))
    )
    app.add_tasks_from(blueprint, namespace="listenwell")
    return app


def ensure_schema(app: procrastinate.App, engine: Engine) -> bool:
    """Create Procrastinate's tables in the database if they are not there; True if created."""
    if inspect(engine).has_table("procrastinate_jobs"):
        return False
    with app.open():
        app.schema_manager.apply_schema()
    return True


def _rt() -> work.Runtime:
    return work.runtime(None)


# ------------------------------------------------------------------------------- tasks


@blueprint.task(name="enrich_range", queue="enrich", retry=RETRY)
def enrich_range(first: int, end: int) -> dict[str, Any]:
    """Enrich the pending mentions with ``first <= id < end`` (per-mention stages)."""
    return work.enrich_range(_rt(), first, end)


@blueprint.task(name="enrich_finish", queue="enrich", retry=RETRY, pass_context=True)
def enrich_finish(context: procrastinate.JobContext) -> dict[str, Any]:
    """Themes once the per-mention backlog is done; re-deferred while it is not."""
    out = work.enrich_finish(_rt())
    if "waiting" in out:
        assert context.app is not None
        task = context.app.tasks["listenwell:enrich_finish"]
        task.configure(queueing_lock="enrich_finish", schedule_in={"seconds": 10}).defer()
    return out


@blueprint.task(name="collect", queue="collect", retry=RETRY)
def collect(source: str) -> dict[str, Any]:
    """One collection pass over ``source``."""
    return work.collect(_rt(), source)


@blueprint.periodic(cron="* * * * *", periodic_id="sweep")
@blueprint.task(name="sweep", queue="maintenance", retry=RETRY, lock="sweep")
def sweep(timestamp: int) -> dict[str, Any]:
    """The escalation rules and SLA sweep (every minute)."""
    del timestamp
    return work.sweep(_rt())


@blueprint.periodic(cron="*/5 * * * *", periodic_id="refresh_stats")
@blueprint.task(name="refresh_stats", queue="maintenance", retry=RETRY, lock="refresh_stats")
def refresh_stats(timestamp: int) -> dict[str, Any]:
    """The dashboard's daily counts (every five minutes, and after each themes job)."""
    del timestamp
    return work.refresh_stats(_rt())


@blueprint.periodic(cron="17 3 * * *", periodic_id="retention")
@blueprint.task(name="retention", queue="maintenance", retry=RETRY, lock="retention")
def retention(timestamp: int) -> dict[str, Any]:
    """The retention policy (daily at 03:17)."""
    del timestamp
    return work.retention(_rt())


@blueprint.task(name="report", queue="reports", retry=RETRY)
def report(kind: str, first: str, last: str, fmt: str, output: str) -> dict[str, Any]:
    """Build a report into a file."""
    return work.report(
        _rt(), kind, date.fromisoformat(first), date.fromisoformat(last), fmt, output
    )


@blueprint.periodic(cron="* * * * *", periodic_id="requeue_stalled")
@blueprint.task(name="requeue_stalled", queue="maintenance", pass_context=True)
async def requeue_stalled_task(context: procrastinate.JobContext, timestamp: int) -> int:
    """Give the jobs of dead workers back to the queue (every minute)."""
    del timestamp
    assert context.app is not None
    return await requeue_stalled(context.app, _rt().settings.jobs.stalled_after_s)


async def requeue_stalled(app: procrastinate.App, stalled_after_s: float) -> int:
    """Retry every job whose worker has sent no heartbeat for ``stalled_after_s`` seconds."""
    stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s))
    retried = 0
    for job in stalled:
        log.warning("job %s (%s) lost its worker; retrying it", job.id, job.task_name)
        try:
            await app.job_manager.retry_job(job)
            retried += 1
        except procrastinate.exceptions.ProcrastinateException as exc:
            # Another worker got there first, or the job just finished.
            log.info("job %s was not retried: %s", job.id, exc)
    await app.job_manager.prune_stalled_workers(seconds_since_heartbeat=stalled_after_s)
    return retried


# ------------------------------------------------------------------------------ deferring


def defer_enrich(app: procrastinate.App, rt: work.Runtime, size: int | None = None) -> int:
    """Queue one job per pending id range, then the themes job; returns the range jobs queued.

    Ranges already queued are not queued twice (each range has a queueing lock),
    and jobs on the same range never run at once (a lock), so running this
    again while workers are busy is harmless.
    """
    from procrastinate.exceptions import AlreadyEnqueued

    queued = 0
    task = app.tasks["listenwell:enrich_range"]
    for first, end in work.pending_ranges(rt, size):
        key = f"enrich:{first}:{end}"
        try:
            task.configure(lock=key, queueing_lock=key).defer(first=first, end=end)
            queued += 1
        except AlreadyEnqueued:
            pass
    try:
        app.tasks["listenwell:enrich_finish"].configure(queueing_lock="enrich_finish").defer()
    except AlreadyEnqueued:
        pass
    return queued


def defer_collect(app: procrastinate.App, source: str) -> bool:
    """Queue one collection pass over ``source`` (not if one is already waiting)."""
    from procrastinate.exceptions import AlreadyEnqueued

    key = f"collect:{source}"
    try:
        app.tasks["listenwell:collect"].configure(lock=key, queueing_lock=key).defer(source=source)
    except AlreadyEnqueued:
        return False
    return True


def defer_sweep(app: procrastinate.App) -> None:
    """Queue an escalation sweep now (the workers also run one every minute)."""
    app.tasks["listenwell:sweep"].defer(timestamp=0)


def defer_report(
    app: procrastinate.App, kind: str, first: date, last: date, fmt: str, output: str
) -> int:
    """Queue a report; returns the job id."""
    job_id: int = app.tasks["listenwell:report"].defer(
        kind=kind, first=first.isoformat(), last=last.isoformat(), fmt=fmt, output=output
    )
    return job_id


def queue_status(app: procrastinate.App) -> list[dict[str, Any]]:
    """Jobs per queue, task and status."""
    rows = app.job_manager.list_tasks()
    return [dict(r) for r in rows]
