"""``store.themes.theme_quotes``: a period's quotes per theme, by ``theme_detail``'s rule."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from listenwell.store import themes as ts
from listenwell.store.models import EnrichmentRow, MentionRow, ThemeRow

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _add(c: Any, n: int, when: datetime, text: str, theme: int | None, score: float | None) -> int:
    mid = int(
        c.execute(
            insert(MentionRow.__table__).values(
                source="x", external_id=f"m{n}", created_at=when, text=text, author_handle="@a"
            )
        ).inserted_primary_key[0]
    )
    for stage, label, value in (
        ("themes", None if theme is None else str(theme), score),
        ("sentiment", ("negative", "neutral", "positive")[n % 3], 0.8),
    ):
        c.execute(
            insert(EnrichmentRow.__table__).values(
                mention_id=mid,
                stage=stage,
                label=label,
                score=value,
                model_name="test",
                model_version="1",
            )
        )
    return mid


def _seed(engine: Engine) -> tuple[list[int], list[dict[str, Any]]]:
    """Three themes over 60 days: random scores (with ties), copies of one text, and
    unthemed mentions; returns the theme ids and every themed mention."""
    rng = random.Random(5)
    rows: list[dict[str, Any]] = []
    with engine.begin() as c:
        themes = [c.execute(insert(ThemeRow.__table__).values(label=f"t{i}")) for i in range(3)]
        ids = [int(t.inserted_primary_key[0]) for t in themes if t.inserted_primary_key]
        for n in range(400):
            theme = rng.choice([*ids, None])
            when = T0 + timedelta(days=rng.randrange(60), minutes=rng.randrange(1440))
            copy = theme == ids[0] and n % 4 == 0
            # Theme 0's best-scored mentions are mostly copies of one text, in varied case.
            text = ("Late  PARCEL again" if n % 8 else "late parcel AGAIN") if copy else f"post {n}"
            score = 0.99 if copy else round(rng.uniform(0.2, 0.95), 2)
            mid = _add(c, n, when, text, theme, score)
            if theme is not None:
                rows.append({"id": mid, "theme": theme, "at": when, "text": text, "score": score})
    return ids, rows


def _expected(rows: list[dict[str, Any]], theme: int, start: date, end: date, k: int) -> list[int]:
    chosen: list[int] = []
    seen: set[str] = set()
    inside = [r for r in rows if r["theme"] == theme and start <= r["at"].date() <= end]
    for r in sorted(inside, key=lambda r: (-r["score"], r["id"])):
        key = " ".join(r["text"].lower().split())
        if key not in seen and len(chosen) < k:
            seen.add(key)
            chosen.append(r["id"])
    return chosen


@pytest.fixture(params=["walk", "rank"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways to find a period's quotes: down the score index per theme (long periods),
    or ranking the period's mentions (short ones), forced for every period."""
    monkeypatch.setattr(ts, "WALK_DAYS", 1 if request.param == "walk" else 10**6)
    return str(request.param)


def test_quotes_are_the_periods_nearest_mentions_copies_once(engine: Engine, strategy: str) -> None:
    ids, rows = _seed(engine)
    for start, end in [
        (date(2024, 5, 1), date(2024, 6, 29)),
        (date(2024, 5, 10), date(2024, 5, 24)),
        (date(2024, 6, 3), date(2024, 6, 3)),
    ]:
        for k in (1, 3, 7):
            got = ts.theme_quotes(engine, [*ids, 999], start, end, per_theme=k)
            assert list(got) == [*ids, 999] and got[999] == []
            for tid in ids:
                assert [q.mention_id for q in got[tid]] == _expected(rows, tid, start, end, k)
                assert all(start <= q.created_at.date() <= end for q in got[tid])
    # Theme 0 has many copies ranked first: its one-text quote appears once, then the rest.
    whole = ts.theme_quotes(engine, ids[:1], date(2024, 5, 1), date(2024, 6, 29), per_theme=3)
    first = whole[ids[0]]
    assert len(first) == 3 and first[0].text.lower().split() == ["late", "parcel", "again"]
    assert first[0].similarity == 0.99 and first[0].sentiment in ("negative", "neutral", "positive")
    assert ts.theme_quotes(engine, ids, date(2024, 9, 1), date(2024, 9, 30)) == {i: [] for i in ids}


def test_over_all_time_the_quotes_are_theme_details(engine: Engine, strategy: str) -> None:
    """Over a period that holds every mention, the rule is theme_detail's exactly
    (including a mention without a score, wherever the database sorts NULL)."""
    ids, _ = _seed(engine)
    with engine.begin() as c:
        _add(c, 1000, T0 + timedelta(days=3), "no score", ids[1], None)
    got = ts.theme_quotes(engine, ids, date(2024, 4, 1), date(2024, 7, 31), per_theme=6)
    for tid in ids:
        assert got[tid] == ts.theme_detail(engine, tid, quotes=6).quotes
