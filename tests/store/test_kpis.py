"""Every KPI against hand-computed values, on both databases."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from crm_seed import at, conversation, correct, enrich, mention, survey

from listenwell.config.settings import BrandSettings
from listenwell.store.kpis import KPI_UNITS, kpi_frame, kpis

MAY = {"start": date(2024, 5, 1), "end": date(2024, 5, 31)}
NOW = at(31, 23)
BRAND = BrandSettings(
    name="Acme", keywords=["acme", "#AcmeCare"], competitors={"Globex": ["globex"], "Initech": []}
)


@pytest.fixture
def period(engine):
    with engine.begin() as c:
        # Five answered conversations: first responses after 1, 2, 3, 4 and 10 minutes
        for i, minutes in enumerate((1, 2, 3, 4, 10)):
            opened = at(2 + i)
            conversation(
                c,
                mention(c, opened, "Acme parcel late"),
                opened,
                status="resolved",
                first_response_at=opened + timedelta(minutes=minutes),
                resolved_at=opened + timedelta(hours=minutes),
                priority="urgent" if i == 4 else "normal",
            )
        # Unanswered: one urgent past its 30 min target, one normal still inside its 4 h
        conversation(c, mention(c, at(20), "globex is better"), at(20), priority="urgent")
        conversation(c, mention(c, at(31, 22), "GLOBEX and acme"), at(31, 22), status="pending")
        # Opened in April: not in the period, but in the backlog
        conversation(c, mention(c, at(30, month=4), "old"), at(30, month=4), status="open")
        # Sentiment of May mentions: pos, pos (corrected from neg), neg, neutral
        ms = [mention(c, at(10), "#acmecare thanks"), mention(c, at(11)), mention(c, at(12))]
        enrich(c, ms[0], "sentiment", "positive")
        enrich(c, ms[1], "sentiment", "negative")
        correct(c, ms[1], "sentiment", "positive")
        enrich(c, ms[2], "sentiment", "negative")
        enrich(c, mention(c, at(13)), "sentiment", "neutral")
        for score in (5, 4, 3, 1):
            survey(c, "csat", score, at(15))
        for score in (10, 9, 8, 6, 0):
            survey(c, "nps", score, at(16))
        survey(c, "csat", 5, at(1, month=6))  # outside
    return None


def test_kpis_hand_computed(engine, period):
    k = kpis(engine, **MAY, brand_settings=BRAND, now=NOW)
    # First response, seconds: 60, 120, 180, 240, 600 -> median 180; p90 = 240 + 0.6 * 360
    assert k["first_responses"] == 5
    assert k["first_response_median_s"] == 180
    assert k["first_response_p90_s"] == pytest.approx(456)
    # Resolution: 1, 2, 3, 4, 10 hours
    assert k["resolution_median_s"] == 3 * 3600
    assert k["resolution_p90_s"] == pytest.approx((4 + 0.6 * 6) * 3600)
    # SLA: four normal answered within 4 h, the urgent one answered in 10 min (within 30),
    # the unanswered urgent breached, the pending normal not yet decided -> 5 / 6
    assert (k["sla_met"], k["sla_breached"]) == (5, 1)
    assert k["sla_compliance"] == pytest.approx(500 / 6)
    # Backlog now: the new urgent, the pending one, the April open one
    assert k["backlog"] == 3
    # CSAT 5, 4, 3, 1 -> 2 of 4 satisfied = 50 %, mean 3.25
    assert (k["csat"], k["csat_mean"], k["csat_answers"]) == (50.0, 3.25, 4)
    # NPS 10, 9, 8, 6, 0 -> (2 - 2) / 5 = 0
    assert (k["nps"], k["nps_answers"]) == (0.0, 5)
    # Net sentiment: 2 positive, 1 negative, 1 neutral of 4 -> 25
    assert (k["net_sentiment"], k["sentiment_mentions"]) == (25.0, 4)
    # Volume: 5 + 2 + 4 = 11 May mentions over 31 days
    assert k["mentions"] == 11 and k["mentions_per_day"] == pytest.approx(11 / 31)
    # Share of voice: Acme in 5 parcel posts + "#acmecare" + "GLOBEX and acme" = 7;
    # Globex 2; Initech (its own name) 0
    sov = k["share_of_voice"]
    assert {p: v["mentions"] for p, v in sov.items()} == {"Acme": 7, "Globex": 2, "Initech": 0}
    assert sov["Acme"]["share"] == pytest.approx(700 / 9)


def test_sla_targets_are_a_parameter(engine, period):
    tight = {"urgent": 60.0, "high": 60.0, "normal": 150.0, "low": 60.0}
    k = kpis(engine, **MAY, brand_settings=BRAND, now=NOW, targets=tight)
    # normal within 150 s: 60, 120 met; 180, 240 breached; urgent 600 > 60 breached;
    # unanswered urgent breached; the pending normal (1 h old at NOW) breached
    assert (k["sla_met"], k["sla_breached"]) == (2, 5)


def test_empty_period_and_bad_period(engine):
    k = kpis(engine, start=date(2020, 1, 1), end=date(2020, 1, 1), brand_settings=BRAND)
    assert k["first_response_median_s"] is None and k["sla_compliance"] is None
    assert k["csat"] is None and k["nps"] is None and k["net_sentiment"] is None
    assert k["mentions"] == 0 and k["share_of_voice"]["Acme"]["share"] is None
    with pytest.raises(ValueError):
        kpis(engine, start=date(2020, 1, 2), end=date(2020, 1, 1), brand_settings=BRAND)


def test_kpi_frame_rows(engine, period):
    df = kpi_frame(engine, **MAY, brand_settings=BRAND, now=NOW)
    assert list(df.columns) == ["kpi", "value", "unit", "period"]
    assert set(KPI_UNITS) <= set(df["kpi"])
    assert set(df["period"]) == {"2024-05-01..2024-05-31"}
    row = df.set_index("kpi").loc["nps"]
    assert row["value"] == 0.0 and row["unit"] == "score -100..100"
    assert df.set_index("kpi").loc["voice_mentions:Globex", "value"] == 2
