"""SQL injection: every user-controlled search, filter, sort and cursor input of the store, fuzzed.

Hypothesis mixes classic payloads (quotes, comments, stacked statements, LIKE
wildcards, backslashes, NUL, odd Unicode) with random text and feeds them to
the store's read functions on SQLite and PostgreSQL. For each input:

* nothing raises but the function's documented validation error;
* the row count of every table is unchanged (no stacked statement ran);
* a text search returns exactly the rows whose text contains the needle
  (case-insensitively), so ``%``, ``_`` and ``\\`` are matched literally;
* an ``IN`` filter (sources, sentiments, themes, segments, status, ...)
  returns exactly the rows with one of the given values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from listenwell import store
from listenwell.store.customer360 import customer_360
from listenwell.store.inbox import list_conversations
from listenwell.store.models import metadata
from listenwell.store.themes import NewTheme, insert_theme
from listenwell.store.views import ViewError, delete_view, get_view, list_views, save_view
from tests.store.crm_seed import conversation, customer, handle, mention

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

PAYLOADS = [
    "' OR 1=1 --",
    "' OR '1'='1",
    "'; DROP TABLE mentions; --",
    '"; DROP TABLE customers; --',
    "') OR ('a'='a",
    "1; DELETE FROM audit_log",
    "*/ UNION SELECT password_hash FROM users /*",
    "' UNION SELECT NULL, NULL --",
    "$$; TRUNCATE users; $$",
    "%",
    "%%",
    "_",
    "\\",
    "\\%",
    "\\_",
    "a%b",
    "x_y",
    "%' --",
    "'",
    "''",
    '"',
    "`",
    ";",
    "--",
    "/*",
    "NULL",
    "é",
    "Ü",
    "😀",
    "\u200b",
    "\ufeff",
    "\u202e",
    "[a-z]",
    "^$",
    "|",
    "p|0|2024-05-01T00:00:00+00:00|1",
    "n|2024-05-01T00:00:00+00:00|1' OR 1=1",
]
_ALPHABET = st.sampled_from(list("aAbBoOrR 1%_\\'\";-/*|éÜ😀\u200b\u202e[]^$\t\n"))
# NUL is left out here: test_nul_in_a_search_is_a_value_too covers it on its own.
needles = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(_ALPHABET, min_size=1, max_size=8),
    st.lists(st.sampled_from(PAYLOADS), min_size=1, max_size=3).map("".join),
    st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
        min_size=1,
        max_size=12,
    ),
)

# Texts the seeded mentions carry: many hold a payload, so searches for one find something.
TEXTS = [
    "100% sure it's broken",
    "snake_case is not snakeXcase",
    "back\\slash C:\\temp\\new",
    "it's 'quoted' and \"double\"",
    "' OR 1=1 --",
    "'; DROP TABLE mentions; --",
    "Ünïcode café naïve",
    "zero\u200bwidth and \ufeffbom",
    "rtl \u202eevil\u202c text",
    "emoji 😀 party",
    "plain old text",
    "PERCENT 50%_off",
    "[link](javascript:alert(1)) <script>x</script>",
    "tab\there newline\nthere",
    "abc",
    "ABC",
]
SOURCES = ["x", "reddit", "app'store", "100%"]
AUTHORS = ["@u1", "@o'brien", "@100%", None]
SENTIMENTS = ["negative", "neutral", "positive"]
ASSIGNEES = ["ann", "o'brien", "100%_agent", None]
TAGS = [["billing"], ["vip", "billing"], [], ["o_r"]]
PRIORITIES = ["urgent", "high", "normal", "low"]
STATUSES = ["new", "open", "pending", "resolved"]


@dataclass(frozen=True)
class Seeded:
    """What the seeded database holds, to compute the expected results in Python."""

    mentions: dict[int, dict[str, Any]]
    themes: dict[str, int]
    segments: dict[str, str | None]
    customer_ids: list[str]
    customers: dict[str, list[str | None]]


def _seed(engine: Engine) -> Seeded:
    t0 = datetime(2024, 5, 1, 9, tzinfo=UTC)
    mentions: dict[int, dict[str, Any]] = {}
    with engine.begin() as c:
        pks = {
            "C1": customer(c, "C1", name="Jo O'Brien", email="jo@example.com", segment="vip"),
            "C2": customer(c, "C2", name="100% Real", phone="+1 555 0100", segment="o'seg%"),
            "C_3": customer(c, "C_3", name="Under_Score", email="u_s@example.com"),
            "C%4": customer(c, "C%4", name="back\\slash", segment="vip"),
        }
        handle(c, pks["C1"], "x", "@jo_brien")
        handle(c, pks["C2"], "reddit", "u/hundred%")
        for i, text in enumerate(TEXTS):
            source = SOURCES[i % len(SOURCES)]
            author = AUTHORS[i % len(AUTHORS)]
            mid = mention(c, t0 + timedelta(hours=5 * i), text, source=source, author=author)
            mentions[mid] = {"text": text, "source": source, "author": author, "n": i}
    themes = {
        "battery % life": insert_theme(engine, NewTheme("battery", None, name="battery % life")),
        "o'reilly_theme": insert_theme(engine, NewTheme("oreilly", None, name="o'reilly_theme")),
    }
    theme_names = list(themes)
    customer_ids = list(pks)
    results: list[store.EnrichmentResult] = []
    for mid, m in mentions.items():
        n = m["n"]
        m["sentiment"] = SENTIMENTS[n % 3] if n % 5 else None
        m["topic"] = theme_names[n % 2] if n % 4 else None
        m["customer_id"] = customer_ids[n % 4] if n % 3 == 0 else None
        if m["sentiment"]:
            results.append(store.EnrichmentResult(mid, "sentiment", m["sentiment"], 0.9, "t", "1"))
        if m["topic"]:
            tid = str(themes[m["topic"]])
            results.append(store.EnrichmentResult(mid, "themes", tid, 0.8, "t", "1"))
        if m["customer_id"]:
            data = {"strength": "strong", "evidence": "test"}
            results.append(
                store.EnrichmentResult(mid, "links", m["customer_id"], 0.95, "t", "1", data)
            )
    store.upsert_enrichments(engine, results)
    with engine.begin() as c:
        for mid, m in mentions.items():
            n = m["n"]
            m["assignee"] = ASSIGNEES[n % len(ASSIGNEES)]
            m["tags"] = TAGS[n % len(TAGS)]
            m["priority"] = PRIORITIES[n % len(PRIORITIES)]
            m["status"] = STATUSES[n % len(STATUSES)]
            conversation(
                c,
                mid,
                t0 + timedelta(hours=5 * m["n"], minutes=1),
                status=m["status"],
                priority=m["priority"],
                assignee=m["assignee"],
                tags=m["tags"],
            )
    save_view(engine, owner="ann", page="inbox", name="mine", filters={"q": "x"}, actor="t")
    segments = {"C1": "vip", "C2": "o'seg%", "C_3": None, "C%4": "vip"}
    # What the customer search looks at: id, name, e-mail, phone and handles as shown.
    searchable: dict[str, list[str | None]] = {
        "C1": ["C1", "Jo O'Brien", "jo@example.com", None, "@jo_brien"],
        "C2": ["C2", "100% Real", None, "+1 555 0100", "u/hundred%"],
        "C_3": ["C_3", "Under_Score", "u_s@example.com", None],
        "C%4": ["C%4", "back\\slash", None, None],
    }
    return Seeded(mentions, themes, segments, customer_ids, searchable)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        return {
            t.name: c.execute(select(func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


@pytest.fixture
def seeded(engine: Engine) -> Iterator[tuple[Engine, Seeded, dict[str, int]]]:
    data = _seed(engine)
    before = _counts(engine)
    yield engine, data, before
    # The fuzzing left every table as it was (no stacked statement ran).
    assert _counts(engine) == before


def _contains(text: str | None, needle: str) -> bool:
    """Case-insensitive containment, as the store promises it (a character-wise lower())."""
    return text is not None and needle.lower() in text.lower()


def _literally_in(text: str | None, needle: str) -> bool:
    return text is not None and needle in text


def _check_search(found: set[int], candidates: dict[int, list[str | None]], needle: str) -> None:
    """``found`` holds every candidate holding the needle as is, and only ones that contain it
    case-insensitively: a wildcard in the needle matched nothing but itself."""
    for mid in found:
        assert any(_contains(t, needle) for t in candidates[mid]), (mid, needle)
    for mid, texts in candidates.items():
        if any(_literally_in(t, needle) for t in texts):
            assert mid in found, (mid, needle)


# ----------------------------------------------------------------- MentionFilter


@FUZZ
@given(
    search=st.one_of(st.none(), needles),
    sources=st.lists(st.one_of(st.sampled_from(SOURCES), st.sampled_from(PAYLOADS)), max_size=3),
    sentiments=st.lists(
        st.one_of(st.sampled_from(SENTIMENTS), st.sampled_from(PAYLOADS)), max_size=3
    ),
    topics=st.lists(
        st.one_of(st.sampled_from(["battery % life", "o'reilly_theme"]), st.sampled_from(PAYLOADS)),
        max_size=2,
    ),
    segments=st.lists(
        st.one_of(st.sampled_from(["vip", "o'seg%"]), st.sampled_from(PAYLOADS)), max_size=2
    ),
)
def test_mention_filters_are_values_never_sql(
    seeded, search, sources, sentiments, topics, segments
):
    engine, data, before = seeded
    f = store.MentionFilter(
        sources=tuple(sources),
        sentiments=tuple(sentiments),
        topics=tuple(topics),
        segments=tuple(segments),
        search=search,
    )
    frame = store.mentions_frame(engine, f, limit=1000)
    found = set(frame["id"].tolist())

    def keep(m: dict[str, Any]) -> bool:
        segment = data.segments.get(m["customer_id"]) if m["customer_id"] else None
        return (
            (not sources or m["source"] in sources)
            and (not sentiments or m["sentiment"] in sentiments)
            and (not topics or m["topic"] in topics)
            and (not segments or segment in segments)
        )

    candidates = {mid: m for mid, m in data.mentions.items() if keep(m)}
    if search:
        assert found <= set(candidates)
        _check_search(found, {mid: [m["text"]] for mid, m in candidates.items()}, search)
    else:
        assert found == set(candidates)
    # The aggregates and the export build their own queries from the same filter.
    assert store.overview_counts(engine, f)["mentions"] == len(found)
    assert int(store.source_counts(engine, f)["mentions"].sum()) == len(found)
    assert {r["external_id"] for r in store.iter_export_rows(engine, f)} == set(
        frame["external_id"]
    )
    store.top_authors(engine, f)
    store.mention_volume(engine, f)
    store.sentiment_volume(engine, f)
    store.theme_volume(engine, f)
    assert _counts(engine) == before


CLASSIC = ["%", "_", "\\", "'", "' OR 1=1 --", "'; DROP TABLE mentions; --", "50%_", "abc"]


@pytest.mark.parametrize("needle", CLASSIC)
def test_classic_payloads_match_only_themselves(seeded, needle):
    """The wildcards and quotes every fuzz run should meet, checked against exact answers."""
    engine, data, before = seeded
    want = {mid for mid, m in data.mentions.items() if needle.lower() in m["text"].lower()}
    f = store.MentionFilter(search=needle)
    assert set(store.mentions_frame(engine, f, limit=1000)["id"]) == want
    assert store.overview_counts(engine, f)["mentions"] == len(want)
    page = list_conversations(engine, search=needle, limit=1000)
    assert {c.mention_id for c in page.items} == {
        mid
        for mid, m in data.mentions.items()
        if _contains(m["text"], needle) or _contains(m["author"], needle)
    }
    customers = {
        cid for cid, fields in data.customers.items() if any(_contains(v, needle) for v in fields)
    }
    assert set(store.customers_frame(engine, needle)["customer_id"]) == customers
    assert _counts(engine) == before


def test_the_classic_payloads_do_match_something(seeded):
    """The exact answers above are not all empty: the seed holds each wildcard literally."""
    _, data, _ = seeded
    texts = [m["text"] for m in data.mentions.values()]
    for needle in ("%", "_", "\\", "'", "' OR 1=1 --", "abc"):
        hits = [t for t in texts if needle.lower() in t.lower()]
        assert 0 < len(hits) < len(texts), needle


# ----------------------------------------------------------------- customers


@FUZZ
@given(search=needles)
def test_customer_search_is_literal(seeded, search):
    engine, data, before = seeded
    found = set(store.customers_frame(engine, search)["customer_id"])
    # The store strips the search before matching; an empty search lists everyone.
    needle = search.strip()
    if not needle:
        assert found == set(data.customers)
    else:
        _check_search(found, data.customers, needle)
    assert _counts(engine) == before


@FUZZ
@given(customer_id=needles, before=st.one_of(st.none(), needles))
def test_customer_360_ids_and_cursors_are_values(seeded, customer_id, before):
    engine, data, _ = seeded
    for cid in (customer_id, data.customer_ids[0]):
        try:
            page = customer_360(engine, cid, before=before, trend=False)
        except ValueError as exc:  # documented: not a cursor
            assert before and "cursor" in str(exc)
            continue
        except store.NotFoundError:  # documented: no such customer
            assert cid not in data.customer_ids
            continue
        assert page.customer_id == cid


# ----------------------------------------------------------------- inbox


# Numbers and times within range: test_out_of_range_cursor_is_refused_or_empty covers the rest.
_ints = st.integers(-(2**31), 2**31 - 1)
_times = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1))
_cursor_like = st.one_of(
    needles,
    st.builds(
        lambda kind, rank, at, ident, tail: (
            f"p|{rank}|{at}|{ident}{tail}" if kind == "p" else f"n|{at}|{ident}{tail}"
        ),
        st.sampled_from(["p", "n"]),
        st.one_of(st.integers(-5, 5), _ints),
        st.one_of(
            _times.map(lambda t: t.replace(tzinfo=UTC).isoformat()),
            _times.map(datetime.isoformat),
            st.sampled_from(PAYLOADS),
        ),
        st.one_of(st.integers(-5, 100), _ints),
        st.one_of(st.just(""), st.sampled_from(PAYLOADS)),
    ),
)


@FUZZ
@given(
    search=st.one_of(st.none(), needles),
    assignee=st.one_of(st.none(), st.sampled_from([a for a in ASSIGNEES if a]), needles),
    tag=st.one_of(st.none(), st.sampled_from(["billing", "vip", "o_r"]), needles),
    status=st.one_of(st.none(), st.lists(st.sampled_from(STATUSES + PAYLOADS), max_size=2)),
    priority=st.one_of(st.none(), st.lists(st.sampled_from(PRIORITIES + PAYLOADS), max_size=2)),
    order=st.one_of(st.sampled_from(["priority", "newest"]), st.sampled_from(PAYLOADS)),
    after=st.one_of(st.none(), _cursor_like),
)
def test_inbox_filters_order_and_cursor_are_values(
    seeded, search, assignee, tag, status, priority, order, after
):
    engine, data, before = seeded
    try:
        page = list_conversations(
            engine,
            search=search,
            assignee=assignee,
            tag=tag,
            status=status,
            priority=priority,
            order=order,
            after=after,
            limit=1000,
        )
    except ValueError:  # documented: an unknown filter value, order or page cursor
        bad_status = any(s not in STATUSES for s in status or ())
        bad_priority = any(p not in PRIORITIES for p in priority or ())
        bad_order = order not in ("priority", "newest")
        bad_tag = bool(tag) and not _valid_tag(tag)
        assert bad_status or bad_priority or bad_order or bad_tag or bool(after)
        return
    found = {c.mention_id: c for c in page.items}
    for c in page.items:
        m = data.mentions[c.mention_id]
        if status:
            assert c.status in status
        if priority:
            assert c.priority in priority
        if assignee is not None:
            want = assignee.strip() or None
            assert c.assignee == want
        if tag:
            assert tag.strip().lower() in c.tags
        if search:
            assert _contains(m["text"], search) or _contains(m["author"], search)
    if after is None and search:
        # Without a cursor, every conversation matching the filters is on the one page.
        matching = {
            mid: [m["text"], m["author"]]
            for mid, m in data.mentions.items()
            if (not status or m["status"] in status)
            and (not priority or m["priority"] in priority)
            and (assignee is None or m["assignee"] == (assignee.strip() or None))
            and (not tag or tag.strip().lower() in m["tags"])
        }
        assert set(found) <= set(matching)
        _check_search(set(found), matching, search)
    assert _counts(engine) == before


def _valid_tag(tag: str) -> bool:
    value = tag.strip().lower()
    return 0 < len(value) <= 50 and all(ch.isalnum() or ch in "-_:/." for ch in value)


def test_inbox_cursor_pages_cover_every_conversation_once(seeded):
    """The keyset cursor a page hands out leads to the next page, in both orders."""
    engine, data, _ = seeded
    for order in ("priority", "newest"):
        seen: list[int] = []
        after = None
        while True:
            page = list_conversations(engine, order=order, after=after, limit=3)
            seen += [c.mention_id for c in page.items]
            if page.next_after is None:
                break
            after = page.next_after
        assert sorted(seen) == sorted(data.mentions)


# ----------------------------------------------------------------- saved views


@FUZZ
@given(
    owner=needles,
    page=st.one_of(st.sampled_from(["inbox", "escalations"]), needles),
    name=needles,
    value=needles,
    viewer=needles,
)
def test_saved_views_store_hostile_names_and_filters_verbatim(
    seeded, owner, page, name, value, viewer
):
    engine, _, before = seeded
    filters = {"search": value, value: [value]}
    try:
        view = save_view(
            engine, owner=owner, page=page, name=name, filters=filters, shared=False, actor="fuzz"
        )
    except ViewError:  # documented: a bad owner, page, name or filters
        assert _counts(engine) == before
        return
    try:
        after = _counts(engine)
        assert after["saved_views"] == before["saved_views"] + 1
        assert after["audit_log"] == before["audit_log"] + 1
        assert {k: v for k, v in after.items() if k not in ("saved_views", "audit_log")} == {
            k: v for k, v in before.items() if k not in ("saved_views", "audit_log")
        }
        mine = list_views(engine, owner=view.owner, page=page)
        assert [(v.id, v.filters) for v in mine if v.owner == view.owner] == [
            (view.id, json.loads(json.dumps(filters)))
        ]
        # Someone else never sees an unshared view, whatever their name holds.
        if viewer.strip() != view.owner:
            assert view.id not in [v.id for v in list_views(engine, owner=viewer, page=page)]
            with pytest.raises(store.NotFoundError):
                get_view(engine, view.id, viewer=viewer)
    finally:
        delete_view(engine, view.id, owner=view.owner, actor="fuzz")
        with engine.begin() as c:  # the two audit entries the save and delete wrote
            from listenwell.store.models import AuditRow

            audit = AuditRow.__table__
            c.execute(audit.delete().where(audit.c.actor == "fuzz"))


# ----------------------------------------------------------------- NUL


def _nul_cases(engine: Engine) -> dict[str, Any]:
    """Each user-controlled text input, called with a value holding NUL; returns what matched."""
    needle = "\x00"
    return {
        "mentions.search": lambda: set(
            store.mentions_frame(engine, store.MentionFilter(search=needle))["id"]
        ),
        "mentions.sources": lambda: set(
            store.mentions_frame(engine, store.MentionFilter(sources=(needle,)))["id"]
        ),
        "mentions.export": lambda: {
            r["external_id"]
            for r in store.iter_export_rows(engine, store.MentionFilter(search=needle))
        },
        "customers.search": lambda: set(store.customers_frame(engine, needle)["customer_id"]),
        "inbox.search": lambda: {c.id for c in list_conversations(engine, search=needle).items},
        "inbox.assignee": lambda: {c.id for c in list_conversations(engine, assignee=needle).items},
        "views.owner": lambda: list_views(engine, owner=needle, page="inbox"),
    }


CASES = [
    "mentions.search",
    "mentions.sources",
    "mentions.export",
    "customers.search",
    "inbox.search",
    "inbox.assignee",
    "views.owner",
]


# Known failures, reported to the lead (store/ is not ours to change): SQLite's LIKE reads
# its pattern as a C string, so "%\x00%" is "%" and matches every row; PostgreSQL refuses
# NUL in any text parameter with psycopg's DataError, which is no StoreError, so a page's
# common.query shows a traceback with the SQL instead of a one-line message. The fix
# belongs in store/: refuse (ValueError) or match nothing for search and filter values
# holding NUL. Strict, so these tests flip to failures once it is fixed.
NUL_BUGS: set[tuple[str, str]] = set()  # fixed: store/errors.check_text_inputs


@pytest.mark.parametrize("case", CASES)
def test_nul_in_a_search_is_a_value_too(request, seeded, case):
    """No stored text holds NUL, so a needle with NUL matches nothing (or is refused)."""
    engine, _, before = seeded
    if (engine.dialect.name, case) in NUL_BUGS:
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="NUL in a LIKE pattern / PG text parameter")
        )
    try:
        matched = _nul_cases(engine)[case]()
    except (ValueError, store.StoreError):
        matched = set()  # refused with a documented error: fine
    assert not matched
    assert _counts(engine) == before


# ----------------------------------------------------------------- out-of-range cursors

BIG = 10**20
CURSORS = [
    ("inbox.newest", f"n|2024-05-01T00:00:00+00:00|{BIG}"),
    ("inbox.priority", f"p|{BIG}|2024-05-01T00:00:00+00:00|1"),
    ("inbox.newest", "n|9999-12-31T23:59:59-05:00|1"),
    ("customer360", f"2024-05-01T00:00:00+00:00|mention|{BIG}"),
    ("customer360", "9999-12-31T23:59:59-05:00|mention|1"),
]


# Known failure, reported to the lead (store/ is not ours to change): the cursors are parsed
# with int() and datetime.fromisoformat() but not range-checked, so an id past 64 bits
# (SQLite: OverflowError), a rank past 32 bits (PostgreSQL: NumericValueOutOfRange) or a
# time at the edge of the calendar (OverflowError in the UTC conversion) escapes as an
# unexpected error instead of the documented ValueError.
@pytest.mark.parametrize(("where", "cursor"), CURSORS)
def test_out_of_range_cursor_is_refused_or_empty(seeded, where, cursor):
    """A page cursor is typed by hand (``inbox list --after``): numbers beyond the id range
    are no page of ours, and must be refused with the documented ValueError or give a page."""
    engine, data, before = seeded
    try:
        if where == "customer360":
            customer_360(engine, data.customer_ids[0], before=cursor, trend=False)
        else:
            list_conversations(engine, order=where.split(".")[1], after=cursor)
    except ValueError as exc:
        assert "cursor" in str(exc)
    assert _counts(engine) == before
