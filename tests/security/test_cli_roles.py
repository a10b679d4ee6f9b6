"""Roles on every command: ``listenwell --as USER`` runs a command only if USER's role may.

Every registered command maps to actions of ``crm.auth.PERMISSIONS``
(``cli.COMMAND_ACTIONS``); a refused command changes nothing, says why in one
line and leaves a ``cli.refused`` entry in the audit log.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import pytest
import typer
from cli_helpers import run
from sqlalchemy import Engine, func, select

from listenwell import store
from listenwell.cli import COMMAND_ACTIONS, app
from listenwell.crm import auth
from listenwell.store.models import AuditRow, CustomerRow, metadata
from listenwell.store.users import create_user, disable_user, get_user

A = AuditRow.__table__


def _paths(group: object, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every command of the click tree, walked here independently of the CLI's own walk."""
    out: list[str] = []
    for name, command in getattr(group, "commands", {}).items():
        if getattr(command, "commands", None):
            out += _paths(command, (*prefix, name))
        else:
            out.append(" ".join((*prefix, name)))
    return out


def _actions(path: str) -> tuple[str, ...]:
    needed = COMMAND_ACTIONS[path]
    return (needed,) if isinstance(needed, str) else needed


def test_every_command_maps_to_known_actions():
    paths = _paths(typer.main.get_command(app))
    assert len(paths) > 50  # the walk found the real tree
    unmapped = sorted(p for p in paths if p not in COMMAND_ACTIONS)
    assert not unmapped, f"commands without an action in cli.COMMAND_ACTIONS: {unmapped}"
    stale = sorted(set(COMMAND_ACTIONS) - set(paths))
    assert not stale, f"COMMAND_ACTIONS names commands that do not exist: {stale}"
    for path in paths:
        assert _actions(path), path
        for action in _actions(path):
            assert action in auth.PERMISSIONS, (path, action)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("customers export", {"admin"}),
        ("customers erase", {"admin"}),
        ("db restore", {"admin"}),
        ("db backup", {"admin"}),
        ("users add", {"admin"}),
        ("export mentions", {"admin", "manager", "analyst"}),
        ("escalations export", {"admin", "manager"}),
        ("import customers", {"admin", "manager"}),
        ("inbox reply", {"admin", "manager", "agent"}),
        ("customers show", {"admin", "manager", "agent"}),
        ("themes merge", {"admin", "manager", "analyst"}),
        ("report kpis", {"admin", "manager", "agent", "analyst"}),
    ],
)
def test_sensitive_commands_need_the_expected_roles(path, allowed):
    """The table and PERMISSIONS together give these commands to exactly these roles."""
    who = {role for role in auth.ROLES if all(auth.can(role, a) for a in _actions(path))}
    assert who == allowed


# ----------------------------------------------------------------- running as a user


@pytest.fixture
def cfg(config_file: Path, db_url: str) -> str:
    return str(config_file)


@pytest.fixture
def db(db_url: str, cfg: str):
    """The configured database with a customer, an agent, an admin and a disabled manager."""
    eng = store.connect(db_url)
    store.upsert_customers(
        eng, [("1", store.Customer("C1", "Jo Doe", email="jo@example.com"))], actor="test"
    )
    for name, role in [("al", "agent"), ("boss", "admin"), ("mo", "manager")]:
        create_user(eng, name, role, None, actor="test")
    disable_user(eng, "mo", actor="test")
    try:
        yield eng
    finally:
        eng.dispose()


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        return {
            t.name: c.execute(select(func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


def _audit(engine: Engine) -> list[tuple[str, str, str | None, dict[str, Any] | None]]:
    with engine.connect() as c:
        rows = c.execute(
            select(A.c.actor, A.c.action, A.c.entity_id, A.c.detail).order_by(A.c.id)
        ).all()
    return [tuple(r) for r in rows]


def _refused_once(engine: Engine, before: dict[str, int], err: str) -> None:
    """One line on stderr, and the only change is one more audit entry."""
    assert len(err.strip().splitlines()) == 1, err
    after = _counts(engine)
    assert after["audit_log"] == before["audit_log"] + 1
    assert {k: v for k, v in after.items() if k != "audit_log"} == {
        k: v for k, v in before.items() if k != "audit_log"
    }


SENSITIVE = [
    ("customers export", ["customers", "export", "C1", "-o", "{tmp}/c1.json"], "customers.export"),
    ("customers erase", ["customers", "erase", "C1", "--yes"], "customers.erase"),
    ("db restore", ["db", "restore", "{tmp}/backup.zip", "--replace", "--yes"], "db.admin"),
    ("users add", ["users", "add", "eve", "--role", "admin", "--no-password"], "users.manage"),
]


@pytest.mark.parametrize(("path", "argv", "action"), SENSITIVE)
def test_an_agent_is_refused_and_nothing_changes(db, cfg, tmp_path, capsys, path, argv, action):
    backup = tmp_path / "backup.zip"
    assert run(capsys, "--config", cfg, "db", "backup", str(backup))[0] == 0
    create_user(db, "later", "analyst", None, actor="test")  # a restore would drop this user
    before = _counts(db)
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run(capsys, "--config", cfg, "--as", "al", *args)
    assert code == 1 and not out
    assert err.startswith("error: al (agent) may not run `listenwell " + path + "`")
    assert action in err
    _refused_once(db, before, err)
    assert _audit(db)[-1] == (
        "user:al",
        "cli.refused",
        path,
        {"role": "agent", "needs": [action]},
    )
    assert not (tmp_path / "c1.json").exists()
    get_user(db, "later")  # the restore did not run
    with db.connect() as c:
        assert c.execute(select(CustomerRow.customer_id)).scalars().all() == ["C1"]


@pytest.mark.parametrize(("path", "argv", "action"), SENSITIVE)
def test_an_admin_may_and_is_audited_by_name(db, cfg, tmp_path, capsys, path, argv, action):
    backup = tmp_path / "backup.zip"
    assert run(capsys, "--config", cfg, "db", "backup", str(backup))[0] == 0
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = run(capsys, "--config", cfg, "--as", "boss", *args)
    assert code == 0, err
    actors = {actor for actor, action_, _, _ in _audit(db) if action_ != "cli.refused"}
    expected = {
        "customers export": "customer.export",
        "customers erase": "customer.erase",
        "db restore": "db.restore",
        "users add": "user.create",
    }[path]
    assert ("user:boss", expected) in {(a, act) for a, act, _, _ in _audit(db)}, actors
    assert not [r for r in _audit(db) if r[1] == "cli.refused"]
    if path == "customers export":
        assert json.loads((tmp_path / "c1.json").read_text())["customer"]["customer_id"] == "C1"
    if path == "users add":
        assert get_user(db, "eve").role == "admin"


@pytest.mark.parametrize("role", auth.ROLES)
def test_each_role_gets_exactly_what_permissions_give(db, cfg, capsys, role):
    """Read-only commands, run as a user of each role: allowed exactly where PERMISSIONS say."""
    name = f"r-{role}"
    create_user(db, name, role, None, actor="test")
    for argv, path in [
        (["customers", "show", "C1"], "customers show"),
        (["inbox", "list"], "inbox list"),
        (["users", "list"], "users list"),
        (["themes", "list"], "themes list"),
        (["sources", "status"], "sources status"),
        (["users", "roles"], "users roles"),
    ]:
        code, _, err = run(capsys, "--config", cfg, "--as", name, *argv)
        may = all(auth.can(role, a) for a in _actions(path))
        if may:
            assert code == 0, (role, path, err)
        else:
            assert code == 1 and "may not run" in err and err.count("\n") == 1, (role, path, err)


@pytest.mark.parametrize(
    ("who", "message"),
    [("nobody", "no such Listenwell user"), ("mo", "that user is disabled")],
)
def test_an_unknown_or_disabled_user_is_refused(db, cfg, capsys, monkeypatch, who, message):
    before = _counts(db)
    code, out, err = run(capsys, "--config", cfg, "--as", who, "inbox", "list")
    assert code == 1 and not out and message in err
    _refused_once(db, before, err)
    actor, action, entity_id, detail = _audit(db)[-1]
    assert (actor, action, entity_id) == (f"cli:{getpass.getuser()}", "cli.refused", "inbox list")
    assert detail is not None and detail["as"] == who
    # The environment variable names the user just the same.
    monkeypatch.setenv("LISTENWELL_USER", who)
    code, _, err = run(capsys, "--config", cfg, "inbox", "list")
    assert code == 1 and message in err


def test_a_command_missing_from_the_table_is_refused_to_every_user(db, cfg, capsys, monkeypatch):
    monkeypatch.delitem(COMMAND_ACTIONS, "users list")
    code, _, err = run(capsys, "--config", cfg, "--as", "boss", "users", "list")
    assert code == 1 and "(unmapped)" in err
    # The operator still runs it: the table only decides for --as users.
    assert run(capsys, "--config", cfg, "users", "list")[0] == 0


def test_by_cannot_name_someone_else(db, cfg, capsys):
    """``--by`` (who did it, for the audit log) is pinned to the --as user."""
    before = _counts(db)
    code, _, err = run(
        capsys, "--config", cfg, "--as", "al", "links", "confirm", "1", "C1", "--by", "boss"
    )
    assert code == 1 and "--by must name you (al)" in err
    _refused_once(db, before, err)
    # Naming oneself is fine, and is recorded as the user.
    code, _, err = run(
        capsys,
        "--config",
        cfg,
        "--as",
        "boss",
        "segments",
        "define",
        "vips",
        "--rule",
        '{"conditions": [{"field": "segment", "op": "eq", "value": "vip"}]}',
        "--by",
        "boss",
    )
    assert code == 0, err
    assert ("user:boss", "segment.define") in [(a, act) for a, act, _, _ in _audit(db)]


def test_without_as_the_operator_runs_everything_under_their_login(db, cfg, capsys):
    code, _, err = run(
        capsys, "--config", cfg, "users", "add", "op", "-r", "agent", "--no-password"
    )
    assert code == 0, err
    assert _audit(db)[-1][:2] == (f"cli:{getpass.getuser()}", "user.create")


def test_refusals_are_one_line_even_with_a_broken_database(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database_url: 'sqlite:///{tmp_path / 'new.db'}'\n", encoding="utf-8")
    code, out, err = run(capsys, "--config", str(cfg), "--as", "al", "db", "upgrade")
    assert code == 1 and not out
    assert err.startswith("error: --as 'al': cannot look the user up") and err.count("\n") == 1
