"""Replies to mentions, sent through the real clients: praw for Reddit, tweepy for X.

A reply goes ``draft -> sending -> sent | failed`` (see :mod:`listenwell.store.inbox`):

1. :func:`send_reply` claims the reply (``sending``, one more attempt). Only one
   caller can claim it, so two agents pressing "send" post it once.
2. The sender posts it: on Reddit ``Comment.reply`` or ``Submission.reply``
   (chosen by the mention's fullname, ``t1_...`` or ``t3_...``, which is how
   the Reddit collector stores ids); on X ``Client.create_tweet(text=...,
   in_reply_to_tweet_id=...)``.
3. The outcome is written: ``sent`` with the platform's id (and the
   conversation's first response time, ``new`` becoming ``open``), or
   ``failed`` with the reason on one line. A failed reply stays, visible, and
   can be sent again (:func:`retry_reply`); nothing is ever deleted.

Nothing here retries by itself: a post that timed out may have been posted,
and posting twice is worse than asking an agent. A crash between the
platform's answer and step 3 leaves the reply ``sending``; ``listenwell inbox
replies --stuck`` lists those, and ``retry --force`` sends one again once an
agent has checked the platform.

The clients are built from the collectors' settings (``sources.reddit``,
``sources.x``, ``sources.timeout_s``), base URLs included, so tests and the
demo point them at the local fakes. Posting needs a *user* login, which the
read-only collectors do not: on Reddit a script app's ``username`` and
``password`` or a ``refresh_token`` (settings ``sources.reddit.username``,
``.password``, ``.refresh_token`` where they exist, else praw's own
``praw_username``/``praw_password``/``praw_refresh_token`` environment
variables); on X the OAuth 1.0a keys (``sources.x.consumer_key``,
``.consumer_secret``, ``.access_token``, ``.access_token_secret``) or an OAuth
2.0 user token (``sources.x.user_token``, else ``sources.x.bearer_token`` when
that is a user token).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import praw
import prawcore
import requests
import tweepy
from sqlalchemy import Engine

from listenwell.collectors.http import TimeoutAdapter, mount_timeout
from listenwell.store.inbox import (
    Reply,
    ReplyStateError,
    claim_reply,
    create_reply,
    get_conversation,
    get_reply,
    mark_reply,
)

from .templates import Template, render_template, reply_context

__all__ = [
    "SENDERS",
    "RedditSender",
    "ReplyResult",
    "SendError",
    "Sender",
    "XSender",
    "draft_reply",
    "make_sender",
    "retry_reply",
    "send_reply",
]

TWEEPY_HOST = "https://api.twitter.com"
_MAYBE_POSTED = "it may have been posted: check the thread before sending it again"


class SendError(Exception):
    """A reply could not be posted; ``reason`` is one line for the agent.

    ``maybe_posted`` is true when the platform may have posted it anyway (a
    timeout after the request went out).
    """

    def __init__(self, reason: str, *, maybe_posted: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_posted = maybe_posted


class Sender(Protocol):
    """Posts replies on one platform."""

    platform: str

    def send(self, in_reply_to: str, body: str) -> str | None:
        """Post ``body`` in reply to the item ``in_reply_to``; the new item's id, if known.

        Raises:
            SendError: The platform refused it or could not be reached.
        """
        ...

    def close(self) -> None:
        """Release the HTTP session."""
        ...


@dataclass(frozen=True, slots=True)
class ReplyResult:
    """How sending a reply ended.

    Attributes:
        reply: The reply as stored now (``sent`` or ``failed``, with the reason).
        maybe_posted: The failure was a timeout after the request went out.
    """

    reply: Reply
    maybe_posted: bool = False

    @property
    def sent(self) -> bool:
        """Whether the reply is posted."""
        return bool(self.reply.status == "sent")


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    text = str(getter() if callable(getter) else value)
    return text or None


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


# -- Reddit -----------------------------------------------------------------------------------


def _reddit_error(exc: Exception) -> SendError:
    if isinstance(exc, praw.exceptions.RedditAPIException):
        items = "; ".join(f"{i.error_type}: {i.message}" for i in exc.items)
        return SendError(f"Reddit refused the reply: {items}")
    if isinstance(exc, prawcore.TooManyRequests):
        wait = f"; try again in {exc.retry_after} s" if exc.retry_after else ""
        return SendError(f"rate limited by Reddit (429){wait}")
    if isinstance(exc, prawcore.OAuthException):
        return SendError(f"Reddit refused the login ({exc.error}); check the username and password")
    if isinstance(exc, prawcore.InvalidToken):
        return SendError("Reddit refused the credentials (401)")
    if isinstance(exc, prawcore.Forbidden):
        return SendError(
            "Reddit refused the reply (403 Forbidden): the thread may be locked or archived, "
            "or the account may not comment there"
        )
    if isinstance(exc, prawcore.NotFound):
        return SendError("the post or comment is no longer on Reddit (404)")
    if isinstance(exc, prawcore.ServerError):
        return SendError(f"Reddit had a server error (HTTP {exc.response.status_code})")
    if isinstance(exc, prawcore.RequestException):
        original = exc.original_exception
        if isinstance(original, requests.Timeout):
            return SendError(f"no answer from Reddit in time; {_MAYBE_POSTED}", maybe_posted=True)
        return SendError(f"could not reach Reddit: {type(original).__name__}")
    if isinstance(exc, prawcore.ResponseException):
        status = exc.response.status_code
        if status == 401:
            return SendError("Reddit refused the credentials (401)")
        return SendError(f"Reddit answered HTTP {status}")
    if isinstance(exc, prawcore.BadJSON):
        return SendError(f"Reddit's answer could not be read; {_MAYBE_POSTED}", maybe_posted=True)
    return SendError(f"{type(exc).__name__}: {_one_line(exc)}")


class RedditSender:
    """Replies to Reddit posts and comments as a user, through praw."""

    platform = "reddit"

    def __init__(
        self,
        *,
        client_id: str | None,
        client_secret: str | None,
        user_agent: str = "listenwell/0.1 (social listening)",
        oauth_url: str = "https://oauth.reddit.com",
        reddit_url: str = "https://www.reddit.com",
        username: str | None = None,
        password: str | None = None,
        refresh_token: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        """Configure the sender; the praw client is created on the first reply.

        Args:
            client_id: Reddit app client id.
            client_secret: Reddit app client secret.
            user_agent: A unique, descriptive User-Agent.
            oauth_url: Base URL of the API.
            reddit_url: Base URL of the token endpoint.
            username: The account that replies (script apps; with ``password``).
                ``None`` leaves it to praw (``praw_username`` in the environment).
            password: That account's password.
            refresh_token: Instead of a password, an OAuth refresh token.
            timeout: Seconds per HTTP request.
        """
        self.client_id = client_id
        self.client_secret = client_secret
        self.user_agent = user_agent
        self.oauth_url = oauth_url
        self.reddit_url = reddit_url
        self.username = username
        self.password = password
        self.refresh_token = refresh_token
        self.timeout = timeout
        self._reddit: praw.Reddit | None = None
        self._session: requests.Session | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> RedditSender:
        """Build from the settings the Reddit collector uses (``sources.reddit``)."""
        src = settings.sources.reddit
        return cls(
            client_id=src.client_id,
            client_secret=_secret(src.client_secret),
            user_agent=src.user_agent,
            oauth_url=src.oauth_url,
            reddit_url=src.reddit_url,
            username=getattr(src, "username", None) or None,
            password=_secret(getattr(src, "password", None)),
            refresh_token=_secret(getattr(src, "refresh_token", None)),
            timeout=settings.sources.timeout_s,
        )

    def _client(self) -> praw.Reddit:
        if self._reddit is None:
            if not self.client_id or not self.client_secret:
                raise SendError(
                    "Reddit is not configured: set sources.reddit.client_id and client_secret"
                )
            # Only what is set: praw then falls back to its praw_* environment variables.
            login: dict[str, Any] = {}
            if self.username and self.password:
                login = {"username": self.username, "password": self.password}
            elif self.refresh_token:
                login = {"refresh_token": self.refresh_token}
            self._session = mount_timeout(requests.Session(), self.timeout)
            self._reddit = praw.Reddit(
                client_id=self.client_id,
                client_secret=self.client_secret,
                user_agent=self.user_agent,
                oauth_url=self.oauth_url,
                reddit_url=self.reddit_url,
                check_for_updates=False,
                timeout=max(1, math.ceil(self.timeout)),
                requestor_kwargs={"session": self._session},
                **login,
            )
        if self._reddit.read_only:
            raise SendError(
                "Reddit replies need a user login: set sources.reddit.username and "
                "sources.reddit.password (a script app) or sources.reddit.refresh_token"
            )
        return self._reddit

    def send(self, in_reply_to: str, body: str) -> str | None:
        """Reply to the post (``t3_...``) or comment (``t1_...``) ``in_reply_to``.

        Returns:
            The new comment's fullname (``t1_...``), or ``None`` if Reddit did not say.
        """
        kind, _, short = in_reply_to.partition("_")
        if kind not in ("t1", "t3") or not short:
            raise SendError(f"{in_reply_to!r} is not a Reddit post or comment id")
        reddit = self._client()
        target = reddit.comment(id=short) if kind == "t1" else reddit.submission(id=short)
        try:
            comment = target.reply(body)
        except Exception as exc:
            raise _reddit_error(exc) from exc
        return str(comment.fullname) if comment is not None else None

    def close(self) -> None:
        """Close praw's HTTP session."""
        if self._session is not None:
            self._session.close()
        self._session = None
        self._reddit = None


# -- X ----------------------------------------------------------------------------------------


def _x_messages(exc: tweepy.HTTPException) -> str:
    return "; ".join(_one_line(m) for m in exc.api_messages) or _one_line(exc)


def _x_error(exc: Exception) -> SendError:
    if isinstance(exc, tweepy.TooManyRequests):
        reset = getattr(exc, "reset_time", None)
        when = (
            f"; try again after {datetime.fromtimestamp(reset, UTC):%H:%M} UTC"
            if isinstance(reset, int)
            else ""
        )
        return SendError(f"rate limited by X (429){when}")
    if isinstance(exc, tweepy.Unauthorized):
        return SendError("X refused the credentials (401)")
    if isinstance(exc, tweepy.Forbidden):
        reason = f"X refused the reply (403): {_x_messages(exc)}"
        if "Application-Only" in reason:
            reason = reason.rstrip(".") + (
                "; set the OAuth 1.0a user keys sources.x.consumer_key, consumer_secret, "
                "access_token and access_token_secret"
            )
        return SendError(reason)
    if isinstance(exc, tweepy.TwitterServerError):
        return SendError(f"X had a server error (HTTP {exc.response.status_code})")
    if isinstance(exc, tweepy.HTTPException):
        return SendError(
            f"X refused the reply (HTTP {exc.response.status_code}): {_x_messages(exc)}"
        )
    if isinstance(exc, requests.Timeout):
        return SendError(f"no answer from X in time; {_MAYBE_POSTED}", maybe_posted=True)
    if isinstance(exc, requests.JSONDecodeError):
        return SendError(f"X's answer could not be read; {_MAYBE_POSTED}", maybe_posted=True)
    if isinstance(exc, requests.RequestException):
        return SendError(f"could not reach X: {type(exc).__name__}")
    return SendError(f"{type(exc).__name__}: {_one_line(exc)}")


class XSender:
    """Replies to X posts as a user, through ``tweepy.Client.create_tweet``."""

    platform = "x"

    def __init__(
        self,
        *,
        bearer_token: str | None = None,
        user_token: str | None = None,
        consumer_key: str | None = None,
        consumer_secret: str | None = None,
        access_token: str | None = None,
        access_token_secret: str | None = None,
        api_base_url: str = TWEEPY_HOST,
        timeout: float = 15.0,
    ) -> None:
        """Configure the sender; the tweepy client is created on the first reply.

        OAuth 1.0a user context is used when all four keys are given; otherwise
        ``user_token`` (an OAuth 2.0 user-context token), else ``bearer_token``
        (X refuses an app-only token for posting, with a clear message).

        Args:
            bearer_token: The collectors' bearer token (used when it is a user token).
            user_token: An OAuth 2.0 user-context access token.
            consumer_key: OAuth 1.0a API key.
            consumer_secret: OAuth 1.0a API key secret.
            access_token: OAuth 1.0a access token of the replying account.
            access_token_secret: Its secret.
            api_base_url: Base URL of the API; other than tweepy's host, requests go there.
            timeout: Seconds per HTTP request (tweepy has none of its own).
        """
        self.bearer_token = user_token or bearer_token
        self.oauth1 = (consumer_key, consumer_secret, access_token, access_token_secret)
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout = timeout
        self._client: tweepy.Client | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> XSender:
        """Build from the settings the X collector uses (``sources.x``)."""
        src = settings.sources.x
        return cls(
            bearer_token=_secret(src.bearer_token),
            user_token=_secret(getattr(src, "user_token", None)),
            consumer_key=_secret(getattr(src, "consumer_key", None)),
            consumer_secret=_secret(getattr(src, "consumer_secret", None)),
            access_token=_secret(getattr(src, "access_token", None)),
            access_token_secret=_secret(getattr(src, "access_token_secret", None)),
            api_base_url=src.api_base_url,
            timeout=settings.sources.timeout_s,
        )

    @property
    def user_auth(self) -> bool:
        """Whether OAuth 1.0a user context is used."""
        return all(self.oauth1)

    def _tweepy(self) -> tweepy.Client:
        if self._client is None:
            if not self.user_auth and not self.bearer_token:
                raise SendError(
                    "X replies need user credentials: set sources.x.consumer_key, "
                    "consumer_secret, access_token and access_token_secret"
                )
            ck, cs, at, ats = self.oauth1
            client = tweepy.Client(
                bearer_token=self.bearer_token,
                consumer_key=ck,
                consumer_secret=cs,
                access_token=at,
                access_token_secret=ats,
                return_type=dict,
                wait_on_rate_limit=False,  # never wait and re-post on our own
            )
            redirect = None if self.api_base_url == TWEEPY_HOST else self.api_base_url
            client.session.mount(TWEEPY_HOST + "/", TimeoutAdapter(self.timeout, redirect))
            self._client = client
        return self._client

    def send(self, in_reply_to: str, body: str) -> str | None:
        """Post ``body`` as a reply to the post ``in_reply_to`` (a numeric id).

        Returns:
            The new post's id.
        """
        if not in_reply_to.isdigit():
            raise SendError(f"{in_reply_to!r} is not an X post id")
        client = self._tweepy()
        try:
            answer = client.create_tweet(
                text=body, in_reply_to_tweet_id=in_reply_to, user_auth=self.user_auth
            )
        except Exception as exc:
            raise _x_error(exc) from exc
        data = answer.get("data") if isinstance(answer, dict) else None
        new_id = data.get("id") if isinstance(data, dict) else None
        return str(new_id) if new_id is not None else None

    def close(self) -> None:
        """Close tweepy's HTTP session."""
        if self._client is not None:
            self._client.session.close()
            self._client = None


# -- the workflow -----------------------------------------------------------------------------

SENDERS: dict[str, Callable[[Any], Sender]] = {
    "reddit": RedditSender.from_settings,
    "x": XSender.from_settings,
}
"""Platform -> a factory building its sender from the settings."""


def make_sender(platform: str, settings: Any) -> Sender:
    """The sender for ``platform``, built from ``settings``.

    Raises:
        SendError: Listenwell cannot post on that platform.
    """
    factory = SENDERS.get(platform)
    if factory is None:
        raise SendError(
            f"replies on {platform} cannot be sent from Listenwell; answer there and note it here"
        )
    return factory(settings)


def draft_reply(
    engine: Engine,
    conv_id: int,
    *,
    actor: str,
    text: str | None = None,
    template: str | None = None,
    templates: Mapping[str, Template] | None = None,
) -> Reply:
    """Save a reply draft: ``text`` as it is, or a canned reply rendered for this conversation.

    Args:
        engine: The database.
        conv_id: The conversation answered.
        actor: Who writes it (also ``{agent}``).
        text: The reply, verbatim (never read as a template).
        template: The name of a canned reply instead.
        templates: The known templates (default: the built-in ones).

    Raises:
        TemplateError: Unknown template, or it cannot be rendered.
        ValueError: Neither or both of ``text`` and ``template``; an empty or too long reply.
        NotFoundError: There is no conversation ``conv_id``.
    """
    if (text is None) == (template is None):
        raise ValueError("give either a text or a template")
    if template is not None:
        conv = get_conversation(engine, conv_id)
        values = reply_context(
            case_id=conv.id,
            agent=actor,
            customer_name=conv.customer_name,
            handle=conv.author_handle,
        )
        text = render_template(template, values, templates)
    assert text is not None
    return create_reply(engine, conv_id, body=text, actor=actor, template=template)


def send_reply(
    engine: Engine,
    reply_id: int,
    settings: Any,
    *,
    actor: str | None = None,
    sender: Sender | None = None,
) -> ReplyResult:
    """Post a draft or failed reply through its platform's client and record the outcome.

    Args:
        engine: The database.
        reply_id: The reply.
        settings: The settings (``sources.*``) the sender is built from.
        actor: Who sends it (default: who wrote it).
        sender: A sender to use instead of building one (e.g. to post several
            replies over one HTTP session); it is not closed here.

    Returns:
        The reply as stored: ``sent``, or ``failed`` with the reason.

    Raises:
        NotFoundError: There is no reply ``reply_id``.
        ReplyStateError: It was sent already, or is being sent.
    """
    who = actor or get_reply(engine, reply_id).actor
    target = claim_reply(engine, reply_id, actor=who)
    own = sender is None
    try:
        if sender is None:
            sender = make_sender(target.platform, settings)
        external_id = sender.send(target.in_reply_to, target.body)
    except SendError as exc:
        reply = mark_reply(engine, reply_id, status="failed", actor=who, error=exc.reason)
        return ReplyResult(reply, exc.maybe_posted)
    except Exception as exc:  # noqa: BLE001 - whatever happened, the reply is kept with why
        reason = f"{type(exc).__name__}: {_one_line(exc)}"
        reply = mark_reply(engine, reply_id, status="failed", actor=who, error=reason)
        return ReplyResult(reply)
    finally:
        if own and sender is not None:
            sender.close()
    reply = mark_reply(engine, reply_id, status="sent", actor=who, external_id=external_id)
    return ReplyResult(reply)


def retry_reply(
    engine: Engine,
    reply_id: int,
    settings: Any,
    *,
    actor: str | None = None,
    force: bool = False,
    sender: Sender | None = None,
) -> ReplyResult:
    """Send a draft or failed reply again; with ``force``, also one stuck in ``sending``.

    A reply stuck in ``sending`` (a crash mid-send) may have been posted: only
    after an agent checked the platform does ``force`` mark it failed
    ("abandoned") and send it again.

    Raises:
        NotFoundError: There is no reply ``reply_id``.
        ReplyStateError: It was sent, or it is ``sending`` and ``force`` is not set.
    """
    reply = get_reply(engine, reply_id)
    who = actor or reply.actor
    if reply.status == "sending":
        if not force:
            raise ReplyStateError(
                f"reply {reply_id} is stuck sending and may have been posted; check the "
                "platform, then retry with --force"
            )
        mark_reply(
            engine,
            reply_id,
            status="failed",
            actor=who,
            error=f"abandoned while sending, by {who}",
        )
    return send_reply(engine, reply_id, settings, actor=who, sender=sender)
