"""`listenwell correct`, `corrections list|export|recalibrate`, `eval corrections`: end to end."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import typer
from cli_helpers import run
from sqlalchemy import func, select

from listenwell import store
from listenwell.cli import app
from listenwell.nlp.sentiment import DEFAULT_MODEL_DIR
from listenwell.store import corrections as sc
from listenwell.store.models import AuditRow, CalibrationRow, MentionRow

# The shipped model's version: corrections recalibrate the model the workspace runs.
SHIPPED_VERSION = json.loads((DEFAULT_MODEL_DIR / "meta.json").read_text())["version"]

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)  # a Monday
LABELS = ("negative", "neutral", "positive")


def assert_one_line_error(code: int, err: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def seed(engine, texts: list[str]) -> list[int]:
    store.upsert_mentions(
        engine,
        [
            store.Mention(source="x", external_id=f"k{i}", created_at=T0, text=t)
            for i, t in enumerate(texts)
        ],
    )
    with engine.connect() as conn:
        ids = dict(conn.execute(select(MentionRow.external_id, MentionRow.id)).all())
    return [ids[f"k{i}"] for i in range(len(texts))]


def enrich(engine, rows: list[tuple[int, np.ndarray]]) -> None:
    store.upsert_enrichments(
        engine,
        [
            store.EnrichmentResult(
                mention_id=mid,
                stage="sentiment",
                label=LABELS[int(p.argmax())],
                score=float(p.max()),
                model_name="listenwell-sentiment-minilm",
                model_version=SHIPPED_VERSION,
                data={"probs": {k: round(float(x), 6) for k, x in zip(LABELS, p, strict=True)}},
            )
            for mid, p in rows
        ],
    )


@pytest.fixture
def cfg(config_file: Path) -> str:
    return str(config_file)


def test_every_command_and_option_has_help():
    command = typer.main.get_command(app)
    groups = {"correct": None, "corrections": None, "eval": "corrections"}
    for name, sub in groups.items():
        cmd = command.commands[name]
        targets = [cmd] if sub is None and not hasattr(cmd, "commands") else []
        if hasattr(cmd, "commands"):
            targets = [cmd.commands[sub]] if sub else list(cmd.commands.values())
        for target in targets:
            assert target.help, target.name
            for param in target.params:
                assert getattr(param, "help", None), f"{target.name} {param.name}"


def test_correct_then_list(cfg, engine, capsys):
    a, b = seed(engine, ["terrible support", "how do I reset it?"])
    enrich(engine, [(a, np.array([0.2, 0.7, 0.1]))])
    code, out, err = run(
        capsys, "--config", cfg, "correct", str(a), "--stage", "sentiment", "--label", "negative",
        "--by", "alice",
    )  # fmt: skip
    assert code == 0, err
    assert out.strip() == f"mention {a}: sentiment = negative (the model said neutral), by alice"
    code, out, err = run(
        capsys, "--config", cfg, "correct", str(b), "--stage", "intent", "--label", "question",
        "--by", "bob", "--json",
    )  # fmt: skip
    assert code == 0, err
    stored = json.loads(out)
    assert (stored["mention_id"], stored["label"], stored["model_label"]) == (b, "question", None)
    run(capsys, "--config", cfg, "correct", str(a), "--stage", "sentiment", "--label", "neutral")

    code, out, _ = run(capsys, "--config", cfg, "corrections", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [(r["mention_id"], r["label"]) for r in rows] == [
        (a, "neutral"),
        (b, "question"),
    ]
    assert rows[0]["actor"].startswith("cli") and rows[1]["model_label"] is None
    code, out, _ = run(capsys, "--config", cfg, "corrections", "list", "--history")
    assert code == 0 and len(out.strip().splitlines()) == 3
    assert f"mention {a} sentiment: neutral -> negative by alice" in out
    code, out, _ = run(capsys, "--config", cfg, "corrections", "list", "--stage", "intent")
    assert code == 0 and "(none) -> question by bob" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["987654", "--stage", "sentiment", "--label", "neutral"], "mention 987654 not found"),
        (["{a}", "--stage", "sentiment", "--label", "happy"], "not a valid sentiment label"),
        (["{a}", "--stage", "mood", "--label", "happy"], "unknown stage 'mood'"),
        (["{a}", "--stage", "themes", "--label", "12345"], "theme 12345 does not exist"),
    ],
)
def test_correct_errors_are_one_line(cfg, engine, capsys, args, message):
    (a,) = seed(engine, ["x"])
    argv = [x.format(a=a) for x in args]
    code, _, err = run(capsys, "--config", cfg, "correct", *argv)
    assert_one_line_error(code, err)
    assert message in err


def test_correct_needs_stage_and_label(capsys):
    code, _, err = run(capsys, "correct", "1", "--label", "positive")
    assert code == 2 and "usage error" in err and "--stage" in err


def test_export_the_labelled_set(cfg, engine, capsys, tmp_path):
    a, b = seed(engine, ["great, thanks", 'a "quoted", multi\nline post'])
    enrich(engine, [(a, np.array([0.6, 0.3, 0.1])), (b, np.array([0.1, 0.8, 0.1]))])
    sc.correct(engine, a, "sentiment", "neutral", "alice", at=T0)
    sc.correct(engine, a, "sentiment", "positive", "bob", at=T0 + timedelta(hours=1))
    sc.correct(engine, b, "sentiment", "negative", "carol", at=T0 + timedelta(hours=2))
    sc.correct(engine, b, "intent", "complaint", "carol", at=T0 + timedelta(hours=2))
    path = tmp_path / "labelled.csv"
    code, out, err = run(
        capsys, "--config", cfg, "corrections", "export", "--output", str(path), "--stage",
        "sentiment",
    )  # fmt: skip
    assert code == 0, err
    assert out.strip() == f"exported 2 labelled mentions to {path}"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "mention_id", "text", "stage", "label", "model_label", "actor", "created_at",
    ]  # fmt: skip
    got = [(r["mention_id"], r["text"], r["label"], r["model_label"], r["actor"]) for r in rows]
    assert got == [
        (str(a), "great, thanks", "positive", "negative", "bob"),
        (str(b), 'a "quoted", multi\nline post', "negative", "neutral", "carol"),
    ]
    assert datetime.fromisoformat(rows[0]["created_at"]) == T0 + timedelta(hours=1)
    code, out, _ = run(capsys, "--config", cfg, "corrections", "export", "-o", "-")
    every = list(csv.DictReader(io.StringIO(out, newline="")))
    assert code == 0 and [(r["stage"], r["mention_id"]) for r in every] == [
        ("intent", str(b)),
        ("sentiment", str(a)),
        ("sentiment", str(b)),
    ]
    with engine.connect() as conn:
        n = conn.execute(
            select(func.count()).where(AuditRow.action == "export.corrections")
        ).scalar_one()
    assert n == 2


def test_eval_corrections_reports_drift_per_period(cfg, engine, capsys):
    ids = seed(engine, [f"post {i}" for i in range(8)])
    # The model says "positive" for everything.
    enrich(engine, [(m, np.array([0.1, 0.2, 0.7])) for m in ids])
    week2 = T0 + timedelta(days=7)
    for m in ids[:4]:  # week 1: agents agree 3 times of 4
        sc.correct(engine, m, "sentiment", "positive" if m != ids[0] else "negative", "a", at=T0)
    for m in ids[4:]:  # week 2: agents disagree every time
        sc.correct(engine, m, "sentiment", "negative", "a", at=week2)
    code, out, err = run(capsys, "--config", cfg, "eval", "corrections", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["stage"], report["n"], report["correct"], report["accuracy"]) == (
        "sentiment",
        8,
        3,
        0.375,
    )
    assert [(p["period"], p["n"], p["accuracy"]) for p in report["periods"]] == [
        ("2024-W19", 4, 0.75),
        ("2024-W20", 4, 0.0),
    ]
    low, high = report["ci95"]
    assert 0 < low < 0.375 < high < 1
    assert report["per_class_recall"]["positive"] == {
        "n": 3, "correct": 3, "recall": 1.0, "ci95": pytest.approx([0.438503, 1.0], abs=1e-6),
    }  # fmt: skip
    code, out, _ = run(capsys, "--config", cfg, "eval", "corrections", "--period", "month")
    assert code == 0 and "model accuracy 0.375 on 8 corrections" in out and "2024-05" in out
    code, _, err = run(capsys, "--config", cfg, "eval", "corrections", "--period", "day")
    assert_one_line_error(code, err)
    code, out, _ = run(capsys, "--config", cfg, "eval", "corrections", "--stage", "intent")
    assert code == 0 and out.strip() == "no scored intent corrections yet"


def _biased_corrections(engine, n: int, seed_: int = 7) -> None:
    """``n`` mentions whose stored probabilities under-predict "negative"; agents give gold."""
    rng = np.random.default_rng(seed_)
    true = rng.normal(0.0, 2.0, size=(n, 3))
    p_true = np.exp(true) / np.exp(true).sum(axis=1, keepdims=True)
    gold = (p_true.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    model = true - np.array([1.2, -0.6, -0.6])
    probs = np.exp(model) / np.exp(model).sum(axis=1, keepdims=True)
    ids = seed(engine, [f"mention {i}" for i in range(n)])
    enrich(engine, list(zip(ids, probs, strict=True)))
    for m, g in zip(ids, gold, strict=True):
        sc.correct(engine, m, "sentiment", LABELS[int(g)], "agent", at=T0)


def test_recalibrate_saves_only_a_fit_that_helps_on_held_out_folds(cfg, engine, capsys):
    _biased_corrections(engine, 150)
    code, out, err = run(
        capsys, "--config", cfg, "corrections", "recalibrate", "--dry-run", "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    cv = result["cross_validation"]
    assert result["accepted"] and not result["saved"] and result["n"] == 150
    assert cv["nll_after"] < cv["nll_before"] and cv["accuracy_after"] >= cv["accuracy_before"]
    assert result["model"] == f"listenwell-sentiment-minilm {SHIPPED_VERSION}"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(CalibrationRow)).scalar_one() == 0

    code, out, err = run(capsys, "--config", cfg, "corrections", "recalibrate")
    assert code == 0, err
    assert "held-out log-loss" in out and "held-out accuracy" in out and "saved" in out
    stored = sc.load_calibration(
        engine, "sentiment", "listenwell-sentiment-minilm", SHIPPED_VERSION
    )
    assert stored is not None and stored.n_corrections == 150
    assert stored.params["labels"] == list(LABELS) and stored.params["bias"][0] > 0.5

    code, out, _ = run(capsys, "--config", cfg, "corrections", "recalibrate", "--remove")
    assert code == 0 and out.startswith("removed the sentiment recalibration")
    assert (
        sc.load_calibration(engine, "sentiment", "listenwell-sentiment-minilm", SHIPPED_VERSION)
        is None
    )


def test_recalibrate_refusals_are_one_line(cfg, engine, capsys):
    code, _, err = run(capsys, "--config", cfg, "corrections", "recalibrate")
    assert_one_line_error(code, err)
    assert "no sentiment results are stored yet" in err
    _biased_corrections(engine, 30)
    code, _, err = run(capsys, "--config", cfg, "corrections", "recalibrate")
    assert_one_line_error(code, err)
    assert "30 corrections" in err and "at least 50" in err
    code, _, err = run(capsys, "--config", cfg, "corrections", "recalibrate", "--min", "40")
    assert_one_line_error(code, err)
    assert "at least 40" in err
    code, _, err = run(capsys, "--config", cfg, "corrections", "recalibrate", "--stage", "intent")
    assert_one_line_error(code, err)
    assert "only sentiment can be recalibrated" in err
    code, _, err = run(
        capsys, "--config", cfg, "corrections", "recalibrate", "--model", "other:9", "--min", "2"
    )
    assert_one_line_error(code, err)
    assert "other 9" in err and "0 corrections" in err
