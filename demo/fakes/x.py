"""A fake X API v2 recent search that speaks the wire format tweepy expects.

``GET /2/tweets/search/recent`` with ``Authorization: Bearer <token>``:
posts matching ``query`` (see :mod:`.query`), newest first, filtered by
``start_time``/``end_time`` and ``since_id``/``until_id``, ``max_results``
(10 to 100) a page, paged by an opaque ``next_token``, with the ``author_id``
expansion in ``includes.users`` and ``x-rate-limit-*`` headers. A wrong token
gets 401 as X sends it; a query X would refuse gets 400.

``POST /2/tweets`` creates a post as tweepy's ``Client.create_tweet`` sends it
(JSON ``{"text": ..., "reply": {"in_reply_to_tweet_id": ...}}``) and answers
``201 {"data": {"id", "text", "edit_history_tweet_ids"}}``. Like X, it needs
*user* context: OAuth 1.0a (``Authorization: OAuth ...`` with this fake's
consumer key and access token; the signature is not checked) or an OAuth 2.0
user token (:attr:`FakeX.user_token`) as the bearer; the app-only bearer gets
403 "Unsupported Authentication", and the same text twice gets X's 403
"duplicate content". Created posts are kept in :attr:`FakeX.posted`;
:meth:`FakeX.fail_next_post` queues refusals.

Posts come from a seeded generator (:meth:`FakeX.add_posts`) or from given
records (:meth:`FakeX.add_mentions`, e.g. the bundled demo mentions), turned
into X's wire format by :func:`tweets_from_mentions`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .query import Doc, QueryError, compile_query
from .server import FakeServer, Reply, Request, fault

__all__ = ["POST_FAULTS", "FakeX", "tweets_from_mentions", "user_id"]

_WORDS = "love hate broken great support refund shipping app update slow fast price".split()
# A post longer than this is a long post: ``text`` is cut and the whole is in ``note_tweet``.
_SHORT = 280


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _bad_request(message: str) -> Reply:
    return Reply(400, {"errors": [{"message": message}], "title": "Invalid Request"})


_UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}


def _duplicate() -> Reply:
    return Reply(
        403,
        {
            "detail": "You are not allowed to create a Tweet with duplicate content.",
            "type": "about:blank",
            "title": "Forbidden",
            "status": 403,
        },
    )


def _rate_limited() -> Reply:
    reset = int(time.time()) + 900
    return Reply(
        429,
        {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank"},
        {
            "x-rate-limit-limit": "100",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(reset),
        },
    )


def _server_error() -> Reply:
    return Reply(503, {"title": "Service Unavailable", "detail": "Service Unavailable"})


#: Refusals of a new post, by name (``fail_next_post``); each call makes a fresh answer.
POST_FAULTS: Mapping[str, Callable[[], Reply]] = {
    "duplicate": _duplicate,
    "429": _rate_limited,
    "503": _server_error,
}


def user_id(username: str) -> str:
    """A stable numeric user id for ``username`` (X's ids are numeric strings)."""
    digest = hashlib.sha256(username.lower().encode("utf-8")).hexdigest()
    return str(10**17 + int(digest[:15], 16))


def tweets_from_mentions(
    records: Iterable[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Turn mention records (the ``import mentions`` JSONL fields) into X API v2 posts.

    Each post has ``id``, ``text``, ``created_at``, ``author_id`` and
    ``edit_history_tweet_ids``; a reply also has ``referenced_tweets``
    (``replied_to``), ``in_reply_to_user_id`` and the ``conversation_id`` of
    its thread's first post. A text longer than 280 characters is cut in
    ``text`` and whole in ``note_tweet.text``, as X sends long posts.

    Args:
        records: Mappings with ``external_id``, ``created_at`` (ISO 8601),
            ``author_handle``, ``author_name``, ``text`` and ``in_reply_to``.

    Returns:
        The posts, newest first, and the users by id (for ``includes.users``).
    """
    rows = list(records)
    by_id = {str(r["external_id"]): r for r in rows}
    users: dict[str, dict[str, Any]] = {}
    tweets: list[dict[str, Any]] = []

    def author_of(row: Mapping[str, Any]) -> str:
        username = str(row.get("author_handle") or "unknown").removeprefix("@")
        uid = user_id(username)
        users.setdefault(uid, {"id": uid, "username": username, "name": row.get("author_name")})
        if users[uid]["name"] is None:
            users[uid]["name"] = username
        return uid

    def root_of(tid: str) -> str:
        seen = {tid}
        parent = by_id[tid].get("in_reply_to")
        while parent and str(parent) in by_id and str(parent) not in seen:
            tid = str(parent)
            seen.add(tid)
            parent = by_id[tid].get("in_reply_to")
        return str(parent) if parent and str(parent) not in by_id else tid

    for row in rows:
        tid = str(row["external_id"])
        text = str(row.get("text") or "")
        tweet: dict[str, Any] = {
            "id": tid,
            "text": text,
            "created_at": _iso(_time(str(row["created_at"])).astimezone(UTC)),
            "author_id": author_of(row),
            "conversation_id": root_of(tid),
            "edit_history_tweet_ids": [tid],
        }
        if len(text) > _SHORT:
            tweet["text"] = text[: _SHORT - 1] + "…"
            tweet["note_tweet"] = {"text": text}
        parent = row.get("in_reply_to")
        if parent:
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": str(parent)}]
            if str(parent) in by_id:
                tweet["in_reply_to_user_id"] = author_of(by_id[str(parent)])
        tweets.append(tweet)
    tweets.sort(key=_newest_first)
    return tweets, users


def _newest_first(tweet: dict[str, Any]) -> tuple[float, int]:
    created = tweet.get("created_at")
    when = _time(created).timestamp() if isinstance(created, str) else 0.0
    tid = str(tweet.get("id") or "")
    return -when, -(int(tid) if tid.isdigit() else 0)


@dataclass
class FakeX:
    """A stateful fake: ``tweets`` newest first; ``users`` by id.

    Tests may change ``tweets`` directly; the answers follow (the cache of
    search results is keyed by the list's length and ends).
    """

    bearer_token: str = "x-token"
    #: An OAuth 2.0 user-context token: it reads like the app token and may also post.
    user_token: str = "x-user-token"
    #: OAuth 1.0a user context: the app's consumer key and the user's access token.
    consumer_key: str = "x-consumer-key"
    consumer_secret: str = "x-consumer-secret"
    access_token: str = "x-access-token"
    access_token_secret: str = "x-access-secret"
    tweets: list[dict[str, Any]] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    epoch: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    #: Posts created with ``POST /2/tweets``, oldest first: id, text, in_reply_to_tweet_id, auth.
    posted: list[dict[str, Any]] = field(default_factory=list)
    server: FakeServer = field(init=False)
    _n: int = 0
    _cache: dict[tuple[Any, ...], list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.server = FakeServer(
            [
                ("GET", r"/2/tweets/search/recent", self._search),
                ("POST", r"/2/tweets", self._create),
            ]
        )

    def reset(self) -> None:
        """Empty the data, faults and log."""
        self.tweets.clear()
        self.users.clear()
        self.posted.clear()
        self._cache.clear()
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
        new: list[dict[str, Any]] = []
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
            new.append(tweet)
            ids.append(tid)
        self.tweets[:0] = new[::-1]
        return ids[::-1]

    def add_mentions(self, records: Iterable[Mapping[str, Any]]) -> list[str]:
        """Serve the given mention records as posts (see :func:`tweets_from_mentions`).

        Returns:
            The new posts' ids, newest first.
        """
        tweets, users = tweets_from_mentions(records)
        self.users.update(users)
        self.tweets.extend(tweets)
        self.tweets.sort(key=_newest_first)
        return [t["id"] for t in tweets]

    def add_malformed_post(self) -> None:
        """Add a post lacking its ``id`` (tweepy's models would raise KeyError on the page)."""
        _tid, created = self._next()
        self.tweets.insert(0, {"text": "Acme without an id", "created_at": _iso(created)})

    def fail_next_post(self, *kinds: str) -> None:
        """Refuse the next new posts, in order: ``duplicate`` (403), ``429``, ``503``, or
        any fault of :func:`~.server.fault` (``500``, ``slow``, ``malformed``, ...)."""
        replies = [POST_FAULTS[k]() if k in POST_FAULTS else fault(k) for k in kinds]
        self.server.fail_next(r"^/2/tweets$", *replies)

    # -- posting ---------------------------------------------------------------------

    def _user_context(self, req: Request) -> str | Reply:
        """``oauth1`` or ``oauth2-user`` for a request that may post, else the refusal."""
        auth = req.headers.get("authorization", "")
        if auth == f"Bearer {self.user_token}":
            return "oauth2-user"
        if auth.startswith("OAuth "):
            fields = dict(re.findall(r'(\w+)="([^"]*)"', auth))
            if (fields.get("oauth_consumer_key"), fields.get("oauth_token")) == (
                self.consumer_key,
                self.access_token,
            ) and fields.get("oauth_signature"):
                return "oauth1"
        if auth == f"Bearer {self.bearer_token}":
            return Reply(
                403,
                {
                    "title": "Unsupported Authentication",
                    "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden for "
                    "this endpoint.  Supported authentication types are [OAuth 1.0a User "
                    "Context, OAuth 2.0 User Context].",
                    "type": "https://api.twitter.com/2/problems/unsupported-authentication",
                    "status": 403,
                },
            )
        return Reply(401, _UNAUTHORIZED)

    def _create(self, req: Request, _m: re.Match[str]) -> Reply:
        context = self._user_context(req)
        if isinstance(context, Reply):
            return context
        try:
            body = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _bad_request("the body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return _bad_request("text is required")
        text: str = body["text"]
        reply = body.get("reply")
        target = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
        if reply is not None and not (isinstance(target, str) and target.isdigit()):
            return _bad_request("reply.in_reply_to_tweet_id must be a numeric string")
        if any(p["text"] == text for p in self.posted):
            return _duplicate()
        tid = str(1_900_000_000_000_000_000 + len(self.posted) + 1)
        self.posted.append(
            {"id": tid, "text": text, "in_reply_to_tweet_id": target, "auth": context}
        )
        return Reply(201, {"data": {"id": tid, "text": text, "edit_history_tweet_ids": [tid]}})

    # -- search --------------------------------------------------------------------

    def _doc(self, tweet: dict[str, Any]) -> Doc:
        note = tweet.get("note_tweet")
        text = note.get("text") if isinstance(note, dict) else None
        author = self.users.get(str(tweet.get("author_id")), {})
        replied = self.users.get(str(tweet.get("in_reply_to_user_id")), {})
        return Doc(
            text=str(text or tweet.get("text") or "").lower(),
            author=str(author.get("username") or "").lower(),
            reply_to=str(replied.get("username") or "").lower(),
            conversation_id=str(tweet.get("conversation_id") or ""),
        )

    def matching(self, query: str, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """The posts a search with ``query`` and the filters in ``params`` finds, newest first.

        Raises:
            QueryError: X would refuse the query.
            ValueError: A filter is malformed.
        """
        params = params or {}
        filters = tuple(params.get(k) for k in ("start_time", "end_time", "since_id", "until_id"))
        ends = (id(self.tweets[0]), id(self.tweets[-1])) if self.tweets else ()
        key = (query, filters, len(self.tweets), ends, len(self.users))
        if key in self._cache:
            return self._cache[key]
        match = compile_query(query)
        start, end = (_time(v) if v else None for v in filters[:2])
        since, until = (int(v) if v else None for v in filters[2:])
        found = []
        for tweet in self.tweets:
            created = tweet.get("created_at")
            when = _time(created) if isinstance(created, str) else None
            tid = str(tweet.get("id") or "")
            num = int(tid) if tid.isdigit() else None
            if start and (when is None or when < start) or end and (when is None or when >= end):
                continue
            if since is not None and (num is None or num <= since):
                continue
            if until is not None and (num is None or num >= until):
                continue
            if match(self._doc(tweet)):
                found.append(tweet)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = found
        return found

    def _search(self, req: Request, _m: re.Match[str]) -> Reply:
        if req.headers.get("authorization") not in (
            f"Bearer {self.bearer_token}",
            f"Bearer {self.user_token}",
        ):
            return Reply(401, _UNAUTHORIZED)
        size = int(req.query.get("max_results", "10"))
        if not 10 <= size <= 100:
            return _bad_request("max_results must be 10..100")
        try:
            items = self.matching(req.query.get("query", ""), req.query)
        except QueryError as exc:
            return _bad_request(f"Invalid query: {exc}")
        except ValueError as exc:
            return _bad_request(f"Invalid filter: {exc}")
        token = req.query.get("next_token")
        start_at = 0
        if token:
            # The token names the position to go on from, in the list the query finds.
            if not token.startswith("n") or not token[1:].isdigit():
                return _bad_request("Invalid next_token")
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
            authors = dict.fromkeys(str(t.get("author_id")) for t in chunk)
            body["includes"] = {"users": [self.users[a] for a in authors if a in self.users]}
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
