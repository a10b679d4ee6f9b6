#!/usr/bin/env python3
"""VADER baseline on TweetEval sentiment (compound >= 0.05 positive, <= -0.05 negative, else neutral).

Needs ``pip install vadersentiment``.  Prints macro-recall (+ bootstrap 95% CI), macro-F1 and
accuracy for the raw text and for the text after the model's ``preprocess`` function.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from sentiment_model import preprocess  # noqa: E402
from train_sentiment import bootstrap_macro_recall, metrics, read_split  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--shared",
        default=str(HERE.parents[2] / "shared"),
        help="the shared/ folder holding data/tweeteval/sentiment/",
    )
    p.add_argument("--split", default="test", choices=["val", "test"], help="split to score")
    p.add_argument("--threshold", type=float, default=0.05, help="|compound| threshold")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CI")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = p.parse_args(argv)

    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    texts, y, _ = read_split(Path(args.shared) / "data" / "tweeteval" / "sentiment", args.split)
    sia = SentimentIntensityAnalyzer()
    out = {}
    for name, fn in (("raw", lambda s: s), ("preprocessed", preprocess)):
        t = time.time()
        c = np.array([sia.polarity_scores(fn(s))["compound"] for s in texts])
        pred = np.where(c >= args.threshold, 2, np.where(c <= -args.threshold, 0, 1))
        m = metrics(y, pred)
        lo, hi = bootstrap_macro_recall(y, pred, args.bootstrap, args.seed)
        out[name] = {
            "macro_recall": round(m["macro_recall"], 4),
            "ci95": [round(lo, 4), round(hi, 4)],
            "macro_f1": round(m["macro_f1"], 4),
            "accuracy": round(m["accuracy"], 4),
            "recall": m["recall"],
            "seconds": round(time.time() - t, 1),
        }
    print(json.dumps({"split": args.split, "n": int(len(y)), **out}, indent=2))


if __name__ == "__main__":
    main()
