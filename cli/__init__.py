"""The ``listenwell`` command line.

Every command takes the global ``--config PATH`` (or ``LISTENWELL_CONFIG``).
Errors print as one line on stderr with a non-zero exit code; ``--debug``
shows the traceback instead.

Roles: every command needs the action :data:`COMMAND_ACTIONS` names for it
(see :data:`listenwell.crm.auth.PERMISSIONS`). With the global ``--as USER``
(or ``LISTENWELL_USER``) a command runs as that Listenwell user: it is refused
(and the refusal audit-logged) unless the user's role may do the action, and
its changes are audit-logged as ``user:USER``. Without ``--as`` the command
runs as the operator, who can read the config and the database and so
administers the deployment.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from typer.core import TyperGroup

from listenwell.config import (
    ENV_CONFIG,
    ConfigError,
    Settings,
    is_secret,
    iter_settings,
    load_settings,
)

if TYPE_CHECKING:
    from listenwell.store.users import User

__all__ = [
    "COMMAND_ACTIONS",
    "ENV_USER",
    "CliError",
    "State",
    "app",
    "current_user",
    "iter_commands",
    "main",
    "mask_secrets_in_logs",
    "unmask_secrets_in_logs",
]

ENV_USER = "LISTENWELL_USER"


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


_MASK = "****"
# The secret values to mask, each counted once per command run (State) that asked for it,
# and the same values, longest first, as the log record factory reads them (replaced whole,
# never changed in place, so threads that log while a run ends read a consistent tuple).
_masked: Counter[str] = Counter()
_masking: tuple[str, ...] = ()


def _secret_values(settings: Settings) -> set[str]:
    """The values of every secret setting, and the database password."""
    from sqlalchemy.engine import make_url

    values: set[str] = set()
    for key, info in iter_settings():
        if not is_secret(info):
            continue
        value: Any = settings
        for part in key.split("."):
            value = getattr(value, part, None)
        secret = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        if isinstance(secret, str):
            values.add(secret)
    try:
        password = make_url(settings.database_url).password
    except Exception:  # noqa: BLE001 - an unparsable URL fails later, with its own message
        password = None
    if isinstance(password, str):
        values.add(password)
    # Masking a very short value would garble every log line; such a secret is no secret.
    return {v for v in values if len(v) >= 4}


def _masking_factory(base: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = base(*args, **kwargs)
        secrets = _masking
        if secrets:
            try:
                text = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad format string is the logging call's problem
                return record
            if any(s in text for s in secrets):
                for s in secrets:
                    text = text.replace(s, _MASK)
                record.msg, record.args = text, None
        return record

    make.listenwell_masks_secrets = True  # type: ignore[attr-defined]
    return make


def mask_secrets_in_logs(settings: Settings) -> set[str]:
    """Replace the values of the secret settings with ``****`` in every log record made
    until :func:`unmask_secrets_in_logs` is called with what this returns.

    Our code never logs a secret, but clients it drives do at DEBUG: tweepy
    logs the request headers with the bearer token, oauthlib the OAuth 1.0a
    consumer key and access token. Records are masked as they are made, so no
    handler or log level can let a secret through.
    """
    global _masking
    values = _secret_values(settings)
    _masked.update(values)
    _masking = tuple(sorted(_masked, key=len, reverse=True))
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "listenwell_masks_secrets", False):
        logging.setLogRecordFactory(_masking_factory(factory))
    return values


def unmask_secrets_in_logs(values: Iterable[str]) -> None:
    """Stop masking ``values`` (once each run that asked for them has ended)."""
    global _masking
    _masked.subtract(values)
    for value in [v for v, n in _masked.items() if n <= 0]:
        del _masked[value]
    _masking = tuple(sorted(_masked, key=len, reverse=True))


@dataclass
class State:
    """What every command shares: the config path, and lazily the settings and engine."""

    config_path: Path | None = None
    debug: bool = False
    as_user: str | None = None
    user: User | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _masked: set[str] = field(default_factory=set, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """The validated settings (loaded on first use)."""
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            self._masked = mask_secrets_in_logs(self._settings)
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
        """Dispose of the engine, if one was opened, and stop masking this run's secrets."""
        unmask_secrets_in_logs(self._masked)
        self._masked = set()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


#: Every command, by its path, and the action(s) of :data:`listenwell.crm.auth.PERMISSIONS`
#: a ``--as`` user's role needs for it (a tuple: all of them). A command missing here is
#: refused to every ``--as`` user, and tests/security/test_cli_roles.py fails.
COMMAND_ACTIONS: dict[str, str | tuple[str, ...]] = {
    # listening
    "explain": "mentions.view",
    "quarantine list": "mentions.view",
    "corrections list": "mentions.view",
    "export mentions": "data.export",
    "corrections export": "data.export",
    "themes list": "themes.view",
    "themes show": "themes.view",
    "themes history": "themes.view",
    "themes define": "themes.edit",
    "themes merge": "themes.edit",
    "themes name": "themes.edit",
    "themes pin": "themes.edit",
    "themes unpin": "themes.edit",
    "themes refit": "themes.edit",
    # care
    "inbox list": "inbox.view",
    "inbox show": "inbox.view",
    "inbox replies": "inbox.view",
    "inbox templates": "inbox.view",
    "inbox assign": "inbox.edit",
    "inbox note": "inbox.edit",
    "inbox status": "inbox.edit",
    "inbox tag": "inbox.edit",
    "correct": "inbox.edit",
    "inbox reply": "inbox.reply",
    "inbox retry": "inbox.reply",
    "surveys invite": "inbox.reply",
    "links confirm": "links.decide",
    "links reject": "links.decide",
    "escalations list": "escalations.view",
    "escalations show": "escalations.view",
    "escalations export": ("escalations.view", "data.export"),
    # customers
    "customers search": "customers.view",
    "customers show": "customers.view",
    "links list": "customers.view",
    "churn": "customers.view",
    "reminders": "customers.view",
    "segments list": "customers.view",
    "segments members": "customers.view",
    "segments define": "segments.edit",
    "customers duplicates": ("customers.view", "customers.merge"),
    "customers export": "customers.export",
    "customers erase": "customers.erase",
    # reports
    "kpis": "reports.view",
    "report escalations": "reports.view",
    "report feedback": "reports.view",
    "report kpis": "reports.view",
    "surveys trend": "reports.view",
    # settings, rules and sources
    "users roles": "mentions.view",
    "rules show": "settings.view",
    "rules history": "settings.view",
    "rules check": "rules.edit",
    "rules preview": "rules.edit",
    "rules backtest": "rules.edit",
    "rules save": "rules.edit",
    "sources status": "sources.view",
    "users list": "users.manage",
    "users add": "users.manage",
    "users set-role": "users.manage",
    "users passwd": "users.manage",
    "users disable": "users.manage",
    "users enable": "users.manage",
    # jobs
    "import mentions": "data.import",
    "import customers": "data.import",
    "surveys import": "data.import",
    "collect": "collect.run",
    "inbox sync": "collect.run",
    "enrich": "nlp.run",
    "eval sentiment": "nlp.run",
    "eval corrections": "nlp.run",
    "corrections recalibrate": "nlp.run",
    "escalations apply": "escalations.run",
    "escalations sweep": "escalations.run",
    "jobs collect": "collect.run",
    "jobs enrich": "nlp.run",
    "jobs sweep": "escalations.run",
    "jobs status": "sources.view",
    # a worker writes the report to a path of its own machine: only admins pick one
    "jobs report": ("reports.view", "server.run"),
    # the deployment
    "dashboard": "server.run",
    "demo": "server.run",
    "worker": "server.run",
    "jobs requeue-stalled": "server.run",
    "db status": "db.admin",
    "db upgrade": "db.admin",
    "db backup": "db.admin",
    "db restore": "db.admin",
    "db refresh-stats": "db.admin",
}

_current: ContextVar[State | None] = ContextVar("listenwell_cli_state", default=None)


def current_user() -> User | None:
    """The Listenwell user the running command acts as (``--as``); ``None`` for the operator."""
    state = _current.get()
    return state.user if state is not None else None


def iter_commands(group: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every command under a click group, as ``("customers export", command)``."""
    for name, command in sorted(getattr(group, "commands", {}).items()):
        if getattr(command, "commands", None):
            yield from iter_commands(command, (*prefix, name))
        else:
            yield " ".join((*prefix, name)), command


def _operator() -> str:
    from .io import actor

    return actor()


def _audit_refusal(state: State, actor: str, path: str, detail: dict[str, Any]) -> None:
    """Record a refused command; a database that cannot take the entry does not stop the
    refusal."""
    from sqlalchemy.exc import SQLAlchemyError

    from listenwell import store

    try:
        store.record_audit(
            state.engine(require_current=False), actor, "cli.refused", "command", path, detail
        )
    except (SQLAlchemyError, store.StoreError):
        pass


def _load_user(state: State, path: str) -> User:
    """The enabled Listenwell user ``--as`` names, or a one-line refusal."""
    from sqlalchemy.exc import SQLAlchemyError

    from listenwell import store
    from listenwell.store.users import get_user

    name = (state.as_user or "").strip()
    try:
        user = get_user(state.engine(require_current=False), name)
    except store.NotFoundError:
        _audit_refusal(state, _operator(), path, {"as": name[:100], "why": "unknown user"})
        raise CliError(
            f"--as {name!r}: no such Listenwell user (see `listenwell users list`)"
        ) from None
    except (SQLAlchemyError, store.StoreError) as exc:
        raise CliError(f"--as {name!r}: cannot look the user up: {_one_line(exc)}") from None
    if user.disabled:
        _audit_refusal(state, _operator(), path, {"as": user.username, "why": "disabled"})
        raise CliError(f"--as {name!r}: that user is disabled")
    return user


def _authorize(ctx: typer.Context, path: str) -> None:
    """Refuse the command unless the ``--as`` user's role has its action(s).

    Also pins the command's ``--by`` (who did it, for the audit log) to that
    user: naming someone else is refused.
    """
    from listenwell.crm.auth import can

    state = state_of(ctx)
    if state.as_user is None:
        return  # the operator: runs everything
    user = state.user = _load_user(state, path)
    needed = COMMAND_ACTIONS.get(path)
    actions = (needed,) if isinstance(needed, str) else tuple(needed or ())
    missing = [a for a in actions if not can(user.role, a)] if actions else ["(unmapped)"]
    if missing:
        _audit_refusal(state, user.actor, path, {"role": user.role, "needs": missing})
        raise CliError(
            f"{user.username} ({user.role}) may not run `listenwell {path}`: "
            f"it needs {', '.join(missing)} (see `listenwell users roles`)"
        )
    if "by" in ctx.params:
        by = ctx.params["by"]
        if by is not None and by.strip().lower() not in (user.username.lower(), user.actor.lower()):
            _audit_refusal(state, user.actor, path, {"role": user.role, "by": str(by)[:100]})
            raise CliError(
                f"--by must name you ({user.username}) when running --as {user.username}"
            )
        ctx.params["by"] = user.actor


def _guard(command: Any, path: str) -> None:
    invoke = command.invoke

    def guarded(ctx: typer.Context) -> Any:
        _authorize(ctx, path)
        return invoke(ctx)

    setattr(command, "invoke", guarded)  # noqa: B010 - an instance attribute over the method


class _GuardedGroup(TyperGroup):
    """The root group: every command under it checks the ``--as`` user's role before it runs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for path, command in iter_commands(self):
            _guard(command, path)


app = typer.Typer(
    name="listenwell",
    cls=_GuardedGroup,
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
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as",
            envvar=ENV_USER,
            metavar="USERNAME",
            help="Run the command as this Listenwell user: refused unless the user's role "
            "may do it (see `listenwell users roles`), and audit-logged as user:USERNAME. "
            "Without --as the command runs as the operator: whoever can read the config and "
            "the database administers the deployment and may run every command. --as is no "
            "sign-in (it takes no password); it lets the operator or a script act with a "
            "user's narrower rights and name.",
        ),
    ] = None,
) -> None:
    state = State(config_path=config, debug=debug, as_user=as_user)
    ctx.obj = state
    token = _current.set(state)
    ctx.call_on_close(state.close)
    ctx.call_on_close(lambda: _current.reset(token))


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


def database_error_line(exc: BaseException) -> str:
    """One line for a database failure: what happened and what to do, without SQL or data."""
    orig = getattr(exc, "orig", None) or exc
    first = next((ln.strip() for ln in str(orig).splitlines() if ln.strip()), type(orig).__name__)
    low = first.lower()
    if "read-only" in low or "readonly" in low:
        hint = "the database is read-only; nothing was changed"
    elif "full" in low or "no space" in low or "too large" in low:
        hint = "the disk is full; the unfinished batch was not written, free space and run again"
    elif any(w in low for w in ("closed the connection", "connection", "terminat", "timeout")):
        hint = "lost the database connection; the unfinished batch was not written, run again"
    else:
        hint = "the database refused the change; the unfinished batch was not written"
    return f"{hint} ({first[:200]})"


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
    except DBAPIError as exc:
        # The driver's own message, without the statement and its parameters (which may
        # be long, and hold personal data).
        if debug:
            raise
        typer.echo(f"error: {database_error_line(exc)}", err=True)
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
