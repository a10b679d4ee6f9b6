"""``listenwell worker`` and ``listenwell jobs``: background work on a task queue.

On PostgreSQL the jobs go through Procrastinate (tables in the same database):
start any number of ``listenwell worker`` processes on any machines and queue
work with ``listenwell jobs ...``. On SQLite, ``listenwell worker`` runs the
same work on timers in one process.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from listenwell.config import ENV_CONFIG

from . import CliError, state_of

if TYPE_CHECKING:
    import procrastinate

    from listenwell.jobs.work import Runtime

__all__ = ["jobs_app", "register", "worker"]

jobs_app = typer.Typer(
    help="Queue background work for the workers (PostgreSQL): enrichment, collection, "
    "sweeps, reports. See also `listenwell worker`.",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
QUEUES = ("enrich", "collect", "maintenance", "reports")


def _runtime(ctx: typer.Context) -> Runtime:
    """The process's runtime, the same one the jobs use (one engine, one loaded pipeline)."""
    from listenwell.jobs.work import runtime

    state = state_of(ctx)
    if state.config_path is not None:
        # Jobs load the settings themselves; point them at the same file.
        os.environ[ENV_CONFIG] = str(state.config_path)
    state.engine()  # one-line error if the database is not ready
    return runtime(None)


def _app(ctx: typer.Context, rt: Runtime) -> procrastinate.App:
    from listenwell.jobs.queue import QueueError, ensure_schema, make_app

    try:
        app = make_app(rt.settings)
    except QueueError as exc:
        raise CliError(str(exc)) from None
    if ensure_schema(app, rt.engine):
        typer.echo("created the task queue's tables (procrastinate_*)", err=True)
    return app


def _is_postgres(rt: Runtime) -> bool:
    return rt.engine.dialect.name == "postgresql"


def worker(
    ctx: typer.Context,
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            "-q",
            help=f"Only take jobs from these queues ({', '.join(QUEUES)}); default: all.",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="A name for this worker in logs and job lists.")
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=32, help="Jobs run at once by this worker.")
    ] = 1,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Do what is due now, then exit (SQLite); on PostgreSQL, stop when the queue "
            "is empty.",
        ),
    ] = False,
) -> None:
    """Start a worker: it runs collection, enrichment, sweeps and reports until Ctrl-C.

    On PostgreSQL, any number of workers on any number of machines share the
    database's queue; a worker killed mid-job has its job retried by another
    (after `jobs.stalled_after_s`), and results are never duplicated. On SQLite
    the worker runs the same work on timers in this one process.
    """
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rt = _runtime(ctx)
    if not _is_postgres(rt):
        from listenwell.jobs.local import run_local

        stop = threading.Event()

        def show(item: str, result: dict[str, Any] | None, error: BaseException | None) -> None:
            if error is not None:
                typer.echo(f"{item}: failed: {' '.join(str(error).split())}", err=True)
            else:
                typer.echo(f"{item}: {json.dumps(result, default=str)}", err=True)

        typer.echo("worker (in-process scheduler, SQLite); Ctrl-C stops", err=True)
        try:
            run_local(rt, stop, once=once, on_result=show)
        except KeyboardInterrupt:
            stop.set()
        finally:
            rt.close()
        return
    from listenwell.jobs.queue import requeue_stalled

    app = _app(ctx, rt)
    settings = rt.settings
    queues = list(queue) if queue else None
    unknown = [q for q in queues or [] if q not in QUEUES]
    if unknown:
        raise CliError(f"unknown queue {unknown[0]!r}; choose from {', '.join(QUEUES)}")

    async def main() -> None:
        async with app.open_async():
            recovered = await requeue_stalled(app, settings.jobs.stalled_after_s)
            if recovered:
                typer.echo(f"gave {recovered} stalled job(s) back to the queue", err=True)
            await app.run_worker_async(
                queues=queues,
                name=name,
                concurrency=concurrency,
                wait=not once,
                update_heartbeat_interval=settings.jobs.heartbeat_s,
                stalled_worker_timeout=settings.jobs.stalled_after_s,
                install_signal_handlers=True,
            )

    if queues is None or "enrich" in queues:
        typer.echo("loading the NLP models", err=True)
        rt.pipeline  # noqa: B018 - load once before taking jobs, not inside the first one
    typer.echo(
        f"worker {name or ''} on {', '.join(queues or QUEUES)} (PostgreSQL queue); Ctrl-C stops",
        err=True,
    )
    try:
        asyncio.run(main())
    finally:
        rt.close()


@jobs_app.command("enrich")
def jobs_enrich(
    ctx: typer.Context,
    chunk: Annotated[
        int | None,
        typer.Option("--chunk", min=1, help="Mentions per job (default: jobs.enrich_chunk)."),
    ] = None,
) -> None:
    """Queue the enrichment backlog: one job per range of pending mentions, then themes."""
    from listenwell.jobs.queue import defer_enrich

    rt = _runtime(ctx)
    app = _app(ctx, rt)
    with app.open():
        queued = defer_enrich(app, rt, chunk)
    typer.echo(f"queued {queued} enrichment job(s) and the themes job")


@jobs_app.command("collect")
def jobs_collect(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="reddit, x, appstore, or all (the configured ones).")
    ] = "all",
) -> None:
    """Queue one collection pass per source."""
    from listenwell.jobs.queue import defer_collect
    from listenwell.jobs.work import configured_sources

    rt = _runtime(ctx)
    names = configured_sources(rt) if source == "all" else [source]
    if not names:
        raise CliError("no source is configured: see `listenwell sources status`")
    app = _app(ctx, rt)
    with app.open():
        for name in names:
            queued = defer_collect(app, name)
            typer.echo(f"{name}: {'queued' if queued else 'already queued'}")


@jobs_app.command("sweep")
def jobs_sweep(ctx: typer.Context) -> None:
    """Queue an escalation sweep now (workers also run one every minute)."""
    from listenwell.jobs.queue import defer_sweep

    rt = _runtime(ctx)
    app = _app(ctx, rt)
    with app.open():
        defer_sweep(app)
    typer.echo("queued an escalation sweep")


@jobs_app.command("report")
def jobs_report(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="feedback, escalations or kpis.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
    start: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv, xlsx, html or pdf.")] = "html",
) -> None:
    """Queue a report; a worker writes it to --output (an absolute path on its machine)."""
    from listenwell.crm.reports import FORMATS, KINDS
    from listenwell.jobs.queue import defer_report

    if kind not in KINDS:
        raise CliError(f"unknown report {kind!r}: {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise CliError(f"unknown format {fmt!r}: {', '.join(FORMATS)}")
    try:
        last = date.fromisoformat(end) if end else date.today()
        first = date.fromisoformat(start) if start else last - timedelta(days=29)
    except ValueError as exc:
        raise CliError(f"bad date: {exc}") from None
    rt = _runtime(ctx)
    app = _app(ctx, rt)
    with app.open():
        job = defer_report(app, kind, first, last, fmt, str(output.resolve()))
    typer.echo(f"queued report job {job}: {kind} {first}..{last} -> {output.resolve()}")


@jobs_app.command("status")
def jobs_status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Jobs per task: waiting, running, done, failed."""
    from listenwell.jobs.queue import queue_status

    rt = _runtime(ctx)
    app = _app(ctx, rt)
    with app.open():
        rows = queue_status(app)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        typer.echo("no jobs yet")
    for r in rows:
        typer.echo(
            f"{r['name']:<32} waiting {r['todo']:>6}  running {r['doing']:>4}  "
            f"done {r['succeeded']:>7}  failed {r['failed']:>4}"
        )


@jobs_app.command("requeue-stalled")
def jobs_requeue(ctx: typer.Context) -> None:
    """Give the jobs of dead workers back to the queue now (workers do it every minute)."""
    from listenwell.jobs.queue import requeue_stalled

    rt = _runtime(ctx)
    app = _app(ctx, rt)

    async def main() -> int:
        async with app.open_async():
            return await requeue_stalled(app, rt.settings.jobs.stalled_after_s)

    typer.echo(f"requeued {asyncio.run(main())} stalled job(s)")


def register(app: typer.Typer) -> None:
    """Add ``worker`` and the ``jobs`` commands to the root app."""
    app.command("worker")(worker)
    app.add_typer(jobs_app, name="jobs")
