#!/usr/bin/env python3
"""Precision and recall of customer linking and duplicate detection, and their speed.

    .venv/bin/python bench/linking/eval_linking.py            # prints a JSON report, then markdown
    .venv/bin/python bench/linking/eval_linking.py --scale 100000   # also time 100k customers

Data: the seeded generated set of ``linking_data.py`` (seed 20240, 2,000 people plus
duplicates, namesakes and households; ~2,000 mentions). The weights and the
default duplicate threshold were chosen on seed 1; seed 20240 is only reported.
Also: the three near-duplicate pairs documented in ``demo/SOURCE.md`` among the
300 demo customers.

Measured:

* **linking** -- the ``links`` stage (``EvidenceLinker``) on every mention; a
  mention counts as linked only when its result is ``strong`` (what exports use).
  Precision over every mention; recall over the mentions whose author is a
  customer and that carry strong evidence (handle, e-mail, phone, order/account
  number). A link to either record of a duplicated person is correct. Name-only
  mentions must not be linked (counted as false positives if they are); how
  often their weak suggestion is right is reported apart.
* **duplicates** -- ``CustomerIndex.duplicates()`` at the default threshold
  against the generated duplicate pairs; recall per variation, false pairs
  among namesakes and households.
* **speed** -- on 10,000 generated people: index build, ``search`` latency
  (300 queries: typo'd names, e-mails, phones, handles), ``duplicates`` runtime,
  linking throughput. One process, one thread.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from linking_data import LinkingSet, generate, to_cards  # noqa: E402

TEST_SEED = 20240
COMMAND = ".venv/bin/python bench/linking/eval_linking.py"


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def eval_linking(data: LinkingSet) -> dict[str, Any]:
    """Run the linker over the generated mentions and score the strong links."""
    from listenwell.nlp.base import MentionContext
    from listenwell.nlp.linking import EvidenceLinker
    from listenwell.nlp.matching import CustomerIndex

    index = CustomerIndex(to_cards(data.customers))
    linker = EvidenceLinker(index)
    contexts = [
        MentionContext(
            id=k,
            source=m.source,
            author_handle=m.author_handle,
            author_name=m.author_name,
            created_at=None,
        )
        for k, m in enumerate(data.mentions)
    ]
    t = time.perf_counter()
    results = linker.run([m.text for m in data.mentions], contexts=contexts)
    seconds = time.perf_counter() - t
    strong_kinds = {"handle", "email", "phone", "account"}
    tp = fp = fn = 0
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    by_format: dict[str, Counter[str]] = defaultdict(Counter)
    fp_kinds: Counter[str] = Counter()
    weak_right = weak_offered = name_only = 0
    for m, res in zip(data.mentions, results, strict=True):
        linked = res.label if res.data.get("strength") == "strong" else None
        ok = {m.truth, *m.also} if m.truth else set()
        if m.kind in strong_kinds:
            hit = linked in ok
            by_kind[m.kind]["hit" if hit else "miss"] += 1
            by_format[f"{m.kind}:{m.fmt}"]["hit" if hit else "miss"] += 1
            if hit:
                tp += 1
            else:
                fn += 1
                if linked is not None:
                    fp += 1
                    fp_kinds[m.kind] += 1
        elif linked is not None:
            fp += 1
            fp_kinds[m.kind] += 1
        if m.kind == "name_only":
            name_only += 1
            if res.label is not None:
                weak_offered += 1
                weak_right += res.label in ok
    return {
        "mentions": len(data.mentions),
        "with_strong_evidence": sum(1 for m in data.mentions if m.kind in strong_kinds),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "false_links_by_mention_kind": dict(fp_kinds),
        "recall_by_kind": {
            k: _ratio(v["hit"], v["hit"] + v["miss"]) for k, v in sorted(by_kind.items())
        },
        "missed_by_format": {k: v["miss"] for k, v in sorted(by_format.items()) if v["miss"]},
        "name_only": {
            "mentions": name_only,
            "with_suggestion": weak_offered,
            "suggestion_right": weak_right,
        },
        "mentions_per_s": round(len(data.mentions) / seconds, 1),
    }


def eval_duplicates(data: LinkingSet) -> dict[str, Any]:
    """Score ``duplicates()`` at the default threshold against the generated pairs."""
    from listenwell.nlp.matching import DEFAULT_DUPLICATE_SCORE, CustomerIndex

    index = CustomerIndex(to_cards(data.customers))
    t = time.perf_counter()
    pairs = index.duplicates(DEFAULT_DUPLICATE_SCORE)
    seconds = time.perf_counter() - t
    found = {(p.customer_id_a, p.customer_id_b) for p in pairs}
    truth = set(data.duplicate_pairs)
    tp = len(found & truth)
    by_variation: dict[str, Counter[str]] = defaultdict(Counter)
    for pair, kinds in data.duplicate_pairs.items():
        for kind in kinds.split(", "):
            by_variation[kind]["hit" if pair in found else "miss"] += 1
    false_pairs = found - truth
    false_by_type = Counter(data.negative_pairs.get(p, "other") for p in false_pairs)
    return {
        "customers": len(data.customers),
        "true_pairs": len(truth),
        "flagged": len(found),
        "threshold": DEFAULT_DUPLICATE_SCORE,
        "precision": _ratio(tp, len(found)),
        "recall": _ratio(tp, len(truth)),
        "recall_by_variation": {
            k: f"{v['hit']}/{v['hit'] + v['miss']}" for k, v in sorted(by_variation.items())
        },
        "negatives": dict(Counter(data.negative_pairs.values())),
        "false_pairs_by_type": dict(false_by_type),
        "seconds": round(seconds, 3),
    }


def eval_demo() -> dict[str, Any]:
    """The three near-duplicate pairs documented in demo/SOURCE.md, among the 300 demo customers."""
    from listenwell.nlp.matching import DEFAULT_DUPLICATE_SCORE, CustomerIndex
    from listenwell.store.links import CustomerCard
    from listenwell.store.records import parse_handles

    path = REPO / "demo" / "data" / "customers.csv"
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cards = [
        CustomerCard(
            pk=k,
            customer_id=r["customer_id"],
            name=r["name"] or None,
            email=r["email"] or None,
            phone=r["phone"] or None,
            handles=tuple((h.platform, h.handle) for h in parse_handles(r["handles"])),
            attributes={"country": r["country"]},
        )
        for k, r in enumerate(rows, start=1)
    ]
    truth = {("C00236", "C00254"), ("C00073", "C00128"), ("C00067", "C00120")}
    found = {
        (p.customer_id_a, p.customer_id_b)
        for p in CustomerIndex(cards).duplicates(DEFAULT_DUPLICATE_SCORE)
    }
    tp = len(found & truth)
    return {
        "customers": len(cards),
        "true_pairs": len(truth),
        "flagged": len(found),
        "precision": _ratio(tp, len(found)),
        "recall": _ratio(tp, len(truth)),
        "false_pairs": sorted(f"{a}/{b}" for a, b in found - truth),
    }


def eval_speed(n_people: int) -> dict[str, Any]:
    """Index build, search latency, duplicates runtime and linking throughput on ``n_people``."""
    import random

    from linking_data import _typo

    from listenwell.nlp.base import MentionContext
    from listenwell.nlp.linking import EvidenceLinker
    from listenwell.nlp.matching import CustomerIndex

    data = generate(n_people, seed=TEST_SEED + 1, mentions=True)
    cards = to_cards(data.customers)
    t = time.perf_counter()
    index = CustomerIndex(cards)
    build = time.perf_counter() - t
    r = random.Random(7)
    queries: list[str] = []
    for c in r.sample(data.customers, 300):
        kind = r.choice(["name", "name", "email", "phone", "handle"])
        if kind == "email" and c.email:
            queries.append(c.email)
        elif kind == "phone" and c.phone:
            queries.append(c.phone)
        elif kind == "handle" and c.handles:
            queries.append(c.handles[0][1])
        else:
            first, _, last = c.name.lower().partition(" ")
            queries.append(f"{_typo(r, first)} {_typo(r, last.split()[-1])}")
    index.search(queries[0])  # warm up
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q, limit=10)
        times.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    pairs = index.duplicates()
    dup_s = time.perf_counter() - t
    linker = EvidenceLinker(index)
    sample = data.mentions[:2000]
    contexts = [
        MentionContext(
            id=k,
            source=m.source,
            author_handle=m.author_handle,
            author_name=m.author_name,
            created_at=None,
        )
        for k, m in enumerate(sample)
    ]
    t = time.perf_counter()
    linker.run([m.text for m in sample], contexts=contexts)
    link_s = time.perf_counter() - t
    times.sort()
    return {
        "customers": len(cards),
        "index_build_s": round(build, 2),
        "search_queries": len(times),
        "search_ms_p50": round(statistics.median(times), 1),
        "search_ms_p95": round(times[int(0.95 * len(times)) - 1], 1),
        "duplicates_s": round(dup_s, 2),
        "duplicate_pairs_flagged": len(pairs),
        "link_mentions_per_s": round(len(sample) / link_s, 1),
    }


def evaluate(shared: Path | None = None, *, scales: tuple[int, ...] = (10_000,)) -> dict[str, Any]:
    """Every figure of this benchmark.

    Args:
        shared: Not used: the data is generated (and the demo customers ship in the repo).
        scales: Numbers of generated people to time (10,000 by default).
    """
    del shared
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # torch is not needed here; this only keeps other benches fair
        pass
    data = generate(2000, seed=TEST_SEED)
    return {
        "seed": TEST_SEED,
        "linking": eval_linking(data),
        "duplicates": eval_duplicates(data),
        "demo_duplicates": eval_demo(),
        "speed": [eval_speed(n) for n in scales],
        "cpu": os.cpu_count(),
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def markdown(results: dict[str, Any]) -> str:
    """The benchmark section for docs/benchmarks.md."""
    lk, dp, demo = results["linking"], results["duplicates"], results["demo_duplicates"]
    no = lk["name_only"]
    lines = [
        "## Customer linking and duplicate customers",
        "",
        f"Command: `{COMMAND}`. Data: the seeded generated set of `bench/linking/linking_data.py` "
        f"(seed {results['seed']}; weights and thresholds were set on seed 1): "
        f"{dp['customers']:,} customer records (2,000 people, {dp['true_pairs']} duplicate records "
        "with nicknames, typos, swapped names, initials, e-mail variants and phone formats; "
        f"{dp['negatives'].get('namesake', 0)} namesake pairs sharing a common name; "
        f"{dp['negatives'].get('household', 0)} households sharing a phone) and "
        f"{lk['mentions']:,} mentions (handles, e-mails, phones, order numbers in many formats, "
        "name-only posts and decoys). Plus the 3 documented near-duplicate pairs of the 300 demo "
        "customers. The generator and the matcher were written by the same person, so these are "
        "optimistic figures for data shaped like the generator's.",
        "",
        "| task | measured on | precision | recall | notes |",
        "| --- | --- | --- | --- | --- |",
        f"| strong links (export) | {lk['mentions']:,} mentions, {lk['with_strong_evidence']:,} with strong evidence "
        f"| {_pct(lk['precision'])} ({lk['fp']} false) | {_pct(lk['recall'])} ({lk['fn']} missed) "
        f"| name-only posts: {no['with_suggestion']}/{no['mentions']} got a weak suggestion, "
        f"{no['suggestion_right']} right; never exported |",
        f"| duplicate pairs (score >= {dp['threshold']}) | {dp['customers']:,} customers "
        f"| {_pct(dp['precision'])} ({dp['flagged']} flagged) | {_pct(dp['recall'])} "
        f"| false pairs by type: {dp['false_pairs_by_type'] or 'none'} |",
        f"| duplicate pairs, demo data | {demo['customers']} customers | {_pct(demo['precision'])} "
        f"| {_pct(demo['recall'])} | {demo['flagged']} flagged |",
        "",
        f"Recall by evidence kind: {lk['recall_by_kind']}. "
        f"Duplicate recall by variation: {dp['recall_by_variation']}.",
        "",
        "| customers | index build s | search p50 ms | search p95 ms | duplicates s | links/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in results["speed"]:
        lines.append(
            f"| {s['customers']:,} | {s['index_build_s']} | {s['search_ms_p50']} | "
            f"{s['search_ms_p95']} | {s['duplicates_s']} | {s['link_mentions_per_s']:,} |"
        )
    lines += [
        "",
        "Speed: one process, one thread, on the machine the command ran on "
        f"({results['cpu']} CPUs); search over 300 queries (typo'd names, e-mails, phones, handles).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale",
        type=int,
        nargs="+",
        default=[10_000],
        help="numbers of generated people to time (default: 10000)",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON report")
    args = parser.parse_args(argv)
    results = evaluate(scales=tuple(args.scale))
    print(json.dumps(results, indent=2))
    if not args.json:
        print()
        print(markdown(results))


if __name__ == "__main__":
    main()
