"""Fault tests for the PostgreSQL workers: SIGKILL mid-enrichment and mid-collection.

Real `listenwell worker` processes share one fresh PostgreSQL database. One is
killed with SIGKILL while it is inside a job; the others must finish the
backlog with nothing missing and nothing done twice.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from listenwell import store
from listenwell.demo.fakes.harness import sources_settings
from listenwell.demo.fakes.x import FakeX

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

N = 600


@pytest.fixture
def pg_db(own_pg_db: str) -> str:
    """A PostgreSQL database of this test's own (see tests/conftest.py)."""
    return own_pg_db


def _config(tmp_path: Path, url: str, extra: dict | None = None) -> str:
    cfg = {
        "database_url": url,
        "brand": {"name": "Acme"},
        "nlp": {"threads": 1, "batch_size": 25},
        "jobs": {"heartbeat_s": 0.5, "stalled_after_s": 3, "enrich_chunk": 100},
        **(extra or {}),
    }
    path = tmp_path / "worker.yaml"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return str(path)


def _cli(cfg: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "listenwell", "--config", cfg, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=check,
    )


def _worker(cfg: str, name: str, *, once: bool, log: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "listenwell", "--config", cfg, "worker", "--name", name]
    if once:
        args.append("--once")
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def _scalar(url: str, sql: str) -> int:
    eng = store.connect(url)
    try:
        with eng.connect() as conn:
            return int(conn.execute(text(sql)).scalar() or 0)
    finally:
        eng.dispose()


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the worker exited (code {proc.returncode}) before {what}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _finish(cfg: str, url: str, tmp_path: Path, names: tuple[str, ...]) -> None:
    """Run workers with --once until no job is waiting (a re-deferred job may be scheduled)."""
    for attempt in range(4):
        workers = [
            _worker(cfg, f"{n}{attempt}", once=True, log=tmp_path / f"{n}{attempt}.log")
            for n in names
        ]
        for w in workers:
            code = w.wait(timeout=300)
            assert code == 0, (tmp_path / f"{names[0]}{attempt}.log").read_text()[-3000:]
        left = _scalar(
            url, "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        )
        if not left:
            return
        time.sleep(11)  # enrich_finish re-defers itself 10 s ahead while ranges were pending
    pytest.fail("jobs were still waiting after four rounds of workers")


def test_killed_worker_mid_enrichment_loses_nothing_and_repeats_nothing(pg_db, tmp_path):
    eng = store.connect(pg_db)
    store.upsert_mentions(
        eng,
        [
            store.Mention(
                "x",
                str(i),
                datetime(2024, 5, 1, tzinfo=UTC),
                f"battery died again {i}, refund" if i % 2 else f"love the new app update {i}",
                author_handle=f"@u{i % 23}",
            )
            for i in range(N)
        ],
    )
    eng.dispose()
    cfg = _config(tmp_path, pg_db)
    out = _cli(cfg, "jobs", "enrich").stdout
    assert "queued 6 enrichment job(s)" in out
    victim = _worker(cfg, "victim", once=False, log=tmp_path / "victim.log")
    try:
        # Inside a job, with part of its range committed (batches of 25 in jobs of 100).
        def mid_job() -> int | None:
            done = _scalar(pg_db, "SELECT count(*) FROM enrichments WHERE stage = 'sentiment'")
            doing = _scalar(
                pg_db,
                "SELECT min(id) FROM procrastinate_jobs WHERE status = 'doing' "
                "AND task_name = 'listenwell:enrich_range'",
            )
            return doing if doing and done % 100 else None

        killed_job = _wait(mid_job, 240, "the victim to be inside a job", victim)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    partial = _scalar(pg_db, "SELECT count(*) FROM enrichments WHERE stage = 'sentiment'")
    assert 0 < partial < N
    assert (
        _scalar(
            pg_db,
            f"SELECT count(*) FROM procrastinate_jobs WHERE id = {killed_job} AND status = 'doing'",
        )
        == 1
    )
    time.sleep(4)  # longer than jobs.stalled_after_s: the victim's heartbeat is stale
    _finish(cfg, pg_db, tmp_path, ("a", "b"))

    for stage in ("language", "sentiment", "intent", "links", "themes"):
        assert _scalar(pg_db, f"SELECT count(*) FROM enrichments WHERE stage = '{stage}'") == N
        assert (
            _scalar(
                pg_db, f"SELECT count(DISTINCT mention_id) FROM enrichments WHERE stage = '{stage}'"
            )
            == N
        )
    assert _scalar(pg_db, "SELECT count(*) FROM embeddings") == N
    assert (
        _scalar(
            pg_db,
            f"SELECT count(*) FROM procrastinate_jobs WHERE id = {killed_job}"
            " AND status = 'succeeded'",
        )
        == 1
    )
    assert _scalar(pg_db, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'") == 0
    # Work already committed before the kill was not redone: its rows kept their first write.
    assert (
        _scalar(
            pg_db,
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'listenwell:enrich_range' "
            "AND status = 'succeeded'",
        )
        == 6
    )


def test_killed_worker_mid_collection_loses_nothing_and_stores_nothing_twice(pg_db, tmp_path):
    fake = FakeX()
    fake.server.start()
    try:
        fake.add_posts(3000)
        fake.server.latency = 0.3  # about 9 s for the 30 pages
        cfg = _config(tmp_path, pg_db, {"sources": sources_settings(x=fake)})
        assert "x: queued" in _cli(cfg, "jobs", "collect", "x").stdout
        victim = _worker(cfg, "victim", once=False, log=tmp_path / "victim.log")
        try:
            _wait(
                lambda: 0 < _scalar(pg_db, "SELECT count(*) FROM mentions") < 2500,
                120,
                "the victim to store some pages",
                victim,
            )
        finally:
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
        assert _scalar(pg_db, "SELECT count(*) FROM mentions") < 3000
        fake.server.latency = 0.0
        time.sleep(4)
        _finish(cfg, pg_db, tmp_path, ("a",))
        assert _scalar(pg_db, "SELECT count(*) FROM mentions") == 3000
        assert _scalar(pg_db, "SELECT count(DISTINCT external_id) FROM mentions") == 3000
        assert _scalar(pg_db, "SELECT count(*) FROM quarantine") == 0
        assert (
            _scalar(
                pg_db,
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'listenwell:collect' "
                "AND status = 'succeeded'",
            )
            == 1
        )
    finally:
        fake.server.stop()
