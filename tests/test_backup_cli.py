"""``listenwell db backup`` / ``db restore`` through the real command line."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime

import pytest
from cli_helpers import run

from listenwell import store


@pytest.fixture
def seeded(config_file, db_url):
    eng = store.connect(db_url)
    store.upgrade(eng)
    t = datetime(2024, 5, 1, tzinfo=UTC)
    store.upsert_mentions(eng, [store.Mention("x", str(i), t, f"post {i}") for i in range(30)])
    eng.dispose()
    return str(config_file)


def test_backup_then_restore_into_a_new_sqlite(seeded, tmp_path, capsys):
    path = tmp_path / "b.zip"
    code, out, err = run(capsys, "--config", seeded, "db", "backup", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["tables"]["mentions"] == 30
    target = tmp_path / "t.yaml"
    target.write_text(f"database_url: 'sqlite:///{tmp_path / 'new.db'}'\n", encoding="utf-8")
    code, out, err = run(capsys, "--config", str(target), "db", "restore", str(path))
    assert code == 0, err
    assert out.startswith("restored ") and "from" in out
    eng = store.connect(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert store.overview_counts(eng)["mentions"] == 30
    finally:
        eng.dispose()


def test_restore_over_data_needs_replace_and_confirmation(seeded, tmp_path, capsys, monkeypatch):
    path = tmp_path / "b.zip"
    assert run(capsys, "--config", seeded, "db", "backup", str(path))[0] == 0
    code, _, err = run(capsys, "--config", seeded, "db", "restore", str(path))
    assert code == 1 and "already holds data" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, _, err = run(capsys, "--config", seeded, "db", "restore", str(path), "--replace")
    assert code != 0 and "aborted" in err
    code, out, err = run(capsys, "--config", seeded, "db", "restore", str(path), "--replace", "-y")
    assert code == 0, err


def test_restore_of_a_non_backup_is_one_line(seeded, tmp_path, capsys):
    bad = tmp_path / "bad.zip"
    bad.write_text("hello", encoding="utf-8")
    code, _, err = run(capsys, "--config", seeded, "db", "restore", str(bad))
    assert code == 1 and "not a Listenwell backup" in err and "Traceback" not in err
