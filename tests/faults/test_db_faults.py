"""Database faults: a connection cut mid-transaction, a full disk, a read-only database, bad config.

Each runs the real `listenwell` command in a subprocess and checks three things: the user
gets one clear line (no traceback), nothing already stored is lost or half-written, and a
re-run after the fault finishes the job.
"""

from __future__ import annotations

import json
import resource
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tcp_proxy import CuttingProxy

from listenwell import store

BATCH = 1000


def _jsonl(path: Path, n: int, start: int = 0) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(start, start + n):
            f.write(
                json.dumps(
                    {
                        "source": "x",
                        "external_id": str(i),
                        "created_at": "2024-05-01T10:00:00Z",
                        "text": f"post number {i} about acme " + "padding " * 30,
                        "author_handle": f"@u{i % 97}",
                    }
                )
                + "\n"
            )
    return path


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / f"c-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps({"database_url": url, "batch_size": BATCH}), encoding="utf-8")
    return path


def _cli(cfg: Path, *args: str, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "listenwell", "--config", str(cfg), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _one_clear_line(err: str, *words: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith("error: "), err
    assert any(w in lines[-1].lower() for w in words), err


def _count(url: str) -> int:
    eng = store.connect(url)
    try:
        with eng.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM mentions")).scalar_one())
    finally:
        eng.dispose()


@pytest.fixture
def pg_db(own_pg_db: str) -> str:
    """A PostgreSQL database of this test's own (see tests/conftest.py)."""
    return own_pg_db


@pytest.mark.postgres
def test_connection_cut_mid_import_leaves_whole_batches_and_a_rerun_finishes(pg_db, tmp_path):
    url = make_url(pg_db)
    proxy = CuttingProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        cfg = _config(tmp_path, via_proxy)
        data = _jsonl(tmp_path / "m.jsonl", 60_000)
        proc = _cli(cfg, "import", "mentions", str(data))
        deadline = time.monotonic() + 120
        while _count(pg_db) < 3 * BATCH:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the import did not start"
            time.sleep(0.05)
        assert proxy.cut() >= 1
        out, err = proc.communicate(timeout=600)
        stored = _count(pg_db)
        if proc.returncode == 0:
            # The cut fell between two batches: the pool noticed the dead connection on
            # checkout (pre-ping), reconnected, and the import went on. Nothing lost.
            assert stored == 60_000, out + err
            return
        assert proc.returncode == 1, out + err
        _one_clear_line(err, "connection", "database", "server closed")
        assert 0 < stored < 60_000
        assert stored % BATCH == 0  # each batch is one transaction: no half-written batch
        rerun = _cli(cfg, "import", "mentions", str(data))
        out, err = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, err
        assert _count(pg_db) == 60_000
        assert f"{stored:,} duplicates" in out or f"{stored} duplicates" in out, out
    finally:
        proxy.close()


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_disk_full_mid_import_is_one_line_and_corrupts_nothing(tmp_path):
    db = tmp_path / "full.db"
    url = f"sqlite:///{db}"
    eng = store.connect(url)
    store.upgrade(eng)
    eng.dispose()
    cfg = _config(tmp_path, url)
    first = subprocess.run(
        [
            sys.executable,
            "-m",
            "listenwell",
            "--config",
            str(cfg),
            "import",
            "mentions",
            str(_jsonl(tmp_path / "a.jsonl", 2 * BATCH)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    size = db.stat().st_size + sum(
        p.stat().st_size for p in tmp_path.glob("full.db-*") if p.is_file()
    )
    proc = _cli(
        cfg,
        "import",
        "mentions",
        str(_jsonl(tmp_path / "b.jsonl", 20 * BATCH, start=10**6)),
        preexec_fn=_limit_file_size(size + 1_500_000),
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err
    _one_clear_line(err, "disk", "full", "space", "too large")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = conn.execute("SELECT count(*) FROM mentions").fetchone()[0]
        originals = conn.execute(
            "SELECT count(*) FROM mentions WHERE CAST(external_id AS INTEGER) < 2000"
        ).fetchone()[0]
    assert originals == 2 * BATCH  # nothing already stored was lost
    assert 2 * BATCH <= stored < 22 * BATCH and stored % BATCH == 0


def test_read_only_sqlite_is_a_clear_error_and_changes_nothing(tmp_path):
    db = tmp_path / "ro.db"
    eng = store.connect(f"sqlite:///{db}")
    store.upgrade(eng)
    store.upsert_mentions(eng, [store.Mention("x", "1", datetime.now(UTC), "kept")])
    eng.dispose()
    before = db.read_bytes()
    cfg = _config(tmp_path, f"sqlite:///file:{db}?mode=ro&uri=true")
    proc = _cli(cfg, "import", "mentions", str(_jsonl(tmp_path / "m.jsonl", 10)))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    _one_clear_line(err, "read-only", "readonly", "read only")
    assert db.read_bytes() == before


@pytest.mark.postgres
def test_read_only_postgresql_is_a_clear_error_and_changes_nothing(pg_db, pg_admin_url, tmp_path):
    name = make_url(pg_db).database
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    admin.dispose()
    cfg = _config(tmp_path, pg_db)
    proc = _cli(cfg, "import", "mentions", str(_jsonl(tmp_path / "m.jsonl", 10)))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    _one_clear_line(err, "read-only", "read only")
    assert _count(pg_db) == 0


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ("nlp:\n  batch_size: lots\n", ("nlp.batch_size",)),
        ("sources:\n  x:\n    max_results: 5000\n", ("sources.x.max_results",)),
        ("brand: [unclosed\n", ("line", "yaml")),
        ("dashboard:\n  sign_in: maybe\n", ("dashboard.sign_in",)),
    ],
)
def test_corrupt_config_names_the_key(tmp_path, config, words):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(config, encoding="utf-8")
    proc = _cli(cfg, "db", "status")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err
    assert any(w in err for w in words), err
