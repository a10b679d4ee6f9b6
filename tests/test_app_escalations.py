"""The Escalations page through AppTest, and the care pages' pure chart builders.

The rules in force are saved in the test database with a 24/7 UTC calendar, so
business time is wall-clock time and each conversation's SLA time left follows
from how long ago it was opened.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from app_helpers import app_test
from sqlalchemy import Engine, insert
from streamlit.testing.v1 import AppTest

from listenwell import store
from listenwell.app_pages import charts_care
from listenwell.crm.rules import save_rules
from listenwell.store.models import ConversationRow, EscalationEventRow
from listenwell.store.users import User

REPO = Path(__file__).resolve().parents[1]
PAGE = "app_pages/escalations.py"
HOSTILE = '<script>alert("x")</script> **bold** [link](javascript:alert(1)) <img src=x onerror=1>'
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RULES = f"""
rules:
  - {{name: legal, priority: urgent, escalate: true, when: {{keywords: [lawyer]}}}}
sla:
  timezone: UTC
  hours: {{{", ".join(f"{d}: 00:00-24:00" for d in DAYS)}}}
  holidays: []
  targets:
    urgent: {{first_response_minutes: 60, resolution_minutes: 240}}
    high: {{first_response_minutes: 120, resolution_minutes: 480}}
    normal: {{first_response_minutes: 240, resolution_minutes: 1440}}
    low: {{first_response_minutes: 480, resolution_minutes: 2880}}
"""
LEGAL = {
    "rule": "legal",
    "condition": "keywords",
    "value": "lawyer",
    "threshold": ["lawyer"],
    "contribution": "urgent",
}


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def _conversation(engine: Engine, external_id: str, text: str, **values: Any) -> int:
    now = datetime.now(UTC)
    opened = now - values.pop("age")
    handle = values.pop("handle", "@c")
    store.upsert_mentions(
        engine, [store.Mention("x", external_id, opened, text, author_handle=handle)]
    )
    mid = int(
        store.mentions_frame(engine, limit=100).set_index("external_id").loc[external_id, "id"]
    )
    row = {
        "mention_id": mid,
        "status": "open",
        "priority": "normal",
        "opened_at": opened,
        "created_at": opened,
        "updated_at": opened,
        "tags": [],
        **values,
    }
    with engine.begin() as conn:
        return int(
            conn.execute(insert(ConversationRow.__table__).values(**row)).inserted_primary_key[0]
        )


@pytest.fixture
def queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Six conversations; four belong in the queue. Returns their ids by name."""
    url = f"sqlite:///{tmp_path / 'esc.db'}"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database_url: '{url}'\nbrand: {{name: Acme}}\n", encoding="utf-8")
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    engine = store.connect(url)
    store.upgrade(engine)
    save_rules(engine, RULES, "test")
    store.upsert_customers(engine, [("1", store.Customer("C1", "Jo Doe"))])
    breakdown = {"rule_version": 1, "rules": ["legal"], "reasons": [LEGAL]}
    ids = {
        # urgent, 50 minutes of its 60 left; hostile text
        "fresh": _conversation(
            engine,
            "1",
            HOSTILE,
            age=timedelta(minutes=10),
            priority="urgent",
            escalated=True,
            escalation=breakdown,
            rule_version=1,
            handle="<b>evil</b>",
        ),
        # urgent, 20 minutes left: ahead of the fresher urgent one
        "older": _conversation(
            engine,
            "2",
            "I will call my lawyer",
            age=timedelta(minutes=40),
            priority="urgent",
            escalated=True,
            escalation_level=1,
            escalation=breakdown,
            rule_version=1,
            customer_pk=1,
        ),
        # high and long overdue: after every urgent one all the same
        "overdue": _conversation(
            engine,
            "3",
            "cancel my plan",
            age=timedelta(hours=5),
            priority="high",
            escalated=True,
        ),
        # normal, not escalated by a rule but upgraded by the sweep
        "upgraded": _conversation(
            engine, "4", "where is it", age=timedelta(hours=1), escalation_level=2
        ),
        # neither escalated nor upgraded; and a resolved escalation
        "quiet": _conversation(engine, "5", "thanks", age=timedelta(hours=2), priority="low"),
        "resolved": _conversation(
            engine,
            "6",
            "lawyer again",
            age=timedelta(minutes=50),
            priority="urgent",
            escalated=True,
            status="resolved",
        ),
    }
    t = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(EscalationEventRow.__table__),
            [
                {
                    "conversation_id": ids["older"],
                    "at": t - timedelta(minutes=39),
                    "kind": "escalated",
                    "from_level": 0,
                    "to_level": 0,
                    "priority": "high",
                    "actor": "system:rules",
                    "detail": {"rules": ["legal"], "from_priority": "normal"},
                },
                {
                    "conversation_id": ids["older"],
                    "at": t - timedelta(minutes=20),
                    "kind": "upgraded",
                    "from_level": 0,
                    "to_level": 1,
                    "priority": "urgent",
                    "actor": "system:sla",
                    "detail": {
                        "metric": "first_response",
                        "target_minutes": 120.0,
                        "elapsed_minutes": 121.0,
                        "from_priority": "high",
                    },
                },
            ],
        )
    try:
        yield ids
    finally:
        engine.dispose()


def open_page(role: str = "agent") -> AppTest:
    at = app_test(role)
    at.run()
    assert not at.exception, at.exception
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    return at


TABLES = {
    "queue": lambda df: "time left" in df.columns,
    "post": lambda df: list(df.columns)[:2] == ["source", "author_handle"],
    "reasons": lambda df: "contribution" in df.columns,
    "history": lambda df: "event" in df.columns,
}


def frame(at: AppTest, name: str) -> pd.DataFrame:
    found = [df.value for df in at.dataframe if TABLES[name](df.value)]
    assert len(found) == 1, f"{len(found)} {name} tables"
    return found[0]


def markup(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    parts += [m.label for m in at.metric] + [str(m.value) for m in at.metric]
    return "\n".join(str(p) for p in parts)


def test_queue_is_ordered_by_priority_then_sla_time_left(queue):
    at = open_page()
    table = frame(at, "queue")
    ids = queue
    assert table["conversation_id"].tolist() == [
        ids["older"],
        ids["fresh"],
        ids["overdue"],
        ids["upgraded"],
    ]
    rows = table.set_index("conversation_id")
    assert rows.loc[ids["older"], "priority"] == "urgent"
    assert rows.loc[ids["older"], "time left"] in ("19m", "20m")
    assert rows.loc[ids["fresh"], "time left"] in ("49m", "50m")
    # A 2 h target, 5 h old (the clock is read on a 30 s step).
    assert rows.loc[ids["overdue"], "time left"] in ("overdue 2h 59m", "overdue 3h 00m")
    assert rows.loc[ids["overdue"], "state"] == "breached"
    assert rows.loc[ids["older"], "rules"] == "legal"
    assert rows.loc[ids["upgraded"], "level"] == "supervisor"
    assert rows.loc[ids["older"], "SLA used"] == pytest.approx(100 * 40 / 60, abs=2)

    # Every open conversation, the quiet one last (low priority); never the resolved one.
    at.toggle(key="esc_all").set_value(True).run()
    every = frame(at, "queue")["conversation_id"].tolist()
    assert every[-1] == ids["quiet"] and ids["resolved"] not in every


def test_breakdown_of_why_and_upgrade_history(queue):
    at = open_page()
    # The first in the queue is shown: why it escalated, its clock and its history.
    assert at.selectbox(key="esc_pick").value == queue["older"]
    reasons = frame(at, "reasons")
    assert reasons.to_dict("records") == [
        {
            "rule": "legal",
            "condition": "keywords",
            "value": "lawyer",
            "threshold": "['lawyer']",
            "contribution": "urgent",
        }
    ]
    history = frame(at, "history")
    assert history["event"].tolist() == ["escalated", "upgraded"]
    assert history["by"].tolist() == ["system:rules", "system:sla"]
    upgrade = history["what"].tolist()[1]
    assert "priority high -> urgent" in upgrade and "level none -> priority raised" in upgrade
    assert "first response target 120.0 min, 121.0 min elapsed" in upgrade
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Priority"] == "urgent" and metrics["Level"] == "priority raised"
    assert metrics["Time left"] in ("19m", "20m")

    # Another one: an upgrade by the sweep, no rule fired.
    at.selectbox(key="esc_pick").set_value(queue["upgraded"]).run()
    assert not at.exception
    assert any("No rule fired" in i.value for i in at.info)
    assert any(c.value == "No escalation events yet." for c in at.caption)


def test_one_click_to_the_customer_360_and_to_the_inbox(queue):
    at = open_page()
    at.button(key="esc_open_customer").click().run()
    assert not at.exception, at.exception
    # The Customers page opened and took the agreed hand-off: the linked customer's id.
    assert [t.value for t in at.title] == ["Customers"]
    assert "customer_360_id" not in at.session_state
    assert at.session_state["customers_selected"] == "C1"
    # A conversation without a customer cannot open one.
    at = open_page()
    at.selectbox(key="esc_pick").set_value(queue["overdue"]).run()
    assert at.button(key="esc_open_customer").disabled
    at.button(key="esc_open_inbox").click().run()
    assert not at.exception, at.exception
    assert any(t.value == "Inbox" for t in at.title)
    assert at.selectbox(key="inbox_pick").value == queue["overdue"]


def test_an_analyst_cannot_see_escalations(queue):
    at = app_test("analyst")
    at.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)
    page = AppTest.from_file(str(REPO / PAGE), default_timeout=60)
    page.session_state["listenwell_user"] = User("ana", "analyst")
    page.run()
    assert not page.exception
    assert [e.value for e in page.error] == [
        "Your role (analyst) cannot see the escalation queue. Ask an admin if you need to."
    ]
    assert not page.dataframe


def test_hostile_text_is_data_not_markup(queue):
    at = open_page()
    at.toggle(key="esc_chart").set_value(True).run()
    at.selectbox(key="esc_pick").set_value(queue["fresh"]).run()
    assert not at.exception
    assert HOSTILE in frame(at, "queue")["text"].tolist()
    post = frame(at, "post")
    assert post["text"].tolist() == [HOSTILE] and post["author_handle"].tolist() == ["<b>evil</b>"]
    drawn = markup(at)
    assert "<script>" not in drawn and "evil" not in drawn and "javascript" not in drawn
    # The charts are labelled with case numbers only.
    for chart in at.get("plotly_chart"):
        assert "evil" not in chart.proto.spec and "<script>" not in chart.proto.spec


# ------------------------------------------------------------------------------ chart builders


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0m"),
        (59, "0m"),
        (12 * 60, "12m"),
        (65 * 60, "1h 05m"),
        ((2 * 1440 + 3 * 60 + 5) * 60, "2d 3h"),
        (-35 * 60, "overdue 35m"),
        (-(25 * 60) * 60, "overdue 1d 1h"),
    ],
)
def test_countdown_text(seconds, text):
    assert charts_care.countdown(seconds) == text


def _queue_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "conversation_id": [7, 3, 9],
            "priority": ["urgent", "urgent", "high"],
            "left_minutes": [20.0, 50.0, -180.0],
            "state": ["reminded", "running", "breached"],
        }
    )


def test_sla_countdown_draws_bars_in_queue_order_with_overdue_left_of_zero():
    fig = charts_care.sla_countdown(_queue_frame())
    bars = {trace.name: trace for trace in fig.data}
    assert set(bars) == {"urgent", "high"}
    assert list(bars["urgent"].y) == ["#7", "#3"] and list(bars["urgent"].x) == [20.0, 50.0]
    assert list(bars["high"].x) == [-180.0] and list(bars["high"].text) == ["overdue 3h 00m"]
    # Categories run bottom to top: the first in the queue is drawn at the top.
    assert list(fig.layout.yaxis.categoryarray) == ["#9", "#3", "#7"]
    assert any(shape.x0 == 0 for shape in fig.layout.shapes)  # the "due" line


def test_queue_by_priority_counts_each_state():
    fig = charts_care.queue_by_priority(_queue_frame())
    counts = {(t.name, x): y for t in fig.data for x, y in zip(t.x, t.y, strict=True)}
    assert counts == {
        ("reminded", "urgent"): 1,
        ("running", "urgent"): 1,
        ("breached", "high"): 1,
    }


def test_empty_queue_charts_say_so():
    empty = _queue_frame().iloc[0:0]
    for fig in (charts_care.sla_countdown(empty), charts_care.queue_by_priority(empty)):
        assert not fig.data
        assert fig.layout.annotations[0].text == "Nothing in the queue"
