"""The Customers page through AppTest: search, the 360, merging, consent, export, erasure, roles.

The database holds the 300 demo customers, a timeline for Ravi Urban (C00236),
two records of one person (D1, D2) and a customer with a hostile name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from app_helpers import app_test, open_page
from sqlalchemy import select
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from listenwell import store
from listenwell.app_pages import charts_crm
from listenwell.collectors.files import read_customers
from listenwell.store.customer360 import SatisfactionPoint, TimelineEvent
from listenwell.store.models import AuditRow, CustomerRow
from listenwell.store.users import User
from tests.store.crm_seed import (
    at,
    conversation,
    customer,
    escalation,
    handle,
    mention,
    note,
    reply,
    survey,
)

REPO = Path(__file__).resolve().parents[1]
PAGE = "app_pages/customers.py"
HOSTILE = '<script>alert("x")</script> **bold** [link](javascript:alert(1))'
A = AuditRow.__table__
C = CustomerRow.__table__


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The configured database's engine, seeded (see the module docstring)."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    eng = store.connect(url)
    store.upgrade(eng)
    rows = read_customers(REPO / "demo" / "data" / "customers.csv")
    store.upsert_customers(eng, ((str(n), c) for n, c, _ in rows if c is not None))
    with eng.begin() as c:
        ravi = c.execute(select(C.c.id).where(C.c.customer_id == "C00236")).scalar_one()
        m1 = mention(c, at(2), "my order is late again", author="@RaviUrban12")
        conv = conversation(c, m1, at(2), customer_pk=ravi, status="resolved")
        reply(c, conv, at(2, 13), "so sorry, we are on it")
        note(c, conv, at(2, 14), "courier lost it")
        escalation(c, conv, at(2, 15))
        survey(c, "csat", 2, at(3), customer_pk=ravi, conversation_id=conv, comment="slow")
        survey(c, "nps", 9, at(4), customer_pk=ravi)
        mention(c, at(5), "the new app is great", author="@RaviUrban12")
        customer(
            c,
            "D1",
            name="Jonathan Smithers",
            email="jonathan.smithers@example.com",
            phone="+1 415 555 0101",
        )
        d2 = customer(
            c,
            "D2",
            name="Jon Smithers",
            email="jonathan.smithers+shop@example.com",
            phone="(415) 555-0101",
        )
        handle(c, d2, "x", "@jsmithers")
        m2 = mention(c, at(6), "where is my refund", author="@jsmithers")
        conversation(c, m2, at(6), customer_pk=d2)
        customer(c, "H1", name=HOSTILE, email="hostile@example.com")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database_url: '{url}'\nbrand: {{name: Acme}}\n", encoding="utf-8")
    monkeypatch.setenv("LISTENWELL_CONFIG", str(cfg))
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], Any]]:
    """``file name -> callable giving the bytes`` of each download button drawn."""
    found: dict[str, Callable[[], Any]] = {}
    add, add_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def record(self, data, mimetype, coordinates, file_name=None, **kw):
        if file_name is not None:  # the page icon is a media file too, but no download
            found[str(file_name)] = lambda: data
        return add(self, data, mimetype, coordinates, file_name=file_name, **kw)

    def record_deferred(self, fn, mimetype, coordinates, file_name=None, **kw):
        found[str(file_name)] = fn
        return add_deferred(self, fn, mimetype, coordinates, file_name=file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add", record)
    monkeypatch.setattr(MediaFileManager, "add_deferred", record_deferred)
    return found


def page(role: str = "admin") -> AppTest:
    return open_page(app_test(role), PAGE)


def search(at: AppTest, query: str) -> pd.DataFrame:
    at.text_input(key="customers_query").input(query).run()
    assert not at.exception, at.exception
    return frame(at, "matched")


def frame(at: AppTest, column: str) -> pd.DataFrame:
    """The first table with ``column`` (empty if none)."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    return found[0] if found else pd.DataFrame()


def open_360(at: AppTest, customer_id: str) -> AppTest:
    search(at, customer_id)
    at.selectbox(key="customers_pick").select(customer_id).run()
    assert not at.exception, at.exception
    return at


def markup(at: AppTest) -> str:
    """Everything drawn through a markdown-capable element."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.error] + [s.value for s in at.success]
    parts += [i.value for i in at.info] + [w.value for w in at.warning]
    parts += [m.label for m in at.metric] + [m.value for m in at.metric]
    return "\n".join(str(p) for p in parts)


def audit(db: Any, action: str) -> list[Any]:
    with db.connect() as c:
        return c.execute(select(A).where(A.c.action == action).order_by(A.c.id)).all()


# ------------------------------------------------------------------ search and the 360


def test_search_by_misspelt_name_email_phone_and_handle(db):
    at = page("agent")
    for query, expected, matched in [
        ("ravi urbn", "C00236", "name"),
        ("jude.gomez@example.com", "C00001", "email"),
        ("303 555 0199", "C00236", "phone"),  # stored as +1-303-555-0199
        ("@raviurban12", "C00236", "handle"),
        ("u/gusreed", "C00120", "handle"),
    ]:
        hits = search(at, query)
        assert hits.iloc[0]["customer_id"] == expected, query
        assert hits.iloc[0]["matched"] == matched
    hits = search(at, "zzqxv nobody")
    assert hits.empty and "No customer matches" in markup(at)


def test_360_shows_profile_timeline_surveys_and_escalations(db):
    at = open_360(page("agent"), "C00236")
    assert not at.error
    assert any(t.value.startswith("C00236  Ravi Urban") for t in at.text)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {
        "Lifetime value": "2,117.99",
        "Mentions": "2",
        "Surveys": "2",
        "Escalation events": "1",
    }
    profile = json.loads(at.json[0].value)
    assert profile["email"] == "ravi.urban@example.com" and profile["handles"] == ["x:@RaviUrban12"]
    timeline = frame(at, "kind")
    assert set(timeline["kind"]) == {"mention", "reply", "note", "survey", "escalation"}
    assert timeline.iloc[0]["text"] == "the new app is great"  # newest first
    assert "courier lost it" in timeline["text"].tolist()
    surveys = frame(at, "answer")
    assert sorted(surveys["answer"]) == ["CSAT 2/5: slow", "NPS 9/10"]
    assert len(frame(at, "escalation")) == 1
    assert len(at.get("plotly_chart")) == 2
    # Narrow the timeline to one kind.
    at.multiselect(key="customers_kinds").select("survey").run()
    assert set(frame(at, "kind")["kind"]) == {"survey"}


def test_escalations_hand_off_opens_the_360(db):
    at = app_test("agent")
    at.run()
    at.session_state["customer_360_id"] = "C00236"
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert any(t.value.startswith("C00236  Ravi Urban") for t in at.text)
    assert "customer_360_id" not in at.session_state  # used once
    at.run()  # stays open on the next run
    assert any(t.value.startswith("C00236") for t in at.text)


def test_a_customer_that_is_gone_is_a_message(db):
    at = app_test("agent")
    at.run()
    at.session_state["customer_360_id"] = "NO-SUCH"
    at.switch_page(PAGE).run()
    assert not at.exception and not at.error
    assert "no longer exists" in at.warning[0].value


def test_hostile_customer_name_stays_data(db):
    at = page("admin")
    hits = search(at, "hostile@example.com")
    assert hits.iloc[0]["name"] == HOSTILE
    at.selectbox(key="customers_pick").select("H1").run()
    assert not at.exception
    assert any(HOSTILE in t.value for t in at.text)
    assert json.loads(at.json[0].value)["name"] == HOSTILE
    shown = markup(at)
    assert "<script>" not in shown and "javascript:" not in shown and "**bold**" not in shown


# ------------------------------------------------------------------ duplicates and merge


def test_duplicate_suggestion_and_merge(db):
    at = open_360(page("manager"), "D1")
    dupes = frame(at, "reasons")
    assert dupes.iloc[0][["customer_id_a", "customer_id_b"]].tolist() == ["D1", "D2"]
    assert dupes.iloc[0]["score"] >= 0.6 and "same phone" in dupes.iloc[0]["reasons"]
    pick = next(s for s in at.selectbox if s.label == "Duplicate to merge")
    pick.select("D2").run()
    keep = next(s for s in at.selectbox if s.label == "Keep")
    assert keep.value == "D1"
    next(b for b in at.button if b.label == "Merge the two customers").click().run()
    assert not at.exception, at.exception
    assert "Merged" in at.success[0].value
    with db.connect() as c:
        assert c.execute(select(C.c.id).where(C.c.customer_id == "D2")).first() is None
    (entry,) = audit(db, "customer.merge")
    assert entry.actor == "user:test-manager" and entry.entity_id == "D1"
    # The survivor's 360 now holds the duplicate's conversation and handle.
    assert any(t.value.startswith("D1  Jonathan Smithers") for t in at.text)
    assert "where is my refund" in frame(at, "kind")["text"].tolist()
    assert json.loads(at.json[0].value)["handles"] == ["x:@jsmithers"]


def test_all_duplicates_list_and_agents_cannot_merge(db):
    at = page("agent")
    at.toggle(key="customers_all_dupes").set_value(True).run()
    pairs = frame(at, "reasons")
    assert ("D1", "D2") in set(zip(pairs["customer_id_a"], pairs["customer_id_b"], strict=True))
    at.selectbox(key="customers_pair_pick").select_index(
        pairs.index[(pairs["customer_id_a"] == "D1") & (pairs["customer_id_b"] == "D2")][0]
    ).run()
    assert not [b for b in at.button if b.label == "Merge the two customers"]
    assert "A manager or an admin can merge" in markup(at)


# ------------------------------------------------------------------ privacy actions


def test_admin_sets_consent(db):
    at = open_360(page("admin"), "C00236")
    marketing = next(s for s in at.selectbox if s.label == "Marketing")
    assert marketing.value == "unknown"
    marketing.select("given")
    next(s for s in at.selectbox if s.label == "Contact (surveys)").select("refused")
    next(b for b in at.button if b.label == "Save consent").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value == "Consent saved."
    with db.connect() as c:
        row = c.execute(select(C).where(C.c.customer_id == "C00236")).one()
    assert (row.consent_marketing, row.consent_contact, row.consent_profiling) == (
        True,
        False,
        None,
    )
    (entry,) = audit(db, "customer.consent")
    assert entry.actor == "user:test-admin"
    assert entry.detail == {"changes": {"contact": [None, False], "marketing": [None, True]}}
    assert json.loads(at.json[0].value)["consent"] == {
        "contact": "refused",
        "marketing": "given",
        "profiling": "unknown",
    }


def test_admin_exports_the_persons_json(db, downloads):
    at = open_360(page("admin"), "C00236")
    assert [d.label for d in at.download_button] == [
        "Download everything held about this customer (JSON)"
    ]
    assert not audit(db, "customer.export")  # nothing is exported until the click
    data = json.loads(downloads["customer-C00236.json"]())
    assert data["format"] == "listenwell.person/1"
    assert data["customer"]["customer_id"] == "C00236"
    assert {m["text"] for m in data["mentions"]} == {
        "my order is late again",
        "the new app is great",
    }
    assert len(data["surveys"]) == 2 and data["conversations"][0]["notes"][0]["body"] == (
        "courier lost it"
    )
    (entry,) = audit(db, "customer.export")
    assert entry.actor == "user:test-admin" and entry.detail["mentions"] == 2


def test_admin_erases_after_typing_the_id(db):
    at = open_360(page("admin"), "C00236")
    erase = next(b for b in at.button if b.label == "Erase this customer")
    assert erase.disabled
    confirm = next(t for t in at.text_input if t.label == "Type the customer id to confirm")
    confirm.input("C00237").run()
    erase = next(b for b in at.button if b.label == "Erase this customer")
    assert erase.disabled
    with db.connect() as c:
        assert c.execute(select(C.c.id).where(C.c.customer_id == "C00236")).first() is not None
    confirm = next(t for t in at.text_input if t.label == "Type the customer id to confirm")
    confirm.input("C00236").run()
    next(b for b in at.button if b.label == "Erase this customer").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value == "Customer erased."
    with db.connect() as c:
        assert c.execute(select(C.c.id).where(C.c.customer_id == "C00236")).first() is None
    (entry,) = audit(db, "customer.erase")
    assert entry.actor == "user:test-admin" and entry.detail["mentions"] == 2
    # The 360 is closed and the customer can no longer be found.
    assert not any(t.value.startswith("C00236") for t in at.text)
    hits = search(at, "303 555 0199")
    assert hits.empty or "C00236" not in hits["customer_id"].tolist()


def test_agent_sees_no_consent_export_or_erase(db, downloads):
    at = open_360(page("agent"), "C00236")
    assert not at.download_button and not downloads
    labels = {b.label for b in at.button}
    assert "Erase this customer" not in labels and "Save consent" not in labels
    assert not [s for s in at.selectbox if s.label == "Marketing"]
    assert "Privacy" not in markup(at)


def test_manager_may_merge_but_not_erase(db):
    at = open_360(page("manager"), "C00236")
    assert not at.download_button
    assert "Erase this customer" not in {b.label for b in at.button}


def test_analyst_cannot_open_customers(db):
    at = app_test("analyst")
    at.run()
    assert not at.exception
    # The page is not in the analyst's navigation...
    pages = [str(p.get("script_path")) for p in at._registered_pages.values()]
    assert pages and not [p for p in pages if p.endswith("customers.py")]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)
    # ...and the page itself refuses to run for the role, whatever links to it.
    direct = AppTest.from_file(str(REPO / PAGE), default_timeout=60)
    direct.session_state["listenwell_user"] = User("test-analyst", "analyst")
    direct.session_state["customer_360_id"] = "C00236"
    direct.run()
    assert not direct.exception
    assert "cannot search customers" in direct.error[0].value
    assert not direct.dataframe and not direct.text_input and not direct.json


# ------------------------------------------------------------------ chart builders


def _event(kind: str, day: int, text: str = "t", **detail: Any) -> TimelineEvent:
    return TimelineEvent(datetime(2024, 5, day, tzinfo=UTC), kind, day, "x", text, detail=detail)


def test_timeline_frame_and_chart_draw_no_customer_text():
    events = [
        _event("mention", 1, HOSTILE, sentiment="negative", url="http://x"),
        _event("survey", 3, "CSAT 2/5", score=2),
        _event("reply", 2, "sorry", status="sent"),
    ]
    df = charts_crm.timeline_frame(events)
    assert df["kind"].tolist() == ["survey", "reply", "mention"]  # newest first
    assert df.iloc[2]["detail"] == "sentiment: negative"  # the url is left out
    fig = charts_crm.timeline_chart(df)
    assert {t.name for t in fig.data} == {"mention", "reply", "survey"}
    drawn = json.dumps(fig.to_plotly_json(), default=str)
    assert "script" not in drawn and "sorry" not in drawn
    empty = charts_crm.timeline_chart(charts_crm.timeline_frame([]))
    assert empty.layout.annotations[0].text == "No contact yet"


def test_satisfaction_frame_and_chart():
    points = [
        SatisfactionPoint(datetime(2024, 4, 1).date(), mentions=2, sentiment=-0.5),
        SatisfactionPoint(
            datetime(2024, 5, 1).date(), csat_answers=1, csat_mean=2.0, nps_answers=2, nps=0.0
        ),
    ]
    df = charts_crm.satisfaction_frame(points)
    assert df["mentions"].tolist() == [2, 0] and df["csat_answers"].tolist() == [0, 1]
    fig = charts_crm.satisfaction_chart(df)
    assert [t.name for t in fig.data] == [
        "Sentiment (-1 to 1)",
        "CSAT (1 to 5)",
        "NPS (-100 to 100)",
    ]
    sentiment, csat, nps = (list(t.y) for t in fig.data)
    assert sentiment[0] == -0.5 and pd.isna(sentiment[1])
    assert pd.isna(csat[0]) and csat[1] == 2.0 and nps[1] == 0.0
    empty = charts_crm.satisfaction_chart(charts_crm.satisfaction_frame([]))
    assert empty.layout.annotations[-1].text == "No sentiment or survey yet"
