"""``listenwell collect`` and ``listenwell sources status``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import CliError, state_of

if TYPE_CHECKING:
    from listenwell.collectors.base import SourceResult

# The collectors (praw, tweepy, requests) are imported inside the commands that use
# them, so that every other `listenwell` command starts half a second sooner.

__all__ = ["collect", "register", "sources_app", "status"]

sources_app = typer.Typer(help="Inspect the mention sources.", no_args_is_help=True)
_lock = threading.Lock()  # one line of output at a time when sources run side by side


def _selected(source: str) -> list[str]:
    from listenwell.collectors.registry import default_registry

    names = list(default_registry())
    if source == "all":
        return names
    if source not in names:
        raise CliError(f"unknown source {source!r} (choose from {', '.join(names)} or all)")
    return [source]


def _line(result: SourceResult) -> str:
    return (
        f"{result.source}: {result.new:,} new, {result.duplicates:,} duplicates, "
        f"{result.quarantined:,} quarantined, {result.pages:,} pages, {result.retries:,} retries"
    )


def _echo(result: SourceResult, as_json: bool) -> None:
    with _lock:
        if as_json:
            typer.echo(json.dumps(result.as_dict()))
            return
        typer.echo(_line(result))
        for error in result.errors:
            typer.echo(f"  error: {error}", err=True)


def _configured(ctx: typer.Context, names: list[str]) -> list[str]:
    from listenwell.collectors.registry import create

    """The sources among ``names`` that have their settings; the others are reported skipped."""
    kept = []
    for name in names:
        collector = create(name, state_of(ctx).settings)
        missing = collector.missing()
        collector.close()
        if missing is None:
            kept.append(name)
        else:
            typer.echo(f"{name}: skipped, not configured ({missing})")
    return kept


def _pass(ctx: typer.Context, name: str, should_stop: Callable[[], bool]) -> SourceResult:
    from listenwell.collectors.base import RetryPolicy
    from listenwell.collectors.registry import create
    from listenwell.collectors.runner import run_collector

    """One pass over ``name``, from its saved cursors."""
    state = state_of(ctx)
    settings = state.settings
    collector = create(name, settings, retry=RetryPolicy.from_settings(settings))
    try:
        return run_collector(state.engine(), collector, should_stop=should_stop)
    finally:
        collector.close()


def collect(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Option("--source", "-s", help="reddit, x, appstore, or all (the configured ones)."),
    ] = "all",
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            help="Keep collecting at this interval (e.g. 30s, 5m, 1h) until Ctrl-C. Runs of a "
            "source never overlap: a late run skips the ticks it missed.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each source's counts as one JSON line.")
    ] = False,
) -> None:
    """Collect new mentions: one pass, printing per-source counts.

    Each source resumes from its saved cursor and stores only what is new;
    malformed items are quarantined with their reason. A source that fails
    (bad credentials, an outage) is reported and the others still run. The
    exit code is 1 if any source failed.
    """
    from listenwell.collectors.schedule import parse_interval, run_every

    try:
        interval = None if every is None else parse_interval(every)
    except ValueError as exc:
        raise CliError(f"--every: {exc}") from None
    names = _selected(source)
    state_of(ctx).engine()  # fail early, in one line, if the database is not ready
    if source == "all":
        names = _configured(ctx, names)
        if not names:
            raise CliError("no source is configured: see `listenwell sources status`")
    if interval is None:
        failed = False
        for name in names:
            result = _pass(ctx, name, lambda: False)
            _echo(result, as_json)
            failed = failed or not result.ok
        if failed:
            raise typer.Exit(1)
        return
    stop = threading.Event()

    def once(name: str, should_stop: Callable[[], bool]) -> None:
        _echo(_pass(ctx, name, should_stop), as_json)

    typer.echo(f"collecting {', '.join(names)} every {every}; Ctrl-C stops", err=True)
    try:
        run_every(interval, names, once, stop)
    except KeyboardInterrupt:
        typer.echo("stopped; each source resumes from its saved cursor", err=True)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _cursor_text(value: str | None) -> str:
    from listenwell.collectors.runner import CursorState

    state = CursorState.load(value)
    since = _when(state.since) if state.since else "none yet"
    if state.in_progress:
        return f"since {since}; run in progress, resumes at {state.resume or 'the newest page'}"
    return f"since {since}"


@sources_app.command("status")
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show each source's last run, cursors, errors and quota use."""
    from listenwell.collectors.registry import create, default_registry
    from listenwell.store import runs

    state = state_of(ctx)
    engine = state.engine()
    last = runs.last_runs(engine)
    cursors = runs.list_cursors(engine)
    report: dict[str, Any] = {}
    for name in default_registry():
        collector = create(name, state.settings)
        run = last.get(name)
        report[name] = {
            "configured": collector.missing() is None,
            "missing": collector.missing(),
            "last_run": None
            if run is None
            else {
                "started_at": run.started_at.isoformat(),
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                "status": run.status,
                "new": run.new,
                "duplicates": run.duplicates,
                "quarantined": run.quarantined,
                "pages": run.pages,
                "retries": run.retries,
                "error": run.error,
                "quota": run.quota,
            },
            "cursors": {stream: value for src, stream, value in cursors if src == name},
        }
        collector.close()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for name, info in report.items():
        run = info["last_run"]
        setup = "" if info["configured"] else f" (not configured: {info['missing']})"
        typer.echo(f"{name}{setup}")
        if run is None:
            typer.echo("  last run: never")
        else:
            started = datetime.fromisoformat(run["started_at"])
            typer.echo(
                f"  last run: {_when(started)}, {run['status']}: {run['new']:,} new, "
                f"{run['duplicates']:,} duplicates, {run['quarantined']:,} quarantined, "
                f"{run['pages']:,} pages, {run['retries']:,} retries"
            )
            if run["error"]:
                typer.echo(f"  errors: {run['error']}")
            if run["quota"]:
                quota = ", ".join(f"{k}={v}" for k, v in sorted(run["quota"].items()))
                typer.echo(f"  quota: {quota}")
        for stream, value in info["cursors"].items():
            shown = stream if len(stream) <= 90 else stream[:87] + "..."  # --json has it whole
            typer.echo(f"  cursor {shown}: {_cursor_text(value)}")


def register(app: typer.Typer) -> None:
    """Add the ``collect`` and ``sources`` commands to the root app."""
    app.command("collect")(collect)
    app.add_typer(sources_app, name="sources")
