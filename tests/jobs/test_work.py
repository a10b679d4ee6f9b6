"""The job functions and helpers: id ranges, ranged enrichment, retention, the local worker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cli_helpers import run
from sqlalchemy import text

from listenwell import store
from listenwell.jobs.queue import QueueError, conninfo
from listenwell.store.retention import ANONYMISED_TEXT, apply_retention

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _mentions(engine, n: int, start: datetime = T0) -> None:
    store.upsert_mentions(
        engine,
        [
            store.Mention("x", str(i), start + timedelta(days=i), f"post {i}", author_handle="@a")
            for i in range(n)
        ],
    )


def test_pending_id_ranges_cover_exactly_the_pending_mentions(engine):
    _mentions(engine, 25)
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM mentions ORDER BY id")).scalars().all()
    done = ids[3:8]
    store.upsert_enrichments(
        engine, [store.EnrichmentResult(i, "sentiment", "neutral", 0.5, "m", "1") for i in done]
    )
    ranges = store.pending_id_ranges(engine, ["sentiment"], size=10)
    covered = [i for lo, hi in ranges for i in ids if lo <= i < hi and i not in done]
    assert covered == [i for i in ids if i not in done]  # each pending id in exactly one range
    assert len(ranges) == 2  # 20 pending in ranges of at most 10
    assert all(len([i for i in ids if lo <= i < hi and i not in done]) <= 10 for lo, hi in ranges)
    assert store.pending_id_ranges(engine, [], size=10) == []
    with pytest.raises(ValueError):
        store.pending_id_ranges(engine, ["sentiment"], size=0)


def test_pending_mentions_respects_before_id(engine):
    _mentions(engine, 10)
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM mentions ORDER BY id")).scalars().all()
    got = store.pending_mentions(engine, ["sentiment"], after_id=ids[2] - 1, before_id=ids[5])
    assert [m.id for m in got] == ids[2:5]


@pytest.mark.parametrize("mode", ["delete", "anonymise"])
def test_retention_removes_or_blanks_only_old_mentions(engine, mode):
    _mentions(engine, 10)
    cutoff = T0 + timedelta(days=4)
    report = apply_retention(engine, cutoff, mode, batch_size=3)
    assert report.mentions == 4
    frame = store.mentions_frame(engine, limit=100).sort_values("created_at")
    if mode == "delete":
        assert len(frame) == 6 and frame["created_at"].min() >= cutoff
    else:
        assert len(frame) == 10
        old = frame[frame["created_at"] < cutoff]
        assert set(old["text"]) == {ANONYMISED_TEXT} and old["author_handle"].isna().all()
        assert "post 9" in set(frame["text"])
    again = apply_retention(engine, cutoff, mode)
    assert again.mentions == 0  # idempotent
    with engine.connect() as conn:
        audit = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'retention.apply'")
        ).scalar_one()
    assert audit == 2


def test_retention_needs_an_aware_cutoff(engine):
    with pytest.raises(ValueError, match="timezone-aware"):
        apply_retention(engine, datetime(2024, 1, 1), "delete")


def test_queue_needs_postgresql():
    assert conninfo("postgresql+psycopg://u@h:5432/db") == "postgresql://u@h:5432/db"
    with pytest.raises(QueueError, match="needs PostgreSQL"):
        conninfo("sqlite:///x.db")


def test_jobs_commands_on_sqlite_are_one_line_errors(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    eng.dispose()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"database_url": url}), encoding="utf-8")
    code, _, err = run(capsys, "--config", str(cfg), "jobs", "sweep")
    assert code == 1 and "needs PostgreSQL" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_local_worker_on_sqlite_enriches_sweeps_and_keeps_retention(tmp_path, capsys):
    """`listenwell worker --once` on SQLite: the in-process scheduler does every due job."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    now = datetime.now(UTC)
    _mentions(eng, 5, start=now - timedelta(days=400))  # older than 12 months
    _mentions_new = [
        store.Mention("x", f"n{i}", now - timedelta(days=i), f"my order is late {i}")
        for i in range(5)
    ]
    store.upsert_mentions(eng, _mentions_new)
    eng.dispose()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        json.dumps(
            {
                "database_url": url,
                "nlp": {"threads": 1},
                "retention": {"months": 12, "mode": "delete"},
            }
        ),
        encoding="utf-8",
    )
    code, _, err = run(capsys, "--config", str(cfg), "worker", "--once")
    assert code == 0, err
    assert "enrich: {" in err and "sweep: {" in err and "retention: {" in err
    eng = store.connect(url)
    try:
        assert store.overview_counts(eng)["mentions"] == 5  # the old five were deleted
        counts = store.enrichment_counts(eng)
        assert counts.get("sentiment") == 5
    finally:
        eng.dispose()
