"""Personal data in free text: find e-mail addresses, phone numbers and card numbers; redact them.

* **E-mail addresses** are found by a regular expression (``local@domain.tld``).
* **Phone numbers** are found by ``phonenumbers.PhoneNumberMatcher``; numbers
  written without a country code are read in ``region`` (ISO 3166 alpha-2).
  By default a number counts if its length is possible for its country
  (fictional ranges such as 555-01xx included); ``strict=True`` keeps only
  numbers that are valid (assigned ranges).
* **Card-like numbers** are 13 to 19 digits, optionally grouped by single
  spaces or dashes, that pass the Luhn check.

Where matches overlap, an e-mail wins over a card number, and a card number
over a phone number. :func:`redact` replaces each match by ``[email]``,
``[phone]`` or ``[card]``; text without personal data is returned unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import phonenumbers

__all__ = ["KINDS", "PiiKind", "PiiMatch", "find_pii", "luhn_ok", "redact"]

PiiKind = Literal["email", "phone", "card"]

KINDS: tuple[PiiKind, ...] = ("email", "phone", "card")
"""The kinds of personal data found, in order of precedence where matches overlap."""

DEFAULT_REGION = "US"

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
# A run of digit groups separated by single spaces or dashes; cards are windows of its groups.
_RUN = re.compile(r"\d+(?:[ -]\d+)*")
_GROUP = re.compile(r"\d+")
_DIGIT = re.compile(r"\d")
# Characters no phone number pattern spans: used to hide what was already matched.
_MASK = "|"


@dataclass(frozen=True, slots=True)
class PiiMatch:
    """One piece of personal data in a text: ``text[start:end]``.

    Attributes:
        kind: ``"email"``, ``"phone"`` or ``"card"``.
        start: Index of the first character.
        end: Index after the last character.
    """

    kind: PiiKind
    start: int
    end: int


def luhn_ok(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check (as card numbers do).

    Args:
        digits: Digits only.

    Returns:
        True if the checksum is right (and there is at least one digit).
    """
    if not digits or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _emails(text: str) -> Iterable[PiiMatch]:
    for m in _EMAIL.finditer(text):
        yield PiiMatch("email", m.start(), m.end())


def _cards(text: str) -> Iterable[PiiMatch]:
    """Whole digit groups of a run, 13-19 digits, one kind of separator, Luhn-valid.

    Within a run, windows are tried from the left, longest first, so a card
    written after another number ("212-555-0196 4111 1111 1111 1111") is found.
    """
    for run in _RUN.finditer(text):
        groups = [
            (g.start() + run.start(), g.end() + run.start()) for g in _GROUP.finditer(run.group())
        ]
        i = 0
        while i < len(groups):
            hit = None
            for j in range(len(groups) - 1, i - 1, -1):
                start, end = groups[i][0], groups[j][1]
                piece = text[start:end]
                digits = "".join(_DIGIT.findall(piece))
                if not 13 <= len(digits) <= 19 or ("-" in piece and " " in piece):
                    continue
                if luhn_ok(digits):
                    hit = j
                    yield PiiMatch("card", start, end)
                    break
            i = i + 1 if hit is None else hit + 1


def _phones(text: str, region: str, strict: bool) -> Iterable[PiiMatch]:
    leniency = phonenumbers.Leniency.VALID if strict else phonenumbers.Leniency.POSSIBLE
    for m in phonenumbers.PhoneNumberMatcher(text, region.upper(), leniency=leniency):
        yield PiiMatch("phone", m.start, m.end)


def _masked(text: str, found: list[PiiMatch]) -> str:
    """``text`` with the matched spans replaced by characters no phone pattern spans."""
    chars = list(text)
    for f in found:
        chars[f.start : f.end] = _MASK * (f.end - f.start)
    return "".join(chars)


def find_pii(
    text: str,
    *,
    region: str = DEFAULT_REGION,
    kinds: Iterable[str] = KINDS,
    strict: bool = False,
) -> list[PiiMatch]:
    """Find the personal data in a text.

    Args:
        text: Any text.
        region: Region (ISO 3166 alpha-2) for phone numbers without a country code.
        kinds: Which kinds to look for (default all: email, phone, card).
        strict: Only phone numbers valid for their country (default: any possible length).

    Returns:
        The matches, in order of position, never overlapping.

    Raises:
        ValueError: An unknown kind.
    """
    wanted = set(kinds)
    unknown = wanted - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kind(s) {', '.join(sorted(unknown))}; known: {', '.join(KINDS)}")
    if not text:
        return []
    found: list[PiiMatch] = []

    def add(candidates: Iterable[PiiMatch]) -> None:
        for c in candidates:
            if all(c.end <= f.start or c.start >= f.end for f in found):
                found.append(c)

    # Precedence: e-mails, then cards, then phones (a card number is also a possible phone).
    # E-mails are always found: digits inside an address are never a phone or card number.
    found.extend(_emails(text))
    if "card" in wanted:
        add(_cards(text))
    if "phone" in wanted and _DIGIT.search(text):
        add(_phones(_masked(text, found), region, strict))
    if "email" not in wanted:
        found = [f for f in found if f.kind != "email"]
    return sorted(found, key=lambda f: f.start)


def redact(
    text: str,
    kinds: Iterable[str] = KINDS,
    *,
    region: str = DEFAULT_REGION,
    strict: bool = False,
) -> str:
    """Replace each e-mail, phone and card number in a text by ``[email]``, ``[phone]``, ``[card]``.

    Args:
        text: Any text.
        kinds: Which kinds to redact (default all).
        region: Region (ISO 3166 alpha-2) for phone numbers without a country code.
        strict: Only phone numbers valid for their country.

    Returns:
        The text with the personal data replaced; unchanged where there is none.
    """
    matches = find_pii(text, region=region, kinds=kinds, strict=strict)
    if not matches:
        return text
    out: list[str] = []
    pos = 0
    for m in matches:
        out.append(text[pos : m.start])
        out.append(f"[{m.kind}]")
        pos = m.end
    out.append(text[pos:])
    return "".join(out)
