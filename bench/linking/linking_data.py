"""A seeded synthetic set for customer linking and duplicate detection, with ground truth.

``generate(n_people, seed=...)`` returns a :class:`LinkingSet`:

* **customers** -- one record per person, plus
  * *duplicates*: a second record of the same person (about 6%), changed in 1-3 ways:
    nickname, typo, swapped first/last, initial, added middle initial for the name;
    same e-mail in other case, Gmail dots/``+tag``, dots removed, same name at
    another domain, another e-mail or none; the phone in another format, national
    format, a new number or none; sometimes a similar handle on another platform or a
    shared order number. Handles are never repeated (the importer refuses that).
  * *namesakes*: distinct people who share a common name ("John Smith" x3), with
    nothing else in common;
  * *households*: distinct people sharing a surname and a phone number (and
    sometimes a family e-mail), with different first names.
  Ground truth: ``duplicate_pairs`` (with the variation kinds) and the
  ``negative_pairs`` worth reporting (namesakes, households).
* **mentions** -- posts whose ``truth`` is the customer they come from, or ``None``:
  author handle in other case and prefix; e-mail, phone, order/account number in
  the text in many formats; name only; and decoys that must not link (an unknown
  e-mail, a phone or order number one digit off, a customer's handle quoted by
  someone else, toll-free numbers, dates and prices, a common name).

Everything comes from ``random.Random(seed)``; the same seed gives the same set.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

__all__ = ["GenCustomer", "GenMention", "LinkingSet", "generate", "to_cards"]

FIRST = """
robert william james john michael richard thomas joseph charles christopher daniel
matthew anthony andrew steven edward elizabeth margaret katherine patricia jennifer
jessica rebecca susan deborah victoria nicholas benjamin samuel timothy gregory
alexander isabella josephine theodore ines ravi aiko kwame sven leila noor mateo
elena yusuf priya olga lars chiara tomasz amara kenji soren mirela dario hana
farah ilya lucia omar petra quentin rosa tariq ugo vera wanda ximena yara zoltan
bruno carmen dmitri esme felix greta hugo ingrid jonas kalani lena milo nadia oskar
paloma rafael saskia tobias ulla valentin wilhelmina xavier yvonne zara maria jose
""".split()

LAST = """
smith johnson williams brown jones garcia miller davis rodriguez martinez lopez
gonzalez wilson anderson taylor moore jackson martin lee thompson white harris clark
lewis walker young allen king wright scott nguyen hill green adams baker nelson
yates urban reed okafor lindqvist moreau castellano nakamura osei brandt kowalski
petrov haddad fischer rossi dubois novak horvat jensen larsen ivanova tanaka
mensah abara quispe fontaine varga ozturk delacroix halvorsen bianchi kovacs
sorensen marchetti oyelaran vasquez whitfield ashdown penhaligon trevelyan
mcallister oconnell fairweather blackwood thornbury kingsley hargreaves
ellsworth montague pemberton radcliffe sinclair underwood vance wexford abernathy
beaumont calloway davenport everly fitzgerald galloway hawthorne
""".split()

# Syllables for a long tail of rare surnames (about 5,000), so that, as in real customer
# lists, most people's surname is rare and a few surnames are very common.
_PRE = "var bel kor mal den sor tal mer hal bran cor fen gal hol lin mor nor pel ros stan tor vel wyn dal ker lor".split()
_MID = ["", "a", "e", "i", "o", "an", "en", "in", "ar", "er"]
_SUF = (
    "ko son sen ski ini ova ley ford wick ton berg mann ez ari ola ner dt quist ridge well".split()
)

COMMON_NAMES = [
    ("john", "smith"),
    ("maria", "garcia"),
    ("james", "johnson"),
    ("michael", "brown"),
    ("jennifer", "williams"),
    ("david", "jones"),
    ("jose", "rodriguez"),
]

NICK = {
    "robert": ["bob", "rob", "bobby"],
    "william": ["bill", "will", "billy"],
    "james": ["jim", "jimmy"],
    "john": ["jack", "johnny"],
    "michael": ["mike"],
    "richard": ["rick", "dick"],
    "thomas": ["tom"],
    "joseph": ["joe"],
    "charles": ["charlie", "chuck"],
    "christopher": ["chris"],
    "daniel": ["dan", "danny"],
    "matthew": ["matt"],
    "anthony": ["tony"],
    "andrew": ["andy", "drew"],
    "steven": ["steve"],
    "edward": ["ed", "ted"],
    "elizabeth": ["liz", "beth", "betty"],
    "margaret": ["maggie", "peggy"],
    "katherine": ["kate", "kathy"],
    "patricia": ["pat", "trish"],
    "jennifer": ["jen", "jenny"],
    "jessica": ["jess"],
    "rebecca": ["becky"],
    "susan": ["sue"],
    "deborah": ["debbie"],
    "victoria": ["vicky"],
    "nicholas": ["nick"],
    "benjamin": ["ben"],
    "samuel": ["sam"],
    "timothy": ["tim"],
    "gregory": ["greg"],
    "alexander": ["alex"],
    "isabella": ["bella"],
    "josephine": ["josie"],
    "theodore": ["theo", "ted"],
}

DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.com", "mail.de", "proton.me"]
US_AREAS = ["201", "202", "212", "303", "305", "312", "415", "503", "617", "702", "808", "919"]
TEMPLATES = [
    "Still waiting on support, nobody answers. {e}",
    "{e} please help, the app keeps crashing since the update",
    "Can someone from the team look at this? {e}",
    "Third time asking. {e} Not impressed.",
    "hey, quick question about my bill {e}",
    "{e} thanks in advance!",
]
PLAIN = [
    "Love the new release, great job team",
    "The store on Main Street was closed again today",
    "Is the premium plan worth it? thinking about upgrading",
    "Delivery took two weeks, not great",
    "App crashes when I open settings",
]


@dataclass
class GenCustomer:
    """One generated customer record (the import CSV's columns)."""

    customer_id: str
    name: str
    email: str | None
    phone: str | None
    handles: list[tuple[str, str]]
    attributes: dict[str, Any]
    person: int  # which generated person this record is


@dataclass
class GenMention:
    """One generated mention and its ground truth."""

    source: str
    author_handle: str | None
    author_name: str | None
    text: str
    truth: str | None  # the customer_id it comes from, or None
    kind: str  # handle, email, phone, account, name_only, decoy_*, plain
    fmt: str = ""  # the format used (e.g. "mailto", "national")
    also: tuple[str, ...] = ()  # other customer_ids that are the same person (duplicates)


@dataclass
class LinkingSet:
    """The generated customers and mentions, with ground truth."""

    customers: list[GenCustomer]
    duplicate_pairs: dict[tuple[str, str], str]  # pair -> variation kinds
    negative_pairs: dict[tuple[str, str], str]  # namesake / household
    mentions: list[GenMention] = field(default_factory=list)


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


class _Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.emails: set[str] = set()
        self.phones: set[str] = set()
        self.handles: set[str] = set()
        self.accounts: set[str] = set()
        self.n = 0

    def cid(self) -> str:
        self.n += 1
        return f"G{self.n:06d}"

    def surname(self) -> str:
        # About 35% from the list (its head is very common), 65% from the long tail.
        if self.r.random() < 0.35:
            return self.zipf(LAST)
        return self.r.choice(_PRE) + self.r.choice(_MID) + self.r.choice(_SUF)

    def zipf(self, items: list[str]) -> str:
        # Earlier items are commoner (weights 1/rank^0.6), like real name frequencies.
        weights = [1 / (k + 1) ** 0.6 for k in range(len(items))]
        return self.r.choices(items, weights)[0]

    def email(self, first: str, last: str) -> str:
        r = self.r
        for _ in range(50):
            local = r.choice(
                [
                    f"{first}.{last}",
                    f"{first}{last}",
                    f"{first[0]}{last}",
                    f"{first}_{last}{r.randint(1, 99)}",
                    f"{last}.{first}{r.randint(1, 9)}",
                ]
            )
            addr = f"{local}@{r.choice(DOMAINS)}"
            if self.claim(addr):
                return addr
        raise RuntimeError("could not make a unique e-mail")

    def claim(self, addr: str) -> bool:
        """Take a mailbox for one person; false if someone has it already."""
        # One mailbox, one person: Gmail ignores dots and +tags, so j.smith and jsmith are one.
        local, _, domain = addr.lower().rpartition("@")
        local = local.split("+", 1)[0]
        key = f"{local.replace('.', '') if domain == 'gmail.com' else local}@{domain}"
        if key in self.emails:
            return False
        self.emails.add(key)
        return True

    def phone(self) -> tuple[str, str, str]:
        """(e164 digits, stored form, region)."""
        r = self.r
        while True:
            region = r.choices(["US", "GB", "DE", "FR"], [60, 25, 10, 5])[0]
            if region == "US":
                area, ex, line = r.choice(US_AREAS), r.randint(201, 989), r.randint(0, 9999)
                e164 = f"+1{area}{ex:03d}{line:04d}"
                stored = r.choice(
                    [
                        f"+1-{area}-{ex:03d}-{line:04d}",
                        f"({area}) {ex:03d}-{line:04d}",
                        f"+1 {area} {ex:03d} {line:04d}",
                    ]
                )
            elif region == "GB":
                if r.random() < 0.5:
                    n = r.randint(2000000, 8999999)
                    e164 = f"+4420{n}"
                    stored = r.choice(
                        [f"+44 20 {str(n)[:4]} {str(n)[4:]}", f"020 {str(n)[:4]} {str(n)[4:]}"]
                    )
                else:
                    n = r.randint(100000000, 999999999)
                    e164 = f"+447{n}"
                    stored = r.choice(
                        [f"+44 7{str(n)[:3]} {str(n)[3:]}", f"07{str(n)[:3]} {str(n)[3:]}"]
                    )
            elif region == "DE":
                n = r.randint(1000000, 9999999)
                e164 = f"+4930{n}"
                stored = r.choice([f"+49 30 {n}", f"030 {n}"])
            else:
                n = r.randint(10000000, 99999999)
                e164 = f"+336{n}"
                s = f"{n:08d}"
                stored = r.choice(
                    [
                        f"+33 6 {s[:2]} {s[2:4]} {s[4:6]} {s[6:]}",
                        f"06 {s[:2]} {s[2:4]} {s[4:6]} {s[6:]}",
                    ]
                )
            if e164 not in self.phones:
                self.phones.add(e164)
                return e164, stored, region

    def handle(self, first: str, last: str, platform: str) -> tuple[str, str]:
        r = self.r
        for attempt in range(10_000):
            # Two digits first; more once the common names have used them up.
            number = str(r.randint(1, 10 ** (2 + attempt // 20) - 1))
            if platform == "x":
                core = (first.capitalize() + last.capitalize())[: 15 - len(number)] + number
                display = "@" + core
            else:
                core = f"{first}_{last}"[: 19 - len(number)] + f"_{number}"
                display = "u/" + core
            key = f"{platform}:{core.lower()}"
            if key not in self.handles:
                self.handles.add(key)
                return platform, display
        raise RuntimeError("could not make a unique handle")

    def order(self) -> str:
        r = self.r
        while True:
            value = r.choice(
                [
                    f"A-{r.randint(100000, 999999)}-{r.randint(10, 99)}",
                    f"{r.randint(1000000000, 9999999999)}",
                    f"WEB{r.randint(1000000, 9999999)}",
                ]
            )
            if value not in self.accounts:
                self.accounts.add(value)
                return value

    def account(self) -> str:
        while True:
            value = f"AC{self.r.randint(1000000, 9999999)}"
            if value not in self.accounts:
                self.accounts.add(value)
                return value

    def person(self, pid: int, first: str, last: str, *, phone: bool | None = None) -> GenCustomer:
        r = self.r
        name = f"{first.capitalize()} {last.capitalize()}"
        if r.random() < 0.08:
            name = f"{first.capitalize()} {r.choice(string.ascii_uppercase)}. {last.capitalize()}"
        region = "US"
        stored_phone = None
        if phone if phone is not None else r.random() < 0.8:
            _, stored_phone, region = self.phone()
        country = region if r.random() < 0.9 else r.choice(["IN", "ES", "NL", "BR"])
        if stored_phone and not stored_phone.startswith("+") and country != region:
            country = region  # a national number needs its country to be readable
        handles = []
        if r.random() < 0.6:
            handles.append(self.handle(first, last, "x"))
        if r.random() < 0.35:
            handles.append(self.handle(first, last, "reddit"))
        attrs: dict[str, Any] = {
            "country": country,
            "lifetime_value": round(r.uniform(10, 5000), 2),
            "customer_since": str(date(2012, 1, 1) + timedelta(days=r.randint(0, 4000))),
        }
        orders = [self.order() for _ in range(r.choice([0, 1, 1, 2, 3]))]
        if orders:
            attrs["order_ids"] = ";".join(orders)
        if r.random() < 0.5:
            attrs["account_number"] = self.account()
        return GenCustomer(
            customer_id=self.cid(),
            name=name,
            email=self.email(first, last) if r.random() < 0.93 else None,
            phone=stored_phone,
            handles=handles,
            attributes=attrs,
            person=pid,
        )


def _typo(r: random.Random, word: str) -> str:
    if len(word) < 4:
        return word + word[-1]
    i = r.randint(1, len(word) - 2)
    op = r.choice(["swap", "delete", "replace", "double"])
    if op == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == "delete":
        return word[:i] + word[i + 1 :]
    if op == "replace":
        return word[:i] + r.choice("aeiourstnl".replace(word[i], "")) + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def _split(name: str) -> tuple[str, str]:
    parts = name.replace(".", "").split()
    return parts[0].lower(), parts[-1].lower()


def _duplicate(g: _Gen, orig: GenCustomer) -> tuple[GenCustomer, str]:
    r = g.r
    first, last = _split(orig.name)
    kinds = []
    name_kind = r.choice(["nickname", "typo", "swapped", "initial", "middle", "same", "case"])
    if name_kind == "nickname" and first not in NICK:
        name_kind = "typo"
    if name_kind == "nickname":
        name = f"{r.choice(NICK[first]).capitalize()} {last.capitalize()}"
    elif name_kind == "typo":
        if r.random() < 0.5:
            name = f"{_typo(r, first).capitalize()} {last.capitalize()}"
        else:
            name = f"{first.capitalize()} {_typo(r, last).capitalize()}"
    elif name_kind == "swapped":
        name = f"{last.capitalize()} {first.capitalize()}"
    elif name_kind == "initial":
        name = f"{first[0].upper()}. {last.capitalize()}"
    elif name_kind == "middle":
        name = f"{first.capitalize()} {r.choice(string.ascii_uppercase)}. {last.capitalize()}"
    elif name_kind == "case":
        name = orig.name.upper()
    else:
        name = orig.name
    kinds.append(f"name:{name_kind}")
    email = orig.email
    email_kind = r.choice(["same-case", "dots", "other-domain", "different", "missing", "same"])
    if email:
        local, domain = email.split("@")
        if email_kind == "same-case":
            email = email.upper() if r.random() < 0.5 else email.capitalize()
        elif email_kind == "dots":
            if domain == "gmail.com":
                email = (
                    (".".join(local.replace(".", "")) if r.random() < 0.3 else local)
                    + "+shop@"
                    + domain
                )
            elif "." in local and g.claim(local.replace(".", "") + "@" + domain):
                email = local.replace(".", "") + "@" + domain
            else:
                email_kind = "same"
        elif email_kind == "other-domain":
            for other in r.sample([d for d in DOMAINS if d != domain], len(DOMAINS) - 1):
                if g.claim(f"{local}@{other}"):
                    email = f"{local}@{other}"
                    break
            else:
                email_kind, email = "missing", None
        elif email_kind == "different":
            email = g.email(first, last + str(r.randint(1, 9)))
        elif email_kind == "missing":
            email = None
    else:
        email_kind = "none"
    kinds.append(f"email:{email_kind}")
    phone = orig.phone
    phone_kind = r.choice(["same", "reformatted", "missing", "different"])
    if phone:
        if phone_kind == "reformatted":
            digits = "".join(c for c in phone if c.isdigit() or c == "+")
            phone = digits if r.random() < 0.5 else phone.replace(" ", ".").replace("-", ".")
        elif phone_kind == "missing":
            phone = None
        elif phone_kind == "different":
            phone = g.phone()[1]
    else:
        phone_kind = "none"
    kinds.append(f"phone:{phone_kind}")
    handles = []
    if r.random() < 0.3:
        plat = "reddit" if any(p == "x" for p, _ in orig.handles) else "x"
        handles.append(g.handle(first, last, plat))
        kinds.append("handle:similar")
    attrs = {
        "country": orig.attributes["country"],
        "lifetime_value": round(r.uniform(10, 500), 2),
        "customer_since": orig.attributes["customer_since"],
    }
    if r.random() < 0.15 and orig.attributes.get("order_ids"):
        attrs["order_ids"] = orig.attributes["order_ids"].split(";")[0]
        kinds.append("order:shared")
    dup = GenCustomer(
        customer_id=g.cid(),
        name=name,
        email=email,
        phone=phone,
        handles=handles,
        attributes=attrs,
        person=orig.person,
    )
    return dup, ", ".join(kinds)


def _email_in_text(r: random.Random, email: str) -> tuple[str, str]:
    local, domain = email.split("@")
    fmt = r.choice(["plain", "upper", "mailto", "angle", "label", "obfuscated", "variant"])
    if fmt == "upper":
        shown = email.upper()
    elif fmt == "mailto":
        shown = f"mailto:{email}"
    elif fmt == "angle":
        shown = f"<{email}>"
    elif fmt == "label":
        shown = f"my email: {email},"
    elif fmt == "obfuscated":
        shown = f"{local} [at] {domain.replace('.', ' [dot] ')}"
    elif fmt == "variant" and domain == "gmail.com":
        shown = ".".join(local.replace(".", "")) + "+support@" + domain
    else:
        fmt, shown = "plain", email
    return f"email is {shown}", fmt


def _phone_in_text(r: random.Random, stored: str, region: str) -> tuple[str, str]:
    digits = "".join(c for c in stored if c.isdigit())
    intl = stored.startswith("+")
    if region == "US":
        nat = digits[-10:]
        a, b, c = nat[:3], nat[3:6], nat[6:]
        options = {
            "e164": f"+1{nat}",
            "dashes": f"{a}-{b}-{c}",
            "parens": f"({a}) {b}-{c}",
            "dots": f"{a}.{b}.{c}",
            "bare": nat,
            "intl-spaces": f"+1 {a} {b} {c}",
            "one-prefix": f"1-{a}-{b}-{c}",
        }
    else:
        code = {"GB": "44", "DE": "49", "FR": "33"}[region]
        nsn = digits[len(code) :] if intl else digits.lstrip("0")
        options = {
            "e164": f"+{code}{nsn}",
            "national": "0" + nsn,
            "intl-spaces": f"+{code} {nsn[:3]} {nsn[3:6]} {nsn[6:]}",
            "double-zero": f"00{code} {nsn}",
        }
        if region == "GB":
            options["trunk-in-parens"] = f"+44 (0){nsn[:2]} {nsn[2:6]} {nsn[6:]}"
    fmt = r.choice(sorted(options))
    return f"call me back on {options[fmt]}", fmt


def _order_in_text(r: random.Random, value: str) -> tuple[str, str]:
    fmt = r.choice(["as-is", "lower", "no-dashes", "spaced", "hash"])
    if fmt == "lower":
        shown = value.lower()
    elif fmt == "no-dashes":
        shown = value.replace("-", "")
    elif fmt == "spaced":
        compact = value.replace("-", "")
        shown = " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    elif fmt == "hash":
        shown = "#" + value
    else:
        shown = value
    return f"order {shown} never arrived", fmt


def _off_by_one(r: random.Random, value: str) -> str:
    """Change one of the last six digits (never a country code or trunk prefix)."""
    idx = [i for i, c in enumerate(value) if c.isdigit()][-6:]
    i = r.choice(idx)
    return value[:i] + str((int(value[i]) + r.randint(1, 8)) % 10) + value[i + 1 :]


def generate(n_people: int = 2000, *, seed: int = 20240, mentions: bool = True) -> LinkingSet:
    """Generate customers (with duplicates, namesakes, households) and mentions with ground truth.

    Args:
        n_people: Distinct people with one record each (before duplicates, namesakes
            and households are added).
        seed: The random seed.
        mentions: Also generate mentions (about 1.5 per person).
    """
    g = _Gen(seed)
    r = g.r
    customers: list[GenCustomer] = []
    dup_pairs: dict[tuple[str, str], str] = {}
    negatives: dict[tuple[str, str], str] = {}
    pid = 0
    for _ in range(n_people):
        pid += 1
        customers.append(g.person(pid, g.zipf(FIRST), g.surname()))
    # Distinct people sharing a common name, nothing else in common.
    for _ in range(max(1, n_people // 150)):
        first, last = r.choice(COMMON_NAMES)
        group = []
        for _ in range(r.randint(2, 4)):
            pid += 1
            group.append(g.person(pid, first, last))
        customers.extend(group)
        for a, b in _pairs(group):
            negatives[_pair(a.customer_id, b.customer_id)] = "namesake"
    # Households: same surname and phone, different first names.
    for _ in range(max(1, n_people // 60)):
        last = g.surname()
        a = g.person(pid + 1, g.zipf(FIRST), last, phone=True)
        while True:
            other = g.zipf(FIRST)
            if other != _split(a.name)[0] and other[0] != _split(a.name)[0][0]:
                break
        b = g.person(pid + 2, other, last, phone=False)
        b.phone = a.phone
        b.attributes["country"] = a.attributes["country"]  # one home, one country
        if r.random() < 0.3 and a.email:
            b.email = a.email.upper()
        pid += 2
        customers.extend([a, b])
        negatives[_pair(a.customer_id, b.customer_id)] = "household"
    # Duplicate records of some people.
    originals = [c for c in customers[:n_people]]
    dup_of: dict[str, str] = {}
    for orig in r.sample(originals, max(1, int(0.06 * n_people))):
        dup, kinds = _duplicate(g, orig)
        customers.append(dup)
        dup_pairs[_pair(orig.customer_id, dup.customer_id)] = kinds
        dup_of[orig.customer_id] = dup.customer_id
        dup_of[dup.customer_id] = orig.customer_id
    out = LinkingSet(customers, dup_pairs, negatives)
    if mentions:
        out.mentions = _mentions(g, customers, dup_of)
    return out


def _pairs(items: list[GenCustomer]) -> list[tuple[GenCustomer, GenCustomer]]:
    return [(a, b) for k, a in enumerate(items) for b in items[k + 1 :]]


def _random_handle(r: random.Random, platform: str) -> str:
    core = "".join(r.choices(string.ascii_lowercase, k=r.randint(5, 9))) + str(r.randint(1, 999))
    return ("@" if platform == "x" else "u/") + core


def _region_of(c: GenCustomer) -> str:
    phone = c.phone or ""
    if phone.startswith("+44") or phone.startswith("0") and c.attributes["country"] == "GB":
        return "GB"
    if phone.startswith("+49") or phone.startswith("030"):
        return "DE"
    if phone.startswith("+33") or phone.startswith("06"):
        return "FR"
    return "US"


def _mentions(g: _Gen, customers: list[GenCustomer], dup_of: dict[str, str]) -> list[GenMention]:
    r = g.r
    out: list[GenMention] = []

    def also(c: GenCustomer) -> tuple[str, ...]:
        return (dup_of[c.customer_id],) if c.customer_id in dup_of else ()

    def wrap(evidence: str) -> str:
        return r.choice(TEMPLATES).format(e=evidence)

    for c in customers:
        if r.random() > 0.75:
            continue
        options = ["name_only"]
        if c.handles:
            options += ["handle", "handle"]
        if c.email:
            options.append("email")
        if c.phone:
            options.append("phone")
        if c.attributes.get("order_ids") or c.attributes.get("account_number"):
            options.append("account")
        kind = r.choice(options)
        platform = r.choice(["x", "reddit"])
        author, author_name, text, fmt = _random_handle(r, platform), None, r.choice(PLAIN), ""
        if kind == "handle":
            platform, display = r.choice(c.handles)
            core = display.removeprefix("@").removeprefix("u/")
            fmt = r.choice(["as-is", "lower", "upper"])
            core = core.lower() if fmt == "lower" else core.upper() if fmt == "upper" else core
            if platform == "x":
                author = "@" + core
            else:
                author, fmt = (("/u/" if r.random() < 0.2 else "u/") + core), fmt
            author_name = c.name if r.random() < 0.5 else None
        elif kind == "email":
            assert c.email
            evidence, fmt = _email_in_text(r, c.email.lower())
            text = wrap(evidence)
        elif kind == "phone":
            assert c.phone
            evidence, fmt = _phone_in_text(r, c.phone, _region_of(c))
            text = wrap(evidence)
        elif kind == "account":
            values = [v for v in (c.attributes.get("order_ids") or "").split(";") if v]
            if c.attributes.get("account_number"):
                values.append(c.attributes["account_number"])
            evidence, fmt = _order_in_text(r, r.choice(values))
            text = wrap(evidence)
        else:
            first, last = _split(c.name)
            if first in NICK and r.random() < 0.3:
                author_name, fmt = (
                    f"{r.choice(NICK[first]).capitalize()} {last.capitalize()}",
                    "nickname",
                )
            else:
                author_name, fmt = c.name, "exact"
        out.append(
            GenMention(platform, author, author_name, text, c.customer_id, kind, fmt, also(c))
        )
    # Decoys: must not link.
    n = max(20, len(customers) // 8)
    with_phone = [c for c in customers if c.phone]
    with_orders = [c for c in customers if c.attributes.get("order_ids")]
    with_handles = [c for c in customers if c.handles]
    for _ in range(n):
        platform = r.choice(["x", "reddit"])
        author = _random_handle(r, platform)
        kind = r.choice(
            [
                "decoy_email",
                "decoy_phone",
                "decoy_order",
                "decoy_quoted_handle",
                "decoy_numbers",
                "decoy_common_name",
                "plain",
            ]
        )
        name = None
        if kind == "decoy_email":
            text = wrap(
                f"email is {''.join(r.choices(string.ascii_lowercase, k=8))}@{r.choice(DOMAINS)}"
            )
        elif kind == "decoy_phone":
            c = r.choice(with_phone)
            evidence, _ = _phone_in_text(r, c.phone or "", _region_of(c))
            text = wrap(_off_by_one(r, evidence))
        elif kind == "decoy_order":
            c = r.choice(with_orders)
            text = wrap(
                f"order {_off_by_one(r, c.attributes['order_ids'].split(';')[0])} never arrived"
            )
        elif kind == "decoy_quoted_handle":
            c = r.choice(with_handles)
            text = f"{c.handles[0][1]} did you ever get a reply from them?"
        elif kind == "decoy_numbers":
            text = wrap(
                f"call 1-800-{r.randint(200, 999)}-{r.randint(1000, 9999)} on {date(2024, r.randint(1, 12), r.randint(1, 28))}, "
                f"paid ${r.randint(100, 2000)}.{r.randint(10, 99)}, tracking 1Z{r.randint(10**9, 10**10 - 1)}"
            )
        elif kind == "decoy_common_name":
            first, last = r.choice(COMMON_NAMES)
            name, text = f"{first.capitalize()} {last.capitalize()}", r.choice(PLAIN)
        else:
            text = r.choice(PLAIN)
        out.append(GenMention(platform, author, name, text, None, kind))
    r.shuffle(out)
    return out


def to_cards(customers: list[GenCustomer]) -> list[Any]:
    """The customers as :class:`~listenwell.store.links.CustomerCard` (pk = position + 1)."""
    from listenwell.store.links import CustomerCard
    from listenwell.store.records import normalize_handle

    cards = []
    for k, c in enumerate(customers, start=1):
        handles = tuple(
            (h.platform, h.handle) for h in (normalize_handle(p, d) for p, d in c.handles)
        )
        cards.append(
            CustomerCard(
                pk=k,
                customer_id=c.customer_id,
                name=c.name,
                email=c.email,
                phone=c.phone,
                handles=handles,
                attributes=dict(c.attributes),
            )
        )
    return cards
