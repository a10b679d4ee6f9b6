#!/usr/bin/env python3
"""Score the SHIPPED sentiment artefact on TweetEval (no training): the headline figure.

Loads ``nlp/models/sentiment`` (or ``--model-dir``) through the product's loader
(:func:`listenwell.nlp.sentiment.load_sentiment_model`, which applies ``preprocess`` and the
stored temperature; when the artefact holds a stack, v0.3, the whole stack runs as in the
product, base MiniLM embeddings included) and scores it, with VADER as the baseline row, on TweetEval sentiment
``test`` (12,284 tweets, SemEval-2017) and ``val`` (2,000). Optionally (``--splits`` with
``dev``) also on the time-shifted dev split that v0.2 held out of training: the SemEval
files ``twitter-2016dev-A`` and ``twitter-2016devtest-A`` inside ``train_rebuilt`` (3,881
tweets). v0.1 was TRAINED on those tweets, so its dev figure is a training-set figure.

Metrics: macro-averaged recall (the official TweetEval metric) with a 95 % percentile
bootstrap CI (1,000 resamples, seed 0), macro-F1, accuracy, recall per class, and n.
One torch thread; about 2-3 minutes for test + val on one CPU core.

Used by the lead's harness as ``evaluate(shared, model_dir) -> dict`` and
``markdown(results) -> str``; run directly it prints the markdown (``--json`` also writes
the dict).
"""

from __future__ import annotations

import argparse
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

from train_sentiment import (  # noqa: E402
    bootstrap_macro_recall,
    metrics,
    read_origin,
    read_split,
    sha256_file,
)

__all__ = [
    "DEV_FILES",
    "LABELS",
    "evaluate",
    "finetuned_predict",
    "main",
    "markdown",
    "model_kind",
    "model_stack_info",
    "score",
    "stack_note",
    "vader_predict",
]

LABELS = ("negative", "neutral", "positive")
DEV_FILES = ("twitter-2016dev-A", "twitter-2016devtest-A")
VADER_THRESHOLD = 0.05
_SPLITS = ("test", "val", "dev")


def finetuned_predict(texts: Sequence[str], model_dir: Path | None = None) -> npt.NDArray[Any]:
    """Class indices (0 negative, 1 neutral, 2 positive) from the shipped fine-tuned model.

    Args:
        texts: Raw texts; the product's ``preprocess`` is applied by the model.
        model_dir: Artefact folder; ``None`` means ``nlp/models/sentiment``.

    Returns:
        One class index per text, in :data:`LABELS` order.
    """
    import torch

    from listenwell.nlp.sentiment import load_sentiment_model

    torch.set_num_threads(1)
    model = load_sentiment_model(model_dir)
    order = [model.labels.index(lab) for lab in LABELS]
    probs = model.predict_proba(list(texts), batch_size=64)[:, order]
    return np.asarray(probs.argmax(axis=1), dtype=np.int64)


def model_stack_info(model: Any) -> dict[str, Any]:
    """What the results dict records about a stack (v0.3), if the artefact has one."""
    if getattr(model, "stack", None) is None:
        return {}
    arrays = model.path / str(model.stack.spec.get("arrays", "stack.npz"))
    return {
        "stack": {
            "inputs": list(model.stack.inputs),
            "finetuned_version": model.meta.get("stack", {}).get("finetuned_version"),
            "arrays_sha256": sha256_file(arrays),
        }
    }


def model_kind(m: dict[str, Any]) -> str:
    """``shipped``, or ``candidate (not shipped)`` for a ``--model-dir`` elsewhere."""
    return "shipped" if m.get("shipped", True) else "candidate (not shipped)"


def stack_note(m: dict[str, Any]) -> str:
    """A parenthesis for the markdown naming the stack's inputs, or nothing."""
    if "stack" not in m:
        return ""
    s = m["stack"]
    return (
        f"; stacked ensemble over the fine-tuned v{s['finetuned_version']} with inputs "
        f"{' + '.join(s['inputs'])} (`stack.json`, `stack.npz` sha256 "
        f"`{s['arrays_sha256'][:16]}...`)"
    )


def vader_predict(texts: Sequence[str], threshold: float = VADER_THRESHOLD) -> npt.NDArray[Any]:
    """Class indices from VADER's compound score (>= 0.05 positive, <= -0.05 negative), raw text.

    Args:
        texts: Raw texts.
        threshold: The compound magnitude at which a text stops being neutral.

    Returns:
        One class index per text, in :data:`LABELS` order.
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()
    c = np.array([sia.polarity_scores(t or "")["compound"] for t in texts], dtype=float)
    return np.where(c >= threshold, 2, np.where(c <= -threshold, 0, 1)).astype(np.int64)


def score(
    y: npt.NDArray[Any], pred: npt.NDArray[Any], *, bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Macro-recall with bootstrap CI, macro-F1, accuracy, per-class recall and n.

    Args:
        y: Gold class indices.
        pred: Predicted class indices.
        bootstrap: Resamples for the 95 % percentile CI of macro-recall.
        seed: Bootstrap seed.

    Returns:
        A JSON-ready dict of rounded figures.
    """
    m = metrics(np.asarray(y), np.asarray(pred))
    lo, hi = bootstrap_macro_recall(np.asarray(y), np.asarray(pred), bootstrap, seed)
    return {
        "macro_recall": round(m["macro_recall"], 4),
        "macro_recall_ci95": [round(lo, 4), round(hi, 4)],
        "macro_f1": round(m["macro_f1"], 4),
        "accuracy": round(m["accuracy"], 4),
        "recall": m["recall"],
        "confusion": m["confusion"],
        "n": m["n"],
    }


def _read_dev(folder: Path) -> tuple[list[str], npt.NDArray[Any], list[dict[str, Any]]]:
    texts, y, files = read_split(folder, "train_rebuilt")
    origin = read_origin(folder)
    keep = np.asarray([o in DEV_FILES for o in origin])
    files.append(
        {
            "path": str((folder / "train_rebuilt_origin.tsv").relative_to(folder.parents[2])),
            "sha256": sha256_file(folder / "train_rebuilt_origin.tsv"),
            "rows": len(origin),
        }
    )
    return [t for t, k in zip(texts, keep, strict=True) if k], y[keep], files


def evaluate(
    shared: Path,
    model_dir: Path | None = None,
    *,
    splits: Sequence[str] = ("test", "val"),
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Score the shipped artefact and VADER on TweetEval splits.

    Args:
        shared: The ``shared/`` folder holding ``data/tweeteval/sentiment/``.
        model_dir: Artefact folder; ``None`` means ``nlp/models/sentiment``.
        splits: Any of ``test``, ``val``, ``dev`` (2016dev + 2016devtest from train_rebuilt).
        bootstrap: Bootstrap resamples for the macro-recall CI.
        seed: Bootstrap seed.

    Returns:
        ``{"model": ..., "splits": {split: {"n", "files", "rows": {"finetuned", "vader"}}},
        "selection_score": mean of dev and val macro-recall (when both were scored), ...}``.
    """
    from listenwell.nlp.sentiment import DEFAULT_MODEL_DIR, load_sentiment_model

    unknown = sorted(set(splits) - set(_SPLITS))
    if unknown:
        raise ValueError(f"unknown splits {unknown}; choose from {_SPLITS}")
    folder = Path(shared) / "data" / "tweeteval" / "sentiment"
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
        "splits": {},
    }
    for split in splits:
        if split == "dev":
            texts, y, files = _read_dev(folder)
        else:
            texts, y, files = read_split(folder, split)
        t = time.time()
        ft = finetuned_predict(texts, mdir)
        ft_s = time.time() - t
        vd = vader_predict(texts)
        out["splits"][split] = {
            "n": int(len(y)),
            "label_counts": np.bincount(y, minlength=3).tolist(),
            "files": files,
            "finetuned_seconds": round(ft_s, 1),
            "rows": {
                "finetuned": score(y, ft, bootstrap=bootstrap, seed=seed),
                "vader": score(y, vd, bootstrap=bootstrap, seed=seed),
            },
        }
    if "dev" in out["splits"] and "val" in out["splits"]:
        rows = [out["splits"][s]["rows"]["finetuned"]["macro_recall"] for s in ("dev", "val")]
        out["selection_score"] = round(float(np.mean(rows)), 4)
    out["seconds"] = round(time.time() - t0, 1)
    out["command"] = (
        "python bench/sentiment/eval_tweeteval.py --shared ../shared"
        + (f" --model-dir {model_dir}" if model_dir is not None else "")
        + (f" --splits {','.join(splits)}" if tuple(splits) != ("test", "val") else "")
    )
    return out


_SPLIT_NOTES = {
    "test": "TweetEval test (SemEval-2017 4A)",
    "val": "TweetEval val (temperature, shipping rule; v0.1 was selected on it)",
    "dev": "2016dev+devtest (time-shifted dev; v0.1 trained on it)",
}


def _fmt_row(split: str, name: str, r: dict[str, Any]) -> str:
    lo, hi = r["macro_recall_ci95"]
    rec = " / ".join(f"{r['recall'][lab]:.3f}" for lab in LABELS)
    return (
        f"| {_SPLIT_NOTES[split]} | {name} | {r['n']:,} | **{r['macro_recall']:.3f}** "
        f"[{lo:.3f}-{hi:.3f}] | {r['macro_f1']:.3f} | {r['accuracy']:.3f} | {rec} |"
    )


def markdown(results: dict[str, Any]) -> str:
    """A markdown section: the table (fine-tuned and VADER rows), command, data, what was measured.

    Args:
        results: The dict returned by :func:`evaluate`.

    Returns:
        Markdown text.
    """
    m = results["model"]
    lines = [
        f"### Sentiment on TweetEval: {model_kind(m)} `{m['name']}` {m['version']}",
        "",
        "| split | model | n | macro-recall [95% CI] | macro-F1 | accuracy | "
        "recall neg / neu / pos |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split, s in results["splits"].items():
        lines.append(_fmt_row(split, f"{m['name']} {m['version']}", s["rows"]["finetuned"]))
        lines.append(_fmt_row(split, "VADER (baseline)", s["rows"]["vader"]))
    lines += ["", f"Command: `{results['command']}` ({results['seconds']:.0f} s, 1 torch thread)."]
    if "selection_score" in results:
        lines.append(
            f"Selection score (mean of dev and val macro-recall): {results['selection_score']:.4f}."
        )
    lines += [
        "",
        f"Model: `{m['path']}` (sha256 `{m['sha256'][:16]}...`){stack_note(m)}, scored as shipped through "
        "`listenwell.nlp.sentiment.load_sentiment_model` (product preprocessing and "
        f"temperature); no training. Baseline: {results['vader']}.",
        "Data: "
        + "; ".join(f"{f['path']} ({f['rows']:,} rows)" for f in _all_files(results))
        + ".",
        "Measured: macro-averaged recall (TweetEval's official metric) with a 95 % percentile "
        "bootstrap CI (1,000 resamples), macro-F1, accuracy and recall per class.",
    ]
    return "\n".join(lines) + "\n"


def _all_files(results: dict[str, Any]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for s in results["splits"].values():
        for f in s["files"]:
            if f["path"].endswith(("_text.txt", ".tsv")):
                seen.setdefault(f["path"], f)
    return list(seen.values())


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: print the markdown; ``--json PATH`` also writes the results dict."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--shared", default=str(HERE.parents[2] / "shared"), help="shared/ folder")
    p.add_argument("--model-dir", default=None, help="artefact folder (default: shipped model)")
    p.add_argument("--splits", default="test,val", help="comma-separated: test, val, dev")
    p.add_argument("--json", default=None, help="also write the results dict here")
    args = p.parse_args(argv)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    model_dir = Path(args.model_dir) if args.model_dir else None
    res = evaluate(Path(args.shared), model_dir, splits=splits)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    print(markdown(res))


if __name__ == "__main__":
    main()
