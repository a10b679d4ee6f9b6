#!/usr/bin/env python3
"""v0.3 stacked sentiment ensemble: cache features, fit the base learners and the stacker.

Two steps, each its own sub-command (``--help`` on each):

``features``
    Computes, once, the per-text inputs of the ensemble and caches them under
    ``--cache`` (default ``bench/out/stack-cache``): the packaged base MiniLM sentence
    embeddings exactly as the product stores them (:class:`listenwell.nlp.embeddings.Embedder`,
    links and @handles removed, 384-d, L2-normalised) and the shipped fine-tuned model's raw
    logits (:class:`listenwell.nlp.sentiment.SentimentModel`, product preprocessing). Splits:
    ``train`` (train_rebuilt, embeddings only: the fine-tuned model was trained on it, so its
    logits there are training-set logits and are never used), ``val``, and the scoring sets
    ``test``, ``airline``, ``alexa``. Computing the scoring sets' features reads no label.

``fit``
    Trains the base learners on train_rebuilt only (a logistic-regression head on the
    embeddings; optionally a TF-IDF word + char n-gram logistic regression), then chooses and
    fits the stacker on TweetEval val only, with stratified k-fold cross-validation on val
    for every choice and for the honest estimate (out-of-fold predictions). The shipped
    model is scored on the same val folds. Writes the artefact files (``stack.json``,
    ``lr_head.npz``) and a report (``stack_report.json``) to ``--out``. It reads no test,
    airline or Alexa label. The shipping decision is the rule in README.md
    ("v0.3 stacked ensemble: protocol").

``score``
    Scores a frozen artefact folder from the cached features (the same
    :class:`~listenwell.nlp.sentiment.SentimentStack` code the product runs): a fast
    cross-check of ``eval_tweeteval.py`` / ``eval_transfer.py``, which recompute everything.

Everything is seeded (``--seed``), single-threaded for torch (``--threads``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Thousands of small logistic regressions: one BLAS thread each is much faster on a busy
# 2-core machine than letting them fight over both cores.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

T0 = time.time()
SPLITS = ("train", "val", "test", "airline", "alexa")


def log(msg: str) -> None:
    """Print a timestamped progress line."""
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


def load_texts(shared: Path, split: str) -> tuple[list[str], np.ndarray | None]:
    """Texts of a split and, for train and val only, their class indices.

    The scoring sets' labels are not returned here, so computing their features
    cannot read them.
    """
    from eval_transfer import load_airline, load_alexa
    from train_sentiment import read_split

    folder = shared / "data" / "tweeteval" / "sentiment"
    if split == "train":
        texts, y, _ = read_split(folder, "train_rebuilt")
        return texts, y
    if split == "val":
        texts, y, _ = read_split(folder, "val")
        return texts, y
    if split == "test":
        texts, _, _ = read_split(folder, "test")
        return texts, None
    if split == "airline":
        return load_airline(shared)[0], None
    if split == "alexa":
        return load_alexa(shared)[0], None
    raise SystemExit(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")


def cmd_features(args: argparse.Namespace) -> None:
    """Compute and cache embeddings (+ fine-tuned logits except for train) per split."""
    import torch

    from listenwell.nlp.embeddings import Embedder
    from listenwell.nlp.sentiment import load_sentiment_model, preprocess

    torch.set_num_threads(args.threads)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    embedder = Embedder(threads=args.threads, batch_size=64)
    model = None
    for split in [s.strip() for s in args.splits.split(",") if s.strip()]:
        target = cache / f"{split}.npz"
        if target.exists() and not args.force:
            log(f"{split}: cached ({target})")
            continue
        texts, _ = load_texts(Path(args.shared), split)
        log(f"{split}: {len(texts):,} texts")
        arrays: dict[str, Any] = {}
        if split != "train" and "logits" in args.what:
            model = model or load_sentiment_model(args.model_dir)
            t = time.time()
            arrays["logits"] = model.logits([preprocess(x) for x in texts], batch_size=64)
            log(f"{split}: fine-tuned logits {time.time() - t:.0f} s")
        if "emb" in args.what:
            t = time.time()
            arrays["emb"] = embedder.encode(texts)
            log(f"{split}: embeddings {time.time() - t:.0f} s")
        if (cache / f"{split}.npz").exists():
            old = dict(np.load(cache / f"{split}.npz"))
            old.update(arrays)
            arrays = old
        np.savez(target, **arrays)
        log(f"{split}: wrote {target} ({', '.join(sorted(arrays))})")


# --------------------------------------------------------------------------- fit

FEATURE_SETS = {
    "A": ("ft",),
    "B": ("ft", "head"),
    "C": ("ft", "head", "tfidf"),
    "D": ("ft", "head", "vader"),
    "E": ("ft", "head", "tfidf", "vader"),
}
STACK_CS = (0.01, 0.1, 1.0, 10.0)
HEAD_C = 2.0
TFIDF_C = 4.0
TFIDF = {
    "word": {"analyzer": "word", "ngram_range": [1, 2], "min_df": 2, "max_features": 30000},
    "char": {"analyzer": "char_wb", "ngram_range": [2, 5], "min_df": 3, "max_features": 60000},
}


def macro_recall(y: np.ndarray, pred: np.ndarray, k: int = 3) -> float:
    """Mean of the per-class recalls."""
    return float(np.mean([np.mean(pred[y == c] == c) for c in range(k) if np.any(y == c)]))


def fit_head(emb: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression on the embeddings (C fixed a priori)."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=HEAD_C, max_iter=2000, random_state=seed)
    lr.fit(emb, y)
    return lr.coef_.astype(np.float32), lr.intercept_.astype(np.float32)


def fit_tfidf(clean: list[str], y: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Word + char n-gram TF-IDF and a logistic regression on it (fixed a priori)."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    arrays: dict[str, np.ndarray] = {}
    mats = []
    for part, params in TFIDF.items():
        vec = TfidfVectorizer(
            analyzer=params["analyzer"],
            ngram_range=tuple(params["ngram_range"]),
            min_df=params["min_df"],
            max_features=params["max_features"],
            lowercase=True,
            sublinear_tf=True,
            dtype=np.float64,
        )
        mats.append(vec.fit_transform(clean))
        vocab = vec.get_feature_names_out().tolist()
        if any("\n" in t for t in vocab):
            raise SystemExit(f"a {part} n-gram holds a newline; the vocabulary format forbids it")
        arrays[f"tfidf_{part}_vocab"] = np.frombuffer("\n".join(vocab).encode("utf-8"), np.uint8)
        arrays[f"tfidf_{part}_idf"] = vec.idf_.astype(np.float32)
        log(f"tfidf {part}: {len(vocab):,} terms")
    x = sp.hstack(mats).tocsr()
    lr = LogisticRegression(C=TFIDF_C, max_iter=3000, random_state=seed)
    lr.fit(x, y)
    arrays["tfidf_coef"] = lr.coef_.astype(np.float32)
    arrays["tfidf_intercept"] = lr.intercept_.astype(np.float32)
    return arrays


def fit_stacker(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> Any:
    """The stacker: a balanced multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed)
    return lr.fit(x, y)


def columns(inputs: tuple[str, ...]) -> list[int]:
    """Column indices of the given inputs inside the full feature matrix (all inputs)."""
    from listenwell.nlp.sentiment import STACK_INPUTS

    out, start = [], 0
    for name in STACK_INPUTS:
        width = 4 if name == "vader" else 3
        if name in inputs:
            out.extend(range(start, start + width))
        start += width
    return out


def cv_scores(
    x: np.ndarray,
    y: np.ndarray,
    idx: np.ndarray,
    seeds: tuple[int, ...],
    folds: int,
    sets: dict[str, tuple[str, ...]] = FEATURE_SETS,
) -> dict[tuple[str, float], float]:
    """Mean (over seeds) out-of-fold macro-recall of every configuration, on rows ``idx``."""
    from sklearn.model_selection import StratifiedKFold

    out: dict[tuple[str, float], list[float]] = {}
    for seed in seeds:
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(skf.split(idx, y[idx]))
        for key, inputs in sets.items():
            cols = columns(inputs)
            for c in STACK_CS:
                pred = np.empty(len(idx), dtype=np.int64)
                for tr, te in splits:
                    m = fit_stacker(x[idx[tr]][:, cols], y[idx[tr]], c, seed)
                    pred[te] = m.predict(x[idx[te]][:, cols])
                out.setdefault((key, c), []).append(macro_recall(y[idx], pred))
    return {k: float(np.mean(v)) for k, v in out.items()}


def choose(scores: dict[tuple[str, float], float]) -> tuple[str, float]:
    """Best mean CV macro-recall; ties: fewer inputs, then smaller C."""
    return max(
        scores,
        key=lambda k: (round(scores[k], 10), -len(FEATURE_SETS[k[0]]), -k[1]),
    )


def cmd_fit(args: argparse.Namespace) -> None:
    """Fit the base learners on train, choose and fit the stacker on val, write the artefact."""
    import scipy.optimize
    from train_sentiment import sha256_file

    from listenwell.nlp.sentiment import STACK_INPUTS, SentimentStack, preprocess

    rng_seed = args.seed
    cache = Path(args.cache)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shared = Path(args.shared)
    train_texts, y_train = load_texts(shared, "train")
    val_texts, y_val = load_texts(shared, "val")
    assert y_train is not None and y_val is not None
    tr = np.load(cache / "train.npz")
    va = np.load(cache / "val.npz")
    log(f"train {len(y_train):,}, val {len(y_val):,}")

    arrays: dict[str, np.ndarray] = {}
    t = time.time()
    arrays["head_coef"], arrays["head_intercept"] = fit_head(tr["emb"], y_train, rng_seed)
    log(f"head fitted ({time.time() - t:.0f} s)")
    t = time.time()
    arrays.update(fit_tfidf([preprocess(x) for x in train_texts], y_train, rng_seed))
    log(f"tfidf fitted ({time.time() - t:.0f} s)")

    spec: dict[str, Any] = {"arrays": "stack.npz", "tfidf": TFIDF}
    # Val features through the PRODUCT code (SentimentStack.features), all inputs.
    full = SentimentStack(
        inputs=STACK_INPUTS,
        coef=np.zeros((3, 13)),
        intercept=np.zeros(3),
        temperature=1.0,
        arrays=arrays,
        spec=spec,
    )
    val_clean = [preprocess(x) for x in val_texts]
    x_val = full.features(va["logits"], clean=val_clean, raw=val_texts, embeddings=va["emb"])
    base_val = {}
    for i, name in enumerate(("ft", "head", "tfidf")):
        pred = x_val[:, 3 * i : 3 * i + 3].argmax(1)
        base_val[name] = round(macro_recall(y_val, pred), 4)
    log(f"val macro-recall of each base model alone (argmax): {base_val}")

    seeds = tuple(range(args.repeats))
    all_idx = np.arange(len(y_val))
    # ---- selection on all of val
    t = time.time()
    sets = {k: FEATURE_SETS[k] for k in (args.feature_set or "".join(FEATURE_SETS))}
    scores = cv_scores(x_val, y_val, all_idx, seeds, args.folds, sets)
    best = choose(scores)
    log(f"selection CV ({time.time() - t:.0f} s): best {best} {scores[best]:.4f}")
    for key in sets:
        log("  " + key + " " + " ".join(f"C={c:g}:{scores[(key, c)]:.4f}" for c in STACK_CS))

    # ---- nested CV: the honest estimate of the whole procedure
    from sklearn.model_selection import StratifiedKFold

    nested = []
    nested_choices = []
    nested_per_set: dict[str, list[float]] = {k: [] for k in sets}
    t = time.time()
    for seed in seeds:
        skf = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=100 + seed)
        pred = np.empty(len(y_val), dtype=np.int64)
        per_set_pred = {k: np.empty(len(y_val), dtype=np.int64) for k in sets}
        for otr, ote in skf.split(all_idx, y_val):
            inner = cv_scores(x_val, y_val, otr, seeds, args.folds, sets)
            key, c = choose(inner)
            nested_choices.append([key, c])
            cols = columns(FEATURE_SETS[key])
            m = fit_stacker(x_val[otr][:, cols], y_val[otr], c, seed)
            pred[ote] = m.predict(x_val[ote][:, cols])
            # per feature set, C chosen inside (for the report only)
            for k in sets:
                ck = max(STACK_CS, key=lambda cc, k=k: (inner[(k, cc)], -cc))
                cols_k = columns(FEATURE_SETS[k])
                mk = fit_stacker(x_val[otr][:, cols_k], y_val[otr], ck, seed)
                per_set_pred[k][ote] = mk.predict(x_val[ote][:, cols_k])
        nested.append(macro_recall(y_val, pred))
        for k in sets:
            nested_per_set[k].append(macro_recall(y_val, per_set_pred[k]))
    s_stack = float(np.mean(nested))
    log(f"nested CV ({time.time() - t:.0f} s): {[round(v, 4) for v in nested]} -> {s_stack:.4f}")
    log(f"nested choices: {nested_choices}")
    log(
        "nested per feature set: "
        + str({k: round(float(np.mean(v)), 4) for k, v in nested_per_set.items()})
    )

    # ---- final stacker on all of val + temperature on its out-of-fold logits
    key, c = best
    inputs = FEATURE_SETS[key]
    cols = columns(inputs)
    final = fit_stacker(x_val[:, cols], y_val, c, rng_seed)
    oof = np.empty((len(y_val), 3))
    skf = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=rng_seed)
    for a, b in skf.split(all_idx, y_val):
        m = fit_stacker(x_val[a][:, cols], y_val[a], c, rng_seed)
        oof[b] = m.decision_function(x_val[b][:, cols])

    def nll(log_t: float) -> float:
        z = oof / np.exp(log_t)
        z = z - z.max(1, keepdims=True)
        lp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return float(-lp[np.arange(len(y_val)), y_val].mean())

    res = scipy.optimize.minimize_scalar(nll, bounds=(np.log(0.05), np.log(20)), method="bounded")
    temperature = float(np.exp(res.x))
    log(f"temperature {temperature:.4f} (OOF NLL {nll(0.0):.4f} -> {res.fun:.4f})")

    keep = {"ft": [], "head": ["head_coef", "head_intercept"], "vader": []}
    keep["tfidf"] = [k for k in arrays if k.startswith("tfidf_")]
    kept = {k: arrays[k] for name in inputs for k in keep[name]}
    np.savez_compressed(out / "stack.npz", **kept)
    stack = {
        "format": "listenwell-stack-v1",
        "inputs": list(inputs),
        "arrays": "stack.npz",
        "stacker": {
            "kind": "multinomial logistic regression, class_weight=balanced",
            "C": c,
            "coef": final.coef_.round(6).tolist(),
            "intercept": final.intercept_.round(6).tolist(),
            "fitted_on": "TweetEval val (2,000)",
        },
        "temperature": round(temperature, 6),
        "calibration": {
            "method": "one temperature, NLL on the stacker's 5-fold out-of-fold val logits",
            "nll_before": round(nll(0.0), 5),
            "nll_after": round(float(res.fun), 5),
        },
        "base_learners": {
            "head": {
                "C": HEAD_C,
                "trained_on": "train_rebuilt (47,373)",
                "input": "Embedder vectors",
            },
            "tfidf": {
                "C": TFIDF_C,
                "trained_on": "train_rebuilt (47,373)",
                "input": "preprocess(text)",
            },
        },
        "tfidf": TFIDF if "tfidf" in inputs else None,
        "training": {
            "script": "bench/sentiment/train_stack.py",
            "command": " ".join(["python", "bench/sentiment/train_stack.py", *sys.argv[1:]]),
            "seed": rng_seed,
            "data": {
                name: {"path": p, "sha256": sha256_file(shared / p)}
                for name, p in (
                    ("train_text", "data/tweeteval/sentiment/train_rebuilt_text.txt"),
                    ("train_labels", "data/tweeteval/sentiment/train_rebuilt_labels.txt"),
                    ("val_text", "data/tweeteval/sentiment/val_text.txt"),
                    ("val_labels", "data/tweeteval/sentiment/val_labels.txt"),
                )
            },
        },
    }
    (out / "stack.json").write_text(json.dumps(stack, indent=2) + "\n", encoding="utf-8")
    report = {
        "base_val_macro_recall_argmax": base_val,
        "selection_cv": {f"{k}|C={cc:g}": round(v, 4) for (k, cc), v in scores.items()},
        "chosen": {
            "feature_set": key,
            "inputs": list(inputs),
            "C": c,
            "cv": round(scores[best], 4),
        },
        "nested_cv": {
            "per_repeat": [round(v, 4) for v in nested],
            "S_stack": round(s_stack, 4),
            "choices": nested_choices,
            "per_feature_set": {k: round(float(np.mean(v)), 4) for k, v in nested_per_set.items()},
        },
        "S_v0.1": args.baseline,
        "ships": s_stack >= args.baseline,
        "folds": args.folds,
        "repeats": args.repeats,
        "seconds": round(time.time() - T0, 1),
    }
    (out / "stack_report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_meta(Path(args.base_dir), out, args.model_version, report)
    sizes = {p.name: p.stat().st_size for p in (out / "stack.npz", out / "stack.json")}
    log(
        f"wrote {out}: {sizes}; S_stack {s_stack:.4f} vs S_v0.1 {args.baseline:.4f} -> "
        f"{'SHIPS' if report['ships'] else 'does not ship'}"
    )


def cmd_score(args: argparse.Namespace) -> None:
    """Score a frozen artefact on cached features (a fast cross-check of the eval scripts)."""
    from eval_transfer import load_airline, load_alexa
    from eval_tweeteval import score
    from train_sentiment import read_split

    from listenwell.nlp.sentiment import load_sentiment_model, preprocess

    model = load_sentiment_model(args.model_dir)
    shared = Path(args.shared)
    folder = shared / "data" / "tweeteval" / "sentiment"
    results: dict[str, Any] = {"model": f"{model.name} {model.version}", "splits": {}}
    for split in [s.strip() for s in args.splits.split(",") if s.strip()]:
        if split in ("val", "test"):
            texts, y, _ = read_split(folder, split)
        elif split == "airline":
            texts, y, _ = load_airline(shared)
        elif split == "alexa":
            texts, y, _ = load_alexa(shared)
        else:
            raise SystemExit(f"unknown split {split!r}")
        cached = np.load(Path(args.cache) / f"{split}.npz")
        clean = [preprocess(t) for t in texts]
        if model.stack is None:
            z = cached["logits"] / model.temperature
            pred = z.argmax(1)
        else:
            probs = model.stack.predict_proba(
                cached["logits"], clean=clean, raw=texts, embeddings=cached["emb"]
            )
            pred = probs.argmax(1)
        results["splits"][split] = score(y, pred)
        r = results["splits"][split]
        log(
            f"{split}: macro-recall {r['macro_recall']:.4f} {r['macro_recall_ci95']} "
            f"F1 {r['macro_f1']:.4f} acc {r['accuracy']:.4f} recall {r['recall']}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def write_meta(base_dir: Path, out: Path, version: str, report: dict[str, Any]) -> None:
    """``meta.json`` of the stacked model: the fine-tuned model's, plus the stack and a version.

    Unless ``out`` is the base folder itself, ``model.safetensors`` is linked there, so
    ``out`` is a complete artefact folder for ``--model-dir``.
    """
    meta = json.loads((base_dir / "meta.json").read_text(encoding="utf-8"))
    base_version = meta.get("base_version_of_stack", meta["version"])
    meta["version"] = version
    meta["task"] = "3-class tweet sentiment (stacked ensemble over the fine-tuned MiniLM)"
    meta["stack"] = {
        "file": "stack.json",
        "finetuned_version": base_version,
        "note": "the fine-tuned model's own temperature and metrics below are v"
        + base_version
        + "'s; the stack applies its own temperature (stack.json)",
        "val_nested_cv_macro_recall": report["nested_cv"]["S_stack"],
        "chosen": report["chosen"],
    }
    meta["base_version_of_stack"] = base_version
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    weights = out / "model.safetensors"
    if base_dir.resolve() != out.resolve() and not weights.exists():
        weights.symlink_to((base_dir / "model.safetensors").resolve())


def build_parser() -> argparse.ArgumentParser:
    """The command line (sub-commands ``features`` and ``fit``)."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("features", help="compute and cache embeddings and fine-tuned logits")
    f.add_argument("--shared", default=str(REPO.parent / "shared"), help="the shared/ folder")
    f.add_argument(
        "--cache", default=str(REPO / "bench/out/stack-cache"), help="where to write <split>.npz"
    )
    f.add_argument(
        "--splits",
        default=",".join(SPLITS),
        help=f"comma-separated splits to compute, from {', '.join(SPLITS)}",
    )
    f.add_argument("--what", default="emb,logits", help="comma-separated: emb (embeddings), logits")
    f.add_argument(
        "--model-dir", default=None, help="fine-tuned artefact folder (default: shipped)"
    )
    f.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    f.add_argument("--force", action="store_true", help="recompute splits already cached")
    f.set_defaults(func=cmd_features)
    g = sub.add_parser("fit", help="fit base learners on train, the stacker on val; write artefact")
    g.add_argument("--shared", default=str(REPO.parent / "shared"), help="the shared/ folder")
    g.add_argument(
        "--cache", default=str(REPO / "bench/out/stack-cache"), help="where features were cached"
    )
    g.add_argument(
        "--out",
        default=str(REPO / "bench/out/sentiment-v0.3"),
        help="where to write stack.json, stack.npz and stack_report.json",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the final fits and CV splits")
    g.add_argument("--folds", type=int, default=5, help="stratified CV folds on val")
    g.add_argument(
        "--repeats", type=int, default=3, help="CV repeats (seeds 0..repeats-1) for selection"
    )
    g.add_argument(
        "--baseline",
        type=float,
        default=0.7453,
        help="S_v0.1: the shipped model's val macro-recall (shipping rule threshold)",
    )
    g.add_argument(
        "--base-dir",
        default=str(REPO / "nlp/models/sentiment"),
        help="the fine-tuned artefact the stack sits on (its meta.json and weights)",
    )
    g.add_argument("--model-version", default="0.3.0", help="version written to meta.json")
    g.add_argument(
        "--feature-set",
        default=None,
        choices=sorted(FEATURE_SETS),
        help="consider only this feature set (A ft, B ft+head, C ft+head+tfidf, "
        "D ft+head+vader, E all); default: all five, as the protocol says",
    )
    g.set_defaults(func=cmd_fit)
    h = sub.add_parser("score", help="score a frozen artefact from cached features")
    h.add_argument("--shared", default=str(REPO.parent / "shared"), help="the shared/ folder")
    h.add_argument(
        "--cache", default=str(REPO / "bench/out/stack-cache"), help="where features were cached"
    )
    h.add_argument("--model-dir", default=None, help="artefact folder to score (default: shipped)")
    h.add_argument("--splits", default="val", help="comma-separated: val, test, airline, alexa")
    h.add_argument("--json", default=None, help="also write the results here")
    h.set_defaults(func=cmd_score)
    return p


def main(argv: list[str] | None = None) -> None:
    """Run a sub-command."""
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
