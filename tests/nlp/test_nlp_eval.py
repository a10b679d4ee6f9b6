"""Evaluation: label formats (table-driven), metrics, and `listenwell eval sentiment`."""

from __future__ import annotations

import csv
import json
from contextlib import nullcontext
from pathlib import Path

import pytest
from cli_helpers import run

from listenwell.cli import app
from listenwell.nlp.evaluate import LabelFormatError, normalise_labels, sentiment_metrics

NEG, NEU, POS = "negative", "neutral", "positive"


@pytest.fixture(autouse=True, scope="module")
def _cli_registered():
    """`listenwell eval` is added to the root app here until cli/__init__.py registers it."""
    from listenwell.cli import nlp as cli_nlp

    if "eval" not in {g.name for g in app.registered_groups}:
        cli_nlp.register(app)


@pytest.mark.parametrize(
    ("values", "scheme", "expect", "gold"),
    [
        (["negative", "Neutral", " POSITIVE "], "auto", nullcontext(), [NEG, NEU, POS]),
        (["-1", "0", "1"], "auto", nullcontext(), [NEG, NEU, POS]),
        (["-1", "1", "-1.0"], "auto", nullcontext(), [NEG, POS, NEG]),
        (["0", "1", "2"], "auto", nullcontext(), [NEG, NEU, POS]),
        (["2", "2", "0"], "auto", nullcontext(), [POS, POS, NEG]),
        (["0", "1", "1"], "signed", nullcontext(), [NEU, POS, POS]),
        (["0", "1", "1"], "tweeteval", nullcontext(), [NEG, NEU, NEU]),
        (["1", "0"], "auto", pytest.raises(LabelFormatError, match="ambiguous"), None),
        (["-1", "2"], "auto", pytest.raises(LabelFormatError, match="fit neither"), None),
        (["-1", "0"], "tweeteval", pytest.raises(LabelFormatError, match="row 1"), None),
        (["2"], "signed", pytest.raises(LabelFormatError, match="-1/0/1"), None),
        (["positive", "1"], "auto", pytest.raises(LabelFormatError, match="mix names"), None),
        (["good"], "auto", pytest.raises(LabelFormatError, match="'good'"), None),
        (["good"], "names", pytest.raises(LabelFormatError, match="not one of"), None),
        (["0"], "stars", pytest.raises(LabelFormatError, match="unknown label format"), None),
    ],
)
def test_label_formats(values, scheme, expect, gold):
    with expect:
        assert normalise_labels(values, scheme) == gold


def test_metrics_by_hand():
    gold = [NEG, NEG, NEU, NEU, POS, POS]
    pred = [NEG, NEU, NEU, NEU, POS, NEG]
    m = sentiment_metrics(gold, pred)
    # recalls 1/2, 1, 1/2; precisions 1/2, 2/3, 1; F1s 1/2, 4/5, 2/3
    assert m["macro_recall"] == pytest.approx((0.5 + 1 + 0.5) / 3, abs=1e-6)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3, abs=1e-6)
    assert m["accuracy"] == pytest.approx(4 / 6, abs=1e-6) and m["n"] == 6
    with pytest.raises(ValueError):
        sentiment_metrics([], [])


ROWS = [
    ("I love this so much, wonderful!", POS),
    ("Terrible, awful, the worst service I have had", NEG),
    ("The shop opens at nine", NEU),
    ("Great people, great product, happy customer", POS),
    ("I hate waiting, this is horrible", NEG),
    ("Meeting at 3pm in room 4", NEU),
]
FORMATS = {
    "names": {NEG: "negative", NEU: "neutral", POS: "positive"},
    "signed": {NEG: "-1", NEU: "0", POS: "1"},
    "tweeteval": {NEG: "0", NEU: "1", POS: "2"},
}


def write_csv(path: Path, fmt: str) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "tweet", "gold"])
        for i, (text, label) in enumerate(ROWS):
            w.writerow([i, text, FORMATS[fmt][label]])
        w.writerow([99, "unlabelled rows are skipped", ""])
    return path


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_eval_cli_reads_every_label_format_alike(tmp_path, capsys, fmt, vader):
    path = write_csv(tmp_path / f"{fmt}.csv", fmt)
    code, out, err = run(
        capsys,
        "eval",
        "sentiment",
        str(path),
        "--text-column",
        "tweet",
        "--label-column",
        "gold",
        "--model",
        "vader",
    )
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1
    result = json.loads(out)
    assert {"macro_recall", "macro_f1", "accuracy", "n"} <= set(result)
    assert result["n"] == len(ROWS)
    # VADER gets every one of these right.
    assert result["accuracy"] == 1.0 and result["macro_recall"] == 1.0
    assert result["model"].startswith("vaderSentiment")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text-column", "text", "--label-column", "gold"], "no column 'text'"),
        (["--text-column", "tweet", "--label-column", "gold", "--model", "bert"], "--model"),
        (["--text-column", "tweet", "--label-column", "gold", "--labels", "x"], "--labels"),
        (["--text-column", "tweet", "--label-column", "id", "--model", "vader"], "fit neither"),
    ],
)
def test_eval_cli_errors_are_one_line(tmp_path, capsys, args, message):
    path = write_csv(tmp_path / "e.csv", "names")
    code, out, err = run(capsys, "eval", "sentiment", str(path), *args)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_eval_cli_ambiguous_labels_need_an_explicit_format(tmp_path, capsys):
    path = tmp_path / "binary.csv"
    path.write_text("text,label\ngreat,1\nthe train leaves at noon,0\n", encoding="utf-8")
    base = ["eval", "sentiment", str(path), "--text-column", "text", "--label-column", "label"]
    code, _, err = run(capsys, *base, "--model", "vader")
    assert code == 1 and "--labels signed" in err
    code, out, err = run(capsys, *base, "--model", "vader", "--labels", "signed")
    assert code == 0, err
    assert json.loads(out)["accuracy"] == 1.0
    code, out, err = run(capsys, *base, "--model", "vader", "--labels", "tweeteval")
    assert code == 0, err
    assert json.loads(out)["accuracy"] == 0.0  # 1 = neutral, 0 = negative there
