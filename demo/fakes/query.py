"""The part of X's search query language the fake X API understands.

Supported, case-insensitive as on X:

* keywords (``acme``) match a whole word of the text; ``"exact phrase"`` matches
  the phrase with word boundaries at its ends;
* ``@handle`` matches a post mentioning the account, ``#tag`` a hashtag;
* ``from:user``, ``to:user`` (a reply to that account) and ``conversation_id:ID``;
* juxtaposition is AND, ``OR`` is OR (AND binds tighter, as on X), ``-term``
  negates, and parentheses group.

The text searched is the long form (``note_tweet.text``) where a post has one.
Other operators (``lang:``, ``is:``, ``has:``...) are read as plain keywords.
See https://developer.x.com/en/docs/x-api/tweets/search/integrate/build-a-query.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Doc", "QueryError", "compile_query"]


class QueryError(ValueError):
    """The query cannot be parsed; X answers such a query with 400."""


@dataclass(frozen=True)
class Doc:
    """What a query is matched against, lower-cased.

    Attributes:
        text: The post's full text.
        author: The author's username, without ``@``.
        reply_to: The username of the account the post replies to, if any.
        conversation_id: The id of the conversation's first post.
    """

    text: str
    author: str = ""
    reply_to: str = ""
    conversation_id: str = ""


Matcher = Callable[[Doc], bool]
_TOKEN = re.compile(r'\s*(\(|\)|-?"[^"]*"|-?[^\s()"]+)')


def _word(term: str) -> Matcher:
    """A keyword or phrase: word boundaries where the term starts or ends with a word char."""
    before = r"(?<!\w)" if re.match(r"\w", term) else ""
    after = r"(?!\w)" if re.search(r"\w$", term) else ""
    rx = re.compile(before + re.escape(term) + after)
    return lambda doc: rx.search(doc.text) is not None


def _atom(token: str) -> Matcher:
    """One term of the query (already lower-cased, without its ``-``)."""
    if token.startswith('"'):
        phrase = token.strip('"').strip()
        if not phrase:
            raise QueryError("empty phrase")
        return _word(phrase)
    key, sep, value = token.partition(":")
    if sep and value and key in ("from", "to", "conversation_id"):
        value = value.removeprefix("@")
        if key == "from":
            return lambda doc: doc.author == value
        if key == "to":
            return lambda doc: doc.reply_to == value
        return lambda doc: doc.conversation_id == value
    if token.startswith("@"):
        handle = token[1:]
        rx = re.compile(r"(?<![\w@])@" + re.escape(handle) + r"(?!\w)")
        return lambda doc: rx.search(doc.text) is not None
    return _word(token)


class _Parser:
    def __init__(self, query: str) -> None:
        self.tokens: list[str] = []
        pos = 0
        query = query.strip()
        while pos < len(query):
            m = _TOKEN.match(query, pos)
            if m is None:
                raise QueryError(f"cannot read the query at {query[pos : pos + 20]!r}")
            self.tokens.append(m.group(1))
            pos = m.end()
            while pos < len(query) and query[pos].isspace():
                pos += 1
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def any_of(self) -> Matcher:
        parts = [self.all_of()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.all_of())
        if len(parts) == 1:
            return parts[0]
        return lambda doc: any(p(doc) for p in parts)

    def all_of(self) -> Matcher:
        parts: list[Matcher] = []
        while (token := self.peek()) is not None and token not in ("OR", ")"):
            parts.append(self.unary())
        if not parts:
            raise QueryError("a term is missing")
        if len(parts) == 1:
            return parts[0]
        return lambda doc: all(p(doc) for p in parts)

    def unary(self) -> Matcher:
        token = self.take()
        if token == "(":
            inner = self.any_of()
            if self.peek() != ")":
                raise QueryError("a parenthesis is not closed")
            self.take()
            return inner
        if token.startswith("-") and len(token) > 1:
            positive = _atom(token[1:].lower())
            return lambda doc: not positive(doc)
        return _atom(token.lower())


def compile_query(query: str) -> Matcher:
    """Compile an X search query into a predicate over :class:`Doc`.

    Args:
        query: The query as sent in ``?query=``.

    Returns:
        A function telling whether a post matches.

    Raises:
        QueryError: The query is empty or malformed.
    """
    parser = _Parser(query)
    if not parser.tokens:
        raise QueryError("the query is empty")
    matcher = parser.any_of()
    if parser.peek() is not None:
        raise QueryError(f"unexpected {parser.peek()!r}")
    return matcher
