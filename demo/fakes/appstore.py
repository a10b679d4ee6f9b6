"""A fake Apple customer-reviews RSS feed (JSON), pages 1 to 10, newest first.

``GET /<country>/rss/customerreviews/page=<n>/id=<app>/sortby=mostrecent/json``.
Every field is a ``{"label": ...}`` wrapper; a page with one review has
``feed.entry`` as an object, as Apple sends it. ``page_size`` is 50 like
Apple's unless a test makes it smaller.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .server import FakeServer, Reply, Request

__all__ = ["FakeAppStore"]

_WORDS = "love hate broken great support refund crash update slow fast price".split()


@dataclass
class FakeAppStore:
    """A stateful fake: ``reviews[(country, app_id)]`` newest first."""

    page_size: int = 50
    reviews: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    epoch: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    server: FakeServer = field(init=False)
    _n: int = 0

    def __post_init__(self) -> None:
        self.server = FakeServer(
            [
                (
                    "GET",
                    r"/([a-z]{2})/rss/customerreviews/page=(\d+)/id=(\d+)/sortby=mostrecent/json",
                    self._feed,
                )
            ]
        )

    def reset(self) -> None:
        """Empty the data, faults and log."""
        self.reviews.clear()
        self.server.reset()
        self._n = 0

    def _updated(self) -> str:
        self._n += 1
        t = self.epoch - timedelta(hours=5) + timedelta(seconds=10 * self._n)
        return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")

    def add_reviews(
        self, n: int, *, app_id: str = "123456789", country: str = "us", seed: int = 4
    ) -> list[str]:
        """Add ``n`` reviews newer than all before; returns their ids, newest first."""
        rng = random.Random(seed + self._n)
        ids = []
        for _ in range(n):
            updated = self._updated()
            rid = str(9_000_000_000 + self._n)
            entry = {
                "author": {
                    "uri": {"label": f"https://itunes.apple.com/{country}/reviews/id{rid}"},
                    "name": {"label": f"reviewer{rng.randrange(40)}"},
                    "label": "",
                },
                "updated": {"label": updated},
                "im:rating": {"label": str(rng.randint(1, 5))},
                "im:version": {"label": "3.1.0"},
                "id": {"label": rid},
                "title": {"label": f"Acme {rng.choice(_WORDS)}"},
                "content": {
                    "label": " ".join(rng.choice(_WORDS) for _ in range(8)),
                    "attributes": {"type": "text"},
                },
                "link": {
                    "attributes": {"rel": "related", "href": f"https://apps.apple.com/r/{rid}"}
                },
                "im:voteSum": {"label": "0"},
                "im:voteCount": {"label": "0"},
            }
            self.reviews.setdefault((country, app_id), []).insert(0, entry)
            ids.append(rid)
        return ids[::-1]

    def add_malformed_review(self, *, app_id: str = "123456789", country: str = "us") -> None:
        """Add a review without a star rating."""
        entry = {
            "id": {"label": f"bad{self._n}"},
            "updated": {"label": self._updated()},
            "title": {"label": "Acme no stars"},
            "content": {"label": "missing rating"},
        }
        self.reviews.setdefault((country, app_id), []).insert(0, entry)

    def _feed(self, req: Request, m: re.Match[str]) -> Reply:
        country, page, app_id = m.group(1), int(m.group(2)), m.group(3)
        if not 1 <= page <= 10:
            return Reply(400, b"CustomerReviews RSS page depth is limited to 10")
        items = self.reviews.get((country, app_id), [])
        chunk = items[(page - 1) * self.page_size : page * self.page_size]
        feed: dict[str, Any] = {
            "author": {
                "name": {"label": "iTunes Store"},
                "uri": {"label": "http://www.apple.com/itunes/"},
            },
            "updated": {"label": self.epoch.isoformat()},
            "id": {"label": req.path},
            "link": [{"attributes": {"rel": "alternate", "type": "text/html"}}],
        }
        if (country, app_id) in self.reviews:
            feed["link"].append({"attributes": {"rel": "self", "href": req.path}})
        if chunk:
            feed["entry"] = chunk[0] if len(chunk) == 1 else chunk
        return Reply(200, {"feed": feed})
