"""Backup and restore: round trips on SQLite and PostgreSQL, across them, and refusals."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from crm_seed import at, conversation, customer, enrich, handle, mention, note, reply
from sqlalchemy import Engine, MetaData, select, text

from listenwell import store
from listenwell.store.backup import BackupError, backup, read_manifest, restore
from listenwell.store.embeddings import read_embeddings, write_embeddings
from listenwell.store.themes import NewTheme, insert_theme, update_theme
from listenwell.store.users import authenticate, create_user

PASSWORD = "correct horse battery"


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        pk = customer(conn, "C1", name="Zoë <b>Ünïcode</b>", email="z@example.com")
        handle(conn, pk, "x", "@zoe")
        m1 = mention(conn, at(1, 9), "battery died 🔋 \u202eRTL", author="@zoe")
        m2 = mention(conn, at(2, 10), "love it", source="reddit", author="u/zoe")
        enrich(conn, m1, "sentiment", "negative")
        cid = conversation(conn, m1, at(1, 9))
        reply(conn, cid, at(1, 10))
        note(conn, cid, at(1, 11), "call back")
    vectors = np.stack([np.arange(8, dtype=np.float32), np.ones(8, dtype=np.float32)])
    write_embeddings(engine, [m1, m2], vectors, model_name="m", model_version="1")
    # A theme merged into a NEWER one: its foreign key points forward in id order.
    old = insert_theme(engine, NewTheme("old", np.zeros(8, dtype=np.float32), [("a", 1.0)]))
    new = insert_theme(engine, NewTheme("new", None, [("b", 0.5)]))
    update_theme(engine, old, {"status": "merged", "merged_into": new})
    create_user(engine, "ana", "analyst", PASSWORD, actor="test")
    store.record_audit(engine, "test", "seeded", "database", None, {"nested": {"k": [1, 2]}})


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def _dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    meta = MetaData()
    meta.reflect(engine)
    out = {}
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            if table.name == "alembic_version":
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            rows = conn.execute(select(table).order_by(*order)).all()
            out[table.name] = [tuple(_norm(v) for v in r) for r in rows]
    return out


def _fresh_sqlite(tmp_path: Path, name: str) -> Engine:
    return store.connect(f"sqlite:///{tmp_path / name}")


def test_round_trip_into_a_new_database(engine, tmp_path):
    _seed(engine)
    before = _dump(engine)
    path = tmp_path / "b.zip"
    report = backup(engine, path)
    assert report.tables["mentions"] == 2 and report.tables["themes"] == 2
    assert read_manifest(path)["revision"] == report.revision
    target = _fresh_sqlite(tmp_path, "restored.db")
    try:
        restored = restore(target, path)
        assert restored.rows == report.rows
        assert _dump(target) == before
        # What was restored works: the password hash, the vectors, the sequences.
        assert authenticate(target, "ana", PASSWORD).role == "analyst"
        vectors = read_embeddings(target, [1, 2])
        assert vectors[1].vector.tolist() == list(range(8))
        store.upsert_mentions(target, [store.Mention("x", "new", at(3), "after restore")])
        assert store.overview_counts(target)["mentions"] == 3
    finally:
        target.dispose()


def test_restore_replaces_only_when_asked_and_then_matches(engine, tmp_path):
    _seed(engine)
    before = _dump(engine)
    path = tmp_path / "b.zip"
    backup(engine, path)
    store.upsert_mentions(engine, [store.Mention("x", "later", at(5), "added after backup")])
    with pytest.raises(BackupError, match="already holds data"):
        restore(engine, path)
    assert store.overview_counts(engine)["mentions"] == 3  # unchanged
    restore(engine, path, replace=True)
    assert _dump(engine) == before
    # Ids keep counting after the restored ones (PostgreSQL sequences are reset).
    store.upsert_mentions(engine, [store.Mention("x", "after", at(6), "new")])
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM mentions ORDER BY id")).scalars().all()
    assert len(ids) == 3 and ids[-1] > max(ids[:-1])


def test_damaged_backup_changes_nothing(engine, tmp_path):
    _seed(engine)
    path = tmp_path / "b.zip"
    backup(engine, path)
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "tables/replies.jsonl":
                data = b'["not", "a row"'
            dst.writestr(item, data)
    before = _dump(engine)
    with pytest.raises(BackupError, match="damaged"):
        restore(engine, damaged, replace=True)
    assert _dump(engine) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a zip", "not a Listenwell backup"), (None, "no such backup file")],
)
def test_not_a_backup_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "x.zip"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BackupError, match=message):
        read_manifest(path)


def test_backup_never_leaves_a_partial_file(engine, tmp_path):
    _seed(engine)
    with pytest.raises(BackupError, match="is a folder"):
        backup(engine, tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
