"""Dashboard users: roles, argon2 password hashes, sign-in with a per-account lockout.

Passwords never reach the database or the audit log: only
:func:`listenwell.crm.auth.hash_password`'s argon2id hash is stored. After
:data:`MAX_FAILED_ATTEMPTS` wrong passwords in a row an account is locked for
:data:`LOCKOUT`; every sign-in, failed or not, is audited (without the password).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Connection, Engine, Table, func, select, update

from listenwell.crm.auth import (
    ROLES,
    check_password_strength,
    hash_password,
    needs_rehash,
    verify_password,
)

from .engine import using, writing
from .errors import NotFoundError, StoreError
from .models import UserRow, utcnow
from .writes import record_audit

__all__ = [
    "LOCKOUT",
    "MAX_FAILED_ATTEMPTS",
    "SignInError",
    "User",
    "UserError",
    "authenticate",
    "create_user",
    "disable_user",
    "ensure_user",
    "get_user",
    "list_users",
    "set_password",
    "set_role",
]

MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_U = cast(Table, UserRow.__table__)


class UserError(StoreError):
    """A user that cannot be created or changed as asked (bad name, role or password)."""


class SignInError(StoreError):
    """A refused sign-in. The message never says whether the account exists."""


@dataclass(frozen=True)
class User:
    """A dashboard user as pages and commands see it (no password hash)."""

    username: str
    role: str
    display_name: str | None = None
    disabled: bool = False
    last_sign_in_at: datetime | None = None

    @property
    def label(self) -> str:
        """How the user is shown: the display name, else the username."""
        return self.display_name or self.username

    @property
    def actor(self) -> str:
        """The ``actor`` this user's changes are written to the audit log under."""
        return f"user:{self.username}"


def _as_user(r: object) -> User:
    return User(
        username=r.username,  # type: ignore[attr-defined]
        role=r.role,  # type: ignore[attr-defined]
        display_name=r.display_name,  # type: ignore[attr-defined]
        disabled=bool(r.disabled),  # type: ignore[attr-defined]
        last_sign_in_at=r.last_sign_in_at,  # type: ignore[attr-defined]
    )


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


def _check_username(username: str) -> str:
    """The username, validated and lower-cased (usernames are case-insensitive)."""
    name = username.strip()
    if not _USERNAME.match(name):
        raise UserError(
            f"invalid username {username!r}: use 1-100 letters, digits, '.', '_', '@' or '-',"
            " starting with a letter or digit"
        )
    return name.lower()


def _hash(password: str) -> str:
    try:
        check_password_strength(password)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return str(hash_password(password))


def _row(conn: Connection, username: str) -> object | None:
    return conn.execute(
        select(_U).where(func.lower(_U.c.username) == username.strip().lower())
    ).first()


def get_user(conn: Connection | Engine, username: str) -> User:
    """The user called ``username`` (case-insensitive)."""
    with using(conn) as c:
        r = _row(c, username)
    if r is None:
        raise NotFoundError(f"no user {username!r}")
    return _as_user(r)


def list_users(conn: Connection | Engine) -> list[User]:
    """Every user, by username."""
    with using(conn) as c:
        rows = c.execute(select(_U).order_by(_U.c.username)).all()
    return [_as_user(r) for r in rows]


def create_user(
    engine: Engine,
    username: str,
    role: str,
    password: str | None = None,
    display_name: str | None = None,
    *,
    actor: str,
) -> User:
    """Add a user. Without a password the account cannot sign in until one is set."""
    name = _check_username(username)
    _check_role(role)
    hashed = _hash(password) if password is not None else None
    now = utcnow()
    with writing(engine) as c:
        if _row(c, name) is not None:
            raise UserError(f"user {name!r} already exists")
        c.execute(
            _U.insert().values(
                username=name,
                display_name=(display_name or "").strip() or None,
                role=role,
                password_hash=hashed,
                disabled=False,
                failed_attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
        record_audit(c, actor, "user.create", "user", name, {"role": role})
    return User(name, role, (display_name or "").strip() or None)


def ensure_user(engine: Engine, username: str, role: str, display_name: str, *, actor: str) -> User:
    """The user ``username``, created without a password if missing (demo accounts)."""
    try:
        return get_user(engine, username)
    except NotFoundError:
        return create_user(engine, username, role, None, display_name, actor=actor)


def _change(
    engine: Engine,
    username: str,
    action: str,
    actor: str,
    detail: dict[str, object] | None,
    **values: object,
) -> None:
    with writing(engine) as c:
        r = _row(c, username)
        if r is None:
            raise NotFoundError(f"no user {username!r}")
        name = r.username  # type: ignore[attr-defined]
        c.execute(update(_U).where(_U.c.username == name).values(updated_at=utcnow(), **values))
        record_audit(c, actor, action, "user", name, detail)


def set_role(engine: Engine, username: str, role: str, *, actor: str) -> None:
    """Give ``username`` another role."""
    _change(engine, username, "user.role", actor, {"role": _check_role(role)}, role=role)


def set_password(engine: Engine, username: str, password: str, *, actor: str) -> None:
    """Replace the password (hashed) and lift any lockout."""
    hashed = _hash(password)
    _change(
        engine,
        username,
        "user.password",
        actor,
        None,
        password_hash=hashed,
        failed_attempts=0,
        locked_until=None,
    )


def disable_user(engine: Engine, username: str, *, actor: str, disabled: bool = True) -> None:
    """Stop (or, with ``disabled=False``, allow again) a user's sign-ins."""
    _change(
        engine,
        username,
        "user.disable" if disabled else "user.enable",
        actor,
        None,
        disabled=disabled,
    )


def authenticate(
    engine: Engine, username: str, password: str, *, now: datetime | None = None
) -> User:
    """The user whose password this is, or :class:`SignInError`.

    Wrong passwords count against the account; the fifth in a row locks it
    for 15 minutes (a locked account refuses even the right password). The
    refusal message is the same for unknown users and wrong passwords.
    """
    at = now or utcnow()
    # The refusal is raised after the transaction commits, so the failure count and the
    # audit entry are kept.
    refusal: SignInError | None = None
    with writing(engine) as c:
        r = _row(c, username)
        if r is None:
            verify_password(None, password)  # same cost as a real check
            # The typed name is not logged: it may be a password typed into the wrong box.
            record_audit(c, "anonymous", "user.sign_in_failed", "user", None, {"known": False})
            refusal = SignInError("wrong username or password")
        elif r.locked_until is not None and r.locked_until > at:  # type: ignore[attr-defined]
            locked = r.locked_until  # type: ignore[attr-defined]
            record_audit(c, "anonymous", "user.sign_in_locked", "user", r.username, None)  # type: ignore[attr-defined]
            refusal = SignInError(
                f"too many failed sign-ins: try again after {locked:%H:%M} UTC"
                " or ask an admin to reset the password"
            )
        else:
            name = r.username  # type: ignore[attr-defined]
            stored = r.password_hash  # type: ignore[attr-defined]
            if r.disabled:  # type: ignore[attr-defined]
                # Refused without counting: re-enabling must not find the account locked.
                verify_password(None, password)
                record_audit(c, "anonymous", "user.sign_in_disabled", "user", name, None)
                refusal = SignInError("wrong username or password")
            elif not verify_password(stored, password):
                failed = int(r.failed_attempts or 0) + 1  # type: ignore[attr-defined]
                values: dict[str, object] = {"failed_attempts": failed}
                if failed >= MAX_FAILED_ATTEMPTS:
                    values.update(failed_attempts=0, locked_until=at + LOCKOUT)
                c.execute(update(_U).where(_U.c.username == name).values(**values))
                record_audit(
                    c, "anonymous", "user.sign_in_failed", "user", name, {"failed": failed}
                )
                if "locked_until" in values:
                    record_audit(c, "system", "user.locked", "user", name, None)
                refusal = SignInError("wrong username or password")
            else:
                values = {"failed_attempts": 0, "locked_until": None, "last_sign_in_at": at}
                if stored and needs_rehash(stored):
                    values["password_hash"] = hash_password(password)
                c.execute(update(_U).where(_U.c.username == name).values(**values))
                record_audit(c, f"user:{name}", "user.sign_in", "user", name, None)
                r = _row(c, name)
    if refusal is not None:
        raise refusal
    assert r is not None
    return _as_user(r)
