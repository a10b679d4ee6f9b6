"""Property: every normaliser returns a mention or raises RecordError, whatever it is given.

Anything else (a TypeError on an odd field) would be a bug: the runner would
still quarantine the item, but with a less useful reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from listenwell.collectors.appstore import normalize_appstore
from listenwell.collectors.reddit import normalize_reddit
from listenwell.collectors.x import normalize_x
from listenwell.store import Mention, RecordError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)

# One field's new value: each JSON type about equally likely.
field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.lists(json_values, max_size=2),
    st.dictionaries(st.text(max_size=5), json_values, max_size=2),
)

REDDIT = {
    "kind": "t3",
    "data": {
        "id": "a",
        "name": "t3_a",
        "title": "Acme",
        "selftext": "",
        "author": "u",
        "created_utc": 1_700_000_000.0,
        "permalink": "/r/a/",
    },
}
X = {
    "tweet": {
        "id": "1",
        "text": "Acme",
        "created_at": "2026-01-01T00:00:00.000Z",
        "author_id": "7",
        "note_tweet": {"text": "Acme long"},
        "referenced_tweets": [{"type": "replied_to", "id": "0"}],
    },
    "author": {"id": "7", "username": "u", "name": "U"},
}
APPSTORE = {
    "id": {"label": "9"},
    "updated": {"label": "2026-01-01T00:00:00-07:00"},
    "im:rating": {"label": "5"},
    "title": {"label": "t"},
    "content": {"label": "c"},
    "author": {"name": {"label": "n"}},
    "link": {"attributes": {"href": "h"}},
}


def _mutations(sample: dict[str, Any], inner: str | None) -> st.SearchStrategy[dict[str, Any]]:
    """The sample with some of its fields (or its inner object's) replaced by any JSON."""
    target = sample[inner] if inner else sample
    keys = st.sampled_from(sorted(target))

    def apply(changes: dict[str, Any]) -> dict[str, Any]:
        new_target = {**target, **changes}
        return {**sample, inner: new_target} if inner else new_target

    return st.dictionaries(keys, field_values, min_size=1, max_size=2).map(apply)


CASES: list[tuple[str, Callable[[Any], Mention], st.SearchStrategy[Any]]] = [
    ("reddit", normalize_reddit, _mutations(REDDIT, "data") | _mutations(REDDIT, None)),
    ("x", normalize_x, _mutations(X, "tweet") | _mutations(X, None)),
    ("appstore", normalize_appstore, _mutations(APPSTORE, None)),
]


@pytest.mark.parametrize(("name", "normalize", "raws"), CASES, ids=[c[0] for c in CASES])
def test_normalize_returns_a_mention_or_raises_record_error(
    name: str, normalize: Callable[[Any], Mention], raws: st.SearchStrategy[Any]
) -> None:
    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(raw=raws | json_values)
    def check(raw: Any) -> None:
        try:
            mention = normalize(raw)
        except RecordError as exc:
            assert exc.reason
            return
        assert mention.source == name and mention.external_id and mention.raw

    check()
