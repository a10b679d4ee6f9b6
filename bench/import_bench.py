"""Benchmark `listenwell import mentions`: throughput, re-import cost and peak memory.

Generates seeded, realistic mentions as JSONL, then runs the real command
(`listenwell --config C import mentions FILE --json`) in a fresh process for
each measurement, timing it and reading the child's peak RSS from wait4().

    python bench/import_bench.py                      # 20k and 200k rows, SQLite and PostgreSQL
    python bench/import_bench.py --rows 200000 --db sqlite

Prints one table row per run; copy the figures into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _db import add_db_options, db_kinds, fresh_db  # bench/_db.py: throw-away databases

WORDS = (
    "love hate great awful support refund order delivery battery screen update app crash "
    "slow fast price cancel subscription account login help thanks broken works finally "
    "again never always customer service waiting hours days week today"
).split()


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write ``rows`` seeded mentions as JSONL (about 300 bytes each)."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            source = "x" if i % 3 else "reddit"
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40)))
            rec = {
                "source": source,
                "external_id": f"{source}-{i}",
                "created_at": (start + timedelta(seconds=i * 13))
                .isoformat()
                .replace("+00:00", "Z"),
                "author_handle": f"@user{rng.randint(1, rows // 10 + 1)}",
                "author_name": f"User {i % 997}",
                "text": f"@acme {words}",
                "url": f"https://example.com/{source}/{i}",
                "rating": None,
                "in_reply_to": f"{source}-{i - 1}" if i and rng.random() < 0.2 else None,
            }
            f.write(json.dumps(rec) + "\n")


def run_import(config: Path, data: Path) -> tuple[float, float, dict[str, int]]:
    """Run the import command once; returns (seconds, peak RSS MiB, counts)."""
    exe = shutil.which("listenwell") or str(Path(sys.executable).with_name("listenwell"))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [exe, "--config", str(config), "import", "mentions", str(data), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"import failed: {err.decode()[-500:]}")
    return seconds, usage.ru_maxrss / 1024, json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[20_000, 200_000],
        help="Sizes of the generated files (default: 20000 200000).",
    )
    add_db_options(parser, default="both")
    args = parser.parse_args()
    kinds = db_kinds(args.db)
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}"
    )
    print(
        "| database | rows | first import s | mentions/s | re-import s | re-import / first "
        "| peak RSS MiB (first) | peak RSS MiB (re-import) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for rows in args.rows:
            data = work / f"mentions-{rows}.jsonl"
            generate(data, rows)
            for kind in kinds:
                url, cleanup = fresh_db(kind, work, args.pg)
                config = work / "bench.yaml"
                config.write_text(f"database_url: '{url}'\n", encoding="utf-8")
                subprocess.run(
                    [sys.executable, "-m", "listenwell", "--config", str(config), "db", "upgrade"],
                    check=True,
                    capture_output=True,
                )
                try:
                    s1, rss1, c1 = run_import(config, data)
                    assert c1["new"] == rows, c1
                    s2, rss2, c2 = run_import(config, data)
                    assert c2["duplicates"] == rows, c2
                finally:
                    cleanup()  # type: ignore[operator]
                print(
                    f"| {kind} | {rows:,} | {s1:.1f} | {rows / s1:,.0f} | {s2:.1f} | "
                    f"{s2 / s1:.2f} | {rss1:.0f} | {rss2:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
