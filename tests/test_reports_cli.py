"""`listenwell report feedback|escalations|kpis`, through the real CLI."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import run
from openpyxl import load_workbook
from sqlalchemy import Engine, select

from listenwell.store.models import AuditRow
from tests.crm.test_reports import HOSTILE, seed


def one_line_error(code: int, err: str) -> bool:
    return code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.fixture
def cfg(config_file: Path, capsys, engine: Engine) -> str:
    code, _, _ = run(capsys, "--config", str(config_file), "db", "upgrade")
    assert code == 0
    seed(engine)
    return str(config_file)


def test_each_kind_and_format(cfg: str, capsys, tmp_path: Path, engine: Engine) -> None:
    for kind in ("feedback", "escalations", "kpis"):
        for suffix in ("csv", "xlsx", "html", "pdf"):
            out = tmp_path / "out" / f"{kind}.{suffix}"
            code, stdout, err = run(
                capsys, "--config", cfg, "report", kind,
                "--from", "2024-05-01", "--to", "2024-05-31", "--output", str(out),
            )  # fmt: skip
            assert code == 0, err
            assert f"({suffix}," in stdout and out.stat().st_size > 0
    wb = load_workbook(tmp_path / "out" / "feedback.xlsx")
    assert wb.sheetnames == ["Report", "Themes", "Quotes", "Sentiment"]
    assert wb["Themes"].cell(2, 2).value == HOSTILE
    df = pd.read_csv(tmp_path / "out" / "escalations.csv")
    assert set(df["section"]) == {"Escalations", "By priority", "Upgrades"}
    page = (tmp_path / "out" / "kpis.html").read_text(encoding="utf-8")
    assert "Content-Security-Policy" in page and "Plotly.newPlot" in page
    assert (tmp_path / "out" / "kpis.pdf").read_bytes().startswith(b"%PDF")
    with engine.connect() as c:
        actions = [r.action for r in c.execute(select(AuditRow.__table__))]
        detail = c.execute(
            select(AuditRow.__table__.c.detail).where(AuditRow.__table__.c.action == "report.kpis")
        ).first()
    assert actions.count("report.feedback") == 4 and actions.count("report.escalations") == 4
    assert detail is not None and detail[0]["from"] == "2024-05-01"


def test_format_option_and_default_period(cfg: str, capsys, tmp_path: Path) -> None:
    out = tmp_path / "report.data"
    code, stdout, err = run(
        capsys, "--config", cfg, "report", "feedback", "--format", "csv", "-o", str(out)
    )
    assert code == 0, err
    assert "2024-04-24 to 2024-05-23" in stdout  # the last 30 days of data
    df = pd.read_csv(io.BytesIO(out.read_bytes()))
    assert "Themes" in set(df["section"])
    code, stdout, _ = run(
        capsys, "--config", cfg, "report", "kpis", "--to", "2024-05-10", "-o", str(out) + ".csv"
    )
    assert code == 0 and "2024-04-11 to 2024-05-10" in stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--output", "x.docx"],
        ["--output", "x.csv", "--format", "docx"],
        ["--output", "x.csv", "--from", "May 1"],
        ["--output", "x.csv", "--from", "2024-05-10", "--to", "2024-05-01"],
    ],
)
def test_one_line_errors(cfg: str, capsys, tmp_path: Path, args: list[str]) -> None:
    args = [a if not a.startswith("x.") else str(tmp_path / a) for a in args]
    code, _, err = run(capsys, "--config", cfg, "report", "kpis", *args)
    assert one_line_error(code, err), err


def test_unwritable_output(cfg: str, capsys, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(
        capsys, "--config", cfg, "report", "kpis", "-o", str(blocker / "sub" / "r.csv")
    )
    assert one_line_error(code, err) and "cannot write" in err


def test_help(capsys) -> None:
    code, out, _ = run(capsys, "report", "--help")
    assert code == 0
    for kind in ("feedback", "escalations", "kpis"):
        assert kind in out
    code, out, _ = run(capsys, "report", "feedback", "--help")
    assert code == 0 and "--format" in out and "--from" in out
