"""A ``requests`` transport adapter: a timeout on every request, and an optional redirect.

tweepy sets no timeout at all, and praw sends its API calls with prawcore's
fixed default (``PRAWCORE_TIMEOUT``, 16 s) whatever ``timeout`` praw was given
(praw also truncates that setting to whole seconds). Mounting this adapter on
the client's own ``requests`` session bounds every request by our setting,
below the client library, without patching it. tweepy's host is hard-coded, so
the same adapter can send its requests to another base URL (tests, the demo).
"""

from __future__ import annotations

from typing import Any

import requests
import requests.adapters

__all__ = ["TimeoutAdapter", "mount_timeout"]


class TimeoutAdapter(requests.adapters.HTTPAdapter):
    """Bound every request's timeout and, optionally, send it to another base URL."""

    def __init__(self, timeout: float, base_url: str | None = None, **kw: Any) -> None:
        """Create the adapter.

        Args:
            timeout: Most seconds to connect, and to wait for each read; a smaller
                timeout given by the caller is kept.
            base_url: Replaces ``scheme://host`` of each request, keeping the path
                (``https://api.twitter.com/2/...`` -> ``{base_url}/2/...``).
        """
        self.timeout = timeout
        self.base_url = base_url.rstrip("/") if base_url else None
        super().__init__(**kw)

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:  # type: ignore[override]
        """Send with the bounded timeout, to the other base URL if one is set."""
        given = kw.get("timeout")
        if given is None or isinstance(given, tuple) or given > self.timeout:
            kw["timeout"] = self.timeout
        if self.base_url and request.url:
            request.url = self.base_url + "/" + request.url.partition("://")[2].partition("/")[2]
        return super().send(request, **kw)


def mount_timeout(session: requests.Session, timeout: float) -> requests.Session:
    """Mount a :class:`TimeoutAdapter` for every ``http://`` and ``https://`` URL of ``session``."""
    adapter = TimeoutAdapter(timeout)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
