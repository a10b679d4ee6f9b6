"""Apple App Store reviews, from the public customer-reviews RSS feed (JSON).

``{base_url}/{country}/rss/customerreviews/page={n}/id={app_id}/sortby=mostrecent/json``
serves 50 reviews a page, newest first, up to page 10. Every field is a
``{"label": ...}`` wrapper, and a page holding one review has ``feed.entry``
as an object instead of a list (facundoolano/app-store-scraper#83), which
this reader accepts. Our own small reader, so the base URL is a setting and
no scraper library pins old dependencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import requests

from listenwell.store import Mention, RecordError, check_text, parse_timestamp
from listenwell.store.records import check_id

from .base import AuthError, Collector, FatalError, Page, RetriableError, RetryPolicy, dump_raw
from .http import mount_timeout

__all__ = ["AppStoreCollector", "normalize_appstore"]

APPLE_URL = "https://itunes.apple.com"
_LAST_PAGE = 10


def _label(entry: dict[str, Any], *path: str) -> Any:
    node: Any = entry
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node.get("label") if isinstance(node, dict) else None


def normalize_appstore(raw: Any) -> Mention:
    """Turn one feed entry into a review mention with its star rating.

    The text is the review's title and body, separated by a blank line.

    Raises:
        RecordError: The id, time or rating is missing or invalid, or there is no text.
    """
    if not isinstance(raw, dict):
        raise RecordError(f"entry must be an object, got {type(raw).__name__}")
    external_id = check_id(_label(raw, "id"), "id")
    rating_label = _label(raw, "im:rating")
    try:
        rating = int(str(rating_label))
    except ValueError:
        raise RecordError(f"im:rating must be 1 to 5, got {rating_label!r}") from None
    if not 1 <= rating <= 5:
        raise RecordError(f"im:rating must be 1 to 5, got {rating}")
    title = _label(raw, "title") or ""
    content = _label(raw, "content") or ""
    if not isinstance(title, str) or not isinstance(content, str):
        raise RecordError("title and content must be strings")
    text = f"{title}\n\n{content}" if title and content else (title or content)
    link = raw.get("link")
    href = link.get("attributes", {}).get("href") if isinstance(link, dict) else None
    name = _label(raw, "author", "name")
    return Mention(
        source="appstore",
        external_id=external_id,
        created_at=parse_timestamp(_label(raw, "updated")),
        text=check_text(text, "text", allow_empty=True),
        author_name=name if isinstance(name, str) and name else None,
        url=href if isinstance(href, str) else None,
        rating=rating,
        raw=dump_raw(raw),
    )


class AppStoreCollector(Collector):
    """Reviews of the configured apps, one stream per (country, app id)."""

    name = "appstore"

    def __init__(
        self,
        *,
        app_ids: Sequence[str],
        countries: Sequence[str] = ("us",),
        base_url: str = APPLE_URL,
        timeout: float = 15.0,
        page_size: int = 50,
        retry: RetryPolicy | None = None,
        max_pages: int = _LAST_PAGE,
    ) -> None:
        """Configure the collector.

        Args:
            app_ids: Numeric App Store ids (``id123456789`` or ``123456789``).
            countries: Two-letter storefront codes; each has its own reviews.
            base_url: Base URL of the feed.
            timeout: Seconds per HTTP request.
            page_size: Reviews per full page (Apple serves 50); a shorter page is the last.
            retry: Retry policy per page.
            max_pages: Pages per stream per run (the feed has at most 10).
        """
        super().__init__(retry=retry, max_pages=min(max_pages, _LAST_PAGE))
        self.app_ids = [str(a).strip().removeprefix("id") for a in app_ids if str(a).strip()]
        self.countries = [c.strip().lower() for c in countries if c.strip()]
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.page_size = page_size
        self._session: requests.Session | None = None

    @classmethod
    def from_settings(cls, settings: Any, *, retry: RetryPolicy | None = None) -> AppStoreCollector:
        """Build from ``sources.appstore`` (``app_ids``, ``countries``, ``base_url``)."""
        src = settings.sources.appstore
        return cls(
            app_ids=src.app_ids,
            countries=src.countries or ["us"],
            base_url=src.base_url,
            timeout=settings.sources.timeout_s,
            retry=retry,
        )

    def missing(self) -> str | None:
        """Names the settings still needed, if any."""
        return None if self.app_ids else "set sources.appstore.app_ids"

    def streams(self) -> list[str]:
        """One stream per country and app."""
        return [f"{c}:{a}" for c in self.countries for a in self.app_ids]

    def fetch_page(self, stream: str, since: datetime | None, token: str | None) -> Page:
        """Fetch one feed page (``token`` is the page number)."""
        country, _, app_id = stream.partition(":")
        page = int(token) if token and token.isdigit() else 1
        path = f"/{country}/rss/customerreviews/page={page}/id={app_id}/sortby=mostrecent/json"
        endpoint = f"GET {path}"
        if self._session is None:
            self._session = mount_timeout(requests.Session(), self.timeout)
        try:
            resp = self._session.get(self.base_url + path, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RetriableError(f"{type(exc).__name__}: {exc}", endpoint=endpoint) from exc
        self._check_status(resp, endpoint)
        try:
            body = resp.json()
        except (requests.JSONDecodeError, ValueError) as exc:
            raise RetriableError(f"the answer is not JSON: {exc}", endpoint=endpoint) from exc
        feed = body.get("feed") if isinstance(body, dict) else None
        if not isinstance(feed, dict):
            raise RetriableError("the answer has no feed", endpoint=endpoint)
        entries = feed.get("entry") or []
        if isinstance(entries, dict):  # one review: an object, not a list
            entries = [entries]
        if not isinstance(entries, list):
            raise RetriableError("feed.entry is neither a list nor an object", endpoint=endpoint)
        # Older feeds put the app itself first, as an entry with im:name: not a review.
        reviews = [e for e in entries if not (isinstance(e, dict) and "im:name" in e)]
        more = len(entries) >= self.page_size and page < _LAST_PAGE
        return Page(reviews, str(page + 1) if more else None, endpoint)

    @staticmethod
    def _check_status(resp: requests.Response, endpoint: str) -> None:
        status = resp.status_code
        if status == 429:
            try:
                wait: float | None = float(resp.headers.get("retry-after", ""))
            except ValueError:
                wait = None
            raise RetriableError("rate limited (429)", retry_after=wait, endpoint=endpoint)
        if status >= 500 or status == 408:
            raise RetriableError(f"HTTP {status}", endpoint=endpoint)
        if status in (401, 403):
            raise AuthError(f"HTTP {status}: access refused", endpoint=endpoint)
        if status >= 400:
            raise FatalError(f"HTTP {status}", endpoint=endpoint)

    def item_id(self, raw: Any) -> str | None:
        """The review's id, if readable."""
        value = _label(raw, "id") if isinstance(raw, dict) else None
        return None if value is None else str(value)

    def normalize(self, raw: Any) -> Mention:
        """See :func:`normalize_appstore`."""
        return normalize_appstore(raw)

    def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            self._session.close()
            self._session = None
