"""Every NLP figure from one command, written into docs/benchmarks.md.

Runs each evaluation below (each is also a script of its own), prints its
figures as JSON lines, and replaces its section of ``docs/benchmarks.md``
(between ``<!-- begin:NAME -->`` and ``<!-- end:NAME -->``; a missing section is
appended). Nothing is cached: every figure is computed by this run.

    python bench/evaluate.py                      # everything (about 25 min on 2 cores)
    python bench/evaluate.py --only intent linking
    python bench/evaluate.py --no-write           # print, leave the docs alone

Evaluations: sentiment-tweeteval (the shipped model on TweetEval val and test),
sentiment-transfer (airline tweets, Alexa reviews; VADER baseline rows), themes
(agreement with the airline negativereason), intent (labelled sample, test split),
linking (generated linking and duplicate sets with ground truth), and enrich
(throughput against the raw forward passes, peak RSS).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DOC = REPO / "docs" / "benchmarks.md"

EVALUATIONS: dict[str, Path] = {
    "sentiment-tweeteval": BENCH / "sentiment" / "eval_tweeteval.py",
    "sentiment-transfer": BENCH / "sentiment" / "eval_transfer.py",
    "themes": BENCH / "themes" / "eval_themes.py",
    "intent": BENCH / "intent" / "eval_intent.py",
    "linking": BENCH / "linking" / "eval_linking.py",
    "enrich": BENCH / "enrich_bench.py",
}
"""Name -> script. Each script exposes ``evaluate(shared) -> dict`` and ``markdown(dict) -> str``."""


def load(path: Path) -> ModuleType:
    """Import a bench script as a module (its folder and bench/ on the path)."""
    for folder in (str(path.parent), str(BENCH)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def machine() -> str:
    """The machine, in words, for the docs."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def portable(text: str, shared: Path) -> str:
    """``text`` with this machine's folders written as the repository and ``../shared``."""
    for folder, name in ((shared.resolve(), "../shared"), (REPO, ".")):
        text = text.replace(f"{folder}/", f"{name}/").replace(str(folder), name)
    return text


def replace_section(doc: str, name: str, body: str) -> str:
    """``doc`` with the section ``name`` replaced by ``body`` (appended if absent)."""
    begin, end = f"<!-- begin:{name} -->", f"<!-- end:{name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(doc):
        return pattern.sub(lambda _: block, doc)
    return doc.rstrip() + "\n\n" + block + "\n"


def main() -> None:
    """Run the chosen evaluations and write their sections."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared", type=Path, default=REPO.parent / "shared", help="The shared data folder."
    )
    parser.add_argument(
        "--only", nargs="+", choices=sorted(EVALUATIONS), help="Run only these evaluations."
    )
    parser.add_argument(
        "--no-write", action="store_true", help="Print the figures; do not touch the docs."
    )
    args = parser.parse_args()
    names = args.only or list(EVALUATIONS)
    where = machine()
    failed = []
    for name in names:
        module = load(EVALUATIONS[name])
        t0 = time.perf_counter()
        try:
            results: dict[str, Any] = module.evaluate(args.shared)
        except Exception as exc:  # noqa: BLE001 - report and go on with the others
            print(f"{name}: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        took = time.perf_counter() - t0
        print(json.dumps({"evaluation": name, "seconds": round(took, 1), **results}, default=str))
        if not args.no_write:
            stamp = (
                f"\n\n_Produced by `python bench/evaluate.py --only {name}` on "
                f"{time.strftime('%Y-%m-%d')} ({took / 60:.1f} min) on {where}._"
            )
            doc = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
            body = portable(module.markdown(results) + stamp, args.shared)
            DOC.write_text(replace_section(doc, name, body), "utf-8")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
