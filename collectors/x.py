"""X (Twitter): API v2 recent search, through the real ``tweepy.Client``.

tweepy hard-codes ``https://api.twitter.com`` and sets no request timeout (see
``shared/research/collectors.md`` §2). Both are handled by a ``requests``
transport adapter mounted on the client's own session: it adds a timeout to
every request and, when ``sources.x.api_base_url`` names another host, sends
the request there. Everything above the socket stays tweepy's.

Pages are read with ``return_type=requests.Response``: the raw JSON lets one
malformed post be quarantined without losing the page, and the rate-limit
headers are kept for ``listenwell sources status``. Long posts are read from
``note_tweet.text``; authors come from the ``author_id`` expansion.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import tweepy

from listenwell.store import Mention, RecordError, check_text, parse_timestamp
from listenwell.store.records import check_id

from .base import AuthError, Collector, FatalError, Page, RetriableError, RetryPolicy, dump_raw
from .http import TimeoutAdapter

__all__ = ["XCollector", "normalize_x"]

TWEEPY_HOST = "https://api.twitter.com"
# Recent search covers seven days; an older start_time is refused with 400.
_WINDOW = timedelta(days=7) - timedelta(minutes=5)
_TWEET_FIELDS = [
    "created_at",
    "author_id",
    "lang",
    "conversation_id",
    "referenced_tweets",
    "note_tweet",
    "public_metrics",
]


def normalize_x(raw: Any) -> Mention:
    """Turn ``{"tweet": {...}, "author": {...} | None}`` into a mention.

    The text is the long form (``note_tweet.text``) when there is one. Ids are
    stored as strings (tweepy's models make them ints; the JSON has strings).

    Raises:
        RecordError: The post lacks its id, time or text.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("tweet"), dict):
        raise RecordError("not a post")
    tweet: dict[str, Any] = raw["tweet"]
    author: dict[str, Any] = raw["author"] if isinstance(raw.get("author"), dict) else {}
    external_id = check_id(tweet.get("id"), "id")
    note = tweet.get("note_tweet")
    text = note.get("text") if isinstance(note, dict) and note.get("text") else tweet.get("text")
    username = author.get("username") if isinstance(author.get("username"), str) else None
    refs = tweet.get("referenced_tweets")
    reply_to = None
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, dict) and ref.get("type") == "replied_to" and ref.get("id"):
            reply_to = check_id(ref["id"], "referenced_tweets.id")
    return Mention(
        source="x",
        external_id=external_id,
        created_at=parse_timestamp(tweet.get("created_at")),
        text=check_text(text, "text"),
        # Stored as X shows it (@name), like imported files and the customer list.
        author_handle=f"@{username}" if username else None,
        author_name=author.get("name") if isinstance(author.get("name"), str) else None,
        url=f"https://x.com/{username or 'i/web'}/status/{external_id}",
        in_reply_to=reply_to,
        raw=dump_raw(raw),
    )


def _retry_after(resp: requests.Response | None, reset_time: int | None) -> float | None:
    if resp is not None and resp.headers.get("retry-after"):
        try:
            return float(resp.headers["retry-after"])
        except ValueError:
            pass
    if reset_time is not None:
        return max(0.0, reset_time - time.time()) + 1
    return None


def _translate(exc: Exception, endpoint: str) -> Exception:
    """tweepy/requests exceptions -> our taxonomy, with the endpoint attached."""
    if isinstance(exc, tweepy.TooManyRequests):
        wait = _retry_after(exc.response, getattr(exc, "reset_time", None))
        return RetriableError("rate limited (429)", retry_after=wait, endpoint=endpoint)
    if isinstance(exc, tweepy.Unauthorized):
        return AuthError("X refused the bearer token (401)", endpoint=endpoint)
    if isinstance(exc, tweepy.TwitterServerError):
        return RetriableError(f"HTTP {exc.response.status_code}", endpoint=endpoint)
    if isinstance(exc, tweepy.HTTPException):
        messages = "; ".join(str(m) for m in exc.api_messages) or type(exc).__name__
        return FatalError(f"HTTP {exc.response.status_code}: {messages}", endpoint=endpoint)
    if isinstance(exc, requests.RequestException):
        return RetriableError(f"{type(exc).__name__}: {exc}", endpoint=endpoint)
    return exc


class XCollector(Collector):
    """Posts from X recent search, one stream per query."""

    name = "x"

    def __init__(
        self,
        *,
        bearer_token: str | None,
        queries: Sequence[str],
        api_base_url: str = TWEEPY_HOST,
        timeout: float = 15.0,
        page_size: int = 100,
        retry: RetryPolicy | None = None,
        max_pages: int = 50,
    ) -> None:
        """Configure the collector; the tweepy client is created on the first request.

        Args:
            bearer_token: App-only bearer token.
            queries: Recent-search queries (X query syntax).
            api_base_url: Base URL of the API; other than tweepy's host, requests
                are sent there instead.
            timeout: Seconds per HTTP request (tweepy has none of its own).
            page_size: ``max_results`` per request (X allows 10 to 100).
            retry: Retry policy per page.
            max_pages: Pages per stream per run; the next run resumes after them.
        """
        super().__init__(retry=retry, max_pages=max_pages)
        self.bearer_token = bearer_token
        self.queries = [q for q in queries if q.strip()]
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout = timeout
        self.page_size = max(10, min(page_size, 100))
        self._client: tweepy.Client | None = None

    @classmethod
    def from_settings(cls, settings: Any, *, retry: RetryPolicy | None = None) -> XCollector:
        """Build from :class:`~listenwell.config.Settings` (``sources.x``)."""
        src = settings.sources.x
        common = settings.sources
        token = src.bearer_token.get_secret_value() if src.bearer_token else None
        queries = src.queries or [
            " OR ".join(f'"{k}"' for k in (settings.brand.keywords or [settings.brand.name]))
        ]
        return cls(
            bearer_token=token,
            queries=queries,
            api_base_url=src.api_base_url,
            timeout=common.timeout_s,
            page_size=src.max_results,
            retry=retry,
            max_pages=common.max_pages,
        )

    def streams(self) -> list[str]:
        """One stream per query."""
        return [f"search:{q}" for q in self.queries]

    def missing(self) -> str | None:
        """Names the settings still needed, if any."""
        return None if self.bearer_token else "set sources.x.bearer_token"

    def client(self) -> tweepy.Client:
        """The tweepy client, with the timeout (and redirect) adapter mounted."""
        if self._client is None:
            if (missing := self.missing()) is not None:
                raise AuthError(f"X is not configured: {missing}")
            client = tweepy.Client(
                bearer_token=self.bearer_token,
                return_type=requests.Response,
                wait_on_rate_limit=False,  # its own wait has no cap; ours is bounded
            )
            redirect = None if self.api_base_url == TWEEPY_HOST else self.api_base_url
            client.session.mount(TWEEPY_HOST + "/", TimeoutAdapter(self.timeout, redirect))
            self._client = client
        return self._client

    def fetch_page(self, stream: str, since: datetime | None, token: str | None) -> Page:
        """Fetch one page of recent search, from ``since`` (inclusive) if given."""
        query = stream.partition(":")[2]
        kwargs: dict[str, Any] = {
            "max_results": self.page_size,
            "expansions": ["author_id", "referenced_tweets.id"],
            "tweet_fields": _TWEET_FIELDS,
            "user_fields": ["username", "name", "public_metrics"],  # followers: reach rules
        }
        if since is not None:
            start = max(since, datetime.now(UTC) - _WINDOW)
            kwargs["start_time"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")  # floored: inclusive
        if token:
            kwargs["next_token"] = token
        endpoint = "GET /2/tweets/search/recent" + (f" next_token={token}" if token else "")
        client = self.client()
        try:
            resp: requests.Response = client.search_recent_tweets(query, **kwargs)
            body = resp.json()
        except requests.JSONDecodeError as exc:
            raise RetriableError(f"the answer is not JSON: {exc}", endpoint=endpoint) from exc
        except Exception as exc:
            raise _translate(exc, endpoint) from exc
        if not isinstance(body, dict):
            raise RetriableError("the answer is not a JSON object", endpoint=endpoint)
        return self._page(body, resp, endpoint)

    def _page(self, body: dict[str, Any], resp: requests.Response, endpoint: str) -> Page:
        includes: dict[str, Any] = (
            body["includes"] if isinstance(body.get("includes"), dict) else {}
        )
        users = {str(u.get("id")): u for u in includes.get("users") or [] if isinstance(u, dict)}
        tweets = body.get("data") or []
        if not isinstance(tweets, list):
            raise RetriableError("data is not a list", endpoint=endpoint)
        items = [
            {"tweet": t, "author": users.get(str(t.get("author_id")))}
            if isinstance(t, dict)
            else {"tweet": t, "author": None}
            for t in tweets
        ]
        meta: dict[str, Any] = body["meta"] if isinstance(body.get("meta"), dict) else {}
        token = meta.get("next_token") if isinstance(meta.get("next_token"), str) else None
        quota = {
            key.removeprefix("x-rate-limit-"): resp.headers[key]
            for key in ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset")
            if key in resp.headers
        }
        return Page(items, token if items else None, endpoint, quota=quota or None)

    def item_id(self, raw: Any) -> str | None:
        """The post's id, if readable."""
        tweet = raw.get("tweet") if isinstance(raw, dict) else None
        value = tweet.get("id") if isinstance(tweet, dict) else None
        return None if value is None else str(value)

    def normalize(self, raw: Any) -> Mention:
        """See :func:`normalize_x`."""
        return normalize_x(raw)

    def close(self) -> None:
        """Close tweepy's HTTP session."""
        if self._client is not None:
            self._client.session.close()
            self._client = None
