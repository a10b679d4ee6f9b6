#!/usr/bin/env python3
"""Evaluate the intent stage on the TEST split of ``labelled.csv``.

Runs the real :class:`listenwell.nlp.intent.PrototypeIntent` (packaged MiniLM, the
shipped seeds, rules and dev-tuned numbers) over the test rows and reports, beside it:

* ``majority``: always the most frequent DEV label;
* ``rules_only``: :func:`listenwell.nlp.intent.rules_label` (fixed precedence, no tuning);
* ``prototypes_only``: the nearest prototype class, no rules, no tuned weights.

For each: per-class precision / recall / F1 / support, macro-F1, accuracy and the confusion
matrix, on all test rows and on the test rows of the ``random`` stratum alone (the keyword
strata over-represent feature requests and favour keyword rules; see ``GUIDELINES.md``).

Run from the repository root::

    .venv/bin/python bench/intent/eval_intent.py                 # markdown report
    .venv/bin/python bench/intent/eval_intent.py --json out.json # also the raw results

For a harness: ``evaluate(shared) -> dict`` and ``markdown(results) -> str``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LABELLED = HERE / "labelled.csv"
COMMAND = ".venv/bin/python bench/intent/eval_intent.py"
LABELLED_BY = (
    "one annotator: an AI assistant engineer (Claude) following bench/intent/GUIDELINES.md, "
    "labelling every row from its text alone before any model output existed; no second "
    "annotator, no agreement figure"
)

__all__ = [
    "COMMAND",
    "LABELLED",
    "LABELLED_BY",
    "evaluate",
    "load_rows",
    "markdown",
    "metrics",
]


def load_rows(split: str | None = None, path: Path = LABELLED) -> list[dict[str, str]]:
    """Labelled rows of ``labelled.csv``, optionally one split; unlabelled rows are an error.

    Raises:
        ValueError: A row has no label or a label outside the five classes.
    """
    from listenwell.nlp.intent import LABELS

    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    bad = [r["id"] for r in rows if r["label"] not in LABELS]
    if bad:
        raise ValueError(f"{len(bad)} rows have no valid label, e.g. {bad[:3]}")
    return [r for r in rows if split is None or r["split"] == split]


def metrics(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Per-class precision/recall/F1/support, macro-F1, accuracy and the confusion matrix.

    The matrix's rows are gold labels and its columns predicted labels, both in
    ``LABELS`` order. A class never predicted has precision 0.
    """
    from listenwell.nlp.intent import LABELS

    if len(gold) != len(predicted) or not gold:
        raise ValueError("gold and predicted must be non-empty and of equal length")
    per_class: dict[str, dict[str, float]] = {}
    for label in LABELS:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == label)
        n_gold = sum(1 for g in gold if g == label)
        n_pred = sum(1 for p in predicted if p == label)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": n_gold,
            "predicted": n_pred,
        }
    present = [label for label in LABELS if per_class[label]["support"]]
    matrix = [[0] * len(LABELS) for _ in LABELS]
    for g, p in zip(gold, predicted, strict=True):
        matrix[LABELS.index(g)][LABELS.index(p)] += 1
    return {
        "per_class": per_class,
        "macro_f1": round(sum(per_class[c]["f1"] for c in present) / len(present), 4),
        "accuracy": round(sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold), 4),
        "n": len(gold),
        "confusion": {"labels": list(LABELS), "matrix": matrix},
    }


def _bootstrap_macro_f1(
    gold: Sequence[str], predicted: Sequence[str], *, n: int = 1000, seed: int = 0
) -> list[float]:
    rng = random.Random(seed)
    idx = range(len(gold))
    values = []
    for _ in range(n):
        sample = [rng.choice(idx) for _ in idx]
        values.append(
            metrics([gold[i] for i in sample], [predicted[i] for i in sample])["macro_f1"]
        )
    values.sort()
    return [round(values[int(0.025 * n)], 4), round(values[int(0.975 * n) - 1], 4)]


def _calibration(
    gold: Sequence[str], predicted: Sequence[str], confidence: Sequence[float], bins: int = 10
) -> dict[str, float]:
    correct = [g == p for g, p in zip(gold, predicted, strict=True)]
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [i for i, c in enumerate(confidence) if lo < c <= hi or (b == 0 and c == 0)]
        if members:
            acc = sum(correct[i] for i in members) / len(members)
            conf = sum(confidence[i] for i in members) / len(members)
            ece += len(members) / len(gold) * abs(acc - conf)
    return {
        "mean_confidence": round(sum(confidence) / len(confidence), 4),
        "accuracy": round(sum(correct) / len(correct), 4),
        "ece_10_bins": round(ece, 4),
    }


def evaluate(shared: Path | None = None) -> dict[str, Any]:
    """Score the intent stage and the baselines on the test split.

    Args:
        shared: The ``shared/`` folder; when given (and present) the CSV is also checked
            against a fresh seeded draw from ``shared/data`` (``sample_matches_draw``).

    Returns:
        Plain data: ``systems`` (all test rows), ``random_stratum`` (test rows drawn at
        random), ``dev`` (the stage on the dev split it was tuned on, for reference),
        ``calibration``, ``macro_f1_ci95``, ``data``, ``model``, ``command`` and ``labelled_by``.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from listenwell.nlp.embeddings import Embedder
    from listenwell.nlp.intent import LABELS, PrototypeIntent, rules_label

    started = time.time()
    test = load_rows("test")
    dev = load_rows("dev")
    embedder = Embedder(threads=1)
    stage = PrototypeIntent(embedder=embedder)
    test_texts = [r["text"] for r in test]
    emb = embedder.encode(test_texts)
    results = stage.run(test_texts, emb)
    majority = Counter(r["label"] for r in dev).most_common(1)[0][0]
    sims = stage.similarities(emb)
    predictions = {
        "prototypes+rules": [r.label or "other" for r in results],
        "rules_only": [rules_label(t) for t in test_texts],
        "prototypes_only": [LABELS[int(row.argmax())] for row in sims],
        "majority": [majority] * len(test),
    }
    gold = [r["label"] for r in test]
    # How close the hand-written seed phrases come to any test text (1.0 would be a copy).
    seed_cos = stage.seed_vectors @ emb.T
    seed_i, text_i = divmod(int(seed_cos.argmax()), seed_cos.shape[1])
    random_idx = [i for i, r in enumerate(test) if r["stratum"] == "random"]
    dev_texts = [r["text"] for r in dev]
    dev_pred = [r.label or "other" for r in stage.run(dev_texts, embedder.encode(dev_texts))]

    matches: bool | None = None
    if shared is not None and (Path(shared) / "data").is_dir():
        sys.path.insert(0, str(HERE))
        import sample

        matches = not sample.check(LABELLED, Path(shared))

    return {
        "command": COMMAND,
        "labelled_by": LABELLED_BY,
        "data": {
            "file": "bench/intent/labelled.csv",
            "split": "test",
            "n": len(test),
            "n_dev": len(dev),
            "labels": dict(Counter(gold)),
            "strata": dict(Counter(r["stratum"] for r in test)),
            "sources": dict(Counter(r["source"] for r in test)),
            "sample_matches_draw": matches,
            "seed_max_cosine_to_test": {
                "cosine": round(float(seed_cos.max()), 4),
                "seed": stage.seed_texts[seed_i],
                "test_id": test[text_i]["id"],
            },
        },
        "model": {
            "name": stage.model_name,
            "version": stage.model_version,
            "embeddings": embedder.model_version,
            "majority_label": majority,
        },
        "systems": {name: metrics(gold, pred) for name, pred in predictions.items()},
        "random_stratum": {
            name: metrics([gold[i] for i in random_idx], [pred[i] for i in random_idx])
            for name, pred in predictions.items()
        },
        "macro_f1_ci95": _bootstrap_macro_f1(gold, predictions["prototypes+rules"]),
        "calibration": _calibration(
            gold, predictions["prototypes+rules"], [float(r.score or 0.0) for r in results]
        ),
        "dev": metrics([r["label"] for r in dev], dev_pred),
        "seconds": round(time.time() - started, 1),
    }


def _table(systems: dict[str, dict[str, Any]]) -> list[str]:
    from listenwell.nlp.intent import LABELS

    head = "| system | macro-F1 | accuracy | " + " | ".join(f"{c} P / R" for c in LABELS) + " |"
    lines = [head, "|" + " --- |" * (3 + len(LABELS))]
    for name, m in systems.items():
        cells = [
            f"{m['per_class'][c]['precision']:.2f} / {m['per_class'][c]['recall']:.2f}"
            for c in LABELS
        ]
        lines.append(
            f"| {name} | {m['macro_f1']:.3f} | {m['accuracy']:.3f} | " + " | ".join(cells) + " |"
        )
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The results as a markdown section: tables, confusion matrix, command, data, labellers."""
    from listenwell.nlp.intent import LABELS

    main = results["systems"]["prototypes+rules"]
    data = results["data"]
    lines = [
        f"### Intent ({results['model']['name']} {results['model']['version']})",
        "",
        f"Test split of `{data['file']}`: {data['n']} rows "
        f"({', '.join(f'{k} {v}' for k, v in sorted(data['sources'].items()))}; "
        f"strata {', '.join(f'{k} {v}' for k, v in sorted(data['strata'].items()))}). "
        f"Tuned on the {data['n_dev']} dev rows only.",
        "",
        "All test rows:",
        "",
        *_table(results["systems"]),
        "",
        f"Macro-F1 95% bootstrap interval (prototypes+rules): "
        f"{results['macro_f1_ci95'][0]:.3f} to {results['macro_f1_ci95'][1]:.3f}.",
        "",
        "Per class, prototypes+rules:",
        "",
        "| class | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in LABELS:
        m = main["per_class"][c]
        lines.append(
            f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
        )
    lines += [
        "",
        "Confusion matrix, prototypes+rules (rows gold, columns predicted):",
        "",
        "| gold \\ predicted | " + " | ".join(LABELS) + " |",
        "|" + " --- |" * (1 + len(LABELS)),
    ]
    for c, row in zip(LABELS, main["confusion"]["matrix"], strict=True):
        lines.append(f"| {c} | " + " | ".join(str(x) for x in row) + " |")
    cal = results["calibration"]
    lines += [
        "",
        f"Test rows of the `random` stratum only ({results['random_stratum']['majority']['n']} rows):",
        "",
        *_table(results["random_stratum"]),
        "",
        f"Confidence (top probability) on test: mean {cal['mean_confidence']:.3f} vs accuracy "
        f"{cal['accuracy']:.3f}; ECE (10 bins) {cal['ece_10_bins']:.3f}. "
        f"Dev (tuning data, not a result): macro-F1 {results['dev']['macro_f1']:.3f}.",
        "",
        f"Command: `{results['command']}` (from the repository root). "
        f"Embeddings: {results['model']['embeddings']}. "
        f"Majority baseline label: `{results['model']['majority_label']}` (most frequent on dev).",
        "",
        f"Closest seed phrase to any test text: cosine "
        f"{data['seed_max_cosine_to_test']['cosine']:.3f} "
        f'("{data["seed_max_cosine_to_test"]["seed"]}" vs {data["seed_max_cosine_to_test"]["test_id"]}).',
        "",
        f"Labels: {results['labelled_by']}.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the markdown report, optionally write the raw results."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    results = evaluate(args.shared)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
