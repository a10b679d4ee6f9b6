"""Customer matching: normalisers, the index's lookups, fuzzy search and duplicate scoring."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest

from listenwell.nlp.matching import (
    DEFAULT_ACCOUNT_FIELDS,
    DEFAULT_DUPLICATE_SCORE,
    CustomerIndex,
    MatchOptions,
    compare_names,
    email_key,
    mask_email,
    mask_number,
    name_tokens,
    normalize_account,
    normalize_email,
    normalize_phone,
)
from listenwell.store.links import CustomerCard
from listenwell.store.records import parse_handles

REPO = Path(__file__).resolve().parents[2]


def card(pk: int, name: str | None = None, **kw) -> CustomerCard:
    handles = tuple((h.platform, h.handle) for h in parse_handles(kw.pop("handles", "")))
    return CustomerCard(
        pk=pk, customer_id=kw.pop("cid", f"C{pk:03d}"), name=name, handles=handles, **kw
    )


def pairs(index: CustomerIndex, **kw) -> dict[tuple[str, str], tuple[float, tuple[str, ...]]]:
    return {
        (p.customer_id_a, p.customer_id_b): (p.score, p.reasons) for p in index.duplicates(**kw)
    }


# ---------------------------------------------------------------------------- normalisers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane.Doe@Example.com", "jane.doe@example.com"),
        ("jane.doe+shop@example.com", "jane.doe@example.com"),
        ("J.A.N.E.doe+x@gmail.com", "janedoe@gmail.com"),
        ("jane.doe@googlemail.com", "janedoe@gmail.com"),
        ("mailto:JaneDoe@GMAIL.com", "janedoe@gmail.com"),
        ("<jane@example.org>", "jane@example.org"),
        ("not an email", None),
        ("jane@localhost", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_email(raw, expected):
    assert normalize_email(raw) == expected


def test_email_key_ignores_dots_but_keeps_the_domain():
    assert email_key("ravi.urban@example.com") == email_key("RaviUrban@example.com")
    assert email_key("ravi.urban@example.com") != email_key("ravi.urban@example.org")
    assert email_key("nope") is None


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+1-919-555-0196", "US"),
        ("(919) 555-0196", "US"),
        ("919.555.0196", "US"),
        ("1 919 555 0196", "US"),
        ("9195550196", "US"),
        ("+1 919 555 0196", "GB"),  # a country code wins over the region
    ],
)
def test_normalize_phone_any_formatting(raw, region):
    assert normalize_phone(raw, region) == "+19195550196"


def test_normalize_phone_national_numbers_need_their_region():
    assert normalize_phone("020 7946 0370", "GB") == "+442079460370"
    assert normalize_phone("0044 20 7946 0370", "GB") == "+442079460370"
    assert normalize_phone("020 7946 0370", "US") is None
    assert normalize_phone("call me", "US") is None
    assert normalize_phone(None) is None


def test_name_tokens_fold_accents_titles_and_punctuation():
    assert name_tokens("Dr. José O'Neil-Smith Jr.") == ("jose", "oneil", "smith")
    assert name_tokens("  ") == ()
    assert name_tokens(None) == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("A-100234-77", "A10023477"),
        ("ac 1234 567", "AC1234567"),
        (1234567890, "1234567890"),
        ("12345", None),  # too short to be evidence
        ("ABCDEF12", None),  # fewer than four digits
        ("2019-03-06", None),  # a date
        (True, None),
        (None, None),
    ],
)
def test_normalize_account(value, expected):
    assert normalize_account(value) == expected


def test_masks_keep_little():
    assert mask_email("jane.doe@example.com") == "j***e@example.com"
    assert mask_email("jo@example.com") == "j***@example.com"
    assert mask_number("+19195550196") == "***0196"


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("a", "b", "kind"),
    [
        ("Bob Smith", "Robert Smith", "nickname"),
        ("R. Urban", "Ravi Urban", "initial"),
        ("Smith John", "John Smith", "swapped"),
        ("Ines Ytaes", "Ines Yates", "typo"),
        ("Gus B. Reed", "Gus Reed", "middle name"),
    ],
)
def test_compare_names_understands_variants(a, b, kind):
    m = compare_names(name_tokens(a), name_tokens(b))
    assert kind in m.kinds
    assert m.score >= 0.8
    assert m.first_compatible


def test_compare_names_different_people():
    same = compare_names(name_tokens("Ines Yates"), name_tokens("Ines Yates"))
    assert same.score == 1.0 and same.kinds == ()
    other = compare_names(name_tokens("Anna Kowalski"), name_tokens("Piotr Kowalski"))
    assert other.score < 0.8 and not other.first_compatible
    assert compare_names((), name_tokens("Jo Doe")).score == 0.0


# ---------------------------------------------------------------------------- lookups


@pytest.fixture
def index() -> CustomerIndex:
    return CustomerIndex(
        [
            card(
                1,
                "John Smith",
                email="john.smith@gmail.com",
                phone="+1-919-555-0196",
                handles="x:@JSmith_99;reddit:u/john_smith_1",
                attributes={"order_ids": "A-100234-77;WEB1234567", "customer_since": "2019-03-06"},
            ),
            card(
                2,
                "Ines Yates",
                email="ines.yates@example.com",
                phone="020 7946 0370",
                attributes={"country": "GB", "account_number": "AC7654321"},
            ),
            card(3, "Robert Okafor", email="bob@example.org", phone="(303) 555-0199"),
            card(4, "Erased Person", email="gone@example.com", erased=True),
        ]
    )


def test_index_skips_erased_customers(index):
    assert len(index) == 3
    assert index.by_customer_id("C004") is None
    assert index.emails_in("write to gone@example.com") == []


@pytest.mark.parametrize(
    ("platform", "handle", "expected"),
    [
        ("x", "@jsmith_99", "C001"),
        ("x", "JSMITH_99", "C001"),
        ("twitter", "@JSmith_99", "C001"),
        ("reddit", "u/John_Smith_1", "C001"),
        ("reddit", "/u/john_smith_1", "C001"),
        ("reddit", "@jsmith_99", None),  # same name, other platform
        ("x", "not a handle!", None),
    ],
)
def test_find_handle_normalises_like_stored_handles(index, platform, handle, expected):
    found = index.find_handle(platform, handle)
    assert (found.customer_id if found else None) == expected


@pytest.mark.parametrize(
    "text",
    [
        "my email is John.Smith@gmail.com thanks",
        "JOHNSMITH+support@GMAIL.COM",
        "mailto:j.o.h.n.smith@googlemail.com",
        "write to john.smith [at] gmail [dot] com please",
    ],
)
def test_emails_in_text(index, text):
    assert [(c.customer_id, e) for c, e in index.emails_in(text)] == [
        ("C001", "johnsmith@gmail.com")
    ]


def test_unknown_emails_match_nobody(index):
    assert index.emails_in("mail john.smith@yahoo.com or smith@gmail.com") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call me on (919) 555-0196", "C001"),
        ("call 919.555.0196 today", "C001"),
        ("ring +1 919 555 0196", "C001"),
        ("my number 9195550196", "C001"),
        ("tel 020 7946 0370", "C002"),  # national GB number: read in the customers' regions
        ("tel +44 (0)20 7946 0370", "C002"),
        ("call me on (919) 555-0197", None),  # one digit off
        ("call 1-800-555-0196 for help", None),
    ],
)
def test_phones_in_text(index, text, expected):
    found = [c.customer_id for c, _ in index.phones_in(text)]
    assert found == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("order A-100234-77 is late", [("C001", "order_ids")]),
        ("order #a10023477 is late", [("C001", "order_ids")]),
        ("order A 100234 77 is late", [("C001", "order_ids")]),
        ("acct ac-765-4321", [("C002", "account_number")]),
        ("my customer number is C001", []),  # too short to be evidence
        ("order A-100234-78 is late", []),
        ("since 2019-03-06", []),  # customer_since is a date, not a number
    ],
)
def test_accounts_in_text(index, text, expected):
    assert [(c.customer_id, f) for c, f, _ in index.accounts_in(text)] == expected


def test_long_customer_ids_are_account_evidence():
    idx = CustomerIndex([card(1, "A B", cid="CUST-000123")])
    for text in ("id CUST000123", "I am cust 000123"):
        found = [(c.customer_id, f) for c, f, _ in idx.accounts_in(text)]
        assert found == [("CUST-000123", "customer_id")]
    assert idx.accounts_in("I am cust 000124") == []


def test_account_fields_pattern_is_configurable():
    c = card(1, "A B", attributes={"loyalty_card": "LC998877", "order_ids": "A-100234-77"})
    only_loyalty = CustomerIndex([c], account_fields="loyalty")
    assert len(only_loyalty.accounts_in("card LC998877, order A-100234-77")) == 1
    default = CustomerIndex([c], account_fields=DEFAULT_ACCOUNT_FIELDS)
    assert len(default.accounts_in("card LC998877, order A-100234-77")) == 2


def test_unknown_region_is_refused():
    with pytest.raises(ValueError, match="unknown phone region"):
        CustomerIndex([], default_region="XX")


# ---------------------------------------------------------------------------- search


@pytest.fixture
def crowd() -> CustomerIndex:
    names = [
        "John Smith",
        "Joan Smythe",
        "Jonas Smithers",
        "Robert Brown",
        "Mary Major",
        "Jo Smith",
    ]
    cards = [card(k, n, email=f"user{k}@example.com") for k, n in enumerate(names, start=1)]
    cards.append(
        card(
            7,
            "Ravi Urban",
            email="ravi.urban@example.com",
            phone="+1-303-555-0199",
            handles="x:@RaviUrban12",
        )
    )
    cards.append(card(8, "John Smith", email="hidden@example.com", erased=True))
    return CustomerIndex(cards)


def test_search_jon_smth_finds_john_smith_first(crowd):
    hits = crowd.search("jon smth")
    assert hits[0].customer_id == "C001" and hits[0].matched == "name"
    assert "C008" not in {h.customer_id for h in hits}  # erased
    assert hits == sorted(hits, key=lambda h: -h.score)


@pytest.mark.parametrize(
    ("query", "expected", "matched"),
    [
        ("bob brown", "C004", "name"),  # nickname
        ("brown robert", "C004", "name"),  # swapped
        ("RAVI.URBAN@example.com", "C007", "email"),
        ("ravi.urbn@example.com", "C007", "email"),  # typo in the address
        ("(303) 555-0199", "C007", "phone"),
        ("3035550199", "C007", "phone"),
        ("@raviurban12", "C007", "handle"),
        ("x:@RaviUrbn12", "C007", "handle"),
        ("c007", "C007", "customer_id"),
    ],
)
def test_search_by_every_field(crowd, query, expected, matched):
    top = crowd.search(query, limit=3)[0]
    assert (top.customer_id, top.matched) == (expected, matched)


def test_search_exact_hits_score_100_and_limit_applies(crowd):
    assert crowd.search("ravi.urban@example.com")[0].score == 100
    assert len(crowd.search("smith", limit=2)) == 2
    assert crowd.search("   ") == []
    assert crowd.search("zzzzqqqq") == []
    assert crowd.search("jon smth")[0].as_dict()["handles"] == []


# ---------------------------------------------------------------------------- duplicates


def test_duplicates_with_reasons_for_each_kind_of_variant():
    idx = CustomerIndex(
        [
            card(1, "Robert Okafor", phone="+1-303-555-0199", email="r.okafor@example.com"),
            card(2, "Bob Okafor", phone="(303) 555 0199"),  # nickname, phone format
            card(3, "Ines Yates", email="ines.yates@example.com", phone="+1-503-555-0176"),
            card(4, "Ines Ytaes", email="inesyates@example.com"),  # typo, e-mail without dot
            card(5, "Lindqvist Sven", email="svenl@gmail.com"),  # swapped, Gmail dots/+tag
            card(6, "Sven Lindqvist", email="s.v.e.n.l+crm@gmail.com"),
            card(7, "Amara Osei", email="amara@example.com"),
            card(8, "Kwame Mensah", email="kwame@example.org"),
        ]
    )
    found = pairs(idx)
    assert set(found) == {("C001", "C002"), ("C003", "C004"), ("C005", "C006")}
    assert "same phone" in found[("C001", "C002")][1]
    assert any("nickname" in r for r in found[("C001", "C002")][1])
    assert any("typo" in r for r in found[("C003", "C004")][1])
    assert any(r.startswith("e-mail variant") for r in found[("C003", "C004")][1])
    assert "same e-mail" in found[("C005", "C006")][1]
    assert any("swapped" in r for r in found[("C005", "C006")][1])


def test_common_names_alone_are_not_flagged():
    idx = CustomerIndex(
        [
            card(1, "John Smith", email="john.smith@example.com", phone="+1-212-555-0101"),
            card(2, "John Smith", email="jsmith77@example.org", phone="+1-415-555-0102"),
            card(3, "Maria Garcia"),
            card(4, "Maria Garcia"),
            card(5, "Ines Yates"),
            card(6, "Ines Yates"),  # a rare name alone is worth a look
        ]
    )
    found = pairs(idx)
    assert set(found) == {("C005", "C006")}
    score, reasons = idx.compare(1, 2).score, idx.compare(1, 2).reasons
    assert score < DEFAULT_DUPLICATE_SCORE and "name: same, common name" in reasons


def test_common_name_with_strong_agreement_is_flagged():
    idx = CustomerIndex(
        [card(1, "John Smith", phone="+1-212-555-0101"), card(2, "J. Smith", phone="2125550101")]
    )
    assert set(pairs(idx)) == {("C001", "C002")}


def test_household_sharing_a_phone_is_not_flagged():
    idx = CustomerIndex(
        [
            card(1, "Anna Kowalski", phone="+1-212-555-0101", email="family@example.com"),
            card(2, "Piotr Kowalski", phone="212 555 0101", email="FAMILY@example.com"),
        ]
    )
    assert pairs(idx) == {}
    assert "different first names" in idx.compare(1, 2).reasons


def test_name_made_e_mails_and_handles_add_little():
    idx = CustomerIndex(
        [
            card(1, "Robert Miller", email="robert.miller@yahoo.com", handles="x:@RobertMiller1"),
            card(2, "Robert Miller", email="robert.miller@outlook.com", handles="x:@RobertMiller2"),
        ]
    )
    reasons = idx.compare(1, 2).reasons
    assert "same e-mail name, other domain (name-like)" in reasons
    assert "similar handle (name-like)" in reasons
    assert pairs(idx) == {}


def test_large_name_blocks_are_skipped_but_other_keys_still_pair():
    cards = [card(k, "Wanda Whitfield", email=f"w{k}@example.com") for k in range(1, 31)]
    cards[0] = card(1, "Wanda Whitfield", phone="+1-212-555-0101")
    cards[1] = card(2, "Wanda Whitfield", phone="(212) 555-0101")
    idx = CustomerIndex(cards)
    assert set(pairs(idx, max_block=10)) == {("C001", "C002")}


def test_duplicates_progress_and_threshold():
    idx = CustomerIndex(
        [card(1, "Ines Yates", phone="+1-503-555-0176"), card(2, "Ines Ytaes", phone="5035550176")]
    )
    seen: list[tuple[int, int]] = []
    assert len(idx.duplicates(0.9, on_progress=lambda d, t: seen.append((d, t)))) == 1
    assert seen and seen[-1][0] == seen[-1][1]
    assert idx.duplicates(1.0) == []


def test_demo_customers_give_exactly_the_documented_pairs():
    """demo/SOURCE.md documents three near-duplicate pairs among the 300 demo customers."""
    with (REPO / "demo" / "data" / "customers.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cards = [
        card(
            k,
            r["name"],
            cid=r["customer_id"],
            email=r["email"] or None,
            phone=r["phone"] or None,
            handles=r["handles"],
            attributes={"country": r["country"]},
        )
        for k, r in enumerate(rows, start=1)
    ]
    assert set(pairs(CustomerIndex(cards))) == {
        ("C00236", "C00254"),
        ("C00073", "C00128"),
        ("C00067", "C00120"),
    }


def test_match_options_from_settings():
    assert MatchOptions.from_settings(SimpleNamespace()) == MatchOptions()
    section = SimpleNamespace(default_region="GB", duplicate_min_score=0.8, account_fields=None)
    opts = MatchOptions.from_settings(SimpleNamespace(linking=section))
    assert (opts.default_region, opts.duplicate_min_score) == ("GB", 0.8)
    assert opts.account_fields == DEFAULT_ACCOUNT_FIELDS
