"""A fake X API v2 recent search that speaks the wire format tweepy expects.

``GET /2/tweets/search/recent`` with ``Authorization: Bearer <token>``:
newest first, filtered by ``start_time`` (inclusive), paged by an opaque
``next_token``, with the ``author_id`` expansion in ``includes.users`` and
``x-rate-limit-*`` headers. A wrong token gets 401 as X sends it.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .server import FakeServer, Reply, Request

__all__ = ["FakeX"]

_WORDS = "love hate broken great support refund shipping app update slow fast price".split()


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class FakeX:
    """A stateful fake: ``tweets`` newest first; ``users`` by id."""

    bearer_token: str = "x-token"
    tweets: list[dict[str, Any]] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    epoch: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    server: FakeServer = field(init=False)
    _n: int = 0

    def __post_init__(self) -> None:
        self.server = FakeServer([("GET", r"/2/tweets/search/recent", self._search)])

    def reset(self) -> None:
        """Empty the data, faults and log."""
        self.tweets.clear()
        self.users.clear()
        self.server.reset()
        self._n = 0

    def _next(self) -> tuple[str, datetime]:
        self._n += 1
        created = self.epoch - timedelta(hours=5) + timedelta(seconds=10 * self._n)
        return str(1_800_000_000_000_000_000 + self._n), created

    def add_posts(
        self, n: int, *, text: str = "Acme", seed: int = 3, long_every: int = 0
    ) -> list[str]:
        """Add ``n`` posts newer than all before; returns their ids, newest first.

        Every ``long_every``-th post is a long post whose full text is in ``note_tweet``.
        """
        rng = random.Random(seed + self._n)
        ids = []
        for _ in range(n):
            tid, created = self._next()
            uid = str(100 + rng.randrange(20))
            self.users[uid] = {"id": uid, "username": f"fan_{uid}", "name": f"Fan {uid}"}
            tweet: dict[str, Any] = {
                "id": tid,
                "text": f"{text} {rng.choice(_WORDS)} {rng.choice(_WORDS)}",
                "author_id": uid,
                "created_at": _iso(created),
                "lang": "en",
                "conversation_id": tid,
                "edit_history_tweet_ids": [tid],
            }
            if long_every and self._n % long_every == 0:
                full = f"{text} " + " ".join(rng.choice(_WORDS) for _ in range(80))
                tweet["text"] = full[:270] + "…"
                tweet["note_tweet"] = {"text": full}
            self.tweets.insert(0, tweet)
            ids.append(tid)
        return ids[::-1]

    def add_malformed_post(self) -> None:
        """Add a post lacking its ``id`` (tweepy's models would raise KeyError on the page)."""
        _tid, created = self._next()
        self.tweets.insert(0, {"text": "Acme without an id", "created_at": _iso(created)})

    def _search(self, req: Request, _m: re.Match[str]) -> Reply:
        if req.headers.get("authorization") != f"Bearer {self.bearer_token}":
            return Reply(
                401,
                {
                    "title": "Unauthorized",
                    "type": "about:blank",
                    "status": 401,
                    "detail": "Unauthorized",
                },
            )
        size = int(req.query.get("max_results", "10"))
        if not 10 <= size <= 100:
            return Reply(
                400,
                {
                    "errors": [{"message": "max_results must be 10..100"}],
                    "title": "Invalid Request",
                },
            )
        items = self.tweets
        if "start_time" in req.query:
            start = datetime.fromisoformat(req.query["start_time"].replace("Z", "+00:00"))
            items = [
                t
                for t in items
                if datetime.fromisoformat(t["created_at"].replace("Z", "+00:00")) >= start
            ]
        token = req.query.get("next_token")
        start_at = 0
        if token:
            # The token names the last position served by its position in the full list.
            if not token.startswith("n") or not token[1:].isdigit():
                return Reply(
                    400, {"errors": [{"message": "Invalid next_token"}], "title": "Invalid Request"}
                )
            start_at = int(token[1:])
        chunk = items[start_at : start_at + size]
        meta: dict[str, Any] = {"result_count": len(chunk)}
        if chunk:
            ids = [t.get("id") for t in chunk if t.get("id")]
            if ids:
                meta.update(newest_id=ids[0], oldest_id=ids[-1])
        if start_at + size < len(items):
            meta["next_token"] = f"n{start_at + size}"
        body: dict[str, Any] = {"meta": meta}
        if chunk:
            body["data"] = chunk
            authors = {t.get("author_id") for t in chunk}
            body["includes"] = {"users": [u for k, u in self.users.items() if k in authors]}
        reset = int(time.time()) + 900
        return Reply(
            200,
            body,
            {
                "x-rate-limit-limit": "450",
                "x-rate-limit-remaining": "449",
                "x-rate-limit-reset": str(reset),
            },
        )
