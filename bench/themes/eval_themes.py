"""Themes vs. airline complaint reasons: AMI, purity, id stability, and speed.

Data: the negative tweets of ``twitter-airline-sentiment/Tweets.csv`` (in the
``--shared`` folder's ``data/``), whose ``negativereason`` column (10 classes)
is the reference. Each tweet is embedded with the product's packaged MiniLM
(``Embedder(threads=1)``), stored in a throw-away SQLite database, and themed
by the product's own code path: :func:`listenwell.nlp.themes.refit` (k-means on
the stored vectors, nearest-centroid assignment with the product's threshold,
c-TF-IDF labels). Then:

* **agreement**: adjusted mutual information (sklearn
  ``adjusted_mutual_info_score``) and purity between the stored theme of each
  tweet and its ``negativereason``, with k = 10 (the number of reasons) and
  with the automatic choice (silhouette). Unthemed tweets count as one more
  cluster. AMI against the ``airline`` column is shown too: the tweets start
  with the airline's @handle, which the embedding sees.
* **stability**: fit on a seeded random 70 %, add the other 30 %, refit on
  all; the share of the first 70 % whose theme id is the same after the refit.
* **speed**: embeddings per second (one torch thread) and clustering time.
* a **variant** (not the product path): the same with the raw text embedded,
  @handles and URLs kept, to show what the product's cleaning
  (``listenwell.nlp.embeddings.clean_for_embedding``) buys. That cleaning was
  adopted after this benchmark showed the handle dominating the clusters, so
  the product figure is not blind to this data set.

Run from the repository root::

    .venv/bin/python bench/themes/eval_themes.py --shared ../shared

``evaluate(shared) -> dict`` and ``markdown(results) -> str`` are what the
benchmark harness imports.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

COMMAND = ".venv/bin/python bench/themes/eval_themes.py --shared ../shared"
DATA = Path("data") / "twitter-airline-sentiment" / "Tweets.csv"
AIRLINES = ["United", "US Airways", "American Air", "Southwest Air", "Delta", "Virgin America",
            "JetBlue"]  # fmt: skip
FIT_SHARE = 0.7
SEED = 0


def load_negatives(shared: Path) -> list[dict[str, str]]:
    """The negative tweets with a reason, one per tweet id (the file repeats a few)."""
    path = Path(shared) / DATA
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (pass --shared, the folder that holds data/)")
    seen: set[str] = set()
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["airline_sentiment"] != "negative" or not row["negativereason"]:
                continue
            if row["tweet_id"] in seen:
                continue
            seen.add(row["tweet_id"])
            rows.append(row)
    return rows


def purity(truth: list[str], clusters: list[int]) -> float:
    """The share of items in their cluster's most common class."""
    by: dict[int, dict[str, int]] = {}
    for t, c in zip(truth, clusters, strict=True):
        by.setdefault(c, {}).setdefault(t, 0)
        by[c][t] += 1
    return sum(max(v.values()) for v in by.values()) / len(truth)


class _Db:
    """A throw-away SQLite database of tweets and their vectors."""

    def __init__(self, workdir: Path, rows: list[dict[str, str]], vectors: np.ndarray) -> None:
        from listenwell import store

        self.engine = store.connect(f"sqlite:///{workdir / f'themes-{time.monotonic_ns()}.db'}")
        store.upgrade(self.engine)
        self.ids: dict[str, int] = {}
        self.add(rows, vectors)

    def add(self, rows: list[dict[str, str]], vectors: np.ndarray) -> None:
        """Store tweets and their vectors (as the enrichment pipeline would)."""
        from sqlalchemy import select

        from listenwell import store
        from listenwell.store.models import MentionRow

        store.upsert_mentions(
            self.engine,
            (
                store.Mention(
                    source="x",
                    external_id=r["tweet_id"],
                    created_at=datetime.strptime(r["tweet_created"], "%Y-%m-%d %H:%M:%S %z"),
                    author_handle="@" + r["name"],
                    text=r["text"],
                )
                for r in rows
            ),
        )
        with self.engine.connect() as conn:
            self.ids = dict(conn.execute(select(MentionRow.external_id, MentionRow.id)).all())
        mids = [self.ids[r["tweet_id"]] for r in rows]
        store.write_embeddings(self.engine, mids, vectors, model_name="bench", model_version="1")

    def themes(self, rows: list[dict[str, str]]) -> list[int]:
        """The stored theme id of each tweet (-1: unthemed)."""
        from listenwell.store import read_enrichments
        from listenwell.store.themes import THEME_STAGE

        got = read_enrichments(self.engine, THEME_STAGE)
        labels = []
        for r in rows:
            label = got[self.ids[r["tweet_id"]]].label
            labels.append(-1 if label is None else int(label))
        return labels


def _run(db: _Db, rows: list[dict[str, str]], k: int | None, options: Any) -> dict[str, Any]:
    from dataclasses import replace

    from sklearn.metrics import adjusted_mutual_info_score

    from listenwell.nlp.themes import refit
    from listenwell.store.themes import load_themes

    start = time.perf_counter()
    report = refit(db.engine, replace(options, n_themes=k), actor="bench")
    seconds = time.perf_counter() - start
    labels = db.themes(rows)
    reasons = [r["negativereason"] for r in rows]
    airlines = [r["airline"] for r in rows]
    themes = {t.id: t for t in load_themes(db.engine)}
    top = []
    for tid, theme in sorted(themes.items(), key=lambda kv: -labels.count(kv[0]))[:5]:
        members = [reasons[i] for i, lab in enumerate(labels) if lab == tid]
        common = max(set(members), key=members.count) if members else "-"
        top.append({"label": theme.label, "size": len(members), "top_reason": common})
    return {
        "k": report.k,
        "ami": round(float(adjusted_mutual_info_score(reasons, labels)), 4),
        "purity": round(purity(reasons, labels), 4),
        "ami_airline": round(float(adjusted_mutual_info_score(airlines, labels)), 4),
        "unthemed_share": round(labels.count(-1) / len(labels), 4),
        "refit_seconds": round(seconds, 2),
        "largest_themes": top,
        "silhouette": {str(k): round(v, 4) for k, v in report.silhouette.items()},
    }


def _stability(
    workdir: Path, rows: list[dict[str, str]], vectors: np.ndarray, k: int | None, options: Any
) -> dict[str, Any]:
    from dataclasses import replace

    from listenwell.nlp.themes import refit

    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(rows))
    cut = int(FIT_SHARE * len(rows))
    first, rest = order[:cut], order[cut:]
    first_rows = [rows[i] for i in first]
    db = _Db(workdir, first_rows, vectors[first])
    try:
        opts = replace(options, n_themes=k)
        refit(db.engine, opts, actor="bench")
        before = db.themes(first_rows)
        db.add([rows[i] for i in rest], vectors[rest])
        report = refit(db.engine, opts, actor="bench")
        after = db.themes(first_rows)
    finally:
        db.engine.dispose()
    same = sum(1 for b, a in zip(before, after, strict=True) if b == a and b != -1)
    themed = sum(1 for b in before if b != -1)
    return {
        "k": report.k,
        "fit_mentions": cut,
        "refit_mentions": len(rows),
        "same_id_share": round(same / len(before), 4),
        "same_id_share_of_themed": round(same / themed, 4) if themed else None,
        "kept": len(report.kept),
        "new": len(report.new),
        "splits": len(report.split),
        "merges": len(report.merged),
        "retired": len(report.retired),
    }


def _embed(texts: list[str], *, clean: bool = True) -> tuple[np.ndarray, float]:
    from listenwell.nlp.embeddings import Embedder

    embedder = Embedder(threads=1, clean=clean)
    embedder.encode(["warm-up"])  # load the model outside the timing
    start = time.perf_counter()
    vectors = embedder.encode(texts)
    return vectors, time.perf_counter() - start


def evaluate(shared: Path, *, variant: bool = True) -> dict[str, Any]:
    """Run the whole benchmark; returns the figures as plain data.

    Args:
        shared: The folder that holds ``data/twitter-airline-sentiment``.
        variant: Also measure the raw-text variant (embeds every tweet a second time).
    """
    from listenwell.nlp.themes import ThemeOptions, brand_stop_words, cluster

    rows = load_negatives(shared)
    texts = [r["text"] for r in rows]
    reasons = sorted({r["negativereason"] for r in rows})
    vectors, embed_s = _embed(texts)
    options = ThemeOptions(threads=1, stop_words=brand_stop_words(AIRLINES), seed=SEED)
    start = time.perf_counter()
    cluster(vectors, n_clusters=len(reasons), seed=SEED, threads=1)
    kmeans_s = time.perf_counter() - start
    results: dict[str, Any] = {
        "data": {
            "file": str(DATA),
            "tweets": len(rows),
            "reasons": len(reasons),
            "reason_counts": {c: sum(r["negativereason"] == c for r in rows) for c in reasons},
        },
        "embedding": {
            "texts": len(texts),
            "seconds": round(embed_s, 1),
            "per_second": round(len(texts) / embed_s, 1),
            "threads": 1,
        },
        "kmeans_seconds_k10": round(kmeans_s, 2),
        "threshold": options.threshold,
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for key, k in (("fixed_k", len(reasons)), ("auto_k", None)):
            db = _Db(workdir, rows, vectors)
            try:
                results[key] = _run(db, rows, k, options)
            finally:
                db.engine.dispose()
        results["stability_fixed_k"] = _stability(workdir, rows, vectors, len(reasons), options)
        results["stability_auto_k"] = _stability(workdir, rows, vectors, None, options)
        if variant:
            raw, _ = _embed(texts, clean=False)
            db = _Db(workdir, rows, raw)
            try:
                results["variant_raw_text_fixed_k"] = _run(db, rows, len(reasons), options)
            finally:
                db.engine.dispose()
    return results


def markdown(results: dict[str, Any]) -> str:
    """A short markdown section: what was measured, on what, the figures and the command."""
    d, e = results["data"], results["embedding"]
    lines = [
        "## Feedback themes vs. airline complaint reasons",
        "",
        f"Data: the {d['tweets']:,} negative tweets with a `negativereason` in "
        f"`{d['file']}` ({d['reasons']} reasons). Each is embedded with the packaged MiniLM "
        "and themed by the product's `refit` (k-means on the stored vectors, nearest-centroid "
        f"assignment, cosine threshold {results['threshold']}). AMI = sklearn "
        "`adjusted_mutual_info_score` between theme and reason (unthemed = one more cluster); "
        "purity = share of tweets in their theme's most common reason. AMI vs. `airline` shows "
        "how much the themes follow the airline's @handle instead.",
        "",
        "| setting | k | AMI | purity | AMI vs airline | unthemed | refit time |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, name in (
        ("fixed_k", "k = number of reasons"),
        ("auto_k", "k chosen by silhouette"),
        ("variant_raw_text_fixed_k", "variant: raw text embedded (@handles, URLs kept)"),
    ):
        if key in results:
            r = results[key]
            lines.append(
                f"| {name} | {r['k']} | {r['ami']:.3f} | {r['purity']:.3f} | "
                f"{r['ami_airline']:.3f} | {100 * r['unthemed_share']:.1f}% | "
                f"{r['refit_seconds']:.1f} s |"
            )
    lines += [
        "",
        "Id stability: fit on a seeded random 70 %, add the other 30 %, refit on all; the share "
        "of the first 70 % whose theme id is unchanged.",
        "",
        "| setting | k | same id | same id (of themed) | kept | new | splits | merges | retired |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, name in (
        ("stability_fixed_k", "k = number of reasons"),
        ("stability_auto_k", "auto k"),
    ):
        s = results[key]
        themed = s["same_id_share_of_themed"]
        lines.append(
            f"| {name} | {s['k']} | {100 * s['same_id_share']:.1f}% | "
            f"{'-' if themed is None else f'{100 * themed:.1f}%'} | {s['kept']} | {s['new']} | "
            f"{s['splits']} | {s['merges']} | {s['retired']} |"
        )
    lines += [
        "",
        f"Speed (one CPU thread): {e['per_second']:,.0f} embeddings/s ({e['texts']:,} tweets in "
        f"{e['seconds']:.0f} s); k-means for k = {d['reasons']}: {results['kmeans_seconds_k10']:.1f} s.",
        "",
        f"Command: `{COMMAND}`",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the markdown section (and the JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path("../shared"), help="Folder that holds data/."
    )
    parser.add_argument("--no-variant", action="store_true", help="Skip the raw-text variant.")
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    args = parser.parse_args(argv)
    try:
        results = evaluate(args.shared, variant=not args.no_variant)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(markdown(results))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
