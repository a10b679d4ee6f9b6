"""Reddit: brand searches (posts) and newest comments, through the real praw client.

Pages are read raw with ``Reddit.request`` (praw's auth, rate limiter and
retries stay in use) and every child is normalised on its own, because building
praw models from a Listing loses the whole page when one child is malformed
(see ``shared/research/collectors.md`` §1).

Streams:

* ``search:<subreddits>:<query>`` — ``/r/<subreddits>/search?sort=new`` for each
  query (posts), ``<subreddits>`` being ``all`` or ``a+b``.
* ``comments:<subreddits>`` — the newest comments of those subreddits, kept
  where they contain one of the queries (Reddit's API has no comment search).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import praw
import prawcore
import requests

from listenwell.store import Mention, RecordError, check_text, parse_timestamp
from listenwell.store.records import check_id

from .base import AuthError, Collector, FatalError, Page, RetriableError, RetryPolicy, dump_raw
from .http import mount_timeout

__all__ = ["RedditCollector", "normalize_reddit"]

_WEB = "https://www.reddit.com"
_DELETED = {"[deleted]", "[removed]", ""}


def _opt(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value not in _DELETED else None


def normalize_reddit(raw: Any) -> Mention:
    """Turn one Listing child (``{"kind": "t3"|"t1", "data": {...}}``) into a mention.

    The external id is the fullname (``t3_abc`` for a post, ``t1_def`` for a
    comment); a comment's ``in_reply_to`` is its parent's fullname.

    Raises:
        RecordError: Not a post or comment, or a required field is missing or invalid.
    """
    if not isinstance(raw, dict):
        raise RecordError(f"child must be an object, got {type(raw).__name__}")
    kind, data = raw.get("kind"), raw.get("data")
    if kind not in ("t1", "t3"):
        raise RecordError(f"unexpected kind {kind!r} (want t1 or t3)")
    if not isinstance(data, dict):
        raise RecordError("data is missing")
    fullname = data.get("name")
    if not isinstance(fullname, str) or not fullname:
        short = data.get("id")
        if not isinstance(short, str) or not short:
            raise RecordError("id is missing")
        fullname = f"{kind}_{short}"
    external_id = check_id(fullname, "id")
    created_at = parse_timestamp(data.get("created_utc"))
    if kind == "t3":
        title = check_text(data.get("title"), "title")
        body = data.get("selftext") or ""
        text = f"{title}\n\n{check_text(body, 'selftext', allow_empty=True)}" if body else title
        in_reply_to = None
    else:
        text = check_text(data.get("body"), "body")
        in_reply_to = _opt(data, "parent_id")
    permalink = _opt(data, "permalink")
    author = _opt(data, "author")
    return Mention(
        source="reddit",
        external_id=external_id,
        created_at=created_at,
        text=text,
        # Stored as Reddit shows it (u/name), like the customer list's reddit handles.
        author_handle=f"u/{author}" if author else None,
        author_name=author,
        url=_WEB + permalink if permalink and permalink.startswith("/") else permalink,
        in_reply_to=in_reply_to,
        raw=dump_raw(raw),
    )


def _retry_after(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _translate(exc: Exception, endpoint: str) -> Exception:
    """praw/prawcore exceptions -> our taxonomy, with the endpoint attached."""
    if isinstance(exc, prawcore.TooManyRequests):
        return RetriableError(
            "rate limited (429)", retry_after=_retry_after(exc.retry_after), endpoint=endpoint
        )
    if isinstance(exc, prawcore.OAuthException | prawcore.InvalidToken):
        return AuthError(f"Reddit refused the credentials: {exc}", endpoint=endpoint)
    if isinstance(exc, prawcore.ServerError | prawcore.RequestException | prawcore.BadJSON):
        return RetriableError(f"{type(exc).__name__}: {exc}", endpoint=endpoint)
    if isinstance(exc, prawcore.ResponseException):
        status = exc.response.status_code
        if status == 401:
            return AuthError("Reddit refused the credentials (401)", endpoint=endpoint)
        if status >= 500 or status == 408:
            return RetriableError(f"HTTP {status}", endpoint=endpoint)
        return FatalError(f"HTTP {status} ({type(exc).__name__})", endpoint=endpoint)
    if isinstance(exc, praw.exceptions.MissingRequiredAttributeException):
        return AuthError(f"Reddit is not configured: {exc}", endpoint=endpoint)
    return exc


class RedditCollector(Collector):
    """Posts from brand searches and matching comments, newest first, via praw."""

    name = "reddit"

    def __init__(
        self,
        *,
        client_id: str | None,
        client_secret: str | None,
        queries: Sequence[str],
        subreddits: Sequence[str] = (),
        user_agent: str = "listenwell/0.1 (social listening)",
        oauth_url: str = "https://oauth.reddit.com",
        reddit_url: str = "https://www.reddit.com",
        include_comments: bool = True,
        timeout: float = 15.0,
        page_size: int = 100,
        overlap: timedelta = timedelta(hours=1),
        retry: RetryPolicy | None = None,
        max_pages: int = 50,
    ) -> None:
        """Configure the collector; the praw client is created on the first request.

        Args:
            client_id: Reddit app client id.
            client_secret: Reddit app client secret.
            queries: Search queries (Reddit search syntax); comments are kept when
                they contain one of them (case-insensitive, quotes ignored).
            subreddits: Subreddits to search within; empty means all of Reddit.
            user_agent: A unique, descriptive User-Agent.
            oauth_url: Base URL of the API.
            reddit_url: Base URL of the token endpoint.
            include_comments: Also read the subreddits' newest comments.
            timeout: Seconds per HTTP request.
            page_size: Items per request (Reddit caps it at 100).
            overlap: How far below the cursor to re-read; Reddit search indexes late.
            retry: Retry policy per page.
            max_pages: Pages per stream per run; the next run resumes after them.
        """
        super().__init__(retry=retry, max_pages=max_pages)
        self.client_id = client_id
        self.client_secret = client_secret
        self.queries = [q for q in queries if q.strip()]
        self.subreddits = "+".join(s.strip().removeprefix("r/") for s in subreddits) or "all"
        self.user_agent = user_agent
        self.oauth_url = oauth_url
        self.reddit_url = reddit_url
        self.include_comments = include_comments
        self.timeout = timeout
        self.page_size = max(1, min(page_size, 100))
        self.overlap = overlap
        self._terms = [q.replace('"', "").strip().lower() for q in self.queries]
        self._reddit: praw.Reddit | None = None
        self._session: requests.Session | None = None

    @classmethod
    def from_settings(cls, settings: Any, *, retry: RetryPolicy | None = None) -> RedditCollector:
        """Build from :class:`~listenwell.config.Settings` (``sources.reddit``)."""
        src = settings.sources.reddit
        common = settings.sources
        secret = src.client_secret.get_secret_value() if src.client_secret else None
        return cls(
            client_id=src.client_id,
            client_secret=secret,
            queries=src.queries or settings.brand.keywords or [settings.brand.name],
            subreddits=src.subreddits,
            user_agent=src.user_agent,
            oauth_url=src.oauth_url,
            reddit_url=src.reddit_url,
            include_comments=src.include_comments,
            timeout=common.timeout_s,
            overlap=timedelta(seconds=src.overlap_s),
            retry=retry,
            max_pages=common.max_pages,
        )

    def streams(self) -> list[str]:
        """One search stream per query, plus the comments stream."""
        names = [f"search:{self.subreddits}:{q}" for q in self.queries]
        if self.include_comments and self._terms:
            names.append(f"comments:{self.subreddits}")
        return names

    def missing(self) -> str | None:
        """Names the settings still needed, if any."""
        if not self.client_id or not self.client_secret:
            return "set sources.reddit.client_id and sources.reddit.client_secret"
        return None

    def _client(self) -> praw.Reddit:
        if self._reddit is None:
            if (missing := self.missing()) is not None:
                raise AuthError(f"Reddit is not configured: {missing}")
            # praw passes prawcore's fixed 16 s to API calls; the adapter bounds them.
            self._session = mount_timeout(requests.Session(), self.timeout)
            self._reddit = praw.Reddit(
                client_id=self.client_id,
                client_secret=self.client_secret,
                user_agent=self.user_agent,
                oauth_url=self.oauth_url,
                reddit_url=self.reddit_url,
                check_for_updates=False,
                timeout=max(1, math.ceil(self.timeout)),  # praw takes whole seconds only
                requestor_kwargs={"session": self._session},
            )
        return self._reddit

    def fetch_page(self, stream: str, since: datetime | None, token: str | None) -> Page:
        """Fetch one Listing page of a search or comments stream."""
        kind, _, rest = stream.partition(":")
        subs, _, query = rest.partition(":")
        params: dict[str, str | int] = {"limit": self.page_size, "raw_json": 1}
        if token:
            params["after"] = token
        if kind == "search":
            path = f"/r/{subs}/search"
            params.update(q=query, sort="new", t="all", type="link")
            params["restrict_sr"] = "false" if subs == "all" else "true"
        elif kind == "comments":
            path = f"/r/{subs}/comments"
        else:
            raise FatalError(f"unknown stream {stream!r}")
        endpoint = f"GET {path}" + (f" after={token}" if token else "")
        reddit = self._client()
        try:
            listing = reddit.request(method="GET", path=path, params=params)
        except Exception as exc:
            raise _translate(exc, endpoint) from exc
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("children"), list):
            raise RetriableError("the answer is not a Listing", endpoint=endpoint)
        children: list[Any] = data["children"]
        after = data.get("after") if isinstance(data.get("after"), str) else None
        page = Page(children, after if children else None, endpoint, quota=self._quota())
        if kind == "comments":
            self._keep_matching(page)
        return page

    def _keep_matching(self, page: Page) -> None:
        """Keep comments that mention a term; remember the time range scanned."""
        kept, times = [], []
        for child in page.items:
            data = child.get("data") if isinstance(child, dict) else None
            body = data.get("body") if isinstance(data, dict) else None
            created = data.get("created_utc") if isinstance(data, dict) else None
            if isinstance(created, int | float) and not isinstance(created, bool):
                times.append(datetime.fromtimestamp(created, UTC))
            # Malformed children are kept, so that they are quarantined with a reason.
            if not isinstance(body, str) or any(t in body.lower() for t in self._terms):
                kept.append(child)
        page.items = kept
        page.newest = max(times, default=None)
        page.oldest = min(times, default=None)

    def _quota(self) -> dict[str, Any] | None:
        assert self._reddit is not None
        limits = dict(self._reddit.auth.limits)
        return {k: v for k, v in limits.items() if v is not None} or None

    def item_id(self, raw: Any) -> str | None:
        """The child's fullname or id, if readable."""
        data = raw.get("data") if isinstance(raw, dict) else None
        if isinstance(data, dict):
            value = data.get("name") or data.get("id")
            return str(value) if value else None
        return None

    def normalize(self, raw: Any) -> Mention:
        """See :func:`normalize_reddit`."""
        return normalize_reddit(raw)

    def close(self) -> None:
        """Close praw's HTTP session."""
        if self._session is not None:
            self._session.close()
        self._session = None
        self._reddit = None
