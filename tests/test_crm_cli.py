"""`listenwell surveys|segments|kpis|reminders|churn` and `customers show`, through the real CLI."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_helpers import run
from sqlalchemy import insert

from listenwell.store.models import ConversationRow, CustomerRow, MentionRow


def one_line_error(code: int, err: str) -> bool:
    return code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def t(day: int, hour: int = 12) -> datetime:
    return datetime(2024, 5, day, hour, tzinfo=UTC)


@pytest.fixture
def cfg(config_file: Path, capsys, engine) -> str:
    code, _, _ = run(capsys, "--config", str(config_file), "db", "upgrade")
    assert code == 0
    with engine.begin() as c:
        pk = c.execute(
            insert(CustomerRow.__table__).values(
                customer_id="C1",
                name="Jo Doe",
                email="jo@example.com",
                attributes={"lifetime_value": "900", "next_contact": "2024-05-20"},
                consent_contact=True,
            )
        ).inserted_primary_key[0]
        c.execute(
            insert(CustomerRow.__table__).values(customer_id="C2", name="No Consent", attributes={})
        )
        mid = c.execute(
            insert(MentionRow.__table__).values(
                source="x", external_id="1", created_at=t(2), text="acme parcel late"
            )
        ).inserted_primary_key[0]
        c.execute(
            insert(ConversationRow.__table__).values(
                mention_id=mid,
                customer_pk=pk,
                status="resolved",
                priority="normal",
                opened_at=t(2),
                first_response_at=t(2, 13),
                resolved_at=t(3),
                tags=[],
            )
        )
    return str(config_file)


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_help_texts(capsys):
    for args in (
        ["surveys", "--help"],
        ["surveys", "import", "--help"],
        ["surveys", "trend", "--help"],
        ["surveys", "invite", "--help"],
        ["segments", "--help"],
        ["segments", "define", "--help"],
        ["segments", "list", "--help"],
        ["segments", "members", "--help"],
        ["kpis", "--help"],
        ["reminders", "--help"],
        ["churn", "--help"],
        ["customers", "show", "--help"],
    ):
        code, out, _ = run(capsys, *args)
        assert code == 0 and "Usage" in out, args


def test_surveys_import_trend_and_invite(cfg, capsys, tmp_path):
    path = write_csv(
        tmp_path / "answers.csv",
        [
            ["respondent", "email", "kind", "score", "answered_at", "comment", "external_id"],
            ["C1", "", "csat", "5", "2024-05-04T10:00:00Z", "fast", "r1"],
            ["", "jo@example.com", "nps", "9", "2024-05-05T10:00:00Z", "", "r2"],
            ["C1", "", "nps", "11", "2024-05-05T10:00:00Z", "", "r3"],
        ],
    )
    code, out, err = run(capsys, "--config", cfg, "surveys", "import", str(path), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["inserted"], result["linked_conversations"]) == (2, 2)
    assert result["errors"] == [{"line": 4, "reason": "nps score must be 0 to 10, got 11"}]
    assert "line 4: nps score must be 0 to 10, got 11" in err
    code, out, _ = run(capsys, "--config", cfg, "surveys", "import", str(path))
    assert code == 0 and "0 new, 2 updated" in out
    code, out, _ = run(capsys, "--config", cfg, "surveys", "trend", "--freq", "month", "--json")
    (may,) = json.loads(out)
    assert may["bucket"] == "2024-05-01" and may["csat"] == 100.0 and may["nps"] == 100.0
    code, out, _ = run(capsys, "--config", cfg, "surveys", "trend")
    assert code == 0 and "2024-04-29" in out
    code, out, _ = run(capsys, "--config", cfg, "surveys", "invite", "1", "--agent", "Sam")
    assert code == 0 and out.startswith("Hi Jo,") and "(case 1) - Sam" in out
    code, _, err = run(capsys, "--config", cfg, "surveys", "import", str(tmp_path / "no.csv"))
    assert one_line_error(code, err) and "not found" in err
    code, _, err = run(capsys, "--config", cfg, "surveys", "trend", "--freq", "day")
    assert one_line_error(code, err)


def test_segments_and_churn(cfg, capsys):
    rule = '{"conditions": [{"field": "lifetime_value", "op": "gte", "value": 500}]}'
    code, out, err = run(
        capsys, "--config", cfg, "segments", "define", "vip", "--rule", rule, "--by", "ann"
    )
    assert code == 0, err
    code, out, _ = run(capsys, "--config", cfg, "segments", "list", "--json")
    assert [s["name"] for s in json.loads(out)] == ["vip"]
    code, out, _ = run(capsys, "--config", cfg, "segments", "members", "vip", "--json")
    assert [m["customer_id"] for m in json.loads(out)] == ["C1"]
    code, _, err = run(
        capsys, "--config", cfg, "segments", "define", "bad", "--rule", "{", "--by", "ann"
    )
    assert one_line_error(code, err) and "not valid JSON" in err
    code, _, err = run(capsys, "--config", cfg, "segments", "members", "nope")
    assert one_line_error(code, err) and "no segment" in err
    code, out, _ = run(capsys, "--config", cfg, "churn", "--all", "--json")
    assert {r["customer_id"]: r["churn_risk"] for r in json.loads(out)} == {
        "C1": False,
        "C2": False,
    }


def test_kpis_reminders_and_show(cfg, capsys, tmp_path):
    out_csv = tmp_path / "kpis.csv"
    code, out, err = run(
        capsys, "--config", cfg, "kpis", "--from", "2024-05-01", "--to", "2024-05-31",
        "--json", "--output", str(out_csv),
    )  # fmt: skip
    assert code == 0, err
    k = {r["kpi"]: r["value"] for r in json.loads(out)}
    assert k["first_response_median_s"] == 3600 and k["resolution_median_s"] == 86400
    assert k["mentions"] == 1 and k["share_of_voice:Acme"] == 100.0
    with out_csv.open(encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == ["kpi", "value", "unit", "period"]
    code, _, err = run(
        capsys, "--config", cfg, "kpis", "--from", "2024-06-01", "--to", "2024-05-01"
    )
    assert one_line_error(code, err)
    code, out, _ = run(capsys, "--config", cfg, "reminders", "--today", "2024-05-20", "--json")
    assert [(r["kind"], r["customer_id"]) for r in json.loads(out)] == [("due_today", "C1")]
    code, _, err = run(capsys, "--config", cfg, "reminders", "--today", "tomorrow")
    assert one_line_error(code, err)
    code, out, err = run(capsys, "--config", cfg, "customers", "show", "C1", "--json")
    assert code == 0, err
    view = json.loads(out)
    assert view["lifetime_value"] == 900.0 and view["counts"]["mention"] == 1
    assert view["timeline"][0]["text"] == "acme parcel late"
    code, out, _ = run(capsys, "--config", cfg, "customers", "show", "C1")
    assert code == 0 and "Jo Doe" in out and "acme parcel late" in out
    code, _, err = run(capsys, "--config", cfg, "customers", "show", "nobody")
    assert one_line_error(code, err) and "no customer" in err
