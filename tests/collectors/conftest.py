"""Fixtures for the collector tests: fake APIs on 127.0.0.1 and one case per collector.

The fakes are started once per session and emptied before each test. A
:class:`Case` bundles what the shared contract suite needs to drive one
collector through its real client: how to build it against its fake, how to
seed valid and malformed items, and which path its listing requests take.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from listenwell import store
from listenwell.collectors.base import RetryPolicy
from listenwell.demo.fakes.appstore import FakeAppStore
from listenwell.demo.fakes.harness import Case, Sleeps, make_appstore, make_reddit, make_x
from listenwell.demo.fakes.reddit import FakeReddit
from listenwell.demo.fakes.x import FakeX
from listenwell.store import runs  # noqa: F401 - registers collector_runs in the metadata


@pytest.fixture
def sleeps() -> Sleeps:
    """The waits the retry policy asked for."""
    return Sleeps()


@pytest.fixture
def retry(sleeps: Sleeps) -> RetryPolicy:
    """A retry policy that records its waits instead of sleeping."""
    return RetryPolicy(attempts=3, max_wait=5.0, backoff=0.01, sleep=sleeps)


@pytest.fixture(scope="session")
def fake_reddit() -> Iterator[FakeReddit]:
    """The fake Reddit, for the whole session."""
    fake = FakeReddit()
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture(scope="session")
def fake_x() -> Iterator[FakeX]:
    """The fake X API, for the whole session."""
    fake = FakeX()
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture(scope="session")
def fake_appstore() -> Iterator[FakeAppStore]:
    """The fake App Store feed, for the whole session."""
    fake = FakeAppStore(page_size=5)
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture
def reddit(fake_reddit: FakeReddit) -> FakeReddit:
    """The fake Reddit, empty."""
    fake_reddit.reset()
    return fake_reddit


@pytest.fixture
def x(fake_x: FakeX) -> FakeX:
    """The fake X API, empty."""
    fake_x.reset()
    return fake_x


@pytest.fixture
def appstore(fake_appstore: FakeAppStore) -> FakeAppStore:
    """The fake App Store feed, empty."""
    fake_appstore.reset()
    return fake_appstore


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database, for tests about HTTP behaviour rather than the store."""
    eng = store.connect(f"sqlite:///{tmp_path / 'collect.db'}")
    store.upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture(params=["reddit", "x", "appstore"])
def case(request: pytest.FixtureRequest, retry: RetryPolicy) -> Case:
    """Each collector in turn, with its fake emptied."""
    if request.param == "reddit":
        fake = request.getfixturevalue("reddit")
        return Case(
            "reddit",
            fake,
            5,
            r"/r/.+/search",
            make_reddit,
            fake.add_posts,
            fake.add_malformed_post,
            retry,
        )
    if request.param == "x":
        fake = request.getfixturevalue("x")
        return Case(
            "x",
            fake,
            10,
            r"/2/tweets/search/recent",
            make_x,
            fake.add_posts,
            fake.add_malformed_post,
            retry,
        )
    fake = request.getfixturevalue("appstore")
    return Case(
        "appstore",
        fake,
        5,
        r"/rss/customerreviews/",
        make_appstore,
        fake.add_reviews,
        fake.add_malformed_review,
        retry,
    )
