"""Roles, what each role may do, and password hashing (argon2id via argon2-cffi).

Every page action and admin command asks :func:`can` with an action name from
:data:`PERMISSIONS`; the four roles are fixed: ``admin`` (everything),
``manager`` (the team's work, rules and reports), ``agent`` (the inbox and
escalations) and ``analyst`` (listening, themes and reports, no customer data).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "ACTIONS",
    "DEMO_USERS",
    "MIN_PASSWORD_LENGTH",
    "PERMISSIONS",
    "ROLES",
    "PasswordError",
    "can",
    "check_password_strength",
    "hash_password",
    "needs_rehash",
    "verify_password",
]

ROLES = ("admin", "manager", "agent", "analyst")

_EVERYONE = frozenset(ROLES)
_CARE = frozenset({"admin", "manager", "agent"})
_INSIGHT = frozenset({"admin", "manager", "analyst"})
_LEADS = frozenset({"admin", "manager"})
_ADMIN = frozenset({"admin"})

#: action name -> the roles allowed to do it (and a description for the Settings page).
PERMISSIONS: dict[str, tuple[frozenset[str], str]] = {
    "mentions.view": (_EVERYONE, "See mentions and the overview"),
    "themes.view": (_EVERYONE, "See feedback themes"),
    "reports.view": (_EVERYONE, "Open and download the feedback, escalation and KPI reports"),
    "inbox.view": (_CARE, "See the inbox"),
    "inbox.edit": (_CARE, "Assign, tag, add notes and change status"),
    "inbox.reply": (_CARE, "Write and send replies"),
    "links.decide": (_CARE, "Confirm or reject a mention's customer link"),
    "escalations.view": (_CARE, "See the escalation queue"),
    "themes.edit": (_INSIGHT, "Rename, merge, pin and define themes"),
    "customers.view": (_CARE, "Search customers and open the customer 360"),
    "customers.merge": (_LEADS, "Merge duplicate customers"),
    "customers.consent": (_ADMIN, "Change a customer's consent flags"),
    "customers.export": (_ADMIN, "Export everything held about a person (GDPR Art. 15)"),
    "customers.erase": (_ADMIN, "Erase a person (GDPR Art. 17)"),
    "data.export": (_INSIGHT, "Download row-level exports of filtered tables"),
    "settings.view": (_LEADS, "Open the settings page"),
    "rules.edit": (_LEADS, "Preview, backtest and save escalation rules and SLA policies"),
    "sources.view": (_LEADS, "See sources, their status and quota"),
    "users.manage": (_ADMIN, "Add users, change roles and passwords"),
    # Jobs and administration that only the command line offers (``listenwell --as USER``).
    "data.import": (_LEADS, "Import mentions, customers and survey answers from files"),
    "collect.run": (_LEADS, "Run the collectors and file new mentions into the inbox"),
    "nlp.run": (_INSIGHT, "Run the NLP stages, and evaluate or recalibrate the models"),
    "escalations.run": (_LEADS, "Apply the escalation rules and run the SLA sweep"),
    "segments.edit": (_LEADS, "Define customer segments"),
    "server.run": (_ADMIN, "Start the dashboard, the demo or a worker; manage the job queue"),
    "db.admin": (_ADMIN, "Migrate, back up and restore the database"),
}
ACTIONS = tuple(PERMISSIONS)

MIN_PASSWORD_LENGTH = 10

#: The demo's passwordless users (``dashboard.sign_in: demo``): username -> (role, name).
DEMO_USERS: dict[str, tuple[str, str]] = {
    "demo-manager": ("manager", "Morgan (demo manager)"),
    "demo-agent": ("agent", "Avery (demo agent)"),
    "demo-analyst": ("analyst", "Ana (demo analyst)"),
    "demo-admin": ("admin", "Adrian (demo admin)"),
}

# argon2id with the library's RFC 9106 low-memory defaults (t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()


class PasswordError(ValueError):
    """A password that does not meet the policy."""


def can(role: str | None, action: str) -> bool:
    """Whether ``role`` may do ``action``; unknown actions are refused loudly."""
    try:
        allowed, _ = PERMISSIONS[action]
    except KeyError:
        raise KeyError(f"unknown action {action!r}") from None
    return role in allowed


def check_password_strength(password: str) -> None:
    """Refuse passwords that are too short or all one kind of character."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    if len(set(password)) < 4:
        raise PasswordError("that password repeats too few different characters")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted; the password itself is never stored)."""
    return str(_hasher.hash(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; a missing or broken hash never matches."""
    if not stored_hash:
        # Spend the same time as a real check, so timing does not reveal unknown accounts.
        _hasher.hash(password)
        return False
    try:
        return bool(_hasher.verify(stored_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether a hash was made with weaker parameters than today's and should be replaced."""
    try:
        return bool(_hasher.check_needs_rehash(stored_hash))
    except InvalidHashError:
        return True
