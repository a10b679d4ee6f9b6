"""Customer 360 for one customer with 10,000 events: time the first page, cold and warm.

The customer has 4,000 mentions (each with its conversation and a sentiment
label), 3,000 replies, 2,000 notes and 1,000 survey answers; 20,000 mentions of
other authors sit beside them. "Cold" is the first call on a fresh engine
(new connection, empty statement cache); "warm" is the median of the next
runs. Target: under 200 ms.

    python bench/customer360_bench.py --db both
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _db import add_db_options, db_kinds, fresh_db  # noqa: E402

from listenwell import store  # noqa: E402
from listenwell.store.customer360 import customer_360  # noqa: E402
from listenwell.store.models import (  # noqa: E402
    ConversationNoteRow,
    ConversationRow,
    CustomerRow,
    EnrichmentRow,
    HandleRow,
    MentionRow,
    ReplyRow,
    SurveyRow,
)

MENTIONS, REPLIES, NOTES, SURVEYS, OTHERS = 4000, 3000, 2000, 1000, 20_000
T0 = datetime(2023, 1, 1, tzinfo=UTC)


def seed(engine) -> None:
    with engine.begin() as c:
        pk = c.execute(
            insert(CustomerRow.__table__).values(
                customer_id="BIG", name="Big Customer", attributes={"lifetime_value": 5000}
            )
        ).inserted_primary_key[0]
        c.execute(
            insert(HandleRow.__table__).values(
                customer_pk=pk, platform="x", handle="bigcust", display="@BigCust"
            )
        )
        mentions = [
            {"source": "x", "external_id": f"b{i}", "created_at": T0 + timedelta(minutes=97 * i),
             "text": f"post {i} about my order", "author_handle": "@BigCust" if i % 2 else None}
            for i in range(MENTIONS)
        ] + [
            {"source": "x", "external_id": f"o{i}", "created_at": T0 + timedelta(minutes=19 * i),
             "text": f"someone else {i}", "author_handle": f"other{i % 500}"}
            for i in range(OTHERS)
        ]  # fmt: skip
        c.execute(insert(MentionRow.__table__), mentions)
        ids = [
            r[0]
            for r in c.execute(
                select(MentionRow.id)
                .where(MentionRow.external_id.like("b%"))
                .order_by(MentionRow.id)
            )
        ]
        c.execute(
            insert(EnrichmentRow.__table__),
            [{"mention_id": m, "stage": "sentiment", "label": ("negative", "neutral", "positive")[
                m % 3], "score": 0.9, "model_name": "bench", "model_version": "1"} for m in ids],
        )  # fmt: skip
        c.execute(
            insert(ConversationRow.__table__),
            [{"mention_id": m, "customer_pk": pk if i % 2 == 0 else None, "status": "resolved",
              "priority": "normal", "opened_at": T0 + timedelta(minutes=97 * i), "tags": []}
             for i, m in enumerate(ids)],
        )  # fmt: skip
        convs = [r[0] for r in c.execute(select(ConversationRow.id).order_by(ConversationRow.id))]
        c.execute(
            insert(ReplyRow.__table__),
            [{"conversation_id": convs[i % len(convs)], "body": f"reply {i}", "status": "sent",
              "platform": "x", "actor": "ann", "created_at": T0 + timedelta(minutes=97 * i + 5),
              "sent_at": T0 + timedelta(minutes=97 * i + 5)} for i in range(REPLIES)],
        )  # fmt: skip
        c.execute(
            insert(ConversationNoteRow.__table__),
            [{"conversation_id": convs[i % len(convs)], "author": "ann", "body": f"note {i}",
              "created_at": T0 + timedelta(minutes=97 * i + 7)} for i in range(NOTES)],
        )  # fmt: skip
        c.execute(
            insert(SurveyRow.__table__),
            [{"source": "bench", "external_id": f"s{i}", "kind": "nps" if i % 2 else "csat",
              "score": (i % 10) + (0 if i % 2 else 1) if i % 2 else (i % 5) + 1,
              "customer_pk": pk, "answered_at": T0 + timedelta(minutes=97 * i + 9)}
             for i in range(SURVEYS)],
        )  # fmt: skip


def measure(url: str, runs: int) -> dict[str, float]:
    engine = store.connect(url)
    try:
        start = time.perf_counter()
        view = customer_360(engine, "BIG", limit=50)
        cold = (time.perf_counter() - start) * 1000
        total = sum(view.counts.values())
        warm = []
        for _ in range(runs):
            start = time.perf_counter()
            customer_360(engine, "BIG", limit=50)
            warm.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        customer_360(engine, "BIG", limit=50, before=view.next_before, trend=False)
        page2 = (time.perf_counter() - start) * 1000
    finally:
        engine.dispose()
    return {
        "events": total,
        "cold_ms": cold,
        "warm_median_ms": statistics.median(warm),
        "warm_max_ms": max(warm),
        "next_page_ms": page2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_db_options(parser, default="sqlite")
    parser.add_argument("--runs", type=int, default=10, help="Warm runs (default 10).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in db_kinds(args.db):
            url, cleanup = fresh_db(kind, Path(tmp), args.pg)
            try:
                engine = store.connect(url)
                store.upgrade(engine)
                t = time.perf_counter()
                seed(engine)
                engine.dispose()
                seeded = time.perf_counter() - t
                r = measure(url, args.runs)
                print(
                    f"{kind:10} events={r['events']:,} seed={seeded:.1f}s "
                    f"cold={r['cold_ms']:.1f}ms warm(median)={r['warm_median_ms']:.1f}ms "
                    f"warm(max)={r['warm_max_ms']:.1f}ms next_page={r['next_page_ms']:.1f}ms "
                    f"target<200ms: {'ok' if r['cold_ms'] < 200 else 'MISSED'}"
                )
            finally:
                cleanup()


if __name__ == "__main__":
    main()
