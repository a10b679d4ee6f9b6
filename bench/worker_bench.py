"""Benchmark enrichment on the PostgreSQL task queue with 1 and 2 `listenwell worker` processes.

For each setting it creates a throw-away PostgreSQL database, imports the same real tweets
(the airline set in ../shared/data, or generated text with --generated), queues the backlog
with `listenwell jobs enrich`, starts the workers with `--once --queue enrich`, and waits for
them to finish. Procrastinate's own event log gives each job's start and end, so the
figures below leave out the workers' start-up (model loading, ~10-20 s each):

- span: first job started -> last job finished (all workers),
- mentions/s = mentions / span, per-worker efficiency = speed-up / workers.

    python bench/worker_bench.py                      # 4,000 tweets: 1x1 thread, 1x2, 2x1
    python bench/worker_bench.py --mentions 2000 --settings 1x1 2x1

Prints a Markdown table; copy it into docs/benchmarks.md with the machine and date.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _db import DEFAULT_PG, fresh_db
from sqlalchemy import text

from listenwell import store

ROOT = Path(__file__).resolve().parents[1]
TWEETS = ROOT.parent / "shared" / "data" / "twitter-airline-sentiment" / "Tweets.csv"


def _mentions(n: int, generated: bool) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    if not generated and TWEETS.exists():
        with TWEETS.open(encoding="utf-8", newline="") as f:
            for i, r in enumerate(csv.DictReader(f)):
                if i >= n:
                    break
                rows.append(
                    {
                        "source": "x",
                        "external_id": f"t{i}",
                        "created_at": "2015-02-20T10:00:00Z",
                        "text": r["text"],
                        "author_handle": "@" + r["name"],
                    }
                )
    while len(rows) < n:
        i = len(rows)
        rows.append(
            {
                "source": "x",
                "external_id": f"g{i}",
                "created_at": "2015-02-20T10:00:00Z",
                "text": f"my flight {i} was delayed again and nobody answers, so annoying",
                "author_handle": f"@u{i % 300}",
            }
        )
    return rows


def _cli(cfg: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "listenwell", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def run_setting(workers: int, threads: int, rows: list[dict[str, str]], chunk: int) -> dict:
    """One measurement: a fresh database, the backlog queued, ``workers`` processes."""
    url, drop = fresh_db("postgresql", Path(tempfile.gettempdir()), DEFAULT_PG)
    try:
        eng = store.connect(url)
        store.upgrade(eng)
        eng.dispose()
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "m.jsonl"
            data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            cfg = Path(tmp) / "c.yaml"
            cfg.write_text(
                json.dumps(
                    {
                        "database_url": url,
                        "nlp": {"threads": threads},
                        "jobs": {"enrich_chunk": chunk},
                    }
                ),
                encoding="utf-8",
            )
            _cli(cfg, "import", "mentions", str(data))
            _cli(cfg, "jobs", "enrich")
            t0 = time.perf_counter()
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "listenwell",
                        "--config",
                        str(cfg),
                        "worker",
                        "--once",
                        "--queue",
                        "enrich",
                        "--name",
                        f"w{k}",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=dict(os.environ, OMP_NUM_THREADS=str(threads)),
                )
                for k in range(workers)
            ]
            for p in procs:
                p.wait()
            wall = time.perf_counter() - t0
        eng = store.connect(url)
        with eng.connect() as conn:
            span = conn.execute(
                text(
                    "SELECT extract(epoch FROM max(e.at) FILTER (WHERE e.type = 'succeeded')"
                    " - min(e.at) FILTER (WHERE e.type = 'started'))"
                    " FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id"
                    " WHERE j.task_name = 'listenwell:enrich_range'"
                )
            ).scalar_one()
            done = conn.execute(
                text("SELECT count(*) FROM enrichments WHERE stage = 'sentiment'")
            ).scalar_one()
            failed = conn.execute(
                text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'")
            ).scalar_one()
        eng.dispose()
    finally:
        drop()
    return {
        "workers": workers,
        "threads": threads,
        "mentions": len(rows),
        "enriched": int(done),
        "failed_jobs": int(failed),
        "span_s": float(span),
        "wall_s": wall,
        "per_s": len(rows) / float(span),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=4000, help="Mentions to enrich.")
    parser.add_argument("--chunk", type=int, default=250, help="Mentions per job.")
    parser.add_argument(
        "--settings",
        nargs="+",
        default=["1x1", "1x2", "2x1"],
        help="WORKERSxTHREADS settings to measure, e.g. 1x1 2x1.",
    )
    parser.add_argument("--generated", action="store_true", help="Generated text, not tweets.")
    args = parser.parse_args()
    rows = _mentions(args.mentions, args.generated)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        file=sys.stderr,
    )
    results = []
    for setting in args.settings:
        workers, threads = (int(x) for x in setting.split("x"))
        print(f"measuring {workers} worker(s) x {threads} thread(s)...", file=sys.stderr)
        results.append(run_setting(workers, threads, rows, args.chunk))
    base = next((r for r in results if r["workers"] == 1 and r["threads"] == 1), results[0])
    print(
        "| workers x torch threads | mentions | enriched | span s | mentions/s | speed-up vs "
        "1x1 | per-worker efficiency | wall s incl. start-up |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        speedup = r["per_s"] / base["per_s"]
        print(
            f"| {r['workers']} x {r['threads']} | {r['mentions']:,} | {r['enriched']:,} | "
            f"{r['span_s']:.1f} | {r['per_s']:.0f} | {speedup:.2f} | "
            f"{speedup / r['workers']:.0%} | {r['wall_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
