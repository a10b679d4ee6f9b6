"""`listenwell collect` and `listenwell sources status`, against the fakes."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from listenwell import store
from listenwell.cli import app, main
from listenwell.cli import collect as collect_cli
from listenwell.collectors.schedule import parse_interval, run_every
from listenwell.demo.fakes.harness import sources_settings
from listenwell.demo.fakes.reddit import FakeReddit
from listenwell.demo.fakes.x import FakeX


@pytest.fixture(autouse=True)
def _registered() -> None:
    """Wire the commands into the root app, unless cli/__init__ already does."""
    if not any(c.name == "collect" for c in app.registered_commands):
        collect_cli.register(app)


@pytest.fixture
def cfg(tmp_path: Path, reddit: FakeReddit, x: FakeX) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    eng.dispose()
    path = tmp_path / "listenwell.yaml"
    path.write_text(
        json.dumps(  # JSON is YAML
            {
                "database_url": url,
                "brand": {"name": "Acme"},
                "sources": sources_settings(reddit, x),
            }
        ),
        encoding="utf-8",
    )
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_collect_one_source_prints_counts(cfg: str, x: FakeX, capsys) -> None:
    x.add_posts(4)
    code, out, _ = run(capsys, "--config", cfg, "collect", "--source", "x")
    assert code == 0
    assert out.strip() == "x: 4 new, 0 duplicates, 0 quarantined, 1 pages, 0 retries"
    code, out, _ = run(capsys, "--config", cfg, "collect", "--source", "x", "--json")
    counts = json.loads(out)
    # The lower bound is inclusive: the newest post is read again, and not stored twice.
    assert code == 0 and (counts["new"], counts["duplicates"]) == (0, 1)


def test_collect_all_skips_unconfigured_and_quarantines(
    cfg: str, reddit: FakeReddit, x: FakeX, capsys
) -> None:
    reddit.add_posts(2)
    reddit.add_malformed_post()
    reddit.add_comments(1)
    x.add_posts(3)
    code, out, _ = run(capsys, "--config", cfg, "collect")
    assert code == 0, out
    lines = out.strip().splitlines()
    assert lines[0].startswith("appstore: skipped, not configured (set sources.appstore.app_ids")
    assert lines[1].startswith("reddit: 3 new, 0 duplicates, 1 quarantined")
    assert lines[2].startswith("x: 3 new")


def test_a_failing_source_exits_1_and_the_others_still_run(
    cfg: str, reddit: FakeReddit, x: FakeX, capsys
) -> None:
    x.add_posts(2)
    reddit.client_secret = "changed"  # the configured secret is now refused
    try:
        code, out, err = run(capsys, "--config", cfg, "collect")
    finally:
        reddit.client_secret = "secret"
    assert code == 1
    assert "x: 2 new" in out
    assert "Reddit refused the credentials" in err and "Traceback" not in err


def test_unknown_source_and_bad_interval_are_one_line_errors(cfg: str, capsys) -> None:
    code, _, err = run(capsys, "--config", cfg, "collect", "--source", "myspace")
    assert code == 1 and err.strip() == (
        "error: unknown source 'myspace' (choose from reddit, x, appstore or all)"
    )
    code, _, err = run(capsys, "--config", cfg, "collect", "--every", "soon")
    assert code == 1 and "--every: not a duration" in err and len(err.strip().splitlines()) == 1


def test_collect_all_with_nothing_configured_is_an_error(tmp_path: Path, capsys) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(f"database_url: sqlite:///{tmp_path / 'e.db'}\n", encoding="utf-8")
    eng = store.connect(f"sqlite:///{tmp_path / 'e.db'}")
    store.upgrade(eng)
    eng.dispose()
    code, _, err = run(capsys, "--config", str(path), "collect")
    assert code == 1 and err.startswith("error: no source is configured")


def test_sources_status(cfg: str, x: FakeX, capsys) -> None:
    code, out, _ = run(capsys, "--config", cfg, "sources", "status")
    assert code == 0 and "x\n  last run: never" in out
    x.add_posts(3)
    run(capsys, "--config", cfg, "collect", "--source", "x")
    code, out, _ = run(capsys, "--config", cfg, "sources", "status")
    assert code == 0
    assert "ok: 3 new, 0 duplicates" in out
    assert "quota: limit=450, remaining=449" in out
    assert "cursor search:Acme: since 20" in out
    assert "appstore (not configured: set sources.appstore.app_ids)" in out
    code, out, _ = run(capsys, "--config", cfg, "sources", "status", "--json")
    report = json.loads(out)
    assert report["x"]["last_run"]["new"] == 3 and report["reddit"]["last_run"] is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("30s", 30.0), ("5m", 300.0), ("1.5h", 5400.0)]
)
def test_parse_interval(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "5 minutes", "-1m", "m"])
def test_parse_interval_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_interval(text)


def test_run_every_never_overlaps_a_source_and_survives_a_failed_pass() -> None:
    stop = threading.Event()
    running: set[str] = set()
    overlaps: list[str] = []
    passes: Counter[str] = Counter()
    lock = threading.Lock()

    def once(source: str, should_stop: Callable[[], bool]) -> None:
        with lock:
            if source in running:
                overlaps.append(source)
            running.add(source)
            passes[source] += 1
            n = passes[source]
        try:
            if source == "x" and n == 1:
                raise RuntimeError("a broken pass")
            stop.wait(0.02)  # a pass longer than the interval: ticks are skipped, not queued
        finally:
            with lock:
                running.discard(source)
                if min(passes["reddit"], passes["x"]) >= 3:
                    stop.set()

    run_every(0.005, ["reddit", "x"], once, stop)
    assert overlaps == []
    assert passes["reddit"] >= 3 and passes["x"] >= 3
