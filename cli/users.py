"""``listenwell users``: dashboard accounts and their roles (admin, manager, agent, analyst)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from listenwell.crm.auth import PERMISSIONS, ROLES

from . import CliError, state_of
from .io import actor

__all__ = ["register", "users_app"]

users_app = typer.Typer(
    help="Dashboard users. Passwords are stored only as argon2id hashes; roles decide which "
    "pages and actions each user gets (see `listenwell users roles`).",
    no_args_is_help=True,
)

UserArg = Annotated[str, typer.Argument(help="The username (letters, digits, . _ @ -).")]
RoleOpt = Annotated[
    str,
    typer.Option("--role", "-r", help=f"One of: {', '.join(ROLES)}.", show_default=False),
]
StdinOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input instead of prompting "
        "(for scripts; the password never appears in the command line or shell history).",
    ),
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CliError("no password on standard input")
        return line
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for the password: use --password-stdin")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def _role(role: str) -> str:
    if role not in ROLES:
        raise CliError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


@users_app.command("add")
def add(
    ctx: typer.Context,
    username: UserArg,
    role: RoleOpt,
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    password_stdin: StdinOpt = False,
    no_password: Annotated[
        bool,
        typer.Option(
            "--no-password", help="Create the account without a password (it cannot sign in yet)."
        ),
    ] = False,
) -> None:
    """Add a dashboard user with a role; asks for the password (typed twice)."""
    from listenwell.store.users import create_user

    password = None if no_password else _password(password_stdin)
    user = create_user(state_of(ctx).engine(), username, _role(role), password, name, actor=actor())
    typer.echo(f"added {user.username} ({user.role})")


@users_app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the users with their roles and last sign-in."""
    from listenwell.store.users import list_users

    users = list_users(state_of(ctx).engine())
    if as_json:
        rows = [
            {
                "username": u.username,
                "name": u.display_name,
                "role": u.role,
                "disabled": u.disabled,
                "last_sign_in_at": u.last_sign_in_at.isoformat() if u.last_sign_in_at else None,
            }
            for u in users
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not users:
        typer.echo("no users yet: add one with `listenwell users add NAME --role admin`")
    for u in users:
        last = f"{u.last_sign_in_at:%Y-%m-%d %H:%M} UTC" if u.last_sign_in_at else "never"
        flag = "  [disabled]" if u.disabled else ""
        typer.echo(f"{u.username:<24} {u.role:<8} last sign-in {last}{flag}")


@users_app.command("set-role")
def set_role_(ctx: typer.Context, username: UserArg, role: RoleOpt) -> None:
    """Give a user another role."""
    from listenwell.store.users import set_role

    set_role(state_of(ctx).engine(), username, _role(role), actor=actor())
    typer.echo(f"{username} is now {role}")


@users_app.command("passwd")
def passwd(ctx: typer.Context, username: UserArg, password_stdin: StdinOpt = False) -> None:
    """Set a user's password (and lift a sign-in lockout)."""
    from listenwell.store.users import set_password

    set_password(state_of(ctx).engine(), username, _password(password_stdin), actor=actor())
    typer.echo(f"password of {username} changed")


@users_app.command("disable")
def disable(ctx: typer.Context, username: UserArg) -> None:
    """Stop a user from signing in (their history stays)."""
    from listenwell.store.users import disable_user

    disable_user(state_of(ctx).engine(), username, actor=actor())
    typer.echo(f"{username} disabled")


@users_app.command("enable")
def enable(ctx: typer.Context, username: UserArg) -> None:
    """Let a disabled user sign in again."""
    from listenwell.store.users import disable_user

    disable_user(state_of(ctx).engine(), username, actor=actor(), disabled=False)
    typer.echo(f"{username} enabled")


@users_app.command("roles")
def roles() -> None:
    """Show what each role may do."""
    for action, (allowed, what) in PERMISSIONS.items():
        who = ", ".join(r for r in ROLES if r in allowed)
        typer.echo(f"{action:<18} {who:<32} {what}")


def register(app: typer.Typer) -> None:
    """Add the ``users`` commands to the root app."""
    app.add_typer(users_app, name="users")
