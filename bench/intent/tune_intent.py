#!/usr/bin/env python3
"""Choose the intent stage's numbers on the DEV split only, and print them.

Searches, on the dev rows of ``labelled.csv`` (never the test rows):

1. ``top_k`` in {1, 3, 5, 8} (the mean of how many nearest seed phrases make a class's similarity);
2. the rule weights and class biases, by coordinate ascent on dev macro-F1 over a small grid,
   two passes, starting from zero (ties keep the smaller absolute value);
3. the temperature, by minimising the dev negative log-likelihood of the softmax.

The printed ``IntentParams(...)`` is pasted into ``nlp/intent.py`` as ``DEFAULT_PARAMS``
(bump ``MODEL_VERSION`` when it changes). Run from the repository root::

    .venv/bin/python bench/intent/tune_intent.py [--json bench/intent/tuning.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from eval_intent import load_rows, metrics  # noqa: E402

WEIGHT_GRID = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3)
BIAS_GRID = (-0.1, -0.08, -0.06, -0.04, -0.02, 0.0, 0.02, 0.04, 0.06, 0.08, 0.1)
TOP_K = (1, 3, 5, 8)
TEMPERATURES = tuple(round(t, 4) for t in np.geomspace(0.005, 0.5, 60))


def _search(
    sims_by_k: dict[int, np.ndarray],
    rule_hits: np.ndarray,
    gold: Sequence[str],
    idx: Sequence[int],
    passes: int,
) -> dict[str, Any]:
    """Coordinate ascent on macro-F1 over the rows ``idx``; returns top_k, weights, biases."""
    from listenwell.nlp.intent import LABELS

    sub_gold = [gold[i] for i in idx]
    best: dict[str, Any] = {"macro_f1": -1.0}
    for top_k, all_sims in sims_by_k.items():
        sims, hits = all_sims[idx], rule_hits[idx]
        w = np.zeros(hits.shape[2])
        b = np.zeros(len(LABELS))

        def score(
            w: np.ndarray, b: np.ndarray, sims: np.ndarray = sims, hits: np.ndarray = hits
        ) -> float:
            pred = [LABELS[i] for i in (sims + hits @ w + b).argmax(axis=1)]
            return float(metrics(sub_gold, pred)["macro_f1"])

        current = score(w, b)
        for _ in range(passes):
            for j in range(len(w)):
                for value in sorted(WEIGHT_GRID, key=abs):
                    trial = w.copy()
                    trial[j] = value
                    s = score(trial, b)
                    if s > current + 1e-9:
                        current, w = s, trial
            for j in range(len(LABELS)):
                for value in sorted(BIAS_GRID, key=abs):
                    trial = b.copy()
                    trial[j] = value
                    s = score(w, trial)
                    if s > current + 1e-9:
                        current, b = s, trial
        if current > best["macro_f1"]:
            best = {"macro_f1": current, "top_k": top_k, "w": w, "b": b}
    return best


def tune(passes: int = 2, folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """Run the search on dev; return the chosen numbers and the dev figures.

    Besides the fit on all dev rows, the same search is run ``folds`` times on
    ``folds - 1`` parts of dev and scored on the part left out: that
    cross-validated macro-F1 says how much of the dev figure is fitted noise.
    """
    from listenwell.nlp.embeddings import Embedder
    from listenwell.nlp.intent import LABELS, RULES, IntentParams, PrototypeIntent, fired_rules

    dev = load_rows("dev")
    texts = [r["text"] for r in dev]
    gold = [r["label"] for r in dev]
    embedder = Embedder(threads=1)
    emb = embedder.encode(texts)
    stage = PrototypeIntent(embedder=embedder)
    rule_names = [rule.name for rule in RULES]
    # rule_hits[i, j, c] = 1 when rule j fired on text i and votes for class c; summing
    # over j against the weights gives each class's rule score.
    rule_hits = np.zeros((len(texts), len(LABELS), len(rule_names)))
    for i, text in enumerate(texts):
        for name in fired_rules(text):
            j = rule_names.index(name)
            rule_hits[i, LABELS.index(RULES[j].label), j] = 1.0
    sims_by_k = {}
    for top_k in TOP_K:
        stage.params = IntentParams(top_k=top_k)
        sims_by_k[top_k] = stage.similarities(emb)

    everything = list(range(len(texts)))
    best = _search(sims_by_k, rule_hits, gold, everything, passes)

    order = everything[:]
    np.random.default_rng(seed).shuffle(order)
    cv_pred = [""] * len(texts)
    for f in range(folds):
        held = order[f::folds]
        fit = [i for i in everything if i not in set(held)]
        part = _search(sims_by_k, rule_hits, gold, fit, passes)
        scores = sims_by_k[part["top_k"]][held] + rule_hits[held] @ part["w"] + part["b"]
        for i, row in zip(held, scores, strict=True):
            cv_pred[i] = LABELS[int(row.argmax())]

    scores = sims_by_k[best["top_k"]] + rule_hits @ best["w"] + best["b"]
    gold_idx = np.array([LABELS.index(g) for g in gold])

    def nll(t: float) -> float:
        z = scores / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(gold)), gold_idx].mean())

    temperature = min(TEMPERATURES, key=nll)
    params = {
        "top_k": best["top_k"],
        "rule_weights": {n: round(float(x), 4) for n, x in zip(rule_names, best["w"], strict=True)},
        "bias": {c: round(float(x), 4) for c, x in zip(LABELS, best["b"], strict=True)},
        "temperature": temperature,
    }
    pred = [LABELS[i] for i in scores.argmax(axis=1)]
    return {
        "split": "dev",
        "n": len(dev),
        "params": params,
        "dev_macro_f1_fitted": metrics(gold, pred)["macro_f1"],
        "dev_macro_f1_cross_validated": metrics(gold, cv_pred)["macro_f1"],
        "dev_nll": round(nll(temperature), 4),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: tune on dev and print the parameters."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--json", type=Path, help="also write the result here")
    args = p.parse_args(argv)
    result = tune()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
