#!/usr/bin/env python3
"""Transfer check: the SHIPPED sentiment model on data it was never trained or tuned on.

Two labelled sets from ``shared/data``, scored with no training, no tuning and no threshold
changes (the model as shipped, VADER as the baseline row):

* **airline**: ``twitter-airline-sentiment/Tweets.csv``, all 14,640 tweets, gold label
  ``airline_sentiment`` (negative / neutral / positive; crowd-labelled, 2015 US airline
  customer tweets);
* **alexa**: ``amazon-alexa-reviews/amazon_alexa.tsv``, product reviews with the label
  derived from the stars: 1-2 negative, 3 neutral, 4-5 positive. The 79 reviews with empty
  text are left out (reported as ``excluded_empty``).

Metrics: macro-averaged recall with a 95 % percentile bootstrap CI (1,000 resamples, seed 0),
macro-F1, accuracy, recall per class, and n. One torch thread (about 2-3 minutes in all on
one CPU core).

Used by the lead's harness as ``evaluate(shared, model_dir) -> dict`` and
``markdown(results) -> str``; run directly it prints the markdown (``--json`` also writes
the dict).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from eval_tweeteval import (  # noqa: E402
    LABELS,
    VADER_THRESHOLD,
    finetuned_predict,
    model_kind,
    model_stack_info,
    score,
    stack_note,
    vader_predict,
)
from train_sentiment import sha256_file  # noqa: E402

__all__ = ["DATASETS", "evaluate", "load_airline", "load_alexa", "main", "markdown"]

AIRLINE = Path("data/twitter-airline-sentiment/Tweets.csv")
ALEXA = Path("data/amazon-alexa-reviews/amazon_alexa.tsv")
DATASETS = ("airline", "alexa")
_STARS = {1: 0, 2: 0, 3: 1, 4: 2, 5: 2}


def load_airline(shared: Path) -> tuple[list[str], npt.NDArray[Any], dict[str, Any]]:
    """All airline tweets and their gold ``airline_sentiment`` class indices.

    Args:
        shared: The ``shared/`` folder.

    Returns:
        ``(texts, labels, info)``; ``info`` holds the path, sha256 and row counts.
    """
    path = Path(shared) / AIRLINE
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    texts = [r["text"] for r in rows]
    y = np.asarray([LABELS.index(r["airline_sentiment"]) for r in rows], dtype=np.int64)
    info = {"path": str(AIRLINE), "sha256": sha256_file(path), "rows": len(rows)}
    return texts, y, info


def load_alexa(shared: Path) -> tuple[list[str], npt.NDArray[Any], dict[str, Any]]:
    """Alexa reviews with non-empty text and star-derived class indices (1-2 / 3 / 4-5).

    Args:
        shared: The ``shared/`` folder.

    Returns:
        ``(texts, labels, info)``; ``info`` holds the path, sha256, row counts and how many
        empty reviews were left out.
    """
    path = Path(shared) / ALEXA
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    kept = [r for r in rows if r["verified_reviews"].strip()]
    texts = [r["verified_reviews"] for r in kept]
    y = np.asarray([_STARS[int(r["rating"])] for r in kept], dtype=np.int64)
    info = {
        "path": str(ALEXA),
        "sha256": sha256_file(path),
        "rows": len(rows),
        "excluded_empty": len(rows) - len(kept),
        "label_rule": "stars 1-2 negative, 3 neutral, 4-5 positive",
    }
    return texts, y, info


def evaluate(
    shared: Path, model_dir: Path | None = None, *, bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Score the shipped fine-tuned model and VADER on the airline and Alexa sets.

    Args:
        shared: The ``shared/`` folder holding ``data/``.
        model_dir: Artefact folder; ``None`` means ``nlp/models/sentiment``.
        bootstrap: Bootstrap resamples for the macro-recall CI.
        seed: Bootstrap seed.

    Returns:
        ``{"model": ..., "datasets": {name: {"n", "label_counts", "data",
        "rows": {"finetuned", "vader"}}}, "command", "seconds"}``.
    """
    from listenwell.nlp.sentiment import DEFAULT_MODEL_DIR, load_sentiment_model

    mdir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    model = load_sentiment_model(mdir)
    t0 = time.time()
    out: dict[str, Any] = {
        "model": {
            "name": model.name,
            "version": model.version,
            "path": str(mdir),
            "shipped": mdir.resolve() == DEFAULT_MODEL_DIR.resolve(),
            "sha256": sha256_file(mdir / "model.safetensors"),
            **model_stack_info(model),
        },
        "vader": f"vaderSentiment, compound >= {VADER_THRESHOLD} positive, "
        f"<= -{VADER_THRESHOLD} negative, raw text",
        "datasets": {},
    }
    for name, loader in (("airline", load_airline), ("alexa", load_alexa)):
        texts, y, info = loader(Path(shared))
        t = time.time()
        ft = finetuned_predict(texts, mdir)
        ft_s = time.time() - t
        vd = vader_predict(texts)
        out["datasets"][name] = {
            "n": int(len(y)),
            "label_counts": np.bincount(y, minlength=3).tolist(),
            "data": info,
            "finetuned_seconds": round(ft_s, 1),
            "rows": {
                "finetuned": score(y, ft, bootstrap=bootstrap, seed=seed),
                "vader": score(y, vd, bootstrap=bootstrap, seed=seed),
            },
        }
    out["seconds"] = round(time.time() - t0, 1)
    out["command"] = "python bench/sentiment/eval_transfer.py --shared ../shared" + (
        f" --model-dir {model_dir}" if model_dir is not None else ""
    )
    return out


_TITLES = {
    "airline": "airline tweets (all rows)",
    "alexa": "Alexa reviews (stars 1-2/3/4-5)",
}


def markdown(results: dict[str, Any]) -> str:
    """A markdown section: the table (fine-tuned and VADER rows), command, data, what was measured.

    Args:
        results: The dict returned by :func:`evaluate`.

    Returns:
        Markdown text.
    """
    m = results["model"]
    lines = [
        f"### Sentiment transfer (no training on these sets): {model_kind(m)} `{m['name']}` "
        f"{m['version']}",
        "",
        "| data | model | n | macro-recall [95% CI] | macro-F1 | accuracy | "
        "recall neg / neu / pos |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, d in results["datasets"].items():
        for row, label in (("finetuned", f"{m['name']} {m['version']}"), ("vader", "VADER")):
            r = d["rows"][row]
            lo, hi = r["macro_recall_ci95"]
            rec = " / ".join(f"{r['recall'][lab]:.3f}" for lab in LABELS)
            lines.append(
                f"| {_TITLES[name]} | {label} | {r['n']:,} | **{r['macro_recall']:.3f}** "
                f"[{lo:.3f}-{hi:.3f}] | {r['macro_f1']:.3f} | {r['accuracy']:.3f} | {rec} |"
            )
    lines += ["", f"Command: `{results['command']}` ({results['seconds']:.0f} s, 1 torch thread)."]
    data = []
    for d in results["datasets"].values():
        info = d["data"]
        counts = " / ".join(f"{c:,}" for c in d["label_counts"])
        extra = (
            f", {info['excluded_empty']} empty reviews left out, {info['label_rule']}"
            if "excluded_empty" in info
            else ", gold `airline_sentiment`"
        )
        data.append(f"`{info['path']}` ({info['rows']:,} rows{extra}; neg/neu/pos {counts})")
    caveat = ""
    if "alexa" in results["datasets"]:
        counts = results["datasets"]["alexa"]["label_counts"]
        caveat = (
            " Alexa labels come from stars, not from annotators, and the set is "
            f"{100 * counts[2] / max(1, sum(counts)):.0f} % positive, so its negative and "
            "neutral recalls rest on few reviews (see the class counts)."
        )
    lines += [
        "",
        f"Model: `{m['path']}` (sha256 `{m['sha256'][:16]}...`){stack_note(m)}, scored as shipped through "
        "`listenwell.nlp.sentiment.load_sentiment_model`; no training or tuning on these sets. "
        f"Baseline: {results['vader']}.",
        "Data: " + "; ".join(data) + ".",
        "Measured: macro-averaged recall with a 95 % percentile bootstrap CI (1,000 "
        "resamples), macro-F1, accuracy and recall per class." + caveat,
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: print the markdown; ``--json PATH`` also writes the results dict."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--shared", default=str(HERE.parents[2] / "shared"), help="shared/ folder")
    p.add_argument("--model-dir", default=None, help="artefact folder (default: shipped model)")
    p.add_argument("--json", default=None, help="also write the results dict here")
    args = p.parse_args(argv)
    model_dir = Path(args.model_dir) if args.model_dir else None
    res = evaluate(Path(args.shared), model_dir)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    print(markdown(res))


if __name__ == "__main__":
    main()
