"""A fake Reddit API that speaks the wire format praw expects.

* ``POST /api/v1/access_token``: HTTP Basic ``client_id:client_secret``; a
  wrong pair gets 401 like Reddit's.
* ``GET /r/<subs>/search`` and ``GET /r/<subs>/comments``: Listings, newest
  first, paged by ``after=<fullname>`` and ``limit`` (capped at 100). A
  request without the bearer token gets 401 *with* ``www-authenticate``.
* ``POST /api/comment``: a reply, as praw's ``Comment.reply``/``Submission.reply``
  send it (form fields ``thing_id``, ``text``, ``api_type=json``). It needs a
  *user* token, got with the password grant (a script app's ``username`` and
  ``password``) or the refresh-token grant, as on Reddit; the app-only token
  gets 403. Accepted replies are kept in :attr:`FakeReddit.posted` and answered
  ``{"json": {"errors": [], "data": {"things": [<t1 comment>]}}}``; Reddit's
  refusals (locked thread, rate limit, deleted parent) come as ``json.errors``
  with status 200, and :meth:`FakeReddit.fail_next_reply` queues them.
* Every answer carries ``x-ratelimit-*`` headers that cause no pacing.
"""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from .server import FakeServer, Reply, Request, fault

__all__ = ["REPLY_FAULTS", "FakeReddit"]

TOKEN = "fake-reddit-token"
USER_TOKEN = "fake-reddit-user-token"
_THING = re.compile(r"t[13]_[0-9a-z]+")


def _api_errors(*errors: list[str]) -> Reply:
    """Reddit's way of refusing a write: status 200, ``json.errors`` of [type, message, field]."""
    return Reply(200, {"json": {"errors": [list(e) for e in errors]}})


#: Refusals of a reply, by name, as Reddit sends them (``fail_next_reply``).
REPLY_FAULTS: Mapping[str, Reply] = {
    "locked": _api_errors(["THREAD_LOCKED", "Comments are locked.", "parent"]),
    "deleted": _api_errors(["DELETED_COMMENT", "that comment has been deleted", "parent"]),
    "ratelimit": _api_errors(
        [
            "RATELIMIT",
            "Looks like you've been doing that a lot. Take a break for 9 minutes before "
            "trying again.",
            "ratelimit",
        ]
    ),
    "403": Reply(403, {"message": "Forbidden", "error": 403}),
}
_WORDS = "love hate broken great support refund shipping app update slow fast price".split()


@dataclass
class FakeReddit:
    """A stateful fake: ``posts`` and ``comments`` are ``(fullname, child)`` lists, newest first."""

    client_id: str = "cid"
    client_secret: str = "secret"
    #: The account a script app logs in with (password grant); replies need a user token.
    username: str = "acme_support"
    password: str = "hunter2"
    refresh_token: str = "fake-refresh-token"
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    comments: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    epoch: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    #: Replies accepted by ``POST /api/comment``, oldest first: thing_id, text, id, name.
    posted: list[dict[str, Any]] = field(default_factory=list)
    server: FakeServer = field(init=False)
    _n: int = 0
    _cache: dict[tuple[Any, ...], tuple[list[Any], dict[str, int]]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        self.server = FakeServer(
            [
                ("POST", r"/api/v1/access_token/?", self._token),
                ("GET", r"/r/([^/]+)/search/?", self._search),
                ("GET", r"/r/([^/]+)/comments/?", self._comments),
                ("POST", r"/api/comment/?", self._reply),
            ],
            default_headers={
                "x-ratelimit-remaining": "995.0",
                "x-ratelimit-used": "5",
                "x-ratelimit-reset": "300",
            },
        )

    # -- data ----------------------------------------------------------------------

    def reset(self) -> None:
        """Empty the data, faults and log."""
        self.posts.clear()
        self.comments.clear()
        self.posted.clear()
        self._cache.clear()
        self.server.reset()
        self._n = 0

    def _next_time(self) -> float:
        self._n += 1
        return (self.epoch - timedelta(hours=5) + timedelta(seconds=10 * self._n)).timestamp()

    def add_posts(self, n: int, *, text: str = "Acme", seed: int = 1) -> list[str]:
        """Add ``n`` posts newer than all before; returns their fullnames, newest first."""
        rng = random.Random(seed + self._n)
        names: list[str] = []
        new: list[tuple[str, dict[str, Any]]] = []
        for _ in range(n):
            created = self._next_time()
            short = f"p{self._n:05d}"
            data = {
                "id": short,
                "name": f"t3_{short}",
                "title": f"{text} {rng.choice(_WORDS)} #{self._n}",
                "selftext": " ".join(rng.choice(_WORDS) for _ in range(6)),
                "author": f"user{rng.randrange(50)}",
                "subreddit": "acme",
                "created_utc": created,
                "permalink": f"/r/acme/comments/{short}/post/",
                "url": f"https://www.reddit.com/r/acme/comments/{short}/post/",
                "score": rng.randrange(100),
                "num_comments": 0,
                "over_18": False,
            }
            new.append((f"t3_{short}", {"kind": "t3", "data": data}))
            names.append(f"t3_{short}")
        self.posts[:0] = new[::-1]
        return names[::-1]

    def add_comments(self, n: int, *, text: str = "Acme", seed: int = 2) -> list[str]:
        """Add ``n`` comments containing ``text``; returns their fullnames, newest first."""
        rng = random.Random(seed + self._n)
        names: list[str] = []
        new: list[tuple[str, dict[str, Any]]] = []
        for _ in range(n):
            created = self._next_time()
            short = f"c{self._n:05d}"
            data = {
                "id": short,
                "name": f"t1_{short}",
                "body": f"{rng.choice(_WORDS)} {text} {rng.choice(_WORDS)}",
                "author": f"user{rng.randrange(50)}",
                "link_id": "t3_p00001",
                "parent_id": "t3_p00001",
                "subreddit": "acme",
                "created_utc": created,
                "permalink": f"/r/acme/comments/p00001/post/{short}/",
                "score": 1,
            }
            new.append((f"t1_{short}", {"kind": "t1", "data": data}))
            names.append(f"t1_{short}")
        self.comments[:0] = new[::-1]
        return names[::-1]

    def add_malformed_post(self) -> str:
        """Add a post lacking its ``id`` and ``name`` (praw would lose the whole page)."""
        created = self._next_time()
        key = f"t3_bad{self._n}"
        child = {"kind": "t3", "data": {"title": "Acme without an id", "created_utc": created}}
        self.posts.insert(0, (key, child))
        return key

    def fail_next_reply(self, *kinds: str) -> None:
        """Refuse the next replies, in order: ``locked``, ``deleted``, ``ratelimit``, ``403``,
        or any fault of :func:`~.server.fault` (``429``, ``500``, ``slow``, ...)."""
        replies = [replace(REPLY_FAULTS[k]) if k in REPLY_FAULTS else fault(k) for k in kinds]
        self.server.fail_next(r"^/api/comment", *replies)

    # -- routes --------------------------------------------------------------------

    def _token(self, req: Request, _m: re.Match[str]) -> Reply:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if req.headers.get("authorization") != f"Basic {expected}":
            return Reply(401, {"message": "Unauthorized", "error": 401})
        form = dict(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True))
        grant = form.get("grant_type")
        token = TOKEN
        if grant == "password":
            if (form.get("username"), form.get("password")) != (self.username, self.password):
                return Reply(200, {"error": "invalid_grant"})
            token = USER_TOKEN
        elif grant == "refresh_token":
            if form.get("refresh_token") != self.refresh_token:
                return Reply(200, {"error": "invalid_grant"})
            token = USER_TOKEN
        return Reply(
            200, {"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"}
        )

    def _reply(self, req: Request, _m: re.Match[str]) -> Reply:
        denied = self._authorized(req)
        if denied is not None:
            return denied
        if req.headers.get("authorization") != f"bearer {USER_TOKEN}":
            # An app-only token cannot write, as on Reddit.
            return Reply(403, {"message": "Forbidden", "error": 403})
        form = dict(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True))
        thing_id, text = form.get("thing_id", ""), form.get("text", "")
        if not _THING.fullmatch(thing_id):
            return _api_errors(["INVALID_THING_ID", "that is not a valid id", "parent"])
        if not text.strip():
            return _api_errors(["NO_TEXT", "we need something here", "text"])
        short = f"r{len(self.posted) + 1:05d}"
        link_id = thing_id if thing_id.startswith("t3_") else "t3_p00001"
        data = {
            "id": short,
            "name": f"t1_{short}",
            "body": text,
            "author": self.username,
            "parent_id": thing_id,
            "link_id": link_id,
            "subreddit": "acme",
            "created_utc": datetime.now(UTC).timestamp(),
            "permalink": f"/r/acme/comments/{link_id[3:]}/post/{short}/",
            "score": 1,
        }
        self.posted.append({"thing_id": thing_id, "text": text, "id": short, "name": f"t1_{short}"})
        return Reply(
            200, {"json": {"errors": [], "data": {"things": [{"kind": "t1", "data": data}]}}}
        )

    def _authorized(self, req: Request) -> Reply | None:
        if req.headers.get("authorization") not in (f"bearer {TOKEN}", f"bearer {USER_TOKEN}"):
            return Reply(
                401,
                {"message": "Unauthorized", "error": 401},
                {"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'},
            )
        return None

    def _listing(self, req: Request, items: list[tuple[str, dict[str, Any]]]) -> Reply:
        denied = self._authorized(req)
        if denied is not None:
            return denied
        limit = min(int(req.query.get("limit", "25")), 100)
        start = 0
        after = req.query.get("after")
        if after:
            index = self._index(items)
            start = index[after] + 1 if after in index else len(items)
        chunk = items[start : start + limit]
        more = start + limit < len(items)
        return Reply(
            200,
            {
                "kind": "Listing",
                "data": {
                    "after": chunk[-1][0] if chunk and more else None,
                    "before": None,
                    "dist": len(chunk),
                    "modhash": "",
                    "children": [c for _, c in chunk],
                },
            },
        )

    def _key(self, name: str, items: list[tuple[str, dict[str, Any]]]) -> tuple[Any, ...]:
        # Tests change the lists directly: a change of length or ends is a new key.
        ends = (id(items[0]), id(items[-1])) if items else ()
        return (name, len(items), ends)

    def _index(self, items: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
        """Fullname -> position, cached while the list is unchanged."""
        key = (*self._key("index", items), id(items))
        if key not in self._cache:
            self._cache[key] = (items, {k: i for i, (k, _) in enumerate(items)})
        cached_items, index = self._cache[key]
        return index if cached_items is items else {k: i for i, (k, _) in enumerate(items)}

    def _search(self, req: Request, _m: re.Match[str]) -> Reply:
        q = req.query.get("q", "").lower()
        key = self._key("search:" + q, self.posts)
        if key not in self._cache:
            found = [(k, c) for k, c in self.posts if q in str(c).lower()]
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = (found, {})
        return self._listing(req, self._cache[key][0])

    def _comments(self, req: Request, _m: re.Match[str]) -> Reply:
        return self._listing(req, self.comments)
