"""Benchmark the collectors against the local fake APIs: throughput, and overhead vs HTTP wait.

Every run drives the REAL client (praw, tweepy, requests) through the real
runner (`listenwell.collectors.runner.run_collector`) into a fresh database,
from the fake Reddit, X and App Store servers of `listenwell.demo.fakes` on
127.0.0.1 (in this process, in a thread). The runner's `Timings` split each
pass into fetch (HTTP request, the client's decoding, retry waits),
normalise and store (the page's transaction with its cursor).

1. Unpaced: ``--items`` items per source (default 100,000) with no added
   latency: items/s end to end (wall time of the pass, items stored).
2. Paced: ``--paced-items`` per source with ``--latency`` seconds added to
   every answer, as a distant API's round trip. 100,000 items at real pacing
   would take 7 to 14 minutes per source, so the 100,000-item figure is
   extrapolated: HTTP wait = pages for 100,000 items x the paced run's mean
   fetch time per page; normalise+store = what the unpaced 100,000-item run
   measured (the same items into the same growing table; neither depends on
   the pacing). The paced run's own ratio is printed beside it.

The fakes build their search indexes once, before the clock starts. Their
items are spaced 10 s apart and end before now (nothing is in the future).

    python bench/collect_bench.py                       # SQLite, 100k per source
    python bench/collect_bench.py --db both --items 20000 --paced-items 1000
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import shlex
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from _db import add_db_options, db_kinds, fresh_db  # bench/_db.py: throw-away databases
from sqlalchemy import create_engine, text

from listenwell import store
from listenwell.collectors.appstore import AppStoreCollector
from listenwell.collectors.base import Collector, RetryPolicy
from listenwell.collectors.reddit import RedditCollector
from listenwell.collectors.runner import Timings, run_collector
from listenwell.collectors.x import XCollector
from listenwell.demo.fakes.appstore import FakeAppStore
from listenwell.demo.fakes.reddit import FakeReddit
from listenwell.demo.fakes.x import FakeX

SOURCES = ("reddit", "x", "appstore")
#: Items per page each API serves at most (Reddit and X: 100; Apple's feed: 50).
PAGE_SIZE = {"reddit": 100, "x": 100, "appstore": 50}
#: Reviews per App Store app and country: the feed stops at page 10 of 50.
APPSTORE_DEPTH = 500
TARGET_ITEMS = 100_000


class _RetryCounter(logging.Handler):
    """Counts the retries prawcore makes by itself (it logs each one as a warning)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Retrying" in record.getMessage():
            self.count += 1


@dataclass
class Run:
    """One measured pass."""

    db: str
    source: str
    mode: str
    items: int
    wall: float
    timings: Timings
    errors: list[str]
    retries: int

    @property
    def overhead(self) -> float:
        """Normalise + store seconds."""
        return self.timings.normalize + self.timings.store


def _epoch(items: int) -> datetime:
    """An epoch for the fakes such that ``items`` items 10 s apart all lie in the past."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10 * items + 3600)


def _retry() -> RetryPolicy:
    return RetryPolicy(attempts=3, max_wait=5.0)


def setup_reddit(items: int, latency: float) -> tuple[FakeReddit, Collector]:
    """A fake Reddit with ``items`` posts, and a collector on it (posts search, 100 a page)."""
    fake = FakeReddit(epoch=_epoch(items))
    fake.add_posts(items)
    fake.server.start()
    # Warm the fake's search index (it filters every post once per query).
    token = requests.post(
        fake.server.base_url + "/api/v1/access_token",
        auth=(fake.client_id, fake.client_secret),
        data={"grant_type": "client_credentials"},
        timeout=60,
    ).json()["access_token"]
    warm: dict[str, str | int] = {"q": "Acme", "limit": 1}
    requests.get(
        fake.server.base_url + "/r/all/search",
        params=warm,
        headers={"Authorization": f"bearer {token}"},
        timeout=60,
    )
    fake.server.latency = latency
    collector = RedditCollector(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        queries=["Acme"],
        oauth_url=fake.server.base_url,
        reddit_url=fake.server.base_url,
        include_comments=False,
        timeout=30,
        page_size=PAGE_SIZE["reddit"],
        overlap=timedelta(0),
        retry=_retry(),
        max_pages=1_000_000,
    )
    return fake, collector


def setup_x(items: int, latency: float) -> tuple[FakeX, Collector]:
    """A fake X with ``items`` posts, and a collector on it (recent search, 100 a page)."""
    fake = FakeX(epoch=_epoch(items))
    fake.add_posts(items, long_every=7)
    fake.matching("Acme")  # warm the fake's search index
    fake.server.start()
    fake.server.latency = latency
    collector = XCollector(
        bearer_token=fake.bearer_token,
        queries=["Acme"],
        api_base_url=fake.server.base_url,
        timeout=30,
        page_size=PAGE_SIZE["x"],
        retry=_retry(),
        max_pages=1_000_000,
    )
    return fake, collector


def setup_appstore(items: int, latency: float) -> tuple[FakeAppStore, Collector]:
    """A fake App Store feed with ``items`` reviews over as many apps as the 500-deep feed needs."""
    fake = FakeAppStore(epoch=_epoch(items))
    apps = [str(100_000_000 + i) for i in range(math.ceil(items / APPSTORE_DEPTH))]
    left = items
    for app in apps:
        fake.add_reviews(min(left, APPSTORE_DEPTH), app_id=app)
        left -= APPSTORE_DEPTH
    fake.server.start()
    fake.server.latency = latency
    collector = AppStoreCollector(
        app_ids=apps,
        countries=["us"],
        base_url=fake.server.base_url,
        timeout=30,
        page_size=PAGE_SIZE["appstore"],
        retry=_retry(),
    )
    return fake, collector


SETUP: dict[str, Callable[[int, float], tuple[Any, Collector]]] = {
    "reddit": setup_reddit,
    "x": setup_x,
    "appstore": setup_appstore,
}


def measure(
    kind: str, source: str, items: int, latency: float, workdir: Path, pg_admin: str
) -> Run:
    """Collect ``items`` items of ``source`` into a fresh ``kind`` database, once."""
    url, cleanup = fresh_db(kind, workdir, pg_admin)
    fake, collector = SETUP[source](items, latency)
    engine = store.connect(url)
    counter = _RetryCounter()
    logging.getLogger("prawcore").addHandler(counter)
    try:
        store.upgrade(engine)
        timings = Timings()
        started = time.perf_counter()
        result = run_collector(engine, collector, timings=timings)
        wall = time.perf_counter() - started
    finally:
        logging.getLogger("prawcore").removeHandler(counter)
        collector.close()
        fake.server.stop()
        engine.dispose()
        cleanup()
    mode = "unpaced" if not latency else f"paced {latency * 1000:.0f} ms"
    retries = result.retries + counter.count
    return Run(kind, source, mode, result.new, wall, timings, result.errors, retries)


def machine_line(kinds: list[str], pg_admin: str) -> str:
    """CPU, cores, load, Python and database versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dbs = [f"SQLite {sqlite3.sqlite_version}"]
    if "postgresql" in kinds:
        eng = create_engine(pg_admin)
        with eng.connect() as conn:
            dbs.append("PostgreSQL " + str(conn.execute(text("SHOW server_version")).scalar()))
        eng.dispose()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores (load average {load}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, {', '.join(dbs)}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables (markdown)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--items",
        type=int,
        default=TARGET_ITEMS,
        help=f"Items per source in the unpaced run (default {TARGET_ITEMS:,}).",
    )
    parser.add_argument(
        "--paced-items",
        type=int,
        default=2_000,
        help="Items per source in the paced run (default 2,000: 20 pages of Reddit and X, "
        "40 of the App Store).",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.4,
        help="Seconds added to every answer in the paced run (default 0.4: the low end of "
        "the 300-700 ms a page of 100 takes from the real APIs; lower is a harder target).",
    )
    parser.add_argument(
        "--sources",
        nargs="+",
        choices=SOURCES,
        default=list(SOURCES),
        help="Sources to measure (default: all three).",
    )
    add_db_options(parser, default="sqlite")
    parser.add_argument(
        "--skip-paced", action="store_true", help="Only the unpaced throughput run."
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    kinds = db_kinds(args.db)
    print("command: " + shlex.join([Path(sys.executable).name, *sys.argv]))
    print("machine: " + machine_line(kinds, args.pg))
    print()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            for source in args.sources:
                runs.append(measure(kind, source, args.items, 0.0, Path(tmp), args.pg))
                if not args.skip_paced:
                    runs.append(
                        measure(kind, source, args.paced_items, args.latency, Path(tmp), args.pg)
                    )
    print(
        "| database | source | run | items stored | pages | wall s | items/s | fetch s "
        "| normalise s | store s | (normalise+store) / fetch | retries |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        t = r.timings
        print(
            f"| {r.db} | {r.source} | {r.mode} | {r.items:,} | {t.pages:,} | {r.wall:.1f} "
            f"| {r.items / r.wall:,.0f} | {t.fetch:.2f} | {t.normalize:.2f} | {t.store:.2f} "
            f"| {r.overhead / t.fetch:.1%} | {r.retries} |"
        )
    failed = [f"{r.db} {r.source} {r.mode}: {e}" for r in runs for e in r.errors]
    if not args.skip_paced:
        print()
        print(
            f"Paced, extrapolated to {TARGET_ITEMS:,} items: HTTP wait = pages x the paced "
            f"run's fetch s per page; normalise+store = the unpaced run's (scaled to "
            f"{TARGET_ITEMS:,} items where --items differs)."
        )
        print()
        print(
            "| database | source | latency ms | page size | pages | HTTP wait s "
            "| normalise+store s | ratio | target < 10% |"
        )
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for unpaced, paced in zip(runs[::2], runs[1::2], strict=True):
            pages = math.ceil(TARGET_ITEMS / PAGE_SIZE[paced.source])
            wait = pages * paced.timings.fetch / max(1, paced.timings.pages)
            overhead = unpaced.overhead * TARGET_ITEMS / max(1, unpaced.items)
            ratio = overhead / wait
            print(
                f"| {paced.db} | {paced.source} | {args.latency * 1000:.0f} "
                f"| {PAGE_SIZE[paced.source]} | {pages:,} | {wait:,.0f} | {overhead:.1f} "
                f"| {ratio:.1%} | {'met' if ratio < 0.10 else 'MISSED'} |"
            )
    if failed:
        print()
        print("errors: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
