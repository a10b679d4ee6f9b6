"""`listenwell rules ...` and `listenwell escalations ...`, end to end through the real CLI."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from cli_helpers import run
from sqlalchemy import insert, select

from listenwell import store
from listenwell.cli import app
from listenwell.store.models import ConversationRow, MentionRow

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)  # a Monday

RULES = """
rules:
  - {name: legal, priority: urgent, when: {keywords: [lawyer]}}
  - {name: churn, priority: high, when: {keywords: [cancel]}}
sla:
  timezone: UTC
  hours: {mon: 09:00-17:00, tue: 09:00-17:00, wed: 09:00-17:00, thu: 09:00-17:00,
          fri: 09:00-17:00}
  targets:
    urgent: {first_response_minutes: 15, resolution_minutes: 60}
    high: {first_response_minutes: 30, resolution_minutes: 120}
    normal: {first_response_minutes: 60, resolution_minutes: 240}
    low: {first_response_minutes: 120, resolution_minutes: 480}
"""


def assert_one_line_error(code: int, err: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.fixture
def cfg(config_file: Path, capsys) -> str:
    code, _, _ = run(capsys, "--config", str(config_file), "db", "upgrade")
    assert code == 0
    return str(config_file)


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return path


def seed(engine, texts: list[str]) -> list[int]:
    store.upsert_mentions(
        engine,
        [
            store.Mention(source="x", external_id=str(i), created_at=T0, text=t, author_handle="@c")
            for i, t in enumerate(texts)
        ],
    )
    with engine.begin() as conn:
        ids = dict(conn.execute(select(MentionRow.external_id, MentionRow.id)).all())
        return [
            int(
                conn.execute(
                    insert(ConversationRow.__table__).values(
                        mention_id=ids[str(i)], status="open", opened_at=T0
                    )
                ).inserted_primary_key[0]
            )
            for i in range(len(texts))
        ]


def test_every_command_and_option_has_help():
    root = typer.main.get_command(app)
    for group in ("rules", "escalations"):
        cmd = root.commands[group]
        assert cmd.help
        for name, sub in cmd.commands.items():
            assert sub.help, name
            for param in sub.params:
                if param.param_type_name == "option":
                    assert param.help, f"{group} {name} {param.name}"
                else:
                    assert getattr(param, "help", None), f"{group} {name} {param.name}"


def test_rules_check_names_the_bad_key(cfg, rules_file, tmp_path, capsys):
    code, out, _ = run(capsys, "--config", cfg, "rules", "check", str(rules_file))
    assert code == 0 and "valid; 2 rules enabled" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.replace("keywords: [cancel]", "keywrds: [cancel]"), encoding="utf-8")
    code, _, err = run(capsys, "--config", cfg, "rules", "check", str(bad))
    assert_one_line_error(code, err)
    assert "rules[churn].when.keywrds: unknown key" in err
    code, _, err = run(capsys, "--config", cfg, "rules", "check", str(tmp_path / "nope.yaml"))
    assert_one_line_error(code, err)
    assert "cannot read" in err


def test_rules_save_history_and_show(cfg, rules_file, capsys):
    code, out, err = run(capsys, "--config", cfg, "rules", "show")
    assert code == 0 and "legal_threat" in out and "shipped default" in err
    code, out, _ = run(capsys, "--config", cfg, "rules", "history")
    assert code == 0 and "no saved versions" in out
    code, out, _ = run(
        capsys, "--config", cfg, "rules", "save", str(rules_file), "--by", "ann", "--note", "v1"
    )
    assert code == 0 and "rules version 1" in out
    code, out, _ = run(capsys, "--config", cfg, "rules", "history")
    assert "v1 (in force)" in out and "by ann: v1" in out
    code, out, _ = run(capsys, "--config", cfg, "rules", "history", "--json")
    assert [r["version"] for r in json.loads(out)] == [1]
    code, out, err = run(capsys, "--config", cfg, "rules", "show", "--version", "1")
    assert code == 0 and out.strip() == RULES.strip() and "version 1" in err
    code, _, err = run(capsys, "--config", cfg, "rules", "show", "--version", "7")
    assert_one_line_error(code, err)
    assert "no saved rules version 7" in err
    code, _, err = run(capsys, "--config", cfg, "rules", "save", str(rules_file))
    assert code == 2 and "--by" in err


def test_rules_preview_and_backtest(cfg, rules_file, engine, capsys):
    seed(engine, ["my lawyer will call", "cancel it", "thanks"])
    code, out, _ = run(capsys, "--config", cfg, "rules", "preview", str(rules_file), "--json")
    assert code == 0
    p = json.loads(out)
    assert (p["evaluated"], p["escalated"]) == (3, 2)
    assert p["by_rule"] == {"legal": 1, "churn": 1}
    assert p["samples"]["legal"][0]["reasons"][0]["value"] == "lawyer"
    code, out, _ = run(capsys, "--config", cfg, "rules", "preview", str(rules_file))
    assert code == 0 and "rule churn: fired on 1" in out and "keywords=cancel" in out
    code, out, _ = run(
        capsys, "--config", cfg, "rules", "preview", str(rules_file), "--since", "2024-05-07"
    )
    assert "0 mentions" in out
    code, _, err = run(
        capsys, "--config", cfg, "rules", "preview", str(rules_file), "--since", "May"
    )
    assert_one_line_error(code, err)
    code, out, _ = run(capsys, "--config", cfg, "rules", "backtest", str(rules_file), "--json")
    assert code == 0
    b = json.loads(out)
    assert b["baseline"]["origin"] == "shipped default"
    assert b["inbox"]["conversations"] == 3
    code, out, _ = run(capsys, "--config", cfg, "rules", "backtest", str(rules_file))
    assert code == 0 and "against shipped default" in out and "against the inbox" in out


def test_apply_sweep_list_show_export(cfg, rules_file, engine, tmp_path, capsys):
    legal, churn, _ = seed(engine, ["my lawyer will call", "cancel it", "thanks"])
    run(capsys, "--config", cfg, "rules", "save", str(rules_file), "--by", "ann")
    code, out, _ = run(
        capsys, "--config", cfg, "escalations", "apply", "--json", "--now", T0.isoformat()
    )
    assert code == 0
    assert json.loads(out) == {
        "rule_version": 1,
        "evaluated": 3,
        "written": 3,
        "escalated": 2,
        "reprioritised": 0,
        "conflicts": 0,
    }
    now = (T0 + timedelta(minutes=15)).isoformat()
    code, out, _ = run(capsys, "--config", cfg, "escalations", "sweep", "--now", now, "--json")
    assert code == 0
    first = json.loads(out)
    assert first["sweep"]["upgraded"] == 1 and first["apply"]["evaluated"] == 0
    code, out, _ = run(capsys, "--config", cfg, "escalations", "sweep", "--now", now, "--json")
    again = json.loads(out)["sweep"]
    assert (again["reminded"], again["upgraded"], again["breached"]) == (0, 0, 0)
    code, out, _ = run(capsys, "--config", cfg, "escalations", "sweep", "--now", now)
    assert code == 0 and "0 upgraded" in out and "rules v1" in out
    later = (T0 + timedelta(minutes=30)).isoformat()
    code, out, _ = run(capsys, "--config", cfg, "escalations", "list", "--json", "--now", later)
    queue = json.loads(out)
    assert [q["conversation_id"] for q in queue] == [legal, churn]
    assert queue[0]["level"] == "supervisor" and queue[0]["rules"] == ["legal"]
    assert queue[1]["sla"]["state"] == "breached"
    code, out, _ = run(capsys, "--config", cfg, "escalations", "list", "--now", later)
    assert f"#{legal} urgent escalated [supervisor]" in out and "overdue" in out
    code, out, _ = run(capsys, "--config", cfg, "escalations", "show", str(legal), "--now", later)
    assert code == 0
    assert "legal: keywords = lawyer (threshold any of lawyer)" in out
    assert "upgraded urgent -> urgent, level none -> supervisor" in out
    code, out, _ = run(capsys, "--config", cfg, "escalations", "show", str(legal), "--json")
    shown = json.loads(out)
    assert [h["kind"] for h in shown["history"]] == ["escalated", "upgraded"]
    code, _, err = run(capsys, "--config", cfg, "escalations", "show", "999")
    assert_one_line_error(code, err)
    target = tmp_path / "queue.csv"
    code, out, _ = run(
        capsys, "--config", cfg, "escalations", "export", "--output", str(target), "--now", later
    )
    assert code == 0 and "exported 2 conversations" in out
    with target.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["conversation_id"] for r in rows] == [str(legal), str(churn)]
    assert rows[0]["escalated"] == "true" and rows[0]["rules"] == "legal"


def test_sweep_errors_are_one_line(cfg, capsys):
    code, _, err = run(capsys, "--config", cfg, "escalations", "sweep", "--now", "yesterday")
    assert_one_line_error(code, err)
    assert "--now" in err
    code, _, err = run(
        capsys, "--config", cfg, "escalations", "sweep", "--now", T0.isoformat(), "--watch"
    )
    assert_one_line_error(code, err)
    code, _, err = run(capsys, "--config", cfg, "escalations", "sweep", "--every", "soon")
    assert_one_line_error(code, err)
    assert "--every" in err


def test_watch_runs_on_the_collect_scheduler_every_minute(cfg, engine, capsys, monkeypatch):
    from listenwell.collectors import schedule

    seed(engine, ["my lawyer"])
    calls = []

    def fake_run_every(interval, sources, run_once, stop):
        calls.append((interval, list(sources)))
        run_once(sources[0], stop.is_set)

    monkeypatch.setattr(schedule, "run_every", fake_run_every)
    code, out, err = run(capsys, "--config", cfg, "escalations", "sweep", "--watch", "--json")
    assert code == 0 and calls == [(60.0, ["escalations"])]
    assert json.loads(out.splitlines()[0])["apply"]["escalated"] == 1
    code, _, _ = run(capsys, "--config", cfg, "escalations", "sweep", "--every", "5m")
    assert calls[-1] == (300.0, ["escalations"])
