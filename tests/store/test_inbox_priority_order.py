"""``list_conversations``' priority order, read as index ranges, against a brute-force sort.

The store reads one index range per priority (and per status when filtered) and,
for filters the indexes do not cover, falls back to one sorted query where a
range yields too few matches. Whatever path it takes, every page and every
cursor must be what sorting all conversations by (priority rank, opened_at, id)
gives. Random data with many ties on ``opened_at``, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from listenwell import store
from listenwell.store import inbox
from listenwell.store.models import ConversationRow

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
WORDS = ("refund", "late", "app", "crash", "thanks", "login", "price")

FILTERS: list[dict[str, Any]] = [
    {},
    {"status": list(inbox.ACTIVE_STATUSES)},
    {"status": "resolved"},
    {"status": ["closed", "new", "closed"]},
    {"priority": ["low", "urgent"]},
    {"priority": "high", "status": ["open", "pending"]},
    {"assignee": ""},
    {"assignee": "ana"},
    {"escalated": True},
    {"escalated": False, "status": list(inbox.ACTIVE_STATUSES)},
    {"tag": "VIP"},
    {"search": "refund"},
    {"search": "@U1"},
    {"search": "crash", "status": ["new", "resolved"], "assignee": "bo"},
    {"tag": "billing", "escalated": False, "priority": ["normal", "low"]},
    {"search": "no such words"},
]


def _seed(engine: Any, n: int, seed: int) -> list[inbox.Conversation]:
    """``n`` conversations with random status, priority, assignee, tags and escalation."""
    rng = random.Random(seed)
    store.upsert_mentions(
        engine,
        [
            store.Mention(
                source=rng.choice(("x", "reddit")),
                external_id=f"m{i}",
                # 15 distinct times for n mentions: many ties on opened_at.
                created_at=T0 + timedelta(minutes=rng.randrange(15)),
                text=" ".join(rng.sample(WORDS, 3)),
                author_handle=f"@u{rng.randrange(4)}",
            )
            for i in range(n)
        ],
    )
    inbox.ensure_conversations(engine)
    everyone = inbox.list_conversations(engine, order="newest", limit=1000).items
    assert len(everyone) == n
    with engine.begin() as conn:
        for c in everyone:
            conn.execute(
                update(ConversationRow)
                .where(ConversationRow.id == c.id)
                .values(
                    status=rng.choice(inbox.STATUSES),
                    priority=rng.choices(inbox.PRIORITIES, weights=(1, 2, 6, 2))[0],
                    assignee=rng.choice((None, None, "ana", "bo")),
                    escalated=rng.random() < 0.2,
                    tags=rng.sample(["billing", "vip", "bug"], rng.randrange(3)),
                )
            )
    return list(inbox.list_conversations(engine, order="newest", limit=1000).items)


def _matches(c: inbox.Conversation, f: dict[str, Any]) -> bool:
    def listed(value: Any) -> list[str]:
        return [value] if isinstance(value, str) else list(value)

    if "status" in f and c.status not in listed(f["status"]):
        return False
    if "priority" in f and c.priority not in listed(f["priority"]):
        return False
    if "assignee" in f and c.assignee != (f["assignee"] or None):
        return False
    if "escalated" in f and c.escalated != f["escalated"]:
        return False
    if "tag" in f and f["tag"].lower() not in c.tags:
        return False
    if "search" in f:
        needle = f["search"].lower()
        if needle not in c.text.lower() and needle not in (c.author_handle or "").lower():
            return False
    return True


def _cursor(c: inbox.Conversation) -> str:
    return f"p|{inbox.PRIORITIES.index(c.priority)}|{c.opened_at.isoformat()}|{c.id}"


def _check_pages(
    engine: Any, everyone: list[inbox.Conversation], f: dict[str, Any], limit: int
) -> int:
    """Page through ``f`` and compare each page and cursor with the brute-force order."""
    expected = sorted(
        (c for c in everyone if _matches(c, f)),
        key=lambda c: (inbox.PRIORITIES.index(c.priority), c.opened_at, c.id),
    )
    after: str | None = None
    pages = 0
    for start in range(0, max(len(expected), 1), limit):
        page = inbox.list_conversations(engine, limit=limit, after=after, **f)
        want = expected[start : start + limit]
        assert [c.id for c in page.items] == [c.id for c in want], (f, start)
        assert page.items == want
        more = start + limit < len(expected)
        assert page.next_after == (_cursor(want[-1]) if more else None), (f, start)
        after = page.next_after
        pages += 1
    return pages


@pytest.mark.parametrize("window", [3, inbox._RANGE_WINDOW])
def test_priority_pages_match_a_brute_force_sort(
    engine: Any, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    # A tiny window makes sparse filters take the sorted fallback part-way through.
    monkeypatch.setattr(inbox, "_RANGE_WINDOW", window)
    everyone = _seed(engine, 160, seed=window)
    assert {c.priority for c in everyone} == set(inbox.PRIORITIES)
    pages = 0
    for f in FILTERS:
        for limit in (7, 50):
            pages += _check_pages(engine, everyone, f, limit)
    assert pages > 3 * len(FILTERS)  # most filters span several pages


def test_cursors_resume_in_any_priority(engine: Any) -> None:
    """A cursor at the last row of a priority, or in a priority the filter excludes,
    carries on where the brute-force order does."""
    everyone = _seed(engine, 60, seed=11)
    ordered = sorted(
        everyone, key=lambda c: (inbox.PRIORITIES.index(c.priority), c.opened_at, c.id)
    )
    rest: Callable[[int], list[int]] = lambda i: [c.id for c in ordered[i + 1 :]]  # noqa: E731
    for i, c in enumerate(ordered):
        page = inbox.list_conversations(engine, limit=1000, after=_cursor(c))
        assert [x.id for x in page.items] == rest(i) and page.next_after is None
    low = [c for c in ordered if c.priority == "low"]
    urgent_cursor = _cursor(next(c for c in ordered if c.priority == "urgent"))
    page = inbox.list_conversations(engine, priority="low", after=urgent_cursor, limit=1000)
    assert [c.id for c in page.items] == [c.id for c in low]
    beyond = f"p|{len(inbox.PRIORITIES)}|{T0.isoformat()}|1"
    assert inbox.list_conversations(engine, after=beyond).items == []
