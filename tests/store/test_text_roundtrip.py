"""Property-based round-trips: any storable text comes back exactly as it went in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from listenwell import store
from listenwell.store.models import MentionRow

# Every Unicode code point except the two no database can hold in text: lone
# surrogates and NUL. Those are quarantined by check_text (tested below).
storable = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
texts = st.one_of(
    st.text(storable, max_size=300),
    st.just(""),
    st.builds(
        lambda s: (s or "x") * (100_000 // max(1, len(s or "x"))), st.text(storable, max_size=5)
    ),
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            "[click](javascript:alert(1))",
            "\u202eevil\u202c",
            "zero\u200bwidth",
            "emoji 👍🏽 family 👨‍👩‍👧",
            "  leading and trailing  ",
            "line\r\nbreaks\n",
        ]
    ),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=texts)
def test_text_round_trips_verbatim(engine, value):
    with engine.begin() as conn:
        conn.execute(delete(MentionRow))
    m = store.Mention(
        "x", "1", datetime(2024, 1, 1, tzinfo=UTC), value, author_name=value[:300], raw=value
    )
    assert store.upsert_mentions(engine, [m]).inserted == 1
    with engine.connect() as conn:
        row = conn.execute(select(MentionRow.text, MentionRow.author_name, MentionRow.raw)).one()
    assert row.text == value
    assert row.author_name == value[:300]
    assert row.raw == value


@pytest.mark.parametrize(
    "bad,reason",
    [
        ("a\x00b", "NUL"),
        ("\ud800", "not valid UTF-8"),
        ("x" * (store.MAX_TEXT_CHARS + 1), "too long"),
        ("   ", "empty"),
        (42, "must be a string"),
    ],
)
def test_unstorable_text_is_rejected_with_reason(bad, reason):
    with pytest.raises(store.RecordError, match=reason):
        store.check_text(bad)
