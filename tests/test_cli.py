"""The `listenwell` command: exit codes, one-line errors, imports and exports."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_helpers import run

from listenwell import store
from listenwell.cli import CliError, main


def assert_one_line_error(code: int, err: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.fixture
def cfg(config_file: Path, capsys) -> str:
    code, out, _ = run(capsys, "--config", str(config_file), "db", "upgrade")
    assert code == 0 and "up to date" in out
    return str(config_file)


def test_help_lists_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for word in ("db", "import", "export", "demo", "--config", "--debug"):
        assert word in out


def test_db_upgrade_is_idempotent_and_status(cfg, capsys):
    code, out, _ = run(capsys, "--config", cfg, "db", "upgrade")
    assert code == 0 and "already up to date" in out
    code, out, _ = run(capsys, "--config", cfg, "db", "status")
    assert code == 0 and "applied  0001" in out and "pending" not in out.split("\n", 1)[1]


def test_commands_refuse_an_unmigrated_database(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(f"database_url: sqlite:///{tmp_path / 'new.db'}\n")
    code, _, err = run(capsys, "--config", str(path), "export", "mentions", "-o", "x.csv")
    assert_one_line_error(code, err)
    assert "listenwell db upgrade" in err


def test_config_error_is_one_line_naming_keys(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("brand: {nam: x}\nbatch_size: -3\n")
    code, _, err = run(capsys, "--config", str(path), "db", "upgrade")
    assert_one_line_error(code, err)
    assert "brand.nam" in err and "batch_size" in err


def test_usage_error_exit_code_2(capsys):
    code, _, err = run(capsys, "import", "mentions")
    assert code == 2 and "usage error" in err and "Traceback" not in err


def test_import_mentions_counts_and_quarantine(cfg, tmp_path, capsys, engine):
    rows = [
        {
            "source": "x",
            "external_id": "1",
            "created_at": "2024-01-01T10:00:00Z",
            "author_handle": "@a",
            "text": "<script>alert(1)</script> love it",
        },
        {"source": "x", "external_id": "2", "created_at": "bad", "text": "t"},
        {
            "source": "reddit",
            "external_id": "t3_1",
            "created_at": "2024-01-02T10:00:00Z",
            "text": "meh",
            "in_reply_to": None,
        },
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n", encoding="utf-8")
    code, out, err = run(capsys, "--config", cfg, "import", "mentions", str(path), "--json")
    assert code == 0, err
    assert json.loads(out) == {"file": str(path), "new": 2, "duplicates": 0, "quarantined": 2}
    assert "line 2: created_at is not ISO 8601" in err and "line 4: invalid JSON" in err
    code, out, _ = run(capsys, "--config", cfg, "import", "mentions", str(path))
    assert code == 0 and "0 new, 2 duplicates, 2 quarantined" in out
    df = store.mentions_frame(engine)
    assert "<script>alert(1)</script> love it" in df["text"].tolist()
    code, out, _ = run(capsys, "--config", cfg, "quarantine", "list")
    assert code == 0 and "created_at is not ISO 8601" in out


def test_import_missing_file_is_one_line(cfg, capsys):
    code, _, err = run(capsys, "--config", cfg, "import", "mentions", "/nonexistent/m.jsonl")
    assert_one_line_error(code, err)
    assert "file not found" in err


def test_import_customers_reports_bad_rows_and_upserts(cfg, tmp_path, capsys, engine):
    path = tmp_path / "c.csv"
    path.write_text(
        "customer_id,name,email,phone,handles,segment,plan\n"
        "C1,Jo Doe,jo@example.com,+1-555-0100,x:@jodoe;reddit:u/jodoe,vip,gold\n"
        "C2,Bad Mail,nope,,,standard,\n"
        "C3,Handle Thief,t@example.com,,x:@JODOE,standard,\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "--config", cfg, "import", "customers", str(path))
    assert code == 0
    assert "1 new, 0 updated, 2 rejected" in out
    assert "line 3: invalid email 'nope'" in err
    assert "line 4: handle x:@JODOE already belongs to customer C1" in err
    code, out, _ = run(
        capsys, "--config", cfg, "import", "customers", str(path), "--strict", "--json"
    )
    assert code == 1 and json.loads(out)["updated"] == 1
    df = store.customers_frame(engine)
    assert df.loc[0, "attributes"] == {"plan": "gold"}


def test_export_mentions_header_and_rows(cfg, tmp_path, capsys, engine):
    text = 'comma, "quote"\nnewline <b>html</b>'
    store.upsert_mentions(
        engine,
        [
            store.Mention(
                "x", "1", store.parse_timestamp("2024-05-01T00:00:00Z"), text, author_handle="@a"
            )
        ],
    )
    out_path = tmp_path / "out.csv"
    code, out, err = run(capsys, "--config", cfg, "export", "mentions", "--output", str(out_path))
    assert code == 0, err
    with out_path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    required = [
        "source",
        "external_id",
        "created_at",
        "author_handle",
        "text",
        "sentiment",
        "sentiment_score",
        "topic",
        "customer_id",
        "link_confidence",
        "link_evidence",
        "escalated",
        "priority",
    ]
    assert set(required) <= set(reader.fieldnames or [])
    assert rows[0]["text"] == text and rows[0]["created_at"] == "2024-05-01T00:00:00Z"
    assert rows[0]["sentiment"] == ""
    code, _, err = run(
        capsys, "--config", cfg, "export", "mentions", "-o", str(out_path), "--since", "May 1"
    )
    assert_one_line_error(code, err)


def test_errors_show_a_traceback_only_with_debug(cfg, tmp_path, capsys):
    folder = tmp_path / "a-folder.csv"
    folder.mkdir()
    code, _, err = run(capsys, "--config", cfg, "export", "mentions", "-o", str(folder))
    assert_one_line_error(code, err)
    assert "Is a directory" in err
    with pytest.raises(CliError):
        main(["--debug", "--config", cfg, "export", "mentions", "-o", str(folder)])


def test_console_script_runs_as_a_real_process(tmp_path):
    exe = Path(sys.executable).with_name("listenwell")
    bad = tmp_path / "bad.yaml"
    bad.write_text("database_url: 42\n")
    proc = subprocess.run(
        [str(exe), "--config", str(bad), "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: invalid configuration") and "Traceback" not in proc.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "listenwell", "--help"], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0 and "listenwell" in ok.stdout


def _first_row(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8", newline="") as f:
        return next(csv.DictReader(f))


def test_export_guards_formulas_and_redacts_personal_data_when_configured(
    cfg, capsys, tmp_path, config_file
):
    from listenwell.config import load_settings

    url = load_settings(config_file).database_url
    eng = store.connect(url)
    text = '=HYPERLINK("http://evil") mail me at jo@example.com or +1 415 555 0100'
    store.upsert_mentions(
        eng, [store.Mention("x", "f1", datetime(2024, 1, 1, tzinfo=UTC), text, author_handle="@jo")]
    )
    eng.dispose()
    out_csv = tmp_path / "out.csv"
    code, _, err = run(capsys, "--config", cfg, "export", "mentions", "--output", str(out_csv))
    assert code == 0, err
    row = _first_row(out_csv)
    assert row["text"] == "'" + text  # a spreadsheet shows it as text, never runs it
    code, _, err = run(
        capsys,
        "--config",
        cfg,
        "export",
        "mentions",
        "--output",
        str(out_csv),
        "--no-formula-guard",
    )
    assert _first_row(out_csv)["text"] == text

    redacting = tmp_path / "redact.yaml"
    redacting.write_text(
        config_file.read_text(encoding="utf-8") + "privacy:\n  redact_exports: true\n",
        encoding="utf-8",
    )
    code, _, err = run(capsys, "--config", str(redacting), "export", "mentions", "-o", str(out_csv))
    assert code == 0, err
    redacted = _first_row(out_csv)["text"]
    assert "jo@example.com" not in redacted and "555 0100" not in redacted
    assert "[email]" in redacted and "[phone]" in redacted
