#!/usr/bin/env python3
"""Draw the intent evaluation sample from ``shared/data`` (seeded) and write ``labelled.csv``.

The sample mixes three public sources (see ``GUIDELINES.md`` for the exact recipe):

* every inbound (customer) tweet of the TWCS sample (``customer-support-twitter``);
* a simple random draw of US-airline tweets (``twitter-airline-sentiment``);
* a simple random draw of Amazon Alexa reviews (``amazon-alexa-reviews``);
* a *keyword stratum*: a random draw among airline tweets and Alexa reviews whose text
  matches :data:`FR_KEYWORDS` (wish, would be nice, please add, ...), because feature
  requests are rare in a simple random draw;
* a second batch, drawn with its own generator after the first was labelled (so the first
  399 rows are unchanged): texts matching the narrower :data:`FR_KEYWORDS2`, and airline
  tweets matching :data:`QUESTION_START`.

The keyword strata change the class priors of the sample; the ``stratum`` column says which
rows come from them, so results can also be read on the ``random`` rows alone.

Texts are deduplicated across sources on a normalised form (lower case, URLs, @handles and
punctuation removed); texts with fewer than :data:`MIN_CHARS` letters or digits left are
dropped (empty and emoji-only reviews). Rows are assigned to ``dev`` or ``test`` by a seeded
draw within each (source, stratum) group.

Run from the repository root::

    .venv/bin/python bench/intent/sample.py            # write labelled.csv (refuses to overwrite)
    .venv/bin/python bench/intent/sample.py --check    # the committed file matches the draw

Only the draw is written; the ``label`` column is left empty for the annotator. ``--check``
compares everything but the labels, so a labelled file can be verified against a fresh draw.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "COLUMNS",
    "DEFAULT_OUT",
    "DEFAULT_SHARED",
    "FR_KEYWORDS",
    "FR_KEYWORDS2",
    "QUESTION_START",
    "SEED",
    "check",
    "draw",
    "normalise",
    "read_labelled",
    "write",
]

HERE = Path(__file__).resolve().parent
DEFAULT_SHARED = HERE.parents[2] / "shared"
DEFAULT_OUT = HERE / "labelled.csv"
COLUMNS = ("id", "source", "source_id", "split", "stratum", "text", "label")
SEED = 20240501
MIN_CHARS = 3

# How many rows each part of the draw takes (TWCS contributes all its inbound tweets).
N_AIRLINE_RANDOM = 150
N_ALEXA_RANDOM = 110
N_AIRLINE_KEYWORD = 35
N_ALEXA_KEYWORD = 55
DEV_SHARE = 150 / 399
# The second batch (drawn with its own seeded generator after the first was labelled, so the
# first 399 rows did not change): narrower feature-request phrases, and airline questions.
N_AIRLINE_KEYWORD2 = 25
N_ALEXA_KEYWORD2 = 30
N_AIRLINE_QUESTION = 40

FR_KEYWORDS = re.compile(
    r"\b(?:i wish|wish (?:it|they|you|there|alexa|the)|would be (?:nice|great|awesome|cool|better)"
    r"|would love (?:to see|it if|if)|please add|should (?:add|offer|have|make|be able|allow)"
    r"|needs? to (?:add|have|be able)|if only|feature|option to|ability to|bring back"
    r"|can you (?:add|make|please add)|add (?:more|a|an|the ability)|suggestion|hope (?:they|you) (?:add|make|will))",
    re.IGNORECASE,
)
"""The keyword stratum's pattern: phrases that often (not always) carry a feature request."""

FR_KEYWORDS2 = re.compile(
    r"\b(?:i wish|wish (?:it|they|you|there|alexa|the)|would be (?:nice|great|awesome|cool|better) if"
    r"|would love (?:to see|it if|if)|please (?:add|bring|make|consider)"
    r"|should (?:add|offer|have|make|be able|allow)|needs? to (?:add|have|be able)|if only|option to"
    r"|ability to|bring back|can you (?:add|make|please add)|suggestion|i would like"
    r"|would like to see|hope (?:they|you) (?:add|make|will))",
    re.IGNORECASE,
)
"""The second batch's feature-request pattern: :data:`FR_KEYWORDS` without the bare "feature"
(which mostly drew praise such as "great features")."""

QUESTION_START = re.compile(
    r"^(?:[.@]?@\w+[\s,:]*)*(?:how|what|when|where|which|who|is|are|do|does|can|could|will"
    r"|would|any)\b[^?]*\?",
    re.IGNORECASE,
)
"""The second batch's question pattern: after any leading @handles, a question word, then a "?"."""

_URL = re.compile(r"https?://\S+|\bwww\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"@\w+")
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    """The form texts are deduplicated on: lower case, no URLs, @handles or punctuation."""
    s = _HANDLE.sub(" ", _URL.sub(" ", text.lower()))
    return _NON_WORD.sub(" ", s).strip()


def _twcs(shared: Path) -> list[tuple[str, str, str]]:
    path = shared / "data" / "customer-support-twitter" / "twcs_sample.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return [
            ("twcs", row["tweet_id"], row["text"])
            for row in csv.DictReader(f)
            if row["inbound"].strip() == "True"
        ]


def _airline(shared: Path) -> list[tuple[str, str, str]]:
    path = shared / "data" / "twitter-airline-sentiment" / "Tweets.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return [("airline", row["tweet_id"], row["text"]) for row in csv.DictReader(f)]


def _alexa(shared: Path) -> list[tuple[str, str, str]]:
    path = shared / "data" / "amazon-alexa-reviews" / "amazon_alexa.tsv"
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        # The file has no id: the 0-based data row number is the source id.
        return [("alexa", str(i), row["verified_reviews"]) for i, row in enumerate(reader)]


def _dedupe(rows: Iterable[tuple[str, str, str]], seen: set[str]) -> list[tuple[str, str, str]]:
    out = []
    for source, source_id, text in rows:
        key = normalise(text)
        if len(key.replace(" ", "")) < MIN_CHARS or key in seen:
            continue
        seen.add(key)
        out.append((source, source_id, text))
    return out


def _take(
    rng: random.Random, pool: Sequence[tuple[str, str, str]], n: int, taken: set[tuple[str, str]]
) -> list[tuple[str, str, str]]:
    free = [r for r in pool if (r[0], r[1]) not in taken]
    picked = rng.sample(free, min(n, len(free)))
    taken.update((r[0], r[1]) for r in picked)
    return picked


def draw(shared: Path = DEFAULT_SHARED, seed: int = SEED) -> list[dict[str, str]]:
    """Draw the sample; the same ``shared`` data and ``seed`` always give the same rows.

    Args:
        shared: The ``shared/`` folder that holds ``data/``.
        seed: The random seed.

    Returns:
        Rows with the keys of :data:`COLUMNS` (``label`` empty), in a seeded shuffled order.
    """
    rng = random.Random(seed)
    seen: set[str] = set()
    # Dedupe in a fixed source order so a text shared by two sources is kept once, stably.
    twcs = _dedupe(_twcs(shared), seen)
    airline = _dedupe(_airline(shared), seen)
    alexa = _dedupe(_alexa(shared), seen)

    taken: set[tuple[str, str]] = set()
    groups: list[tuple[str, list[tuple[str, str, str]]]] = []
    # Keyword stratum first, so the random draws come from what is left.
    for pool, n in ((airline, N_AIRLINE_KEYWORD), (alexa, N_ALEXA_KEYWORD)):
        matching = [r for r in pool if FR_KEYWORDS.search(r[2])]
        groups.append(("keyword_fr", _take(rng, matching, n, taken)))
    groups.append(("random", _take(rng, twcs, len(twcs), taken)))
    groups.append(("random", _take(rng, airline, N_AIRLINE_RANDOM, taken)))
    groups.append(("random", _take(rng, alexa, N_ALEXA_RANDOM, taken)))

    rows = _rows(rng, groups)

    # Second batch: its own generator, so the first batch is the same with or without it.
    rng2 = random.Random(seed + 1)
    groups2: list[tuple[str, list[tuple[str, str, str]]]] = []
    for pool, pattern, n, stratum in (
        (airline, FR_KEYWORDS2, N_AIRLINE_KEYWORD2, "keyword_fr2"),
        (alexa, FR_KEYWORDS2, N_ALEXA_KEYWORD2, "keyword_fr2"),
        (airline, QUESTION_START, N_AIRLINE_QUESTION, "keyword_q"),
    ):
        matching = [r for r in pool if pattern.search(r[2])]
        groups2.append((stratum, _take(rng2, matching, n, taken)))
    rows += _rows(rng2, groups2, first_id=len(rows) + 1)
    return [{c: row[c] for c in COLUMNS} for row in rows]


def _rows(
    rng: random.Random,
    groups: Sequence[tuple[str, Sequence[tuple[str, str, str]]]],
    *,
    first_id: int = 1,
) -> list[dict[str, str]]:
    """Split each group into dev/test (seeded), shuffle all rows, and number them."""
    rows: list[dict[str, str]] = []
    for stratum, picked in groups:
        order = list(range(len(picked)))
        rng.shuffle(order)
        n_dev = round(len(picked) * DEV_SHARE)
        for rank, i in enumerate(order):
            source, source_id, text = picked[i]
            split = "dev" if rank < n_dev else "test"
            rows.append(
                {
                    "source": source,
                    "source_id": source_id,
                    "split": split,
                    "stratum": stratum,
                    "text": text,
                    "label": "",
                }
            )
    rng.shuffle(rows)
    for n, row in enumerate(rows, start=first_id):
        row["id"] = f"intent-{n:04d}"
    return rows


def write(rows: Sequence[dict[str, str]], path: Path) -> None:
    """Write rows as a UTF-8 CSV with the header :data:`COLUMNS`."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def read_labelled(path: Path = DEFAULT_OUT) -> list[dict[str, str]]:
    """Read ``labelled.csv`` (or another file with the header :data:`COLUMNS`)."""
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def check(path: Path = DEFAULT_OUT, shared: Path = DEFAULT_SHARED, seed: int = SEED) -> list[str]:
    """Compare a written sample with a fresh draw, ignoring the ``label`` column.

    Returns:
        One line per difference; empty when the file is exactly the draw.
    """
    fresh = draw(shared, seed)
    have = read_labelled(path)
    problems = []
    if len(have) != len(fresh):
        problems.append(f"{path} has {len(have)} rows, the draw has {len(fresh)}")
    for a, b in zip(have, fresh, strict=False):
        for col in COLUMNS:
            if col != "label" and a.get(col) != b[col]:
                problems.append(f"{a.get('id')}: {col} differs from the draw")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: draw and write the sample, or check a written one."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared/ folder")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the CSV to write or check")
    p.add_argument("--seed", type=int, default=SEED, help="random seed")
    p.add_argument("--check", action="store_true", help="verify --out against a fresh draw")
    p.add_argument("--force", action="store_true", help="overwrite --out (loses its labels)")
    args = p.parse_args(argv)
    if args.check:
        problems = check(args.out, args.shared, args.seed)
        for line in problems:
            print(line, file=sys.stderr)
        print("ok: the file matches the draw" if not problems else f"{len(problems)} problems")
        return 1 if problems else 0
    if args.out.exists() and not args.force:
        print(f"{args.out} exists (it may hold labels); use --force to overwrite", file=sys.stderr)
        return 1
    rows = draw(args.shared, args.seed)
    write(rows, args.out)
    counts: dict[tuple[str, str, str], int] = {}
    for row in rows:
        key = (row["split"], row["source"], row["stratum"])
        counts[key] = counts.get(key, 0) + 1
    print(f"wrote {len(rows)} rows to {args.out}")
    for key, n in sorted(counts.items()):
        print("  ", *key, n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
