"""`listenwell enrich` end to end: the real artefact, resumable, --redo, one-line errors."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run

from listenwell import store
from listenwell.cli import app


@pytest.fixture(autouse=True, scope="module")
def _cli_registered():
    """`listenwell enrich` is added to the root app here until cli/__init__.py registers it."""
    from listenwell.cli import nlp as cli_nlp

    if "enrich" not in {c.name for c in app.registered_commands}:
        cli_nlp.register(app)


@pytest.fixture
def cfg(config_file, engine, seed, texts, sentiment_model) -> str:
    seed(engine, texts)
    return str(config_file)


def test_enrich_then_nothing_left_then_redo(cfg, capsys, engine, texts, sentiment_model):
    code, out, err = run(capsys, "--config", cfg, "enrich", "--json", "--batch-size", "5")
    assert code == 0, err
    first = json.loads(out)
    n = len(texts)
    assert (first["mentions"], first["embedded"]) == (n, n)
    # Every running stage labelled every mention once.
    assert {"language", "sentiment", "intent"} <= set(first["results"])
    assert set(first["results"].values()) == {n}
    results = store.read_enrichments(engine, "sentiment")
    assert len(results) == n
    assert {r.model_name for r in results.values()} == {sentiment_model.name}
    assert all("low_confidence" in r.data for r in results.values())
    assert store.count_embeddings(engine) == n

    code, out, _ = run(capsys, "--config", cfg, "enrich")
    assert code == 0 and out.strip() == "enriched 0 mentions: 0 embedded"

    code, out, err = run(capsys, "--config", cfg, "enrich", "--redo", "sentiment", "--json")
    assert code == 0, err
    assert json.loads(out)["results"] == {"sentiment": n}
    assert json.loads(out)["embedded"] == 0

    rows = {r["text"]: r for r in store.iter_export_rows(engine)}
    assert rows[texts[0]]["sentiment"] == "positive"
    assert 0.0 < rows[texts[0]]["sentiment_score"] <= 1.0


def test_enrich_redo_unknown_stage_is_a_one_line_error(cfg, capsys):
    code, out, err = run(capsys, "--config", cfg, "enrich", "--redo", "topics")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "no running stage is called 'topics'" in err


def test_enrich_refuses_an_unmigrated_database(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(f"database_url: sqlite:///{tmp_path / 'new.db'}\n", encoding="utf-8")
    code, _, err = run(capsys, "--config", str(path), "enrich")
    assert code == 1 and "listenwell db upgrade" in err


def test_explain_names_the_words_that_drove_a_stored_mentions_sentiment(cfg, capsys, engine):
    frame = store.mentions_frame(engine, limit=100)
    mid = int(frame["id"].iloc[0])
    text = frame["text"].iloc[0]
    code, out, err = run(capsys, "--config", cfg, "explain", str(mid), "--json", "--top", "3")
    assert code == 0, err
    got = json.loads(out)
    assert got["label"] in {"negative", "neutral", "positive"}
    assert 1 <= len(got["words"]) <= 3
    assert all(w["word"] in text for w in got["words"])
    weights = [abs(w["weight"]) for w in got["words"]]
    assert weights == sorted(weights, reverse=True)

    code, out, err = run(capsys, "--config", cfg, "explain", "999999")
    assert code == 1 and "no mention has id 999999" in err
    code, out, err = run(capsys, "--config", cfg, "explain", str(mid), "--text", "x")
    assert code == 1 and "not both" in err
