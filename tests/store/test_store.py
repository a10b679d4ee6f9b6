"""Store tests; every one runs on SQLite and on PostgreSQL through the ``engine`` fixture."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from listenwell import store
from listenwell.store.models import (
    AuditRow,
    CursorRow,
    CustomerRow,
    HandleRow,
    MentionRow,
    QuarantineRow,
    metadata,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def mention(i: int, *, source: str = "x", text_: str | None = None, **kw) -> store.Mention:
    return store.Mention(
        source=source,
        external_id=str(i),
        created_at=T0 + timedelta(hours=i),
        text=text_ if text_ is not None else f"post {i} about acme",
        author_handle=f"@user{i % 3}",
        **kw,
    )


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_upgrade_is_idempotent_and_status_lists_migrations(engine):
    before = store.migration_status(engine)
    assert before.current and before.applied[0].startswith("0001")
    after = store.upgrade(engine)
    assert after == before
    store.ensure_current(engine)


# SQLite cannot reflect expression indexes: Alembic warns and leaves the metadata's one
# (PostgreSQL only, migration 0008) out of the comparison; PostgreSQL compares it.
@pytest.mark.filterwarnings(
    "ignore:autogenerate skipping metadata-specified expression-based index "
    "'ix_mentions_source_lower_author_handle'; dialect 'sqlite':UserWarning"
)
def test_models_match_migrations(engine):
    """The migrations create exactly what models.py declares (no drift)."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_fresh_database_reports_pending(tmp_path):
    eng = store.connect(f"sqlite:///{tmp_path / 'new' / 'fresh.db'}")
    try:
        status = store.migration_status(eng)
        assert status.applied == [] and status.pending
        with pytest.raises(store.SchemaOutOfDateError, match="listenwell db upgrade"):
            store.ensure_current(eng)
    finally:
        eng.dispose()


def test_upsert_mentions_is_idempotent_and_chunked(engine):
    batches = []
    first = store.upsert_mentions(
        engine, (mention(i) for i in range(25)), batch_size=10, on_batch=batches.append
    )
    assert (first.inserted, first.duplicates, first.quarantined) == (25, 0, 0)
    assert [b.inserted for b in batches] == [10, 10, 5]
    again = store.upsert_mentions(engine, (mention(i) for i in range(30)), batch_size=7)
    assert (again.inserted, again.duplicates) == (5, 25)
    assert count(engine, MentionRow) == 30


def test_duplicate_keeps_what_is_stored(engine):
    store.upsert_mentions(engine, [mention(1, text_="original")])
    store.upsert_mentions(engine, [mention(1, text_="changed")])
    with engine.connect() as conn:
        stored = conn.execute(select(MentionRow.text)).scalar_one()
    assert stored == "original"


def test_same_id_in_two_sources_is_two_mentions(engine):
    r = store.upsert_mentions(engine, [mention(1, source="x"), mention(1, source="reddit")])
    assert r.inserted == 2


def test_mixed_stream_routes_quarantine(engine):
    items = [mention(1), store.Quarantined("x", "bad json", "{", "f.jsonl:2"), mention(2)]
    r = store.upsert_mentions(engine, items)
    assert (r.inserted, r.quarantined) == (2, 1)
    q = store.quarantine_frame(engine)
    assert q.loc[0, "reason"] == "bad json" and q.loc[0, "origin"] == "f.jsonl:2"


def test_write_page_saves_cursor_with_mentions(engine):
    store.write_page(engine, [mention(1)], cursor=("x", "acme", "100"))
    assert store.load_cursor(engine, "x", "acme") == "100"
    store.write_page(engine, [mention(2)], cursor=("x", "acme", "200"))
    assert store.load_cursor(engine, "x", "acme") == "200"
    assert store.load_cursor(engine, "x", "other") is None


def test_write_page_is_all_or_nothing(engine):
    store.write_page(engine, [mention(1)], cursor=("x", "", "old"))
    bad = mention(2, rating=9)  # violates the rating CHECK constraint
    with pytest.raises(IntegrityError):
        store.write_page(engine, [mention(3), bad], cursor=("x", "", "new"))
    assert store.load_cursor(engine, "x") == "old"
    assert count(engine, MentionRow) == 1


def test_timestamps_round_trip_as_utc(engine):
    from zoneinfo import ZoneInfo

    local = datetime(2024, 7, 1, 9, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    store.upsert_mentions(engine, [store.Mention("x", "1", local, "hi")])
    with engine.connect() as conn:
        got = conn.execute(select(MentionRow.created_at)).scalar_one()
    assert got == local and got.tzinfo is not None and got.utcoffset() == timedelta(0)


def test_customers_upsert_merges_attributes_and_replaces_handles(engine):
    c1 = store.Customer(
        "C1",
        "Jo Doe",
        "jo@example.com",
        segment="vip",
        handles=store.parse_handles("x:@JoDoe;reddit:u/jodoe"),
        attributes={"country": "DE", "tier": "gold"},
    )
    r = store.upsert_customers(engine, [("line 2", c1)])
    assert (r.inserted, r.updated, r.errors) == (1, 0, [])
    c1b = store.Customer(
        "C1",
        "Jo Doe",
        "jo@example.com",
        segment="standard",
        handles=store.parse_handles("x:@jodoe_new"),
        attributes={"tier": "silver"},
    )
    r = store.upsert_customers(engine, [("line 2", c1b)])
    assert (r.inserted, r.updated) == (0, 1)
    with engine.connect() as conn:
        row = conn.execute(select(CustomerRow)).one()
        handles = conn.execute(select(HandleRow.platform, HandleRow.handle)).all()
    assert row.segment == "standard"
    assert row.attributes == {"country": "DE", "tier": "silver"}
    assert handles == [("x", "jodoe_new")]
    assert count(engine, AuditRow) == 2


def test_customer_handle_conflicts_are_reported_not_fatal(engine):
    store.upsert_customers(
        engine, [("line 2", store.Customer("C1", handles=store.parse_handles("x:@jo")))]
    )
    rows = [
        ("line 3", store.Customer("C2", handles=store.parse_handles("x:@JO"))),
        ("line 4", store.Customer("C3", handles=store.parse_handles("x:@al"))),
        ("line 5", store.Customer("C4", handles=store.parse_handles("x:@al"))),
    ]
    r = store.upsert_customers(engine, rows)
    assert r.inserted == 1  # C3; C2 and C4 claim handles that are taken
    assert r.errors == [
        ("line 3", "handle x:@JO already belongs to customer C1"),
        ("line 5", "handle x:@al already belongs to customer C3"),
    ]


def test_queries_filter_and_bucket(engine):
    store.upsert_mentions(engine, [mention(i) for i in range(48)])
    store.upsert_mentions(engine, [mention(i, source="reddit") for i in range(24)])
    counts = store.overview_counts(engine)
    assert counts["mentions"] == 72 and counts["authors"] == 3
    assert counts["first"] == T0 and counts["last"] == T0 + timedelta(hours=47)
    day = store.mention_volume(engine, freq="day")
    assert day.groupby("source")["mentions"].sum().to_dict() == {"reddit": 24, "x": 48}
    assert day["bucket"].min() == datetime(2024, 3, 1, tzinfo=UTC)
    hour = store.mention_volume(engine, store.MentionFilter(sources=("reddit",)), freq="hour")
    assert len(hour) == 24 and set(hour["mentions"]) == {1}
    week = store.mention_volume(engine, freq="week")
    assert set(week["bucket"]) == {datetime(2024, 2, 26, tzinfo=UTC)}  # Monday
    only_first_day = store.MentionFilter(start=date(2024, 3, 1), end=date(2024, 3, 1))
    assert (
        store.overview_counts(engine, only_first_day)["mentions"] == 12 + 12
    )  # hours 12-23 of day one, both sources
    assert store.source_counts(engine).to_dict("records") == [
        {"source": "x", "mentions": 48},
        {"source": "reddit", "mentions": 24},
    ]


@pytest.mark.parametrize(
    "needle,expected",
    [("50%", 1), ("a_b", 1), ("%", 1), ("_", 1), ("ACME", 1), ("'; DROP TABLE mentions; --", 0)],
)
def test_search_is_literal(engine, needle, expected):
    store.upsert_mentions(engine, [mention(1, text_="50% off at ACME a_b"), mention(2, text_="ab")])
    df = store.mentions_frame(engine, store.MentionFilter(search=needle))
    assert len(df) == expected
    assert count(engine, MentionRow) == 2


def test_export_rows_stream_every_mention_with_all_columns(engine):
    store.upsert_mentions(engine, [mention(i) for i in range(12)])
    rows = list(store.iter_export_rows(engine, batch_size=5))
    assert [r["external_id"] for r in rows] == [str(i) for i in range(12)]
    assert list(rows[0]) == store.EXPORT_COLUMNS
    assert rows[0]["created_at"] == "2024-03-01T12:00:00Z"
    assert rows[0]["sentiment"] is None and rows[0]["priority"] is None


def test_export_includes_enrichment_columns(engine):
    store.upsert_mentions(engine, [mention(1)])
    with engine.begin() as conn:
        mid = conn.execute(select(MentionRow.id)).scalar_one()
        conn.execute(
            text(
                "INSERT INTO enrichments (mention_id, stage, label, score, model_name,"
                " model_version, created_at)"
                " VALUES (:m, 'sentiment', 'negative', 0.9, 'm', '1', :t)"
            ),
            {"m": mid, "t": T0},
        )
    (row,) = store.iter_export_rows(engine)
    assert (row["sentiment"], row["sentiment_score"]) == ("negative", 0.9)
    neg = store.mentions_frame(engine, store.MentionFilter(sentiments=("negative",)))
    pos = store.mentions_frame(engine, store.MentionFilter(sentiments=("positive",)))
    assert len(neg) == 1 and pos.empty


def test_customers_search(engine):
    store.upsert_customers(
        engine,
        [
            (
                "1",
                store.Customer(
                    "C1",
                    "Maple Otter",
                    "maple@example.com",
                    "+1-555-0100",
                    handles=store.parse_handles("x:@MapleOtter31"),
                ),
            ),
            ("2", store.Customer("C2", "Other Person", "other@example.org")),
        ],
    )
    assert store.customers_frame(engine, "otter31")["customer_id"].tolist() == ["C1"]
    assert store.customers_frame(engine, "555-0100")["customer_id"].tolist() == ["C1"]
    assert store.customers_frame(engine, "EXAMPLE.ORG")["customer_id"].tolist() == ["C2"]
    everyone = store.customers_frame(engine)
    assert everyone.loc[0, "handles"] == "x:@MapleOtter31"


def test_audit_and_cursor_tables_written(engine):
    store.record_audit(engine, "tester", "thing.done", "thing", "7", {"n": 1})
    store.save_cursor(engine, "reddit", "t3_abc")
    assert count(engine, AuditRow) == 1 and count(engine, CursorRow) == 1
    assert count(engine, QuarantineRow) == 0


def test_sqlite_read_timeout_stops_a_slow_query(tmp_path):
    eng = store.connect(f"sqlite:///{tmp_path / 't.db'}")
    slow = text(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    )
    try:
        with pytest.raises(store.QueryTimeoutError, match="longer than 0.2 s"):
            with store.read_connection(eng, 0.2) as conn:
                conn.execute(slow).scalar_one()
        with store.read_connection(eng, 5) as conn:  # the connection is usable again
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        eng.dispose()


@pytest.mark.postgres
def test_postgres_read_timeout_stops_a_slow_query(pg_url):
    eng = store.connect(pg_url)
    try:
        with pytest.raises(store.QueryTimeoutError):
            with store.read_connection(eng, 0.2) as conn:
                conn.execute(text("SELECT pg_sleep(5)"))
    finally:
        eng.dispose()


def test_unreachable_database_is_a_clear_error():
    eng = store.connect("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        with pytest.raises(store.DatabaseUnavailableError):
            with store.read_connection(eng, 1):
                pass
    finally:
        eng.dispose()


def test_top_authors(engine):
    store.upsert_mentions(engine, [mention(i) for i in range(10)])  # @user0..2
    store.upsert_mentions(engine, [store.Mention("x", "anon", T0, "no author")])
    df = store.top_authors(engine, limit=2)
    assert df.to_dict("records") == [
        {"author_handle": "@user0", "mentions": 4},
        {"author_handle": "@user1", "mentions": 3},
    ]


def test_long_cursor_stream_names_are_stored(engine):
    """A stream is named after its query, which can run to hundreds of characters."""
    stream = "search:" + " OR ".join(f'"keyword number {i}"' for i in range(40))
    assert len(stream) > 500
    store.write_page(engine, [mention(1)], cursor=("x", stream, "v1"))
    assert store.load_cursor(engine, "x", stream) == "v1"


def _add_sentiment(engine, labels: dict[str, str]) -> None:
    with engine.begin() as conn:
        ids = dict(conn.execute(select(MentionRow.external_id, MentionRow.id)).all())
        for external_id, label in labels.items():
            conn.execute(
                text(
                    "INSERT INTO enrichments (mention_id, stage, label, score, model_name,"
                    " model_version, created_at) VALUES (:m, 'sentiment', :l, 0.9, 'm', '1', :t)"
                ),
                {"m": ids[external_id], "l": label, "t": T0},
            )


def test_sentiment_volume_counts_enriched_mentions_only(engine):
    store.upsert_mentions(engine, [mention(i) for i in range(30)])  # hours 0-29: two days
    _add_sentiment(engine, {"0": "positive", "1": "negative", "2": "negative", "29": "neutral"})
    df = store.sentiment_volume(engine, freq="day")
    got = {(b.day, s): n for b, s, n in df.itertuples(index=False)}
    assert got == {(1, "positive"): 1, (1, "negative"): 2, (2, "neutral"): 1}
    only_x = store.sentiment_volume(engine, store.MentionFilter(sources=("reddit",)))
    assert only_x.empty
