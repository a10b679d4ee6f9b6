"""The collector protocol, its error taxonomy and retry policy.

A collector mostly *declares* things: its ``name`` (the mention ``source``),
its key (``source``, ``external_id``), its cursor field and whether its
listings are sorted. It implements three small methods:

* :meth:`Collector.streams` names what it reads (one cursor per stream);
* :meth:`Collector.fetch_page` reads one page of raw items and translates the
  client library's exceptions into :class:`RetriableError`, :class:`FatalError`
  or :class:`AuthError`, with the endpoint attached;
* :meth:`Collector.normalize` is pure: raw item in, :class:`~listenwell.store.Mention`
  out, or :class:`~listenwell.store.RecordError` with a reason (the item is
  then quarantined with its raw payload).

The one generator, :meth:`Collector.pages`, yields pages of raw items from a
starting cursor, retrying each page under a :class:`RetryPolicy`. The runner
(:mod:`listenwell.collectors.runner`) stores them and keeps the cursor.
"""

from __future__ import annotations

import json
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, ClassVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from listenwell.store import Mention

__all__ = [
    "AuthError",
    "Collector",
    "CollectorError",
    "FatalError",
    "Page",
    "RetriableError",
    "RetryPolicy",
    "SourceResult",
    "dump_raw",
]


class CollectorError(Exception):
    """Base class for a source failing; carries the endpoint and item id when known."""

    def __init__(
        self, message: str, *, endpoint: str | None = None, item_id: str | None = None
    ) -> None:
        where = " ".join(p for p in (endpoint, f"item {item_id}" if item_id else None) if p)
        super().__init__(f"{message} ({where})" if where else message)
        self.message = message
        self.endpoint = endpoint
        self.item_id = item_id


class RetriableError(CollectorError):
    """A transient failure (429, 5xx, timeout, broken body): retry after ``retry_after`` s."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        endpoint: str | None = None,
        item_id: str | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, item_id=item_id)
        self.retry_after = retry_after


class FatalError(CollectorError):
    """A failure retrying cannot fix (4xx): stop this stream, keep the other sources."""


class AuthError(FatalError):
    """The credentials are missing or refused: stop this source, keep the others."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a page is retried.

    Attributes:
        attempts: Tries per page, the first included.
        max_wait: Longest wait in seconds between tries. A server asking for a
            longer wait (``Retry-After``) is not waited for: the page fails and the
            next run resumes from the saved cursor.
        backoff: First backoff in seconds, doubled each try (with jitter) when the
            server gives no hint.
        sleep: How to wait; tests pass a recorder instead of :func:`time.sleep`.
    """

    attempts: int = 4
    max_wait: float = 60.0
    backoff: float = 0.5
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls, settings: Any) -> RetryPolicy:
        """The policy named by ``sources.retries`` and ``sources.max_wait_s``."""
        sources = settings.sources
        return cls(
            attempts=sources.retries,
            max_wait=sources.max_wait_s,
        )

    def wait_for(self, exc: BaseException | None, attempt: int) -> float:
        """Seconds to wait before try ``attempt + 1`` after ``exc``."""
        hint = getattr(exc, "retry_after", None)
        if hint is not None:
            return min(max(0.0, float(hint)), self.max_wait)
        step: float = self.backoff * 2 ** (attempt - 1)
        return min(step + random.uniform(0, self.backoff), self.max_wait)  # noqa: S311

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is transient and its server hint is within ``max_wait``."""
        if not isinstance(exc, RetriableError):
            return False
        return exc.retry_after is None or exc.retry_after <= self.max_wait

    def call(self, fn: Callable[[], Any], on_retry: Callable[[RetriableError], None]) -> Any:
        """Call ``fn`` until it succeeds, raises a non-retriable error, or tries run out.

        Args:
            fn: The call, e.g. one page fetch.
            on_retry: Called with the error before each retry (for counting).

        Raises:
            RetriableError: The last transient error, once tries are used up.
            CollectorError: A fatal error, at once.
        """

        def wait(state: RetryCallState) -> float:
            return self.wait_for(
                state.outcome.exception() if state.outcome else None, state.attempt_number
            )

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RetriableError):
                on_retry(exc)

        retrying = Retrying(
            retry=retry_if_exception(self.should_retry),
            stop=stop_after_attempt(self.attempts),
            wait=wait,
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(fn)


@dataclass
class Page:
    """One page of raw items as the source returned them.

    Attributes:
        items: The raw items, newest first for Reddit and X.
        next: The token for the following page; ``None`` on the last page.
        endpoint: What was requested, for quarantine ``origin`` and errors.
        quota: Rate-limit state the source reported (``remaining``, ``reset``...).
        newest: Newest cursor value the page scanned, where the collector dropped
            items that are not mentions (e.g. comments without the brand); the
            runner takes it into account with the mentions' own times.
        oldest: Oldest cursor value the page scanned, likewise.
    """

    items: list[Any]
    next: str | None
    endpoint: str
    quota: dict[str, Any] | None = None
    newest: datetime | None = None
    oldest: datetime | None = None


@dataclass
class _Counter:
    retries: int = 0
    last_error: str | None = None


class Collector(ABC):
    """A source of mentions: declares its key and cursor; yields raw pages; normalises items.

    The cursor contract, written once (see the runner for the code):

    * The lower bound is **inclusive**, and re-reads are deduplicated by
      ``(source, external_id)``: never lose, may re-read.
    * Listings are treated as **unsorted** (Reddit and X come newest first):
      the running maximum of ``cursor_field`` is promoted only when a stream's
      run succeeds, capped at the run's start time; until then the saved
      cursor keeps the old lower bound and a token to resume from.
    * Paging stops after the first page holding an item older than the lower
      bound (minus ``overlap``, for sources whose index lags).
    """

    #: The source name written to ``Mention.source``; also the registry key.
    name: ClassVar[str]
    #: The natural key of a mention.
    key: ClassVar[tuple[str, ...]] = ("source", "external_id")
    #: The mention field the cursor follows.
    cursor_field: ClassVar[str] = "created_at"
    #: Whether a listing is strictly ordered by the cursor field (none of ours is).
    is_sorted: ClassVar[bool] = False
    #: How far below the saved cursor to re-read, for late-indexed items.
    overlap: timedelta = timedelta(0)

    def __init__(self, *, retry: RetryPolicy | None = None, max_pages: int = 50) -> None:
        self.retry = retry or RetryPolicy()
        self.max_pages = max_pages
        self._counter = _Counter()
        self.quota: dict[str, Any] | None = None

    # -- what a collector implements -------------------------------------------------

    @abstractmethod
    def streams(self) -> list[str]:
        """The streams to read (one saved cursor each), e.g. one per query."""

    @abstractmethod
    def fetch_page(self, stream: str, since: datetime | None, token: str | None) -> Page:
        """Fetch one page of ``stream``.

        Args:
            stream: One of :meth:`streams`.
            since: Inclusive lower bound on the cursor field, or ``None`` (first run).
                A source that can filter on it server-side should.
            token: The page token from the previous :class:`Page`, ``None`` for the first.

        Raises:
            RetriableError: 429, 5xx, timeouts, a broken body.
            AuthError: Credentials missing or refused.
            FatalError: Any other failure retrying cannot fix.
        """

    @abstractmethod
    def normalize(self, raw: Any) -> Mention:
        """Turn one raw item into a mention; pure.

        Raises:
            RecordError: The item is malformed; the reason says how.
        """

    def missing(self) -> str | None:
        """What configuration is missing for this collector to run, or ``None``."""
        return None

    def item_id(self, raw: Any) -> str | None:
        """The item's id as far as it can be read, for quarantine and errors."""
        if isinstance(raw, dict):
            value = raw.get("id")
            return None if value is None else str(value)
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release the client's connections."""

    # -- provided --------------------------------------------------------------------

    @property
    def retries(self) -> int:
        """How many retries this collector has made so far."""
        return self._counter.retries

    def pages(
        self, stream: str, since: datetime | None, token: str | None = None
    ) -> Generator[Page, None, None]:
        """Yield pages of raw items from ``token`` (or the newest) onwards.

        Each page is retried under :attr:`retry`. The generator ends after the
        last page; the caller stops it earlier once the lower bound is passed.

        Raises:
            CollectorError: A page failed for good.
        """

        def on_retry(exc: RetriableError) -> None:
            self._counter.retries += 1
            self._counter.last_error = str(exc)

        while True:
            page: Page = self.retry.call(partial(self.fetch_page, stream, since, token), on_retry)
            if page.quota is not None:
                self.quota = page.quota
            yield page
            if page.next is None or page.next == token:
                return
            token = page.next


def dump_raw(raw: Any) -> str:
    """The raw payload as stored with a mention or in quarantine (JSON, verbatim values)."""
    try:
        return json.dumps(raw, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(raw)


@dataclass
class SourceResult:
    """Counts of one collector pass over all its streams."""

    source: str
    new: int = 0
    duplicates: int = 0
    quarantined: int = 0
    pages: int = 0
    retries: int = 0
    quarantined_before: int = 0
    errors: list[str] = field(default_factory=list)
    quota: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """Whether every stream finished without error."""
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        """The counts as plain data (for ``--json`` and the run log)."""
        return {
            "source": self.source,
            "new": self.new,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "pages": self.pages,
            "retries": self.retries,
            "quarantined_before": self.quarantined_before,
            "errors": list(self.errors),
            "quota": self.quota,
        }
