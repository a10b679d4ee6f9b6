"""Dashboard users on SQLite and PostgreSQL: names, roles, argon2id hashes, sign-in, lockout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from listenwell.store import NotFoundError
from listenwell.store import users as u
from listenwell.store.models import AuditRow, UserRow

PASSWORD = "correct-Horse-battery-9"
NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


def stored_hash(engine, username: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(UserRow.password_hash).where(UserRow.username == username)
        ).scalar_one()


def audit_rows(engine) -> list[tuple[str, str, str | None, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditRow.actor, AuditRow.action, AuditRow.entity_id, AuditRow.detail).order_by(
                AuditRow.id
            )
        ).all()
    return [tuple(r) for r in rows]


def actions(engine) -> list[str]:
    return [r[1] for r in audit_rows(engine)]


def test_create_list_and_get(engine):
    made = u.create_user(engine, " ann ", "agent", PASSWORD, " Ann A. ", actor="user:root")
    assert made == u.User("ann", "agent", "Ann A.")
    u.create_user(engine, "bob", "manager", None, actor="user:root")
    assert [x.username for x in u.list_users(engine)] == ["ann", "bob"]
    ann = u.get_user(engine, "ANN")  # case-insensitive
    assert (ann.username, ann.role, ann.display_name, ann.disabled) == (
        "ann",
        "agent",
        "Ann A.",
        False,
    )
    assert ann.last_sign_in_at is None and ann.actor == "user:ann" and ann.label == "Ann A."
    assert u.get_user(engine, "bob").label == "bob"
    assert audit_rows(engine)[0] == ("user:root", "user.create", "ann", {"role": "agent"})
    with pytest.raises(NotFoundError, match="no user 'carol'"):
        u.get_user(engine, "carol")


@pytest.mark.parametrize(
    ("username", "role", "password", "message"),
    [
        ("Ann", "agent", PASSWORD, "user 'ann' already exists"),  # names ignore case
        ("", "agent", PASSWORD, "invalid username"),
        ("-ann", "agent", PASSWORD, "invalid username"),
        ("ann smith", "agent", PASSWORD, "invalid username"),
        ("<b>x</b>", "agent", PASSWORD, "invalid username"),
        ("x" * 101, "agent", PASSWORD, "invalid username"),
        ("carl", "root", PASSWORD, "unknown role 'root'"),
        ("carl", "agent", "short-1", "at least 10 characters"),
        ("carl", "agent", "abababababab", "too few different characters"),
    ],
)
def test_create_refuses_bad_input(engine, username, role, password, message):
    u.create_user(engine, "ann", "agent", PASSWORD, actor="test")
    with pytest.raises(u.UserError, match=message):
        u.create_user(engine, username, role, password, actor="test")
    assert [x.username for x in u.list_users(engine)] == ["ann"]
    assert actions(engine) == ["user.create"]


def test_hashes_are_salted_argon2id_never_the_password(engine):
    u.create_user(engine, "ann", "agent", PASSWORD, actor="test")
    u.create_user(engine, "bob", "agent", PASSWORD, actor="test")
    u.create_user(engine, "nopass", "agent", None, actor="test")
    first, second = stored_hash(engine, "ann"), stored_hash(engine, "bob")
    assert first is not None and second is not None
    assert first.startswith("$argon2id$") and second.startswith("$argon2id$")
    assert PASSWORD not in first and first != second  # salted
    assert stored_hash(engine, "nopass") is None
    u.set_password(engine, "ann", "another-Secret-77", actor="test")
    changed = stored_hash(engine, "ann")
    assert changed is not None and changed.startswith("$argon2id$") and changed != first
    assert "another-Secret-77" not in changed


def test_authenticate_success_records_the_sign_in(engine):
    u.create_user(engine, "ann", "manager", PASSWORD, "Ann", actor="test")
    user = u.authenticate(engine, "Ann", PASSWORD, now=NOW)
    assert (user.username, user.role) == ("ann", "manager")
    assert user.last_sign_in_at == NOW
    assert u.get_user(engine, "ann").last_sign_in_at == NOW
    assert audit_rows(engine)[-1] == ("user:ann", "user.sign_in", "ann", None)


def test_wrong_password_and_unknown_user_get_the_same_message(engine):
    u.create_user(engine, "ann", "agent", PASSWORD, actor="test")
    u.create_user(engine, "nopass", "agent", None, actor="test")
    messages = []
    for name, password in [("ann", PASSWORD + "x"), ("ghost", PASSWORD), ("nopass", "")]:
        with pytest.raises(u.SignInError) as caught:
            u.authenticate(engine, name, password, now=NOW)
        messages.append(str(caught.value))
    assert messages == ["wrong username or password"] * 3
    assert u.get_user(engine, "ann").last_sign_in_at is None


def test_disabled_user_is_refused_until_enabled(engine):
    u.create_user(engine, "ann", "agent", PASSWORD, actor="test")
    u.disable_user(engine, "ann", actor="user:root")
    assert u.get_user(engine, "ann").disabled
    with pytest.raises(u.SignInError, match="wrong username or password"):
        u.authenticate(engine, "ann", PASSWORD, now=NOW)
    u.disable_user(engine, "ann", actor="user:root", disabled=False)
    assert u.authenticate(engine, "ann", PASSWORD, now=NOW).username == "ann"
    assert ("user:root", "user.disable", "ann", None) in audit_rows(engine)
    assert ("user:root", "user.enable", "ann", None) in audit_rows(engine)


def test_role_change_is_audited_and_checked(engine):
    u.create_user(engine, "ann", "agent", PASSWORD, actor="test")
    u.set_role(engine, "ANN", "manager", actor="user:root")
    assert u.get_user(engine, "ann").role == "manager"
    assert audit_rows(engine)[-1] == ("user:root", "user.role", "ann", {"role": "manager"})
    with pytest.raises(u.UserError, match="unknown role 'boss'"):
        u.set_role(engine, "ann", "boss", actor="user:root")
    with pytest.raises(NotFoundError):
        u.set_role(engine, "ghost", "agent", actor="user:root")
    assert u.get_user(engine, "ann").role == "manager"


def test_set_password_checks_the_policy(engine):
    u.create_user(engine, "ann", "agent", PASSWORD, actor="test")
    before = stored_hash(engine, "ann")
    with pytest.raises(u.UserError, match="at least 10 characters"):
        u.set_password(engine, "ann", "short", actor="test")
    assert stored_hash(engine, "ann") == before
    with pytest.raises(NotFoundError):
        u.set_password(engine, "ghost", PASSWORD, actor="test")


def test_audit_entries_never_contain_a_password(engine):
    u.create_user(engine, "ann", "agent", PASSWORD, actor="test")
    u.set_password(engine, "ann", "second-Secret-55", actor="test")
    u.set_role(engine, "ann", "analyst", actor="test")
    for attempt in ("wrong-Guess-1234", "second-Secret-55"):
        try:
            u.authenticate(engine, "ann", attempt, now=NOW)
        except u.SignInError:
            pass
    with pytest.raises(u.SignInError):
        u.authenticate(engine, "ghost", "ghost-Guess-999", now=NOW)
    dumped = repr(audit_rows(engine))
    for secret in (PASSWORD, "second-Secret-55", "wrong-Guess-1234", "ghost-Guess-999"):
        assert secret not in dumped
    assert "$argon2" not in dumped


def fail(engine, times: int, at: datetime, name: str = "ann") -> None:
    for _ in range(times):
        with pytest.raises(u.SignInError):
            u.authenticate(engine, name, "wrong-Guess-1234", now=at)


def test_failed_sign_ins_are_counted_and_audited(engine):
    u.create_user(engine, "ann", "agent", PASSWORD, actor="test")
    fail(engine, 2, NOW)
    fail(engine, 1, NOW, name="ghost")
    assert actions(engine) == ["user.create"] + ["user.sign_in_failed"] * 3
    assert [r[3] for r in audit_rows(engine)[1:3]] == [{"failed": 1}, {"failed": 2}]
    assert audit_rows(engine)[-1][0] == "anonymous"


def test_five_failures_lock_the_account_for_fifteen_minutes(engine):
    u.create_user(engine, "ann", "agent", PASSWORD, actor="test")
    fail(engine, 4, NOW)
    assert u.authenticate(engine, "ann", PASSWORD, now=NOW).username == "ann"  # resets count
    fail(engine, u.MAX_FAILED_ATTEMPTS, NOW)
    assert "user.locked" in actions(engine)
    # Locked: even the right password is refused, with a message saying until when.
    for at in (NOW + timedelta(minutes=1), NOW + u.LOCKOUT - timedelta(seconds=1)):
        with pytest.raises(u.SignInError, match="too many failed sign-ins: try again after 10:15"):
            u.authenticate(engine, "ann", PASSWORD, now=at)
    assert u.LOCKOUT == timedelta(minutes=15)
    assert u.authenticate(engine, "ann", PASSWORD, now=NOW + u.LOCKOUT).username == "ann"


def test_set_password_lifts_the_lockout(engine):
    u.create_user(engine, "ann", "agent", PASSWORD, actor="test")
    fail(engine, u.MAX_FAILED_ATTEMPTS, NOW)
    with pytest.raises(u.SignInError, match="too many failed sign-ins"):
        u.authenticate(engine, "ann", PASSWORD, now=NOW + timedelta(minutes=1))
    u.set_password(engine, "ann", "fresh-Secret-808", actor="user:root")
    user = u.authenticate(engine, "ann", "fresh-Secret-808", now=NOW + timedelta(minutes=2))
    assert user.username == "ann"


def test_disabled_account_sign_ins_do_not_lock_it_for_later(engine):
    u.create_user(engine, "dee", "agent", PASSWORD, actor="test")
    u.disable_user(engine, "dee", actor="test")
    for _ in range(u.MAX_FAILED_ATTEMPTS + 1):
        with pytest.raises(u.SignInError, match="wrong username or password"):
            u.authenticate(engine, "dee", PASSWORD, now=NOW)
    u.disable_user(engine, "dee", actor="test", disabled=False)
    assert u.authenticate(engine, "dee", PASSWORD, now=NOW).username == "dee"


def test_unknown_username_is_not_written_to_the_audit_log(engine):
    typed = "my-secret-password-in-the-wrong-box"
    with pytest.raises(u.SignInError):
        u.authenticate(engine, typed, PASSWORD, now=NOW)
    with engine.connect() as conn:
        rows = conn.execute(select(AuditRow)).all()
    assert rows and all(typed not in f"{r.entity_id} {r.detail}" for r in rows)
