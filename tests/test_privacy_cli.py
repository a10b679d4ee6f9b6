"""`listenwell customers export` and `listenwell customers erase`, through the real command line."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_helpers import run
from sqlalchemy import insert, select

from listenwell import store
from listenwell.store.models import AuditRow, CustomerRow, HandleRow, MentionRow
from listenwell.store.privacy import customer_hash


@pytest.fixture
def cfg(config_file: Path, db_url: str, capsys) -> str:
    """A migrated database holding customer C1 (a handle and a mention) and C2."""
    code, _, _ = run(capsys, "--config", str(config_file), "db", "upgrade")
    assert code == 0
    engine = store.connect(db_url)
    with engine.begin() as c:
        pk = c.execute(
            insert(CustomerRow.__table__).values(
                customer_id="C1", name="Ann Lee", email="ann@example.com", attributes={}
            )
        ).inserted_primary_key[0]
        c.execute(insert(CustomerRow.__table__).values(customer_id="C2", attributes={}))
        c.execute(
            insert(HandleRow.__table__).values(
                customer_pk=pk, platform="x", handle="annlee", display="@annlee"
            )
        )
        c.execute(
            insert(MentionRow.__table__).values(
                source="x",
                external_id="1",
                created_at=datetime(2024, 5, 1, tzinfo=UTC),
                author_handle="@annlee",
                text="hello",
            )
        )
    engine.dispose()
    return str(config_file)


def _audit(db_url: str) -> list:
    engine = store.connect(db_url)
    with engine.connect() as c:
        rows = c.execute(select(AuditRow.__table__).order_by(AuditRow.id)).all()
    engine.dispose()
    return rows


def test_export_to_stdout_and_file(cfg: str, db_url: str, capsys, tmp_path: Path) -> None:
    code, out, err = run(capsys, "--config", cfg, "customers", "export", "C1")
    assert code == 0, err
    data = json.loads(out)
    assert data["customer"]["email"] == "ann@example.com"
    assert [m["text"] for m in data["mentions"]] == ["hello"]
    target = tmp_path / "c1.json"
    code, out, err = run(capsys, "--config", cfg, "customers", "export", "C1", "-o", str(target))
    assert code == 0, err
    assert json.loads(target.read_text(encoding="utf-8"))["customer"]["customer_id"] == "C1"
    assert [a.action for a in _audit(db_url)] == ["customer.export", "customer.export"]


def test_export_unknown_is_one_line(cfg: str, capsys) -> None:
    code, _, err = run(capsys, "--config", cfg, "customers", "export", "nobody")
    assert code == 1
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "nobody" in err


def test_erase_asks_first(cfg: str, db_url: str, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, out, err = run(capsys, "--config", cfg, "customers", "erase", "C1")
    assert code != 0
    assert "aborted" in err
    assert _audit(db_url) == []
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, out, err = run(capsys, "--config", cfg, "customers", "erase", "C1", "--by", "dpo")
    assert code == 0, err
    assert "1 mentions" in out and "1 handles" in out


def test_erase_with_yes(cfg: str, db_url: str, capsys) -> None:
    code, out, err = run(capsys, "--config", cfg, "customers", "erase", "C1", "--yes")
    assert code == 0, err
    assert "erased customer C1" in out
    (entry,) = _audit(db_url)
    assert entry.action == "customer.erase"
    assert entry.entity_id == customer_hash("C1")
    code, _, err = run(capsys, "--config", cfg, "customers", "export", "C1")
    assert code == 1 and "C1" in err
    code, out, _ = run(capsys, "--config", cfg, "customers", "export", "C2")
    assert code == 0 and json.loads(out)["customer"]["customer_id"] == "C2"


def test_erase_unknown_is_one_line(cfg: str, capsys) -> None:
    code, _, err = run(capsys, "--config", cfg, "customers", "erase", "nobody", "--yes")
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "nobody" in err


def test_help(capsys) -> None:
    code, out, _ = run(capsys, "customers", "erase", "--help")
    assert code == 0 and "--yes" in out and "--by" in out
    code, out, _ = run(capsys, "customers", "export", "--help")
    assert code == 0 and "--output" in out
