"""Finding and redacting personal data in text (listenwell.crm.pii)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from listenwell.crm.pii import PiiMatch, find_pii, luhn_ok, redact


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("unreachable")


# Text with no digits and no "@" cannot hold an e-mail, phone or card number.
filler = st.text(
    alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ éüß.,!?;:'\"\n")),
    max_size=40,
)

emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.from_regex(r"[a-z][a-z0-9._+-]{0,10}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9-]{0,8}[a-z0-9]", fullmatch=True),
    st.sampled_from(["com", "org", "co.uk", "de", "io"]),
)

us_phones = st.builds(
    lambda a, b, c, style: style.format(a=a, b=b, c=c),
    st.integers(200, 989),
    st.integers(200, 999),
    st.integers(0, 9999).map(lambda n: f"{n:04d}"),
    st.sampled_from(["({a}) {b}-{c}", "{a}-{b}-{c}", "+1 {a} {b} {c}", "{a}.{b}.{c}"]),
)
intl_phones = st.sampled_from(
    ["+44 20 7946 0958", "+49 30 901820", "+33 1 42 68 53 00", "+61 2 9374 4000"]
)

cards = st.builds(
    lambda body, sep: sep.join(_luhn_complete(body)[i : i + 4] for i in range(0, len(body) + 1, 4)),
    st.integers(10**14, 10**15 - 1).map(str),
    st.sampled_from([" ", "-", ""]),
)

pii = st.one_of(
    emails.map(lambda v: ("email", v)),
    us_phones.map(lambda v: ("phone", v)),
    intl_phones.map(lambda v: ("phone", v)),
    cards.map(lambda v: ("card", v)),
)


def test_finds_each_kind() -> None:
    text = "mail ann.smith+x@example.co.uk or call (212) 555-0196, card 4111 1111 1111 1111."
    kinds = [m.kind for m in find_pii(text)]
    assert kinds == ["email", "phone", "card"]
    assert redact(text) == "mail [email] or call [phone], card [card]."


def test_match_positions() -> None:
    text = "write to jo@x.org"
    assert find_pii(text) == [PiiMatch("email", 9, 17)]


def test_card_needs_luhn() -> None:
    assert find_pii("4111-1111-1111-1112 please", kinds=["card"]) == []
    assert [m.kind for m in find_pii("4111-1111-1111-1111 please")] == ["card"]


def test_dates_and_short_numbers_are_not_pii() -> None:
    text = "order 12345678 on 2024-05-01 at 10:30, 3 items"
    assert find_pii(text) == []
    assert redact(text) == text


def test_region_reads_national_numbers() -> None:
    assert [m.kind for m in find_pii("ring 020 7946 0958", region="GB")] == ["phone"]


def test_kinds_select_what_is_redacted() -> None:
    text = "jo@x.org or 212-555-0196"
    assert redact(text, kinds=["email"]) == "[email] or 212-555-0196"
    assert redact(text, kinds=["phone"]) == "jo@x.org or [phone]"


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        find_pii("x", kinds=["ssn"])


def test_card_after_another_number() -> None:
    assert redact("ref 2125 4111111111111111") == "ref 2125 [card]"


def test_digits_inside_an_email_are_not_a_phone() -> None:
    assert redact("mail 2125550196@sms.example.com") == "mail [email]"


@settings(max_examples=200, deadline=None)
@given(filler)
def test_text_without_pii_is_unchanged(text: str) -> None:
    assert find_pii(text) == []
    assert redact(text) == text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(filler, pii), min_size=1, max_size=4), filler)
def test_redacted_text_never_holds_the_original(
    parts: list[tuple[str, tuple[str, str]]], tail: str
) -> None:
    # Parts are kept apart by "; ": two numbers separated by a space alone may read as one.
    text = "; ".join(f"{before} {value}" for before, (_, value) in parts) + "; " + tail
    out = redact(text)
    for _, (kind, value) in parts:
        assert value not in out
        assert f"[{kind}]" in out
    expected = "; ".join(f"{before} [{kind}]" for before, (kind, _) in parts) + "; " + tail
    assert out == expected
