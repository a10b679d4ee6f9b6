"""The dashboard's rollups (``store/rollup.py``) give exactly the live figures.

Every check runs the whole set of dashboard queries of
``test_dashboard_queries.py`` against a plain-Python reading of the rows, with the
rollups fresh, stale (new mentions past the watermark), dirty (old labels
changed, mentions deleted or anonymised), reset (a redone stage) and refreshed
again, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from test_dashboard_queries import (
    FILTERS,
    SENTIMENTS,
    T0,
    _matches,
    _seed,
    _truth,
    check_queries,
)

from listenwell import store
from listenwell.store import rollup
from listenwell.store.models import (
    MentionRow,
    StatsAuthorRow,
    StatsDailyRow,
    StatsDirtyRow,
    StatsVoiceRow,
)
from listenwell.store.retention import apply_retention

# The windows of FILTERS plus ones that cut through the data and the dirty days.
WINDOWS = [
    *FILTERS,
    store.MentionFilter(start=date(2026, 3, 3), end=date(2026, 3, 15)),
    store.MentionFilter(start=date(2026, 3, 10), sentiments=("negative", "neutral")),
    store.MentionFilter(end=date(2026, 3, 8), topics=("Crashes",), sources=("reddit",)),
]


def _check_all(engine) -> None:
    truth = _truth(engine)
    for f in WINDOWS:
        check_queries(engine, truth, f)


def _coverage(engine) -> rollup.Coverage | None:
    with store.read_connection(engine, 10, snapshot=True) as conn:
        return rollup.coverage(conn, store.MentionFilter())


def _days(engine) -> set[date]:
    return {r["at"].date() for r in _truth(engine)}


def _max_id(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.max(MentionRow.id))).scalar_one())


def _add_mentions(engine, n: int, seed: int) -> list[int]:
    """``n`` new mentions (past the watermark), with labels for most of them."""
    rng = random.Random(seed)
    first = _max_id(engine)
    store.upsert_mentions(
        engine,
        [
            store.Mention(
                source=rng.choice(["x", "reddit"]),
                external_id=f"new-{seed}-{i}",
                created_at=T0 + timedelta(hours=rng.randint(0, 24 * 22)),
                author_handle=rng.choice([None, "@ann", "@zed", "@yan"]),
                text="late again",
            )
            for i in range(n)
        ],
    )
    ids = list(range(first + 1, _max_id(engine) + 1))
    store.upsert_enrichments(
        engine,
        [
            store.EnrichmentResult(i, "sentiment", rng.choice(SENTIMENTS), 0.8, "m", "1")
            for i in ids
            if rng.random() < 0.8
        ]
        + [
            store.EnrichmentResult(i, "themes", rng.choice(["1", "3", "4"]), 0.5, "m", "1")
            for i in ids[::2]
        ],
    )
    return ids


def test_fresh_rollups_serve_every_query_exactly(engine):
    _seed(engine)
    assert _coverage(engine) is None  # never refreshed: every query is live
    report = rollup.refresh(engine)
    assert report.watermark == _max_id(engine) and report.previous == 0
    assert report.days == len(_days(engine))
    cov = _coverage(engine)
    assert cov is not None and cov.watermark == report.watermark and not cov.dirty
    with engine.connect() as conn:
        assert conn.execute(select(func.sum(StatsDailyRow.mentions))).scalar_one() == 160
        assert conn.execute(select(func.count()).select_from(StatsAuthorRow)).scalar_one() > 0
    _check_all(engine)


def test_the_queries_read_the_rollups(engine):
    """A count bumped in the rollup table shows in the figures (so they come from it)."""
    _seed(engine)
    rollup.refresh(engine)
    before = store.overview_counts(engine)["mentions"]
    volume = store.mention_volume(engine, freq="day")["mentions"].sum()
    with engine.begin() as conn:
        row = conn.execute(select(StatsDailyRow.id).limit(1)).scalar_one()
        conn.execute(
            update(StatsDailyRow)
            .where(StatsDailyRow.id == row)
            .values(mentions=StatsDailyRow.mentions + 1000)
        )
    assert store.overview_counts(engine)["mentions"] == before + 1000
    assert store.mention_volume(engine, freq="day")["mentions"].sum() == volume + 1000
    # A filter the rollups do not count (text search) is read live: unaffected.
    assert store.overview_counts(engine, store.MentionFilter(search="e"))["mentions"] <= before


def test_stale_and_dirty_rollups_stay_exact_until_refreshed(engine):
    _seed(engine)
    first = rollup.refresh(engine)
    rng = random.Random(9)
    old = rng.sample(range(1, first.watermark + 1), 25)
    # Old mentions relabelled (their days turn dirty) and new ones past the watermark.
    store.upsert_enrichments(
        engine,
        [
            store.EnrichmentResult(i, "sentiment", rng.choice(SENTIMENTS), 0.7, "m", "2")
            for i in old
        ],
    )
    with engine.connect() as conn:
        dirty = conn.execute(select(func.count()).select_from(StatsDirtyRow)).scalar_one()
    assert 0 < dirty <= len(_days(engine))
    new = _add_mentions(engine, 40, seed=3)
    assert min(new) > first.watermark
    with engine.connect() as conn:  # labels written past the watermark dirty nothing
        assert conn.execute(select(func.count()).select_from(StatsDirtyRow)).scalar_one() == dirty
    _check_all(engine)

    again = rollup.refresh(engine)
    assert again.previous == first.watermark and again.watermark == max(new)
    assert _coverage(engine) == rollup.Coverage(watermark=max(new), dirty=frozenset())
    _check_all(engine)


def test_a_redone_stage_resets_and_a_refresh_recounts(engine):
    _seed(engine)
    rollup.refresh(engine)
    store.delete_enrichments(engine, "sentiment")
    assert _coverage(engine) is None  # reset: live until the next refresh
    _check_all(engine)
    rollup.refresh(engine)
    assert _coverage(engine) is not None
    _check_all(engine)


def test_retention_and_erasure_keep_the_figures_exact(engine):
    _seed(engine)
    rollup.refresh(engine)
    apply_retention(engine, T0 + timedelta(days=4), "delete")
    _check_all(engine)
    apply_retention(engine, T0 + timedelta(days=8), "anonymise")  # authors go
    _check_all(engine)
    rollup.refresh(engine)
    _check_all(engine)


def test_many_dirty_days_fall_back_to_live(engine, monkeypatch):
    _seed(engine)
    rollup.refresh(engine)
    monkeypatch.setattr(rollup, "MAX_DIRTY_DAYS", 2)
    with engine.begin() as conn:
        rollup.mark_dirty(conn, range(1, 161))
    assert _coverage(engine) is None
    _check_all(engine)


def test_refresh_reports_progress_per_run_of_days(engine):
    _seed(engine)
    seen: list[tuple[int, int]] = []
    rollup.refresh(engine, progress=lambda done, total: seen.append((done, total)))
    days = len(_days(engine))
    assert seen and seen[-1] == (days, days)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_runs_split_days_into_consecutive_bounded_runs():
    d = date(2026, 1, 1)
    days = [
        d,
        d + timedelta(days=1),
        d + timedelta(days=3),
        *(d + timedelta(days=10 + i) for i in range(5)),
    ]
    assert list(rollup._runs(days, limit=3)) == [
        (d, d + timedelta(days=1)),
        (d + timedelta(days=3), d + timedelta(days=3)),
        (d + timedelta(days=10), d + timedelta(days=12)),
        (d + timedelta(days=13), d + timedelta(days=14)),
    ]


@pytest.mark.parametrize("hour", [0, 23])
def test_day_boundaries_are_utc(engine, hour):
    """A mention at 00:xx or 23:xx UTC counts on its own UTC day, rolled up or live."""
    at = datetime(2026, 5, 9, hour, 30, tzinfo=UTC)
    store.upsert_mentions(
        engine, [store.Mention(source="x", external_id="b", created_at=at, text="hi")]
    )
    rollup.refresh(engine)
    f = store.MentionFilter(start=at.date(), end=at.date())
    assert store.overview_counts(engine, f)["mentions"] == 1
    day = store.mention_volume(engine, f, freq="day")
    assert day["bucket"].dt.date.tolist() == [at.date()]
    before = store.MentionFilter(end=at.date() - timedelta(days=1))
    assert store.overview_counts(engine, before)["mentions"] == 0


# -- share of voice ------------------------------------------------------------------------

PARTIES = {"Refunds": ["refund"], "Product": ["APP", "battery"], "Silent": [], "Late": ["late"]}
VOICE_WINDOWS = [
    store.MentionFilter(),
    store.MentionFilter(start=date(2026, 3, 4), end=date(2026, 3, 13), sources=("x",)),
    store.MentionFilter(search="late"),  # read live
]


def _voice_truth(engine, parties, f, freq):
    """Per bucket with mentions matching ``f``: how many name each party (case-insensitive)."""
    from collections import defaultdict

    with engine.connect() as conn:
        texts = dict(conn.execute(select(MentionRow.id, MentionRow.text)).all())
    out: dict = defaultdict(lambda: dict.fromkeys(parties, 0))
    for r in _truth(engine):
        if not _matches(r, f):
            continue
        day = r["at"].astimezone(UTC).date()
        if freq == "week":
            day -= timedelta(days=day.weekday())
        row = out[day]
        for name, words in parties.items():
            if any(w.lower() in texts[r["id"]].lower() for w in words):
                row[name] += 1
    return {d: dict(v) for d, v in out.items()}


def _check_voice(engine, parties=PARTIES):
    from listenwell.store.voice import share_of_voice

    for f in VOICE_WINDOWS:
        for freq in ("day", "week"):
            got: dict = {}
            for b, party, n, _share in share_of_voice(engine, parties, f, freq=freq).itertuples(
                index=False
            ):
                got.setdefault(b.date(), {})[party] = int(n)
            assert got == _voice_truth(engine, parties, f, freq), (f, freq)


def test_share_of_voice_from_the_rollups_is_exact(engine):
    from listenwell.store.voice import party_key

    _seed(engine)
    _check_voice(engine)  # live
    report = rollup.refresh(engine, parties=PARTIES)
    assert report.days >= len(_days(engine))
    with engine.connect() as conn:
        keys = rollup.voice_keys(conn)
    assert keys == {party_key(w) for w in PARTIES.values() if party_key(w)}
    _check_voice(engine)
    # Stale and dirty: new mentions, and an old one's text scrubbed by an erasure-like edit.
    _add_mentions(engine, 30, seed=4)
    with engine.begin() as conn:
        rollup.mark_dirty(conn, [1, 2, 3])
        conn.execute(update(MentionRow).where(MentionRow.id.in_([1, 2, 3])).values(text="[erased]"))
    _check_voice(engine)
    rollup.refresh(engine)  # parties=None keeps counting the same parties
    with engine.connect() as conn:
        assert rollup.voice_keys(conn) == keys
    _check_voice(engine)
    # A party that was never counted is read live; a refresh with new parties drops the old.
    _check_voice(engine, {"Refunds": ["refund"], "Where": ["where"]})
    rollup.refresh(engine, parties={"Where": ["where"]})
    with engine.connect() as conn:
        assert rollup.voice_keys(conn) == {party_key(["where"])}
        assert (
            conn.execute(
                select(func.count())
                .select_from(StatsVoiceRow)
                .where(StatsVoiceRow.party_key != party_key(["where"]))
            ).scalar_one()
            == 0
        )
    _check_voice(engine, {"Where": ["where"], "Late": ["LATE"]})


def test_share_of_voice_reads_the_rollup_rows(engine):
    from listenwell.store.voice import party_key, share_of_voice

    _seed(engine)
    rollup.refresh(engine, parties=PARTIES)
    before = share_of_voice(engine, PARTIES, freq="week")
    with engine.begin() as conn:
        row = conn.execute(
            select(StatsVoiceRow.id)
            .where(StatsVoiceRow.party_key == party_key(["refund"]))
            .limit(1)
        ).scalar_one()
        conn.execute(
            update(StatsVoiceRow)
            .where(StatsVoiceRow.id == row)
            .values(mentions=StatsVoiceRow.mentions + 500)
        )
    after = share_of_voice(engine, PARTIES, freq="week")
    refunds = lambda df: int(df[df["party"] == "Refunds"]["mentions"].sum())  # noqa: E731
    assert refunds(after) == refunds(before) + 500


def test_data_range_lists_the_sources_live_and_rolled_up(engine):
    from listenwell.store.queries import data_range

    assert data_range(engine) == (None, None, [])
    _seed(engine)

    def expected():
        truth = _truth(engine)
        ats = [r["at"] for r in truth]
        return min(ats), max(ats), sorted({r["source"] for r in truth})

    assert data_range(engine) == expected()
    rollup.refresh(engine)
    assert data_range(engine) == expected()
    store.upsert_mentions(
        engine,
        [store.Mention(source="appstore", external_id="r1", created_at=T0, text="ok", rating=4)],
    )
    assert "appstore" in data_range(engine)[2]  # past the watermark, read live
    assert data_range(engine) == expected()


def test_theme_sizes_mixes_and_trends_from_the_rollups(engine, monkeypatch):
    from listenwell.store import themes as ts

    _seed(engine)

    def both():
        rolled = (
            [ts.theme_detail(engine, tid, quotes=3) for tid in (1, 2, 3, 4)],
            ts.theme_summaries(engine, statuses=None),
        )
        with monkeypatch.context() as m:
            m.setattr(rollup, "model_counts", lambda *a, **k: None)  # the scans
            live = (
                [ts.theme_detail(engine, tid, quotes=3) for tid in (1, 2, 3, 4)],
                ts.theme_summaries(engine, statuses=None),
            )
        assert rolled == live
        return rolled

    before = both()  # never refreshed: both read live
    rollup.refresh(engine)
    assert both() == before
    assert sum(d.summary.mentions for d in before[0]) > 0
    _add_mentions(engine, 40, seed=5)  # past the watermark
    store.upsert_enrichments(  # an old mention moves theme: its day turns dirty
        engine, [store.EnrichmentResult(7, "themes", "4", 0.9, "m", "2")]
    )
    both()
    rollup.refresh(engine)
    both()
