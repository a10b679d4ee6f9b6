"""Spike alerts against an hour-of-week baseline, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from listenwell import store
from listenwell.store.spikes import mentions_between, spike_alerts, spike_report, terms

START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
WEEKS = 9
SPIKE = datetime(2024, 2, 28, 15, tzinfo=UTC)  # Wednesday of the ninth week
AFTER_SPIKE = datetime(2024, 2, 29, 12, 30, tzinfo=UTC)
MONDAY_PEAK = datetime(2024, 2, 26, 11, 30, tzinfo=UTC)  # just after the weekly peak
WORDS = ["login", "app", "slow", "price", "update", "support", "screen", "battery"]


def usual(t: datetime, week: int) -> int:
    """Mentions in the hour starting at ``t``: busy Monday mornings, quiet otherwise."""
    wobble = week % 3 - 1  # -1, 0, 1: the weeks are not identical
    return 30 + wobble if t.weekday() == 0 and t.hour in (9, 10) else 3 + wobble


def history(spike: bool = True) -> list[store.Mention]:
    """Nine weeks of hourly mentions with a weekly peak, and a spike with its own words,
    source and author on the last Wednesday at 15:00."""
    out = []
    n = 0
    end = START + timedelta(weeks=WEEKS)
    t = START
    while t < end:
        week = (t - START).days // 7
        for k in range(usual(t, week)):
            n += 1
            text = f"Acme {WORDS[n % len(WORDS)]} {WORDS[(n // 8) % len(WORDS)]} https://t.co/x{n}"
            source = "appstore" if n % 5 == 0 else "x"
            when = t + timedelta(minutes=(7 * k) % 60)
            out.append(store.Mention(source, f"m{n}", when, text, author_handle=f"@u{n % 40}"))
        t += timedelta(hours=1)
    if spike:
        for k in range(40):
            author = "@angry" if k % 2 == 0 else f"@newbie{k}"
            text = "Acme outage again, refund please! https://status.example/outage"
            when = SPIKE + timedelta(minutes=k)
            out.append(store.Mention("reddit", f"s{k}", when, text, author_handle=author))
    return out


@pytest.fixture
def seeded(engine):
    store.upsert_mentions(engine, history())
    return engine


def test_spike_is_found_at_its_hour_and_says_what_changed(seeded):
    report = spike_report(seeded, now=AFTER_SPIKE)
    assert len(report.alerts) == 1
    (alert,) = report.alerts
    assert alert.hour == SPIKE
    assert alert.observed == usual(SPIKE, 8) + 40
    assert alert.expected == pytest.approx(3.0, abs=1.0)
    assert alert.score >= 3.0 and alert.hours == 1 and alert.baseline_weeks == 8

    changed = alert.what_changed
    found = {t.term: t for t in changed.terms}
    assert {"outage", "refund"} <= set(found)
    assert found["outage"].new and found["outage"].spike == 40
    assert "acme" not in found  # in every mention, spike or not
    assert not {"please", "again", "https", "status"} & set(found)  # stop words and URLs
    assert changed.sources[0].source == "reddit"
    assert changed.sources[0].baseline_share == 0.0 and changed.sources[0].spike_share > 80
    assert changed.authors[0].author == "@angry"
    assert changed.authors[0].mentions == 20 and changed.authors[0].new
    assert "outage (new)" in changed.summary() and "@angry ×20 (new)" in changed.summary()

    # Every hour of the window is scored; only the spike hour is flagged.
    assert len(report.hours) == 48
    assert report.hours.loc[report.hours["flagged"], "hour"].tolist() == [SPIKE]


def test_the_weekly_peak_is_expected_not_an_alert(seeded):
    report = spike_report(seeded, now=MONDAY_PEAK)
    assert report.alerts == ()
    peak = report.hours.set_index("hour").loc[MONDAY_PEAK.replace(minute=0) - timedelta(hours=2)]
    assert peak["observed"] >= 29 and peak["expected"] >= 29  # ten times a usual hour
    assert peak["score"] < 1.0
    # A baseline of the hours before it (not the same hour of the week) would have flagged it.
    day_before = report.hours.iloc[:24]["observed"]
    assert peak["observed"] > 5 * day_before.median()


def test_filters_narrow_the_counts(seeded):
    # The spike came from reddit: among the other sources' mentions there is none.
    assert (
        spike_alerts(seeded, store.MentionFilter(sources=("x", "appstore")), now=AFTER_SPIKE) == []
    )
    # A term nobody used before: its baseline is eight weeks of zeros, not "no baseline".
    (alert,) = spike_alerts(seeded, store.MentionFilter(search="OUTAGE"), now=AFTER_SPIKE)
    assert (alert.hour, alert.observed, alert.expected) == (SPIKE, 40, 0.0)


def test_label_filters_count_only_those_mentions(seeded):
    spike_hour = mentions_between(seeded, store.MentionFilter(), SPIKE, SPIKE + timedelta(hours=1))
    store.upsert_enrichments(
        seeded,
        [
            store.EnrichmentResult(int(i), "sentiment", "negative", 0.9, "t", "1")
            for i, src in zip(spike_hour["id"], spike_hour["source"], strict=True)
            if src == "reddit"
        ],
    )
    negative = store.MentionFilter(sentiments=("negative",))
    (alert,) = spike_alerts(seeded, negative, now=AFTER_SPIKE)
    assert (alert.hour, alert.observed, alert.expected) == (SPIKE, 40, 0.0)
    assert spike_alerts(seeded, store.MentionFilter(sentiments=("positive",))) == []


def test_default_now_is_the_newest_mention(seeded):
    report = spike_report(seeded)
    assert report.now == max(m.created_at for m in history())
    assert report.hours["hour"].iloc[-1] == report.now.replace(minute=0)


def test_a_short_history_is_not_scored(engine):
    store.upsert_mentions(
        engine,
        [m for m in history() if m.created_at >= SPIKE - timedelta(days=8)],
    )
    report = spike_report(engine, now=AFTER_SPIKE)
    assert report.alerts == ()  # one baseline week is fewer than min_weeks (2)
    assert report.hours["score"].isna().all()
    one_week = spike_report(engine, now=AFTER_SPIKE, min_weeks=1)
    assert [a.hour for a in one_week.alerts] == [SPIKE]


def test_empty_database_gives_no_alerts(engine):
    report = spike_report(engine)
    assert report.now is None and report.alerts == () and report.hours.empty
    assert spike_alerts(engine) == []


def test_bad_arguments_are_refused(engine):
    with pytest.raises(ValueError, match="window_hours"):
        spike_report(engine, window_hours=0)


def test_mentions_between_lists_the_spike_hour(seeded):
    rows = mentions_between(seeded, store.MentionFilter(), SPIKE, SPIKE + timedelta(hours=1))
    assert len(rows) == usual(SPIKE, 8) + 40
    assert rows["created_at"].is_monotonic_decreasing
    assert rows["created_at"].min() >= SPIKE
    assert rows["created_at"].max() < SPIKE + timedelta(hours=1)
    narrowed = mentions_between(
        seeded,
        store.MentionFilter(sources=("reddit",)),
        SPIKE,
        SPIKE + timedelta(hours=1),
        keywords=["REFUND"],
        limit=5,
    )
    assert len(narrowed) == 5 and set(narrowed["source"]) == {"reddit"}
    assert narrowed["text"].str.contains("refund").all()


def test_terms_drop_urls_stop_words_and_numbers():
    got = terms("Why is the #Outage back?? See https://x.co/abc and www.acme.com, @AcmeHelp 2024 x")
    assert got == {"#outage", "back", "@acmehelp"}
    assert terms("") == set()
