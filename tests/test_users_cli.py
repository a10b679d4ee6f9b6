"""``listenwell users``: accounts, roles, password from stdin, one-line errors."""

from __future__ import annotations

import io
import json
import sys

import pytest
from cli_helpers import run
from sqlalchemy import text

from listenwell import store
from listenwell.store.users import authenticate

PASSWORD = "correct horse battery"


@pytest.fixture
def cfg(config_file, db_url):
    eng = store.connect(db_url)
    store.upgrade(eng)
    eng.dispose()
    return str(config_file)


def _stdin(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(value + "\n"))


def test_add_list_set_role_passwd_disable(cfg, db_url, capsys, monkeypatch):
    _stdin(monkeypatch, PASSWORD)
    code, out, err = run(
        capsys,
        "--config",
        cfg,
        "users",
        "add",
        "ana",
        "--role",
        "analyst",
        "--name",
        "Ana",
        "--password-stdin",
    )
    assert code == 0, err
    assert out.strip() == "added ana (analyst)"
    code, out, _ = run(capsys, "--config", cfg, "users", "list", "--json")
    rows = json.loads(out)
    assert [(r["username"], r["role"], r["name"], r["disabled"]) for r in rows] == [
        ("ana", "analyst", "Ana", False)
    ]
    eng = store.connect(db_url)
    try:
        assert authenticate(eng, "ana", PASSWORD).role == "analyst"
        with eng.connect() as c:
            stored = c.execute(text("SELECT password_hash FROM users")).scalar_one()
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert run(capsys, "--config", cfg, "users", "set-role", "ana", "--role", "manager")[0] == 0
        assert authenticate(eng, "ana", PASSWORD).role == "manager"
        _stdin(monkeypatch, "another long secret")
        assert run(capsys, "--config", cfg, "users", "passwd", "ana", "--password-stdin")[0] == 0
        assert authenticate(eng, "ana", "another long secret").username == "ana"
        assert run(capsys, "--config", cfg, "users", "disable", "ana")[0] == 0
        with pytest.raises(store.StoreError, match="wrong username or password"):
            authenticate(eng, "ana", "another long secret")
        assert run(capsys, "--config", cfg, "users", "enable", "ana")[0] == 0
        assert authenticate(eng, "ana", "another long secret").username == "ana"
        with eng.connect() as c:
            audit = c.execute(text("SELECT action, detail FROM audit_log")).all()
    finally:
        eng.dispose()
    actions = [a for a, _ in audit]
    assert {"user.create", "user.role", "user.password", "user.disable", "user.enable"} <= set(
        actions
    )
    assert all(PASSWORD not in str(d) for _, d in audit)


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("add", "bob", "--role", "boss", "--password-stdin"), PASSWORD, "unknown role 'boss'"),
        (("add", "bob", "--role", "agent", "--password-stdin"), "short", "at least 10"),
        (("add", "b o b", "--role", "agent", "--password-stdin"), PASSWORD, "invalid username"),
        (("add", "bob", "--role", "agent", "--password-stdin"), "", "no password on standard"),
        (("set-role", "nobody", "--role", "agent"), "", "no user 'nobody'"),
    ],
)
def test_bad_input_is_one_line(cfg, capsys, monkeypatch, args, stdin, message):
    _stdin(monkeypatch, stdin)
    code, out, err = run(capsys, "--config", cfg, "users", *args)
    assert code == 1
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_duplicate_user_refused(cfg, capsys, monkeypatch):
    _stdin(monkeypatch, PASSWORD)
    assert (
        run(capsys, "--config", cfg, "users", "add", "ana", "-r", "agent", "--password-stdin")[0]
        == 0
    )
    _stdin(monkeypatch, PASSWORD)
    code, _, err = run(
        capsys, "--config", cfg, "users", "add", "ANA", "-r", "agent", "--password-stdin"
    )
    assert code == 1 and "already exists" in err


def test_roles_table_names_every_role(capsys):
    code, out, _ = run(capsys, "users", "roles")
    assert code == 0
    erase = next(line for line in out.splitlines() if line.startswith("customers.erase"))
    assert "admin" in erase and "agent" not in erase and "manager" not in erase
