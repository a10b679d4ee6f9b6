"""Shared fixtures: a clean environment, and one database fixture over SQLite and PostgreSQL.

PostgreSQL tests use a throw-away database created for the test session on
``LISTENWELL_TEST_PG`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``);
where no server answers they skip with the reason. In CI (``CI=true``) an
unreachable PostgreSQL is an error, not a skip, so the suite cannot go green
without running the PostgreSQL half.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from listenwell import store
from listenwell.store.models import metadata

PG_ADMIN_URL = os.environ.get(
    "LISTENWELL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LISTENWELL_SHARED", REPO.parent / "shared"))


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No LISTENWELL_* variable and no user config leaks into a test."""
    for key in list(os.environ):
        if key.startswith("LISTENWELL_") and key not in ("LISTENWELL_TEST_PG", "LISTENWELL_SHARED"):
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))


def _pg_reachable() -> str | None:
    try:
        eng = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"


@contextmanager
def _throwaway_pg_database(prefix: str) -> Iterator[str]:
    """Create a migrated PostgreSQL database named ``prefix_<random>``; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    eng = store.connect(url)
    store.upgrade(eng)
    eng.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session; dropped at the end."""
    reason = _pg_reachable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI must run the PostgreSQL tests)")
        pytest.skip(reason)
    with _throwaway_pg_database("listenwell_test") as url:
        yield url


@pytest.fixture
def pg_admin_url() -> str:
    """The URL of the PostgreSQL server's maintenance database (to create or alter others)."""
    return PG_ADMIN_URL


@pytest.fixture
def own_pg_db(pg_url: str) -> Iterator[str]:
    """A migrated PostgreSQL database of this test's own (for tests that add tables, such as
    the task queue's, or change database settings); dropped after the test."""
    del pg_url  # only for its skip (or CI failure) when PostgreSQL is absent
    with _throwaway_pg_database("listenwell_own") as url:
        yield url


def _truncate(engine: Engine) -> None:
    with engine.begin() as conn:
        names = [t.name for t in reversed(metadata.sorted_tables)]
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL: SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        eng = store.connect(url)
        store.upgrade(eng)
        eng.dispose()
        yield url
    else:
        url = request.getfixturevalue("pg_url")
        eng = store.connect(url)
        _truncate(eng)
        eng.dispose()
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on :func:`db_url`, disposed after the test."""
    eng = store.connect(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def config_file(tmp_path: Path, db_url: str) -> Path:
    """A config file naming the test database."""
    path = tmp_path / "listenwell.yaml"
    path.write_text(f"database_url: '{db_url}'\nbrand:\n  name: Acme\n", encoding="utf-8")
    return path


@pytest.fixture
def shared_data():
    """``shared_data(*parts)``: a path in ../shared/data; the test skips if it is absent."""

    def find(*parts: str) -> Path:
        path = SHARED.joinpath("data", *parts)
        if not path.exists():
            pytest.skip(f"shared data not found: {path}")
        return path

    return find


@contextmanager
def _running_demo(folder: Path, *, enrich: bool = False) -> Iterator[str]:
    """Run `listenwell demo --dir FOLDER` on a free port; yield its base URL once it is healthy.

    With ``enrich`` the demo runs the NLP stages (the packaged models) before serving.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("listenwell")
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "demo.log"
    cmd = [str(exe), "demo", "--dir", str(folder / "demo"), "--port", str(port)]
    cmd.append("--enrich" if enrich else "--no-enrich")
    with log.open("w") as out, subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT) as proc:
        try:
            deadline = time.monotonic() + (600 if enrich else 90)
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the demo dashboard did not start: " + log.read_text()[-2000:])
                try:
                    health = f"http://127.0.0.1:{port}/_stcore/health"
                    with urllib.request.urlopen(health, timeout=2) as r:
                        if r.read().decode() == "ok":
                            break
                except OSError:
                    time.sleep(0.5)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def running_demo() -> Callable[[Path], AbstractContextManager[str]]:
    """``with running_demo(folder, enrich=False) as url:`` the demo dashboard, served by the
    real command."""
    return _running_demo
