"""The contract every collector keeps, run against each one through its real client.

Every test here runs for Reddit (praw), X (tweepy) and the App Store feed,
each on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from listenwell import store
from listenwell.collectors.base import Page
from listenwell.collectors.runner import CursorState, run_collector
from listenwell.demo.fakes.harness import Case, stored
from listenwell.store import runs

REQUIRED = ("source", "external_id", "created_at", "text")


class Crash(BaseException):
    """Stands for the process being killed: nothing of ours catches it."""


def test_yields_mentions_with_required_fields(case: Case, engine: Engine) -> None:
    ids = case.seed(2 * case.page_size + 3)
    result = run_collector(engine, case.make())
    assert result.ok, result.errors
    assert (result.new, result.duplicates, result.quarantined) == (len(ids), 0, 0)
    assert result.pages >= 3
    rows = stored(engine)
    assert sorted(r["external_id"] for r in rows) == sorted(ids)
    for row in rows:
        assert all(row[k] not in (None, "") for k in REQUIRED), row
        assert row["source"] == case.name


def test_second_run_stores_nothing_new(case: Case, engine: Engine) -> None:
    case.seed(case.page_size + 2)
    first = run_collector(engine, case.make())
    second = run_collector(engine, case.make())
    assert first.new == case.page_size + 2
    assert second.new == 0
    ids = [r["external_id"] for r in stored(engine)]
    assert len(ids) == len(set(ids)) == case.page_size + 2


def test_resume_from_cursor_reads_only_new_pages(case: Case, engine: Engine) -> None:
    case.seed(3 * case.page_size)
    run_collector(engine, case.make())
    case.fake.server.reset()
    newer = case.seed(2)
    result = run_collector(engine, case.make())
    assert result.ok, result.errors
    assert result.new == 2
    # The saved cursor stops paging at the first page reaching it, not at the end.
    assert len(case.fake.server.requests_to(case.listing_path)) == 1
    assert set(newer) <= {r["external_id"] for r in stored(engine)}


def test_malformed_item_is_quarantined_and_run_continues(case: Case, engine: Engine) -> None:
    case.seed(3)
    case.add_malformed()
    case.seed(3)
    result = run_collector(engine, case.make())
    assert result.ok, result.errors
    assert (result.new, result.quarantined) == (6, 1)
    q = store.quarantine_frame(engine)
    assert list(q["source"]) == [case.name]
    assert q["reason"][0]
    assert "Acme" in q["raw"][0]  # the payload as received
    assert q["origin"][0].startswith("GET /")  # the endpoint it came from
    # A re-read of the same page does not quarantine the item a second time.
    again = run_collector(engine, case.make())
    assert again.quarantined == 0
    assert len(store.quarantine_frame(engine)) == 1


def test_crash_between_pages_then_resume_loses_and_duplicates_nothing(
    case: Case, engine: Engine
) -> None:
    ids = case.seed(3 * case.page_size)
    committed: list[Page] = []

    def crash_after_first_page(source: str, stream: str, page: Page) -> None:
        committed.append(page)
        raise Crash

    with pytest.raises(Crash):
        run_collector(engine, case.make(), on_page=crash_after_first_page)
    stream = case.make().streams()[0]
    state = CursorState.load(store.load_cursor(engine, case.name, stream))
    assert state.in_progress and state.since is None  # not promoted: the run did not finish
    assert state.resume == committed[0].next
    assert len(stored(engine)) == case.page_size

    case.fake.server.reset()
    result = run_collector(engine, case.make())
    assert result.ok, result.errors
    rows = stored(engine)
    assert sorted(r["external_id"] for r in rows) == sorted(ids)
    # It resumed from the saved token: at most one page is read again.
    assert result.duplicates <= case.page_size
    assert result.new == len(ids) - case.page_size
    done = CursorState.load(store.load_cursor(engine, case.name, stream))
    assert not done.in_progress and done.since is not None


def test_run_is_recorded(case: Case, engine: Engine) -> None:
    case.seed(3)
    run_collector(engine, case.make())
    last = runs.last_runs(engine)[case.name]
    assert (last.status, last.new, last.pages) == ("ok", 3, 1)
    assert last.finished_at is not None and last.finished_at >= last.started_at
