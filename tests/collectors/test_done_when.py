"""Issue 4's "done when": 600 mentions per source, malformed items, faults, a kill, a resume.

Every valid mention is stored exactly once, every malformed one is
quarantined once with its reason, and a second run stores nothing new. The
kill is real: a ``listenwell collect`` process is SIGKILLed while it waits for
a page, then a new run resumes from the saved cursor.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine

from listenwell import store
from listenwell.collectors.base import RetryPolicy
from listenwell.collectors.runner import CursorState, run_collector
from listenwell.demo.fakes.harness import Sleeps, make_reddit, make_x, sources_settings, stored
from listenwell.demo.fakes.reddit import FakeReddit
from listenwell.demo.fakes.server import fault
from listenwell.demo.fakes.x import FakeX


@pytest.fixture
def patient(sleeps: Sleeps) -> RetryPolicy:
    """Enough tries for several faults in a row on one page."""
    return RetryPolicy(attempts=5, max_wait=5.0, backoff=0.01, sleep=sleeps)


def _seed_reddit(fake: FakeReddit) -> list[str]:
    ids: list[str] = []
    for _ in range(6):
        ids += fake.add_posts(100)
        fake.add_malformed_post()
    return ids


def _seed_x(fake: FakeX) -> list[str]:
    ids: list[str] = []
    for _ in range(6):
        ids += fake.add_posts(100, long_every=7)
        fake.add_malformed_post()
    return ids


def test_600_reddit_mentions_with_faults(
    reddit: FakeReddit, engine: Engine, patient: RetryPolicy
) -> None:
    ids = _seed_reddit(reddit)
    reddit.server.fail_next(r"/search", fault("429", retry_after=1), fault("html"))
    collector = make_reddit(reddit, patient, page_size=100)
    result = run_collector(engine, collector)
    assert result.ok, result.errors
    assert (result.new, result.quarantined) == (600, 6)
    rows = stored(engine)
    assert sorted(r["external_id"] for r in rows) == sorted(ids)
    assert len(store.quarantine_frame(engine)) == 6
    again = run_collector(engine, make_reddit(reddit, patient, page_size=100))
    assert (again.new, again.quarantined) == (0, 0)


def test_600_x_mentions_with_faults(x: FakeX, engine: Engine, patient: RetryPolicy) -> None:
    ids = _seed_x(x)
    x.server.fail_next(r"/2/", fault("500"), fault("slow", delay=1.0), fault("truncated"))
    result = run_collector(engine, make_x(x, patient, page_size=100))
    assert result.ok, result.errors
    assert (result.new, result.quarantined, result.retries) == (600, 6, 3)
    assert sorted(r["external_id"] for r in stored(engine)) == sorted(ids)
    again = run_collector(engine, make_x(x, patient, page_size=100))
    assert (again.new, again.quarantined) == (0, 0)


_CHILD = """
import sys
from listenwell.cli import app, main
from listenwell.cli import collect
if not any(c.name == "collect" for c in app.registered_commands):
    collect.register(app)
main(sys.argv[1:])
"""


def _x_config(db: Path, x: FakeX) -> tuple[Engine, Path]:
    """A migrated SQLite database and a config pointing the X source at the fake."""
    url = f"sqlite:///{db}"
    eng = store.connect(url)
    store.upgrade(eng)
    cfg = db.with_suffix(".yaml")
    cfg.write_text(json.dumps({"database_url": url, "sources": sources_settings(x=x)}))
    return eng, cfg


def test_killed_mid_run_then_resumed(x: FakeX, tmp_path: Path, retry: RetryPolicy) -> None:
    ids = _seed_x(x)
    eng, cfg = _x_config(tmp_path / "kill.db", x)
    third_page_asked = threading.Event()
    killed = threading.Event()
    original = x._search

    def search(req, m):  # type: ignore[no-untyped-def]
        if req.query.get("next_token") == "n200":
            third_page_asked.set()
            killed.wait(60)  # hang until the client is killed
        return original(req, m)

    x.server.routes[0] = (x.server.routes[0][0], x.server.routes[0][1], search)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENWELL_")}
    log = tmp_path / "child.log"
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD, "--config", str(cfg), "collect", "--source", "x"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            asked = third_page_asked.wait(60)
            assert asked, "no request for page 3: " + log.read_text(errors="replace")[-500:]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed.set()
    finally:
        x.server.routes[0] = (x.server.routes[0][0], x.server.routes[0][1], original)
    # Two pages (default page size 100) were committed with their cursor before the kill.
    state = CursorState.load(store.load_cursor(eng, "x", "search:Acme"))
    assert state.in_progress and state.resume == "n200"
    # The first 200 listed items: 198 valid posts and 2 malformed ones.
    assert len(stored(eng)) == 198 and len(store.quarantine_frame(eng)) == 2
    x.server.reset()
    result = run_collector(eng, make_x(x, retry, page_size=100))
    assert result.ok, result.errors
    assert x.server.log[0].query["next_token"] == "n200"  # resumed, not restarted
    assert sorted(r["external_id"] for r in stored(eng)) == sorted(ids)
    assert len(store.quarantine_frame(eng)) == 6
    assert result.duplicates == 0
    eng.dispose()


def test_collect_every_repeats_and_stops_cleanly_on_ctrl_c(x: FakeX, tmp_path: Path) -> None:
    x.add_posts(3)
    eng, cfg = _x_config(tmp_path / "every.db", x)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENWELL_")}
    env["PYTHONUNBUFFERED"] = "1"
    args = ["--config", str(cfg), "collect", "--source", "x", "--every", "0.1s"]
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err_file,
            text=True,
        )
    lines: list[str] = []
    two_passes = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if sum(ln.startswith("x: ") for ln in lines) >= 2:
                two_passes.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert two_passes.wait(60), lines
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        proc.wait(timeout=60)
        reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    err = errors.read_text()
    assert proc.returncode == 0, err
    assert "stopped; each source resumes from its saved cursor" in err and "Traceback" not in err
    assert lines[0].startswith("x: 3 new") and lines[1].startswith("x: 0 new")
    assert len(stored(eng)) == 3
    eng.dispose()
