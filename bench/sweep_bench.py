"""Benchmark `escalations sweep`: one SLA pass over 100,000 open conversations.

Generates seeded mentions and open conversations in a fresh database (SQLite file and/or
a throw-away PostgreSQL database), with a realistic mix: statuses new/open/pending,
priorities low..urgent, opened over the last five days, some answered, some with closed
pending spells (audited the way the inbox audits them, so the pause reconstruction runs)
and some already upgraded. Then it times, with the shipped rules' SLA policy:

1. the first sweep at a fixed `now` (many reminders and upgrades: the catch-up case),
2. a second sweep at the same `now` (idempotent: must change nothing),
3. a sweep one minute later (the steady state of `--watch`).

    python bench/sweep_bench.py                  # 100,000 conversations, SQLite and PostgreSQL
    python bench/sweep_bench.py --rows 20000 --db sqlite

Prints one table row per sweep; copy the figures into docs/benchmarks.md. `cpu s` is
this process's CPU time for the pass (all of SQLite's work; PostgreSQL's server side is not
in it): on a shared machine it moves far less with the load than the wall-clock seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _db import add_db_options, db_kinds, fresh_db  # bench/_db.py: throw-away databases
from sqlalchemy import insert, select

from listenwell import store
from listenwell.crm.rules import RuleSet, parse_rules, shipped_rules_text
from listenwell.store.escalations import sweep
from listenwell.store.models import AuditRow, ConversationRow, MentionRow

NOW = datetime(2026, 3, 4, 13, 0, tzinfo=UTC)  # a Wednesday, 14:00 in Berlin
STATUSES = ["new"] * 40 + ["open"] * 45 + ["pending"] * 15
PRIORITIES = ["low"] * 10 + ["normal"] * 60 + ["high"] * 20 + ["urgent"] * 10


def populate(url: str, rows: int, seed: int = 11) -> dict[str, int]:
    """Write ``rows`` mentions and one open conversation per mention; returns the mix."""
    rng = random.Random(seed)
    engine = store.connect(url)
    store.upgrade(engine)
    start = NOW - timedelta(days=5)
    mentions = [
        store.Mention(
            source="x",
            external_id=str(i),
            created_at=start + timedelta(seconds=rng.randint(0, 5 * 86400 - 60)),
            author_handle=f"@user{rng.randint(1, rows // 5 + 1)}",
            text=f"@acme order {i} still not here, please help",
        )
        for i in range(rows)
    ]
    store.upsert_mentions(engine, mentions, batch_size=20_000)
    with engine.connect() as conn:
        ids = conn.execute(
            select(MentionRow.id, MentionRow.created_at).order_by(MentionRow.id)
        ).all()
    convs = []
    audits = []
    mix = {"paused": 0, "answered": 0, "upgraded": 0}
    for cid, (mid, created) in enumerate(ids, start=1):
        status = rng.choice(STATUSES)
        row = {
            "id": cid,
            "mention_id": mid,
            "status": status,
            "priority": rng.choice(PRIORITIES),
            "escalated": False,
            "escalation_level": 0,
            "escalation": None,
            "opened_at": created,
            "first_response_at": None,
            "pending_since": None,
            "paused_s": 0.0,
            "tags": [],
            "version": 1,
        }
        if rng.random() < 0.3:
            row["first_response_at"] = min(NOW, created + timedelta(minutes=rng.randint(5, 600)))
            mix["answered"] += 1
        if status == "pending":
            row["pending_since"] = min(NOW, created + timedelta(minutes=rng.randint(1, 3000)))
        if rng.random() < 0.1:  # a closed pending spell, audited as the inbox does
            began = created + timedelta(minutes=rng.randint(1, 600))
            wall = float(rng.randint(600, 20_000))
            row["paused_s"] = wall
            audits.append(_audit(cid, {"status": ["open", "pending"], "pending_since": began}))
            audits.append(_audit(cid, {"status": ["pending", "open"], "paused_s": [0.0, wall]}))
            mix["paused"] += 1
        if rng.random() < 0.05:  # upgraded once already
            row["escalation_level"] = 1
            since = NOW - timedelta(minutes=rng.randint(1, 600))
            row["escalation"] = {"sla": {"since": since.isoformat(), "paused_s": 0.0}}
            mix["upgraded"] += 1
        convs.append(row)
    with engine.begin() as conn:
        for i in range(0, len(convs), 10_000):
            conn.execute(insert(ConversationRow.__table__), convs[i : i + 10_000])
        if audits:
            conn.execute(insert(AuditRow.__table__), audits)
    engine.dispose()
    return mix


def _audit(cid: int, changes: dict[str, object]) -> dict[str, object]:
    changes = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changes.items()}
    return {
        "at": NOW,
        "actor": "agent",
        "action": "conversation.update",
        "entity": "conversation",
        "entity_id": str(cid),
        "detail": {"changes": changes, "version": 2},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="Open conversations.")
    add_db_options(parser, default="both")
    args = parser.parse_args()
    text = shipped_rules_text()
    policy = RuleSet(parse_rules(text, "shipped"), text).policy
    print(
        f"# {platform.machine()} {platform.processor() or ''}, Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version}; now = {NOW.isoformat()}"
    )
    print(
        "| database | open | pass | seconds | cpu s | read s | assess s | write s "
        "| reminded | upgraded | breached |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in db_kinds(args.db):
            url, cleanup = fresh_db(kind, Path(tmp), args.pg)
            try:
                mix = populate(url, args.rows)
                engine = store.connect(url)
                passes = [("first", NOW), ("same now", NOW), ("+1 min", NOW + timedelta(minutes=1))]
                for label, now in passes:
                    t0, c0 = time.perf_counter(), time.process_time()
                    r = sweep(engine, now, policy)
                    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
                    print(
                        f"| {kind} | {r.open:,} | {label} | {seconds:.2f} | {cpu:.2f} "
                        f"| {r.read_s:.2f} "
                        f"| {r.assess_s:.2f} | {r.write_s:.2f} | {r.reminded:,} | {r.upgraded:,} "
                        f"| {r.breached:,} |",
                        flush=True,
                    )
                    if label == "same now" and (r.reminded or r.upgraded or r.breached):
                        raise SystemExit("the second sweep at the same now changed something")
                engine.dispose()
                print(f"#   mix: {json.dumps(mix)}")
            finally:
                cleanup()


if __name__ == "__main__":
    main()
