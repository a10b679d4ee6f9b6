"""The ``listenwell`` command line.

Every command takes the global ``--config PATH`` (or ``LISTENWELL_CONFIG``).
Errors print as one line on stderr with a non-zero exit code; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Engine

from listenwell.config import ENV_CONFIG, ConfigError, Settings, load_settings

__all__ = ["CliError", "State", "app", "main"]


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


@dataclass
class State:
    """What every command shares: the config path, and lazily the settings and engine."""

    config_path: Path | None = None
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """The validated settings (loaded on first use)."""
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def engine(self, *, require_current: bool = True) -> Engine:
        """The database engine; by default it must be fully migrated."""
        from listenwell import store

        if self._engine is None:
            self._engine = store.connect(self.settings.database_url)
        if require_current:
            store.ensure_current(self._engine)
        return self._engine

    def close(self) -> None:
        """Dispose of the engine, if one was opened."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


app = typer.Typer(
    name="listenwell",
    help="Listenwell: listen to what people say about your brand, link it to your customers, "
    "and answer. Runs entirely on your own machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar=ENV_CONFIG,
            help="YAML config file (see config/listenwell.example.yaml). Default: "
            "$LISTENWELL_CONFIG, else the per-user config file if present, else built-in defaults.",
            dir_okay=False,
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")
    ] = False,
) -> None:
    state = State(config_path=config, debug=debug)
    ctx.obj = state
    ctx.call_on_close(state.close)


def state_of(ctx: typer.Context) -> State:
    """The shared :class:`State` of a command invocation."""
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def _register() -> None:
    from . import (
        collect,
        corrections,
        crm,
        customers,
        db,
        demo,
        escalations,
        inbox,
        io,
        jobs,
        nlp,
        privacy,
        reports,
        themes,
        users,
    )

    modules = (
        db,
        io,
        collect,
        nlp,
        customers,
        themes,
        corrections,
        inbox,
        escalations,
        crm,
        reports,
        users,
        jobs,
    )
    for module in modules:
        module.register(app)
    demo.register(app)
    customers.customers_app.command("show")(crm.customer_show)
    privacy.register(app)


_register()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv: list[str] | None = None) -> Any:
    """Run the command line; the console script ``listenwell`` calls this."""
    from listenwell.store import StoreError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("LISTENWELL_DEBUG") == "1"
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="listenwell", standalone_mode=False)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        typer.echo("aborted", err=True)
        raise SystemExit(130) from None
    except typer.TyperException as exc:  # click's usage and parameter errors
        if debug:
            raise
        code = getattr(exc, "exit_code", 1)
        fmt = getattr(exc, "format_message", None)
        message = _one_line(fmt() if callable(fmt) else exc)
        if code == 2:
            typer.echo(f"usage error: {message} (see --help)", err=True)
        else:
            typer.echo(f"error: {message}", err=True)
        raise SystemExit(code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise SystemExit(130) from None
    except (CliError, ConfigError, StoreError) as exc:
        if debug:
            raise
        typer.echo(f"error: {_one_line(exc)}", err=True)
        raise SystemExit(1) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if debug:
            raise
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {_one_line(exc)} "
            "(run with --debug for the traceback)",
            err=True,
        )
        raise SystemExit(1) from None
    # Without standalone mode, click returns the code of a `typer.Exit` instead of raising.
    if isinstance(result, int) and not isinstance(result, bool) and result != 0:
        raise SystemExit(result)
    return result
