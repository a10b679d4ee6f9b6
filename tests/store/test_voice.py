"""Share of voice per week, counted in SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest

from listenwell import store
from listenwell.store.kpis import kpis
from listenwell.store.voice import share_of_voice, voice_parties

W1 = datetime(2024, 6, 3, 12, tzinfo=UTC)  # a Monday
W2 = W1 + timedelta(weeks=1)
BRAND = SimpleNamespace(
    name="Acme",
    keywords=["acme", "@AcmeHelp"],
    competitors={"Globex": ["globex"], "100% Co": ["100%"], "Initech": []},
)


@pytest.fixture
def seeded(engine):
    texts = [
        (W1, "x", "ACME is great"),
        (W1 + timedelta(days=2), "x", "@acmehelp my order?"),
        (W1 + timedelta(days=3), "reddit", "acme vs globex, who wins"),  # both parties
        (W1 + timedelta(days=4), "x", "GLOBEX down"),
        (W1 + timedelta(days=5), "x", "nothing to see"),
        (W2, "x", "globex again"),
        (W2 + timedelta(hours=1), "x", "100 percent Co"),  # not "100%": % is literal
        (W2 + timedelta(hours=2), "x", "we are 100% sure"),
        (W2 + timedelta(hours=3), "x", "initech"),  # Initech has no keywords: its name
    ]
    store.upsert_mentions(
        engine,
        [store.Mention(src, str(i), t, text) for i, (t, src, text) in enumerate(texts)],
    )
    return engine


def test_parties_come_from_the_brand_settings():
    parties = voice_parties(BRAND)
    assert list(parties) == ["Acme", "Globex", "100% Co", "Initech"]
    assert parties["Acme"] == ("acme", "@AcmeHelp") and parties["Initech"] == ("Initech",)
    no_keywords = SimpleNamespace(name="Acme", keywords=[], competitors={})
    assert voice_parties(no_keywords) == {"Acme": ("Acme",)}


def test_weekly_mentions_and_shares(seeded):
    df = share_of_voice(seeded, voice_parties(BRAND))
    got = {(r.bucket.date(), r.party): (r.mentions, r.share) for r in df.itertuples()}
    w1, w2 = W1.date(), W2.date()
    assert got[(w1, "Acme")] == (3, 60.0)  # case-insensitive; a mention of both counts for both
    assert got[(w1, "Globex")] == (2, 40.0)
    assert got[(w1, "100% Co")][0] == 0 and got[(w1, "Initech")][0] == 0
    assert got[(w2, "Globex")][0] == 1 and got[(w2, "100% Co")][0] == 1
    assert got[(w2, "Initech")][0] == 1 and got[(w2, "Acme")][0] == 0
    assert list(df.columns) == ["bucket", "party", "mentions", "share"]
    assert df["party"].tolist()[:4] == ["Acme", "Globex", "100% Co", "Initech"]  # kept in order


def test_totals_agree_with_the_kpis(seeded):
    df = share_of_voice(seeded, voice_parties(BRAND))
    period = kpis(seeded, start=date(2024, 6, 1), end=date(2024, 6, 30), brand_settings=BRAND)
    expected = {p: v["mentions"] for p, v in period["share_of_voice"].items()}
    assert df.groupby("party")["mentions"].sum().to_dict() == expected


def test_filters_apply_and_no_match_is_empty(seeded):
    reddit = share_of_voice(seeded, voice_parties(BRAND), store.MentionFilter(sources=("reddit",)))
    assert reddit.groupby("party")["mentions"].sum().to_dict() == {
        "Acme": 1,
        "Globex": 1,
        "100% Co": 0,
        "Initech": 0,
    }
    late = store.MentionFilter(start=date(2025, 1, 1))
    assert share_of_voice(seeded, voice_parties(BRAND), late).empty


def test_a_bucket_without_any_party_has_no_share(engine):
    store.upsert_mentions(engine, [store.Mention("x", "1", W1, "unrelated")])
    df = share_of_voice(engine, {"Acme": ["acme"]}, freq="day")
    assert df["mentions"].tolist() == [0] and math.isnan(df["share"].iloc[0])
    with pytest.raises(ValueError, match="freq"):
        share_of_voice(engine, {"Acme": ["acme"]}, freq="month")
