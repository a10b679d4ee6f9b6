"""Survey import (idempotent, linked, bad rows reported) and the CSAT/NPS trend, on both DBs."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from crm_seed import at, conversation, customer, enrich, mention, survey

from listenwell.store.surveys import csat_nps_trend, import_surveys, survey_frame


@pytest.fixture
def people(engine):
    with engine.begin() as c:
        pk = customer(c, "C1", email="Jo@Example.com")
        twin_a = customer(c, "T1", email="twin@example.com")
        twin_b = customer(c, "T2", email="twin@example.com")
        m1 = mention(c, at(1))
        early = conversation(c, m1, at(1), customer_pk=pk, status="resolved", resolved_at=at(2))
        m2 = mention(c, at(5))
        late = conversation(c, m2, at(5), customer_pk=pk, status="closed", resolved_at=at(6))
        m3 = mention(c, at(7))
        conversation(c, m3, at(7), customer_pk=pk, status="open")
    return {"pk": pk, "early": early, "late": late, "twins": (twin_a, twin_b)}


ROWS = [
    {"customer_id": "C1", "kind": "csat", "score": "5", "answered_at": "2024-05-03T10:00:00Z",
     "external_id": "a1", "comment": "great"},
    {"email": "jo@example.COM", "kind": "NPS", "score": "9", "answered_at": "2024-05-06T13:00:00",
     "external_id": "a2"},
    {"respondent": "C1", "kind": "csat", "score": "2", "answered_at": "2024-05-01T10:00:00Z",
     "external_id": "a3"},
    {"email": "twin@example.com", "kind": "csat", "score": "4",
     "answered_at": "2024-05-03T10:00:00Z", "external_id": "a4"},
    {"customer_id": "nobody", "kind": "nps", "score": "0", "answered_at": "2024-05-03",
     "external_id": "a5"},
    {"customer_id": "C1", "kind": "csat", "score": "6", "answered_at": "2024-05-03"},
    {"customer_id": "C1", "kind": "ces", "score": "3", "answered_at": "2024-05-03"},
    {"customer_id": "C1", "kind": "nps", "score": "7.5", "answered_at": "2024-05-03"},
    {"customer_id": "C1", "kind": "nps", "score": "7", "answered_at": "last week"},
    {"customer_id": "C1", "kind": "nps", "score": "8", "answered_at": "2024-05-08"},
]  # fmt: skip


def test_import_links_and_reports(engine, people):
    result = import_surveys(engine, ROWS, source="typeform")
    assert result.inserted == 6 and result.updated == 0
    assert result.errors == [
        (7, "csat score must be 1 to 5, got 6"),
        (8, "kind must be csat or nps, got 'ces'"),
        (9, "score must be a whole number, got 7.5"),
        (10, "answered_at is not ISO 8601: 'last week'"),
    ]
    assert result.linked_customers == 4  # a1, a2, a3 and the hashed row
    assert result.unknown_respondents == 2  # the twins' shared e-mail, and "nobody"
    df = survey_frame(engine).set_index("external_id")
    assert df.loc["a1", "customer_id"] == "C1"
    assert df.loc["a1", "conversation_id"] == people["early"]  # resolved 2 May, answered 3 May
    assert df.loc["a2", "conversation_id"] == people["late"]  # by e-mail, any case
    assert pd.isna(df.loc["a3", "conversation_id"])  # answered before any resolution
    assert pd.isna(df.loc["a4", "customer_id"])
    hashed = [i for i in df.index if i.startswith("sha1:")]
    assert len(hashed) == 1 and df.loc[hashed[0], "score"] == 8


def test_import_is_idempotent(engine, people):
    import_surveys(engine, ROWS, source="typeform")
    again = import_surveys(engine, ROWS, source="typeform")
    assert again.inserted == 0 and again.updated == 6
    assert len(survey_frame(engine)) == 6
    changed = [dict(ROWS[0], score="3")]
    assert import_surveys(engine, changed, source="typeform").updated == 1
    assert survey_frame(engine).set_index("external_id").loc["a1", "score"] == 3
    # Another source is another key space
    assert import_surveys(engine, ROWS[:1], source="email").inserted == 1


def test_reader_triples_keep_their_line_numbers(engine, people):
    items = [(12, None, "row has 3 fields, the header has 6"), (13, ROWS[0], None)]
    result = import_surveys(engine, items)
    assert result.errors == [(12, "row has 3 fields, the header has 6")]
    assert result.inserted == 1


def test_trend_hand_computed(engine):
    with engine.begin() as c:
        # Week of Monday 6 May: CSAT 5, 4, 2 -> 2 of 3 satisfied = 66.67 %, mean 3.667
        for score, day in ((5, 6), (4, 7), (2, 12)):
            survey(c, "csat", score, at(day))
        # NPS 10, 9, 7, 3 -> 2 promoters, 1 detractor of 4 -> 25
        for score, day in ((10, 6), (9, 8), (7, 9), (3, 10)):
            survey(c, "nps", score, at(day))
        # Week of 13 May: one detractor -> -100
        survey(c, "nps", 6, at(13))
        # Mentions of week 6 May: pos, pos, neg, neutral, unlabelled -> (2-1)/4 = 25
        for label, day in (("positive", 6), ("positive", 7), ("negative", 8), ("neutral", 9)):
            enrich(c, mention(c, at(day)), "sentiment", label)
        mention(c, at(9))
        # Outside the period
        survey(c, "csat", 1, at(30, month=4))
    df = csat_nps_trend(engine, freq="week", start=date(2024, 5, 1), end=date(2024, 5, 31))
    assert list(df["bucket"]) == [date(2024, 5, 6), date(2024, 5, 13)]
    w1, w2 = df.iloc[0], df.iloc[1]
    assert w1["csat_answers"] == 3 and w1["csat"] == pytest.approx(200 / 3)
    assert w1["csat_mean"] == pytest.approx(11 / 3)
    assert (w1["nps_answers"], w1["promoters"], w1["detractors"]) == (4, 2, 1)
    assert w1["nps"] == pytest.approx(25.0)
    assert w1["mentions"] == 4 and w1["net_sentiment"] == pytest.approx(25.0)
    assert w2["nps"] == pytest.approx(-100.0) and w2["csat_answers"] == 0
    monthly = csat_nps_trend(engine, freq="month")
    assert list(monthly["bucket"]) == [date(2024, 4, 1), date(2024, 5, 1)]
    may = monthly.iloc[1]
    assert may["nps"] == pytest.approx(100 * (2 - 2) / 5)
    with pytest.raises(ValueError):
        csat_nps_trend(engine, freq="day")
