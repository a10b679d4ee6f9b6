"""Segment rules, members and the churn-risk flag, on both databases."""

from __future__ import annotations

import pandas as pd
import pytest
from crm_seed import at, conversation, correct, customer, enrich, mention, survey

from listenwell.crm.segments import (
    RuleError,
    churn_risk,
    define_segment,
    parse_rule,
    segment_members,
)
from listenwell.store import NotFoundError
from listenwell.store.segments import customer_facts, list_segments

NOW = at(31, 12)


def linked(c, pk, when, sentiment=None, intent=None):
    m = mention(c, when)
    conversation(c, m, when, customer_pk=pk)
    if sentiment:
        enrich(c, m, "sentiment", sentiment)
    if intent:
        enrich(c, m, "intent", intent)
    return m


@pytest.fixture
def crowd(engine):
    with engine.begin() as c:
        angry = customer(
            c, "ANGRY", segment="gold", attributes={"country": "FR", "lifetime_value": "2500"}
        )
        linked(c, angry, at(20), "negative")
        linked(c, angry, at(25), "neutral", intent="complaint")
        linked(c, angry, at(1, month=3), "negative")  # old: outside 30 days
        happy = customer(c, "HAPPY", attributes={"country": "BE", "lifetime_value": 300})
        linked(c, happy, at(20), "positive")
        m = linked(c, happy, at(21), "negative")
        correct(c, m, "sentiment", "positive")  # the label in force is positive
        survey(c, "nps", 3, at(1), customer_pk=happy)
        survey(c, "nps", 9, at(10), customer_pk=happy)  # latest: a promoter
        detractor = customer(c, "DETRACTOR", attributes={"country": "DE"})
        survey(c, "nps", 10, at(1), customer_pk=detractor)
        survey(c, "nps", 4, at(10), customer_pk=detractor)
        sour = customer(c, "SOUR", attributes={})
        linked(c, sour, at(15, month=3), "positive")  # 61-120 days before NOW
        linked(c, sour, at(20), "negative")
        linked(c, sour, at(22), "neutral")
        customer(c, "QUIET")
    return None


def test_facts(engine, crowd):
    facts = customer_facts(engine, now=NOW).set_index("customer_id")
    angry = facts.loc["ANGRY"]
    assert angry["mentions"] == 3 and angry["negative"] == 2 and angry["complaints_30d"] == 2
    assert angry["negative_share"] == pytest.approx(2 / 3) and angry["lifetime_value"] == 2500
    assert facts.loc["HAPPY", "positive_share"] == 1.0
    assert facts.loc["HAPPY", "last_nps"] == 9
    assert facts.loc["QUIET", "mentions"] == 0 and pd.isna(facts.loc["QUIET", "negative_share"])


@pytest.mark.parametrize(
    ("rule", "members"),
    [
        ({"conditions": [{"field": "attributes.country", "op": "eq", "value": "FR"}]}, ["ANGRY"]),
        (
            {"conditions": [{"field": "attributes.country", "op": "in", "value": ["FR", "BE"]}]},
            ["ANGRY", "HAPPY"],
        ),
        (
            {"conditions": [{"field": "lifetime_value", "op": "gte", "value": 300}]},
            ["ANGRY", "HAPPY"],
        ),
        ({"conditions": [{"field": "lifetime_value", "op": "lte", "value": 300}]}, ["HAPPY"]),
        ({"conditions": [{"field": "negative_share", "op": "gte", "value": 0.5}]}, ["ANGRY"]),
        ({"conditions": [{"field": "complaints", "days": 30, "op": "gte", "value": 2}]}, ["ANGRY"]),
        (
            {"conditions": [{"field": "complaints", "days": 100, "op": "gte", "value": 3}]},
            ["ANGRY"],
        ),
        ({"conditions": [{"field": "segment", "op": "eq", "value": "gold"}]}, ["ANGRY"]),
        (
            {
                "match": "any",
                "conditions": [
                    {"field": "segment", "op": "eq", "value": "gold"},
                    {"field": "last_nps", "op": "lte", "value": 6},
                ],
            },
            ["ANGRY", "DETRACTOR"],
        ),
        (
            {
                "conditions": [
                    {"field": "attributes.country", "op": "ne", "value": "FR"},
                    {"field": "mentions", "op": "gte", "value": 1},
                ]
            },
            ["HAPPY", "SOUR"],
        ),
    ],
)  # fmt: skip
def test_members(engine, crowd, rule, members):
    define_segment(engine, "s", rule, actor="ann")
    got = segment_members(engine, "s", now=NOW)
    assert list(got["customer_id"]) == members


def test_define_list_replace_and_errors(engine, crowd):
    define_segment(
        engine,
        "fr",
        '{"conditions": [{"field": "attributes.country", "op": "eq", "value": "FR"}]}',
        actor="ann",
    )  # noqa: E501
    define_segment(
        engine,
        "fr",
        {"conditions": [{"field": "attributes.country", "op": "eq", "value": "BE"}]},
        actor="bob",
    )  # noqa: E501
    (seg,) = list_segments(engine)
    assert seg.name == "fr" and seg.created_by == "ann"
    assert seg.definition["conditions"][0]["value"] == "BE"
    with pytest.raises(NotFoundError):
        segment_members(engine, "nope")
    for bad, message in [
        ("{", "not valid JSON"),
        ("[]", "JSON object"),
        ({"conditions": []}, "non-empty"),
        ({"conditions": [{"field": "age", "op": "eq", "value": 1}]}, "field must be"),
        ({"conditions": [{"field": "mentions", "op": "gt", "value": 1}]}, "op must be"),
        ({"conditions": [{"field": "mentions", "op": "gte", "value": "many"}]}, "needs a number"),
        ({"conditions": [{"field": "segment", "op": "in", "value": "gold"}]}, "list value"),
        ({"conditions": [{"field": "segment", "op": "eq", "value": 1, "days": 3}]}, "days only"),
        ({"match": "most", "conditions": [{"field": "segment", "op": "eq", "value": 1}]}, "match"),
    ]:
        with pytest.raises(RuleError, match=message):
            parse_rule(bad)


def test_churn_risk(engine, crowd):
    df = churn_risk(engine, now=NOW).set_index("customer_id")
    assert df.loc["ANGRY", "churn_risk"]
    assert df.loc["ANGRY", "reasons"][0] == "2 complaints in 30 days"
    assert df.loc["DETRACTOR", "reasons"] == ["NPS detractor (last score 4)"]
    sour = df.loc["SOUR", "reasons"]
    assert len(sour) == 1 and sour[0].startswith("negative trend (50% negative in 60 days, 0%")
    assert not df.loc["HAPPY", "churn_risk"] and df.loc["HAPPY", "reasons"] == []
    assert not df.loc["QUIET", "churn_risk"]
    only = churn_risk(engine, ["HAPPY", "ANGRY"], now=NOW)
    assert sorted(only["customer_id"]) == ["ANGRY", "HAPPY"]
