#!/usr/bin/env python3
"""Sanity figure for the language stage: what it says about (almost all English) brand tweets.

There is no labelled multilingual data in ``shared/data``, so this is NOT an accuracy figure.
It runs :class:`listenwell.nlp.language.LangidLanguage` with its defaults over the airline
tweets and the TWCS inbound tweets and counts the labels: nearly every one of these tweets is
English, so the share labelled with another language is roughly an upper bound on false
"non-English" calls, and the share of ``und`` shows how often the stage abstains. A few
examples of each non-English label are printed so a person can check them.

    .venv/bin/python bench/intent/language_sanity.py [--min-confidence 0.5]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _texts(shared: Path) -> dict[str, list[str]]:
    data = shared / "data"
    with (data / "twitter-airline-sentiment" / "Tweets.csv").open(encoding="utf-8") as f:
        airline = [row["text"] for row in csv.DictReader(f)]
    with (data / "customer-support-twitter" / "twcs_sample.csv").open(encoding="utf-8") as f:
        twcs = [row["text"] for row in csv.DictReader(f) if row["inbound"].strip() == "True"]
    return {"airline": airline, "twcs_inbound": twcs}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print label counts per source."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared")
    p.add_argument("--min-confidence", type=float, default=0.5)
    p.add_argument("--examples", type=int, default=3, help="examples per non-English label")
    args = p.parse_args(argv)
    from listenwell.nlp.language import LangidLanguage

    stage = LangidLanguage(min_confidence=args.min_confidence)
    print(f"{stage!r}, min_confidence={args.min_confidence}")
    for source, texts in _texts(args.shared).items():
        results = stage.run(texts)
        counts = Counter(r.label for r in results)
        n = len(texts)
        other = {k: v for k, v in counts.items() if k not in ("en", "und")}
        print(
            f"\n{source}: {n} texts; en {counts['en']} ({counts['en'] / n:.1%}), "
            f"und {counts['und']} ({counts['und'] / n:.1%}), "
            f"other languages {sum(other.values())} ({sum(other.values()) / n:.1%})"
        )
        for code, k in Counter(other).most_common():
            shown = [t for t, r in zip(texts, results, strict=True) if r.label == code]
            print(
                f"  {code} {k}: "
                + " | ".join(" ".join(t.split())[:70] for t in shown[: args.examples])
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
