"""Matching customers: normalisers, a customer index, fuzzy search and duplicate scoring.

Everything here works on :class:`~listenwell.store.links.CustomerCard` values
and does no I/O; ``store.links.customer_cards`` reads them from the database.

**Normalisers.** Names are folded to lower-case ASCII words without titles
(:func:`name_tokens`); first names are compared through a small nickname
table (``bob`` ~ ``robert``, :data:`NICKNAMES`). E-mails are lower-cased,
``+tags`` dropped, and for Gmail the dots of the local part too
(:func:`normalize_email`). Phone numbers are parsed by ``phonenumbers`` into
E.164, with the customer's ``country`` attribute or a default region for
numbers written without a country code (:func:`normalize_phone`).

**The index** (:class:`CustomerIndex`) keeps dictionaries keyed on every
normalised handle, e-mail, phone and order/account number, and lists of names
for ``rapidfuzz``, so a lookup is a dictionary hit and a fuzzy search is one
``rapidfuzz.process.extract`` call in C; 100,000 customers are fine.

**Duplicates** (:meth:`CustomerIndex.duplicates`) are found by blocking: only
customers that share a key -- an e-mail, e-mail variant, phone, order/account
number, handle skeleton, or a name key (one name token in full plus the
initial of another, in either order) -- are compared, never all pairs. A pair
scores ``1 - prod(1 - w)`` over the agreements found (weights in
:data:`DUPLICATE_WEIGHTS`), times penalties for disagreements (first names
that cannot be the same person, different phone numbers). A name agreement
weighs less for common names: both name parts common (a built-in list of very
common first names and surnames, or frequent in this customer base), or the
same name held by three or more customers, cuts its weight to about a third,
so two "John Smith" with nothing else in common are not flagged.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations, permutations
from typing import TYPE_CHECKING, Any

import numpy as np
import phonenumbers
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from listenwell.store.errors import RecordError
from listenwell.store.records import normalize_handle

if TYPE_CHECKING:
    from listenwell.store.links import CustomerCard

__all__ = [
    "COMMON_FIRST_NAMES",
    "COMMON_SURNAMES",
    "DEFAULT_ACCOUNT_FIELDS",
    "DEFAULT_DUPLICATE_SCORE",
    "DEFAULT_REGION",
    "DUPLICATE_WEIGHTS",
    "NICKNAMES",
    "CustomerIndex",
    "DuplicatePair",
    "MatchOptions",
    "NameMatch",
    "SearchHit",
    "compare_names",
    "email_key",
    "first_name_forms",
    "mask_email",
    "mask_number",
    "name_tokens",
    "normalize_account",
    "normalize_email",
    "normalize_name",
    "normalize_phone",
]

DEFAULT_REGION = "US"
"""Region assumed for phone numbers written without a country code."""

DEFAULT_DUPLICATE_SCORE = 0.6
"""Pairs scoring at least this are listed as likely duplicates."""

DEFAULT_ACCOUNT_FIELDS = (
    r"order|account|acct|invoice|ticket|booking|reservation|member|loyalty|"
    r"contract|policy|subscription|reference|serial"
)
"""Attribute keys (a case-insensitive regex) whose values are order or account numbers."""

# Keys that name dates, not numbers, even when they match the pattern above.
_DATE_KEY = re.compile(r"(?i)(since|date|_at$|_on$|time)")

DUPLICATE_WEIGHTS = {
    "same e-mail": 0.95,
    "e-mail variant": 0.75,
    "same e-mail name, other domain": 0.5,
    "same phone": 0.9,
    "same order/account number": 0.9,
    "similar handle": 0.5,
    "name": 0.7,
}
"""How much each kind of agreement between two customer records counts (``name`` is a maximum)."""

_PENALTY_FIRST_NAMES = 0.5
_PENALTY_PHONES = 0.85
_COMMON_BOTH = 0.45  # a name others are likely to share
_COMMON_ONE = 0.8  # a name others may share
_PRIOR_FIRST = 0.01  # share of people with one of COMMON_FIRST_NAMES, at least
_PRIOR_LAST = 0.005  # share of people with one of COMMON_SURNAMES, at least
_SINGLE_TOKEN = 0.5
_NAME_MIN = 0.8  # name similarity below this adds no name evidence
_TYPO_DISCOUNT = 0.9
_NAME_LIKE = 0.1  # an e-mail or handle agreement that is only the name spelled again
_FIRST_OK = 0.7  # first-name similarity from which two first names may be one person's

# ---------------------------------------------------------------------------- names

NICKNAMES: dict[str, tuple[str, ...]] = {
    "abby": ("abigail",),
    "al": ("albert", "alan", "alfred"),
    "alex": ("alexander", "alexandra"),
    "alf": ("alfred",),
    "andy": ("andrew",),
    "barb": ("barbara",),
    "becky": ("rebecca",),
    "becca": ("rebecca",),
    "bella": ("isabella", "isabel"),
    "ben": ("benjamin",),
    "benny": ("benjamin",),
    "bert": ("albert", "robert", "herbert"),
    "beth": ("elizabeth",),
    "betty": ("elizabeth",),
    "bill": ("william",),
    "billy": ("william",),
    "bob": ("robert",),
    "bobby": ("robert",),
    "cathy": ("catherine", "katherine"),
    "charlie": ("charles", "charlotte"),
    "chris": ("christopher", "christine", "christina"),
    "chuck": ("charles",),
    "dan": ("daniel",),
    "danny": ("daniel",),
    "dave": ("david",),
    "deb": ("deborah",),
    "debbie": ("deborah",),
    "dick": ("richard",),
    "dima": ("dmitri",),
    "don": ("donald",),
    "drew": ("andrew",),
    "ed": ("edward", "edwin"),
    "eddie": ("edward",),
    "ellie": ("eleanor", "elena"),
    "fran": ("francis", "frances"),
    "frank": ("francis", "franklin"),
    "fred": ("frederick", "alfred"),
    "freddie": ("frederick",),
    "greg": ("gregory",),
    "hal": ("harold", "henry"),
    "hank": ("henry",),
    "hans": ("johannes", "johann"),
    "harry": ("harold", "henry"),
    "izzy": ("isabella", "isabel"),
    "jack": ("john",),
    "jamie": ("james",),
    "jeff": ("jeffrey",),
    "jen": ("jennifer",),
    "jenny": ("jennifer",),
    "jerry": ("gerald", "jerome"),
    "jess": ("jessica",),
    "jessie": ("jessica",),
    "jim": ("james",),
    "jimmy": ("james",),
    "jo": ("joanna", "josephine", "joanne"),
    "joe": ("joseph",),
    "joey": ("joseph",),
    "johnny": ("john",),
    "jon": ("john", "jonathan"),
    "josie": ("josephine",),
    "kate": ("katherine", "catherine", "kathryn"),
    "kathy": ("katherine", "kathryn"),
    "katie": ("katherine", "catherine", "kathryn"),
    "ken": ("kenneth",),
    "kim": ("kimberly",),
    "larry": ("lawrence",),
    "len": ("leonard",),
    "leo": ("leonard", "leonardo"),
    "liam": ("william",),
    "libby": ("elizabeth",),
    "liz": ("elizabeth",),
    "lizzie": ("elizabeth",),
    "lupe": ("guadalupe",),
    "maggie": ("margaret",),
    "matt": ("matthew",),
    "meg": ("margaret",),
    "mick": ("michael",),
    "mike": ("michael",),
    "mikey": ("michael",),
    "nate": ("nathan", "nathaniel"),
    "ned": ("edward",),
    "nell": ("eleanor", "helen"),
    "nick": ("nicholas",),
    "nicky": ("nicholas",),
    "paco": ("francisco",),
    "pam": ("pamela",),
    "pat": ("patrick", "patricia"),
    "patty": ("patricia",),
    "peggy": ("margaret",),
    "pepe": ("jose",),
    "pete": ("peter",),
    "phil": ("philip", "phillip"),
    "ray": ("raymond",),
    "rich": ("richard",),
    "rick": ("richard",),
    "ricky": ("richard",),
    "rob": ("robert",),
    "robbie": ("robert",),
    "ron": ("ronald",),
    "ronnie": ("ronald",),
    "sam": ("samuel", "samantha"),
    "sammy": ("samuel",),
    "sandy": ("sandra", "alexander", "alexandra"),
    "sasha": ("alexander", "alexandra"),
    "steve": ("steven", "stephen"),
    "sue": ("susan",),
    "susie": ("susan",),
    "ted": ("edward", "theodore"),
    "teddy": ("edward", "theodore"),
    "theo": ("theodore",),
    "tim": ("timothy",),
    "tina": ("christina", "christine"),
    "tom": ("thomas",),
    "tommy": ("thomas",),
    "tony": ("anthony",),
    "tori": ("victoria",),
    "trish": ("patricia",),
    "vicky": ("victoria",),
    "vince": ("vincent",),
    "will": ("william",),
    "willy": ("william",),
    "zach": ("zachary",),
}
"""Nickname -> the full first names it is short for (a small table, English first)."""

COMMON_FIRST_NAMES = frozenset(
    """
    james john robert michael william david richard joseph thomas charles christopher
    daniel matthew anthony mark donald steven paul andrew joshua kevin brian george
    mary patricia jennifer linda elizabeth barbara susan jessica sarah karen nancy lisa
    emma olivia sophia emily anna maria jose juan carlos luis ana mohammed muhammad
    mohamed ahmed ali wei jun li min ji hans peter michel pierre marie jean
    """.split()
)
"""Very common first names (US, UK, Spain/Latin America, Germany, France, Arabic, Chinese)."""

COMMON_SURNAMES = frozenset(
    """
    smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez
    lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson
    white harris sanchez clark ramirez lewis robinson walker young allen king wright
    scott torres nguyen hill flores green adams nelson baker hall rivera campbell
    mitchell carter roberts evans turner phillips parker edwards collins stewart morris
    kim park patel singh kumar shah khan wang zhang chen liu yang huang zhao wu zhou
    muller mueller schmidt schneider fischer weber meyer wagner becker dubois bernard
    moreau rossi russo silva santos fernandez gomez diaz ivanov
    """.split()
)
"""Very common surnames (US, UK, Latin America, Germany, France, Italy, Asia)."""

_TITLES = frozenset("mr mrs ms miss mx dr prof sir dame madam jr sr ii iii iv phd md esq".split())
_NON_LETTER = re.compile(r"[^a-z\s]+")
_APOSTROPHE = re.compile(r"['\u2019`]")


def normalize_name(name: str | None) -> str:
    """Fold a name to lower-case ASCII words: accents dropped, punctuation to spaces.

    ``"Dr. José O'Neil-Smith"`` becomes ``"dr jose oneil smith"`` (titles stay
    here; :func:`name_tokens` drops them).
    """
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _APOSTROPHE.sub("", text)
    return " ".join(_NON_LETTER.sub(" ", text).split())


def name_tokens(name: str | None) -> tuple[str, ...]:
    """The words of a name, normalised, without titles such as ``Dr`` or ``Jr``."""
    return tuple(t for t in normalize_name(name).split() if t not in _TITLES)


@functools.lru_cache(maxsize=65536)
def first_name_forms(token: str) -> frozenset[str]:
    """A first name and the full names it may be short for (``bob`` -> ``{bob, robert}``)."""
    return frozenset((token, *NICKNAMES.get(token, ())))


@dataclass(frozen=True, slots=True)
class NameMatch:
    """How alike two names are.

    Attributes:
        score: 0..1; 1 for the same name.
        kinds: What was needed to match them: ``nickname``, ``initial``,
            ``typo``, ``swapped``, ``middle name`` (empty for the same name).
        first_compatible: Whether the first names can belong to one person
            (same, nickname, initial or close spelling).
    """

    score: float
    kinds: tuple[str, ...] = ()
    first_compatible: bool = False


@functools.lru_cache(maxsize=262144)
def _token_sim(a: str, b: str, *, first: bool) -> tuple[float, str | None]:
    if a == b:
        return 1.0, None
    if first and first_name_forms(a) & first_name_forms(b):
        return 0.95, "nickname"
    if len(a) == 1 or len(b) == 1:
        return (0.85, "initial") if a[0] == b[0] else (0.0, None)
    # One edit (transpositions count as one) in a five-letter name scores 0.72: a typo'd
    # name alone stays below the duplicate threshold, a typo plus any other agreement passes.
    sim = float(OSA.normalized_similarity(a, b)) * _TYPO_DISCOUNT
    return sim, "typo"


def _pair_score(sf: float, sl: float) -> float:
    return 0.0 if sf + sl == 0 else 2 * sf * sl / (sf + sl)


def compare_names(a: Sequence[str], b: Sequence[str]) -> NameMatch:
    """Compare two names given as tokens (see :func:`name_tokens`).

    The first and last tokens are compared (optimal string alignment distance
    from ``rapidfuzz`` for spelling, :data:`NICKNAMES` for first names, one-letter initials), in the
    given order and swapped; middle names are ignored when only one side has
    them. A one-word name is compared with either part of the other, at most 0.6.
    """
    a, b = tuple(a), tuple(b)
    if not a or not b:
        return NameMatch(0.0)
    if len(a) == 1 or len(b) == 1:
        short, long_ = (a, b) if len(a) == 1 else (b, a)
        best = max(_token_sim(short[0], t, first=True)[0] for t in long_)
        if len(a) == len(b) == 1:
            return NameMatch(best * 0.6, ("single name",), first_compatible=best >= 0.85)
        return NameMatch(best * 0.6, ("single name",))
    fa, la, fb, lb = a[0], a[-1], b[0], b[-1]
    sf, kf = _token_sim(fa, fb, first=True)
    sl, kl = _token_sim(la, lb, first=False)
    direct = _pair_score(sf, sl)
    sf2, kf2 = _token_sim(fa, lb, first=True)
    sl2, kl2 = _token_sim(la, fb, first=True)
    swapped = _pair_score(sf2, sl2) * 0.97
    kinds: list[str] = []
    if swapped > direct:
        score, parts = swapped, (kf2, kl2)
        kinds.append("swapped")
        first_ok = min(sf2, sl2) >= _FIRST_OK
    else:
        score, parts = direct, (kf, kl)
        first_ok = sf >= _FIRST_OK
    kinds.extend(k for k in parts if k)
    middles_a, middles_b = a[1:-1], b[1:-1]
    if middles_a or middles_b:
        if middles_a and middles_b:
            ma, mb = middles_a[0], middles_b[0]
            if ma[0] != mb[0]:
                score *= 0.85
                kinds.append("different middle name")
        else:
            kinds.append("middle name")
    return NameMatch(round(score, 4), tuple(dict.fromkeys(kinds)), first_compatible=first_ok)


# ---------------------------------------------------------------------------- e-mail

_GMAIL = frozenset({"gmail.com", "googlemail.com"})
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_OBF_AT = re.compile(r"\s*[\[\(\{<]\s*at\s*[\]\)\}>]\s*", re.IGNORECASE)
_OBF_DOT = re.compile(r"\s*[\[\(\{<]\s*dot\s*[\]\)\}>]\s*", re.IGNORECASE)


def normalize_email(email: str | None) -> str | None:
    """Normalise an e-mail address for matching, or ``None`` if it is not one.

    Lower case; ``mailto:`` and a ``+tag`` dropped; ``googlemail.com`` is
    ``gmail.com``, whose local part ignores dots. Other providers' dots are
    kept (they can be different mailboxes); see :func:`email_key`.
    """
    if not email:
        return None
    text = email.strip().lower().removeprefix("mailto:").strip("<>.,;: ")
    local, sep, domain = text.rpartition("@")
    if not sep or not local or "." not in domain or " " in text:
        return None
    local = local.split("+", 1)[0]
    if domain in _GMAIL:
        domain = "gmail.com"
        local = local.replace(".", "")
    if not local:
        return None
    return f"{local}@{domain}"


def email_key(email: str | None) -> tuple[str, str] | None:
    """``(local, domain)`` of a normalised e-mail, the local part without ``.``, ``_`` or ``-``.

    Two addresses with the same key are likely the same person (``ravi.urban``
    and ``raviurban``) even where the provider treats them as two mailboxes.
    """
    norm = normalize_email(email)
    if norm is None:
        return None
    local, _, domain = norm.rpartition("@")
    return re.sub(r"[._-]", "", local), domain


def mask_email(email: str) -> str:
    """``jane.doe@example.com`` -> ``j***e@example.com``, for evidence that leaves the CRM."""
    local, _, domain = email.rpartition("@")
    if len(local) <= 2:
        return f"{local[:1]}***@{domain}"
    return f"{local[0]}***{local[-1]}@{domain}"


def mask_number(value: str, keep: int = 4) -> str:
    """Keep only the last ``keep`` characters: ``+19195550196`` -> ``***0196``."""
    return "***" + value[-keep:] if len(value) > keep else "***"


# ---------------------------------------------------------------------------- phones


def _parse_phone(phone: str | None, region: str) -> tuple[str | None, str | None]:
    """``(e164, region of its country code)``, or ``(None, None)``."""
    if not phone or not phone.strip():
        return None, None
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None, None
    if not phonenumbers.is_possible_number(number):
        return None, None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    code = number.country_code
    return str(e164), (phonenumbers.region_code_for_country_code(code) if code else None)


def normalize_phone(phone: str | None, region: str | None = DEFAULT_REGION) -> str | None:
    """A phone number in E.164 (``+19195550196``), or ``None`` if it cannot be one.

    Parsed by ``phonenumbers``; ``region`` (ISO 3166 alpha-2) applies to numbers
    written without a country code. A number is kept if its length is
    possible for its country (fictional ranges such as 555-01xx included).
    """
    return _parse_phone(phone, (region or DEFAULT_REGION).upper())[0]


def _region_of(attributes: dict[str, Any], default: str) -> str:
    country = attributes.get("country")
    if isinstance(country, str) and country.strip().upper() in phonenumbers.SUPPORTED_REGIONS:
        return country.strip().upper()
    return default


_DIGITS_7 = re.compile(r"\d(?:\D{0,3}\d){6}")


def _phones_in(text: str, regions: Sequence[str]) -> list[tuple[str, str]]:
    """``(e164, raw)`` for every phone-number-like string in ``text``, read in each region."""
    if not _DIGITS_7.search(text):
        return []
    found: dict[str, str] = {}
    for region in regions:
        for m in phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.POSSIBLE
        ):
            e164 = str(phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164))
            found.setdefault(e164, m.raw_string)
    return list(found.items())


# ---------------------------------------------------------------------------- accounts

_ALNUM = re.compile(r"[A-Za-z0-9]+")
_DIGIT = re.compile(r"\d")
_JOINERS = frozenset({"", " ", "-", ".", "/", "#", " #", "# ", " - ", "-#"})
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def normalize_account(value: object) -> str | None:
    """An order or account number as matched: upper-case letters and digits only.

    Returns ``None`` for values too weak to be evidence: fewer than six
    characters, fewer than four digits, or a date.
    """
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    if _ISO_DATE.match(text):
        return None
    compact = "".join(_ALNUM.findall(text)).upper()
    if len(compact) < 6 or len(_DIGIT.findall(compact)) < 4:
        return None
    return compact


def _account_candidates(text: str, max_tokens: int = 4) -> dict[str, str]:
    """Every run of up to ``max_tokens`` adjacent alphanumeric tokens, compacted -> as written."""
    tokens = list(_ALNUM.finditer(text))
    out: dict[str, str] = {}
    for i, first in enumerate(tokens):
        parts = [first.group(0)]
        end = first.end()
        for j in range(i, min(i + max_tokens, len(tokens))):
            if j > i:
                gap = text[end : tokens[j].start()]
                if gap not in _JOINERS:
                    break
                parts.append(tokens[j].group(0))
                end = tokens[j].end()
            if not any(any(c.isdigit() for c in p) for p in parts):
                continue
            key = normalize_account("".join(parts))
            if key is not None:
                out.setdefault(key, text[first.start() : end])
    return out


def _account_values(attributes: dict[str, Any], pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """``(field, normalised value)`` for the order/account numbers among a customer's attributes."""
    out: list[tuple[str, str]] = []
    for key, value in attributes.items():
        if not pattern.search(str(key)) or _DATE_KEY.search(str(key)):
            continue
        values: Iterable[Any]
        if isinstance(value, list | tuple):
            values = value
        elif isinstance(value, str) and re.search(r"[;,|]", value):
            values = re.split(r"\s*[;,|]\s*", value)
        else:
            values = (value,)
        for v in values:
            norm = normalize_account(v)
            if norm is not None:
                out.append((str(key), norm))
    return out


def _handle_skeleton(handle: str) -> str | None:
    """A handle's letters only (``gus_reed_807`` -> ``gusreed``); ``None`` if under five."""
    letters = re.sub(r"[^a-z]", "", handle.lower())
    return letters if len(letters) >= 5 else None


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One customer found by :meth:`CustomerIndex.search`.

    Attributes:
        pk: The row id.
        customer_id: The brand's id.
        name: As stored.
        email: As stored.
        phone: As stored.
        handles: ``platform:handle`` strings.
        score: 0..100, how well the query matched.
        matched: Which field matched: ``name``, ``email``, ``phone``,
            ``handle``, ``customer_id`` or ``account``.
    """

    pk: int
    customer_id: str
    name: str | None
    email: str | None
    phone: str | None
    handles: tuple[str, ...]
    score: float
    matched: str

    def as_dict(self) -> dict[str, Any]:
        """The hit as plain data (``--json``)."""
        return {
            "customer_id": self.customer_id,
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "handles": list(self.handles),
            "score": round(self.score, 1),
            "matched": self.matched,
        }


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    """Two customer records that are likely the same person.

    Attributes:
        customer_id_a: The smaller ``customer_id`` of the two.
        customer_id_b: The other.
        score: 0..1.
        reasons: What agrees (and what disagrees), e.g. ``same phone``,
            ``name: nickname``, ``e-mail variant``, ``different first names``.
    """

    customer_id_a: str
    customer_id_b: str
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MatchOptions:
    """The matching settings, read from ``Settings.linking`` where it exists.

    Attributes:
        default_region: Region for phone numbers without a country code.
        duplicate_min_score: Pairs scoring at least this are listed as duplicates.
        account_fields: Regex of the attribute keys holding order/account numbers.
        name_min_score: Smallest name similarity (0..1) offered as a suggestion.
    """

    default_region: str = DEFAULT_REGION
    duplicate_min_score: float = DEFAULT_DUPLICATE_SCORE
    account_fields: str = DEFAULT_ACCOUNT_FIELDS
    name_min_score: float = 0.8

    @classmethod
    def from_settings(cls, settings: Any) -> MatchOptions:
        """Read ``settings.linking`` field by field; anything absent keeps its default."""
        section = getattr(settings, "linking", None)
        if section is None:
            return cls()
        values = {
            name: getattr(section, name)
            for name in (
                "default_region",
                "duplicate_min_score",
                "account_fields",
                "name_min_score",
            )
            if getattr(section, name, None) is not None
        }
        return cls(**values)


@dataclass(slots=True)
class _Features:
    tokens: tuple[str, ...]
    key: tuple[str, str] | None  # (first, last) for frequency counts
    email: str | None
    email_key: tuple[str, str] | None
    phone: str | None
    skeletons: frozenset[str]
    accounts: frozenset[str]
    account_fields: tuple[tuple[str, str], ...] = ()  # (attribute key, normalised value)
    phone_region: str | None = None  # the region of the phone number's country code
    common: float = 1.0  # factor applied to a name agreement (commonness)
    blocks: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- the index


class CustomerIndex:
    """Lookups, fuzzy search and duplicate detection over a set of customers.

    Args:
        customers: The customers (erased ones are skipped).
        default_region: Region for phone numbers written without a country code
            (a customer's ``country`` attribute wins for their own number).
        account_fields: Regex of the attribute keys that hold order or account numbers.
    """

    def __init__(
        self,
        customers: Iterable[CustomerCard],
        *,
        default_region: str = DEFAULT_REGION,
        account_fields: str = DEFAULT_ACCOUNT_FIELDS,
    ) -> None:
        region = default_region.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {default_region!r} (use e.g. US, GB, DE)")
        self.default_region = region
        self._account_re = re.compile(account_fields, re.IGNORECASE)
        self.cards: list[CustomerCard] = [c for c in customers if not c.erased]
        self._pos: dict[int, int] = {}
        self._by_cid: dict[str, int] = {}
        self._by_handle: dict[tuple[str, str], int] = {}
        self._by_email: dict[str, list[int]] = {}
        self._by_phone: dict[str, list[int]] = {}
        self._by_account: dict[str, list[tuple[int, str]]] = {}
        self._by_token: dict[str, list[int]] = {}
        self._features: list[_Features] = []
        self.names: list[str] = []
        self._names_canon: list[str] = []
        self._emails: list[str] = []
        self._handles: list[str] = []
        self._handle_owner: list[int] = []
        self._phones: list[str] = []
        regions: Counter[str] = Counter()
        for i, card in enumerate(self.cards):
            self._pos[card.pk] = i
            self._by_cid[card.customer_id.lower()] = i
            f = self._featurise(card)
            self._features.append(f)
            for platform, handle in card.handles:
                self._by_handle[(platform, handle)] = i
                self._handles.append(f"{platform}:{handle}")
                self._handle_owner.append(i)
            if f.email:
                self._by_email.setdefault(f.email, []).append(i)
            if f.phone:
                self._by_phone.setdefault(f.phone, []).append(i)
                regions[f.phone_region or region] += 1
            for key, value in f.account_fields:
                self._by_account.setdefault(value, []).append((i, key))
            cid = normalize_account(card.customer_id)
            if cid is not None:
                self._by_account.setdefault(cid, []).append((i, "customer_id"))
            self.names.append(" ".join(f.tokens))
            self._names_canon.append(" ".join(_canon_tokens(f.tokens)))
            self._emails.append(f.email or "")
            self._phones.append(re.sub(r"\D", "", f.phone or ""))
            for tok in set(_canon_tokens(f.tokens)):
                if len(tok) > 1:
                    self._by_token.setdefault(tok, []).append(i)
        self._handle_names = [h.split(":", 1)[1] for h in self._handles]
        self._email_locals = [e.split("@", 1)[0] for e in self._emails]
        # Regions to read phone numbers in texts: the default, then the customers' commonest.
        self.regions = tuple(
            dict.fromkeys([region, *(r for r, _ in regions.most_common(4) if r != "001")])
        )
        self._set_commonness()
        self._name_cache: dict[str, list[tuple[int, NameMatch]]] = {}

    def __len__(self) -> int:
        return len(self.cards)

    def _featurise(self, card: CustomerCard) -> _Features:
        tokens = name_tokens(card.name)
        key = (_canon_first(tokens[0]), tokens[-1]) if len(tokens) >= 2 else None
        region = _region_of(card.attributes, self.default_region)
        skeletons = {s for _, h in card.handles if (s := _handle_skeleton(h))}
        account_fields = _account_values(card.attributes, self._account_re)
        phone, phone_region = _parse_phone(card.phone, region)
        return _Features(
            tokens=tokens,
            key=key,
            email=normalize_email(card.email),
            email_key=email_key(card.email),
            phone=phone,
            skeletons=frozenset(skeletons),
            accounts=frozenset(v for _, v in account_fields),
            account_fields=tuple(account_fields),
            phone_region=phone_region,
        )

    def _set_commonness(self) -> None:
        n = max(1, len(self.cards))
        firsts: Counter[str] = Counter()
        lasts: Counter[str] = Counter()
        fulls: Counter[tuple[str, str]] = Counter()
        for f in self._features:
            if f.key is not None:
                firsts[f.key[0]] += 1
                lasts[f.key[1]] += 1
                fulls[f.key] += 1
        for f in self._features:
            if f.key is None:
                f.common = _SINGLE_TOKEN
                continue
            first, last = f.key
            forms = first_name_forms(f.tokens[0]) | {first}
            builtin_first = any(t in COMMON_FIRST_NAMES for t in forms)
            builtin_last = last in COMMON_SURNAMES
            # How many other customers would share this name by chance: N * p(first) * p(last),
            # each p the share of customers holding it besides this record and one duplicate
            # of it, or a floor for names that are common anywhere.
            p_first = max(_PRIOR_FIRST if builtin_first else 0.0, (firsts[first] - 2) / n)
            p_last = max(_PRIOR_LAST if builtin_last else 0.0, (lasts[last] - 2) / n)
            expected = n * p_first * p_last
            if (builtin_first and builtin_last) or fulls[f.key] >= 3 or expected >= 0.1:
                f.common = _COMMON_BOTH
            elif expected >= 0.02:
                f.common = _COMMON_ONE
            else:
                f.common = 1.0

    # ------------------------------------------------------------------ lookups

    def card(self, pk: int) -> CustomerCard | None:
        """The customer with row id ``pk``, if indexed."""
        i = self._pos.get(pk)
        return None if i is None else self.cards[i]

    def by_customer_id(self, customer_id: str) -> CustomerCard | None:
        """The customer with this ``customer_id`` (case-insensitive), if indexed."""
        i = self._by_cid.get(customer_id.strip().lower())
        return None if i is None else self.cards[i]

    def find_handle(self, platform: str, handle: str) -> CustomerCard | None:
        """The owner of a handle on a platform (``x``, ``reddit``, ...), if any.

        ``handle`` may be given as written (``@JDoe``, ``u/jdoe``, ``/u/JDoe``);
        it is normalised like stored handles.
        """
        try:
            h = normalize_handle(platform, handle)
        except RecordError:  # an invalid handle is nobody's
            return None
        i = self._by_handle.get((h.platform, h.handle))
        return None if i is None else self.cards[i]

    def emails_in(self, text: str) -> list[tuple[CustomerCard, str]]:
        """Customers whose e-mail appears in ``text``: ``(customer, normalised e-mail)``.

        Also reads ``name [at] host [dot] com`` style obfuscation.
        """
        obfuscated = _OBF_AT.search(text) is not None
        if "@" not in text and not obfuscated:
            return []
        found: list[tuple[CustomerCard, str]] = []
        seen: set[str] = set()
        variants = [text]
        if obfuscated:
            variants.append(_OBF_DOT.sub(".", _OBF_AT.sub("@", text)))
        for variant in variants:
            for m in _EMAIL.finditer(variant):
                norm = normalize_email(m.group(0))
                if norm is None or norm in seen:
                    continue
                seen.add(norm)
                found.extend((self.cards[i], norm) for i in self._by_email.get(norm, ()))
        return found

    def phones_in(self, text: str) -> list[tuple[CustomerCard, str]]:
        """Customers whose phone number appears in ``text`` in any formatting: ``(customer, e164)``.

        Numbers without a country code are read in :attr:`regions` (the
        default region, then the customers' most common ones).
        """
        if not self._by_phone:
            return []
        return [
            (self.cards[i], e164)
            for e164, _raw in _phones_in(text, self.regions)
            for i in self._by_phone.get(e164, ())
        ]

    def accounts_in(self, text: str) -> list[tuple[CustomerCard, str, str]]:
        """Customers whose order or account number is in ``text``: ``(customer, field, value)``.

        Numbers match whatever their separators (``A-10023-77``, ``a 1002377``).
        """
        if not self._by_account:
            return []
        out = []
        for key in _account_candidates(text):
            for i, field_name in self._by_account.get(key, ()):
                out.append((self.cards[i], field_name, key))
        return out

    def name_matches(
        self, name: str | None, *, min_score: float = 0.8, limit: int = 3
    ) -> list[tuple[CustomerCard, NameMatch, float]]:
        """Customers whose name is like ``name``: ``(customer, match, weight)``, best first.

        ``weight`` is the match's score times the name's commonness factor (a
        common name weighs less). Only customers sharing a name token (or its
        nickname forms) with ``name`` are compared.
        """
        tokens = name_tokens(name)
        if not tokens:
            return []
        cache_key = " ".join(tokens)
        hits = self._name_cache.get(cache_key)
        if hits is None:
            hits = self._name_candidates(tokens)
            if len(self._name_cache) > 50_000:
                self._name_cache.clear()
            self._name_cache[cache_key] = hits
        out = [
            (self.cards[i], m, round(m.score * self._features[i].common, 4))
            for i, m in hits
            if m.score >= min_score
        ]
        out.sort(key=lambda h: (-h[2], h[0].customer_id))
        return out[:limit]

    def name_agreement(self, pk: int, name: str | None) -> tuple[NameMatch, float] | None:
        """How ``name`` compares with customer ``pk``'s name: ``(match, weight)``.

        ``weight`` is the match's score times the name's commonness factor, as in
        :meth:`name_matches`; ``None`` when the customer is not indexed.
        """
        i = self._pos.get(pk)
        if i is None:
            return None
        m = compare_names(name_tokens(name), self._features[i].tokens)
        return m, round(m.score * self._features[i].common, 4)

    def _name_candidates(self, tokens: tuple[str, ...]) -> list[tuple[int, NameMatch]]:
        pool: set[int] = set()
        for tok in _canon_tokens(tokens):
            if len(tok) > 1:
                pool.update(self._by_token.get(tok, ()))
        for tok in tokens:
            for form in first_name_forms(tok):
                pool.update(self._by_token.get(_canon_first(form), ()))
        if not pool:
            return []
        ids = list(pool)
        query = " ".join(tokens)
        rough = process.extract(
            query,
            [self.names[i] for i in ids],
            scorer=fuzz.token_sort_ratio,
            score_cutoff=60,
            limit=25,
        )
        canon_query = " ".join(_canon_tokens(tokens))
        rough_canon = process.extract(
            canon_query,
            [self._names_canon[i] for i in ids],
            scorer=fuzz.token_sort_ratio,
            score_cutoff=60,
            limit=25,
        )
        picked = {ids[k] for _, _, k in (*rough, *rough_canon)}
        out = []
        for i in picked:
            m = compare_names(tokens, self._features[i].tokens)
            if m.score > 0:
                out.append((i, m))
        return out

    # ------------------------------------------------------------------ search

    def search(self, query: str, *, limit: int = 10) -> list[SearchHit]:
        """Find customers by approximate name, e-mail, phone, handle or id.

        What the query looks like decides where to look first: an ``@`` with a
        dot after it is an e-mail, a leading ``@`` or ``u/`` a handle, mostly
        digits a phone (or order) number; anything else is a name (nicknames
        and swapped order understood). Exact hits on id, e-mail, phone,
        handle or account number score 100.

        Args:
            query: What the user typed, e.g. ``"jon smth"``.
            limit: At most this many hits.

        Returns:
            Hits, best first (ties by ``customer_id``).
        """
        q = query.strip()
        if not q or limit < 1:
            return []
        best: dict[int, tuple[float, str]] = {}

        def hit(i: int, score: float, matched: str) -> None:
            if score > best.get(i, (-1.0, ""))[0]:
                best[i] = (float(score), matched)

        i = self._by_cid.get(q.lower())
        if i is not None:
            hit(i, 100, "customer_id")
        digits = re.sub(r"\D", "", q)
        email = normalize_email(q) if "@" in q[1:] else None
        if email is not None:
            for i in self._by_email.get(email, ()):
                hit(i, 100, "email")
            for _, score, i in process.extract(
                email, self._emails, scorer=fuzz.ratio, score_cutoff=70, limit=limit
            ):
                hit(i, score, "email")
        elif q.startswith(("@", "u/", "/u/")) or re.match(r"^[a-z]+:\S+$", q, re.IGNORECASE):
            plat, sep, rest = q.partition(":")
            handle = (rest if sep else q).lower()
            handle = re.sub(r"^(@|/?u/)", "", handle)
            for _, score, k in process.extract(
                handle,
                self._handle_names,
                scorer=fuzz.ratio,
                score_cutoff=70,
                limit=limit,
            ):
                hit(self._handle_owner[k], score, "handle")
        elif len(digits) >= 6 and len(digits) >= 0.6 * len(re.sub(r"\s", "", q)):
            phone = normalize_phone(q, self.default_region)
            for i in self._by_phone.get(phone or "", ()):
                hit(i, 100, "phone")
            account = normalize_account(q)
            for i, _ in self._by_account.get(account or "", ()):
                hit(i, 100, "account")
            for _, score, i in process.extract(
                digits, self._phones, scorer=fuzz.partial_ratio, score_cutoff=85, limit=limit
            ):
                hit(i, score * 0.95, "phone")
        else:
            tokens = name_tokens(q)
            if tokens:
                for names, text in (
                    (self.names, " ".join(tokens)),
                    (self._names_canon, " ".join(_canon_tokens(tokens))),
                ):
                    for _, score, i in process.extract(
                        text, names, scorer=fuzz.token_sort_ratio, score_cutoff=60, limit=limit
                    ):
                        hit(i, score, "name")
            for _, score, k in process.extract(
                q.lower(),
                self._handle_names,
                scorer=fuzz.ratio,
                score_cutoff=80,
                limit=limit,
            ):
                hit(self._handle_owner[k], score * 0.95, "handle")
            for _, score, i in process.extract(
                q.lower(),
                self._email_locals,
                scorer=fuzz.ratio,
                score_cutoff=80,
                limit=limit,
            ):
                hit(i, score * 0.95, "email")
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], self.cards[kv[0]].customer_id))
        return [self._hit(i, score, matched) for i, (score, matched) in ranked[:limit]]

    def _hit(self, i: int, score: float, matched: str) -> SearchHit:
        c = self.cards[i]
        return SearchHit(
            pk=c.pk,
            customer_id=c.customer_id,
            name=c.name,
            email=c.email,
            phone=c.phone,
            handles=tuple(f"{p}:{h}" for p, h in c.handles),
            score=score,
            matched=matched,
        )

    # ------------------------------------------------------------------ duplicates

    def compare(self, pk_a: int, pk_b: int) -> DuplicatePair:
        """Score two customers as duplicates, with the reasons (whatever the score).

        Raises:
            KeyError: A customer is not in the index.
        """
        return self._pair(self._pos[pk_a], self._pos[pk_b])

    def _pair(self, i: int, j: int) -> DuplicatePair:
        a, b = self._features[i], self._features[j]
        weights: list[float] = []
        reasons: list[str] = []

        def agree(reason: str, weight: float | None = None) -> None:
            weights.append(DUPLICATE_WEIGHTS[reason] if weight is None else weight)
            reasons.append(reason)

        def agree_derived(reason: str, text: str, tokens: tuple[str, ...]) -> None:
            # "john.smith@a" and "john.smith@b" (or @JohnSmith12 and u/john_smith_7) are what
            # any two John Smiths would have: made of the name, they add little to it.
            if _made_of(text, tokens):
                agree(f"{reason} (name-like)", _NAME_LIKE)
            else:
                agree(reason)

        tokens = (*a.tokens, *b.tokens)
        if a.email and b.email:
            local = a.email_key[0] if a.email_key else ""
            if a.email == b.email:
                agree("same e-mail")
            elif a.email_key == b.email_key:
                agree_derived("e-mail variant", local, tokens)
            elif (
                a.email_key
                and b.email_key
                and a.email_key[0] == b.email_key[0]
                and len(a.email_key[0]) >= 5
            ):
                agree_derived("same e-mail name, other domain", local, tokens)
        if a.phone and b.phone and a.phone == b.phone:
            agree("same phone")
        if a.accounts & b.accounts:
            agree("same order/account number")
        shared = a.skeletons & b.skeletons
        if shared:
            agree_derived("similar handle", min(shared), tokens)
        name = compare_names(a.tokens, b.tokens)
        if name.score >= _NAME_MIN:
            factor = min(a.common, b.common)
            what = ", ".join(name.kinds) if name.kinds else "same"
            if a.key is None or b.key is None:
                what += ", one word"
            elif factor < 1.0:
                what += ", common name"
            weights.append(DUPLICATE_WEIGHTS["name"] * name.score * factor)
            reasons.append(f"name: {what}")
        score = 1.0
        for w in weights:
            score *= 1.0 - w
        score = 1.0 - score if weights else 0.0
        if a.key and b.key and not name.first_compatible and name.score < _NAME_MIN:
            score *= _PENALTY_FIRST_NAMES
            reasons.append("different first names")
        if a.phone and b.phone and a.phone != b.phone:
            score *= _PENALTY_PHONES
            reasons.append("different phones")
        ca, cb = self.cards[i], self.cards[j]
        if cb.customer_id < ca.customer_id:
            ca, cb = cb, ca
        return DuplicatePair(ca.customer_id, cb.customer_id, round(score, 4), tuple(reasons))

    def _blocks(self) -> dict[str, list[int]]:
        blocks: dict[str, list[int]] = {}
        for i, f in enumerate(self._features):
            keys: set[str] = set()
            if f.email:
                keys.add("e:" + f.email)
            if f.email_key:
                keys.add("k:" + "@".join(f.email_key))
                if len(f.email_key[0]) >= 5:
                    keys.add("l:" + f.email_key[0])
            if f.phone:
                keys.add("p:" + f.phone)
            keys.update("a:" + v for v in f.accounts)
            keys.update("h:" + s for s in f.skeletons)
            keys.update(_name_keys(f.tokens))
            for key in keys:
                blocks.setdefault(key, []).append(i)
        return {k: v for k, v in blocks.items() if len(v) > 1}

    def duplicates(
        self,
        min_score: float = DEFAULT_DUPLICATE_SCORE,
        *,
        max_block: int = 2000,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[DuplicatePair]:
        """Pairs of customers that are likely the same person, best first.

        Only customers sharing a blocking key are compared (see the module
        docstring); a name block of more than ``max_block`` customers is
        skipped, and within a name block only pairs whose names look alike are
        scored (``rapidfuzz`` token-sort ratio of 80 or more on first and last
        name, nicknames folded; or the same initial and surname where one side
        gives only an initial).

        Args:
            min_score: Smallest score listed (0..1).
            max_block: Largest name block compared.
            on_progress: Called now and then with ``(steps done, steps)``: the
                blocks first, then the candidate pairs scored (the total grows
                once the blocks are done).

        Returns:
            The pairs scoring at least ``min_score``, by score then ids.
        """
        blocks = self._blocks()
        candidates: set[tuple[int, int]] = set()
        total = len(blocks)
        for done, (key, members) in enumerate(blocks.items(), start=1):
            if key.startswith("n:"):
                if len(members) > max_block:
                    continue
                candidates.update(self._similar_names(members))
            else:
                candidates.update(combinations(sorted(members), 2))
            if on_progress is not None and (done % 1000 == 0 or done == total):
                on_progress(done, total)
        out = []
        for n, (i, j) in enumerate(candidates, start=1):
            pair = self._pair(i, j)
            if pair.score >= min_score:
                out.append(pair)
            if on_progress is not None and (n % 10_000 == 0 or n == len(candidates)):
                on_progress(total + n, total + len(candidates))
        out.sort(key=lambda p: (-p.score, p.customer_id_a, p.customer_id_b))
        return out

    def _similar_names(self, members: list[int]) -> Iterable[tuple[int, int]]:
        """Pairs of a name block worth scoring: names alike, or alike once initialled."""
        members = sorted(members)
        if len(members) == 2:
            return [(members[0], members[1])]
        cores = [_core(self._features[i].tokens) for i in members]
        full = [" ".join(c) for c in cores]
        initialled = [f"{c[0][:1]} {c[-1]}" if c else "" for c in cores]
        has_initial = np.array([bool(c) and len(c[0]) == 1 for c in cores])
        alike = process.cdist(full, full, scorer=fuzz.token_sort_ratio, score_cutoff=80) > 0
        if has_initial.any():
            same_initials = (
                process.cdist(initialled, initialled, scorer=fuzz.ratio, score_cutoff=90) > 0
            )
            alike |= same_initials & (has_initial[:, None] | has_initial[None, :])
        return [(members[x], members[y]) for x, y in zip(*alike.nonzero(), strict=True) if x < y]


def _made_of(text: str, tokens: Sequence[str]) -> bool:
    """Whether ``text``'s letters are the name tokens (or their initials) and little else.

    A token may be cut short (handles have a length limit): its longest prefix
    of three or more letters found in ``text`` counts.
    """
    rest = re.sub(r"[^a-z]", "", text.lower())
    for tok in sorted(set(tokens), key=len, reverse=True):
        for end in range(len(tok), 2, -1):
            if tok[:end] in rest:
                rest = rest.replace(tok[:end], "", 1)
                break
    return len(rest) <= 2


def _canon_first(token: str) -> str:
    """One canonical form of a first name: the first full name a nickname stands for."""
    full = NICKNAMES.get(token)
    return full[0] if full else token


def _core(tokens: Sequence[str]) -> tuple[str, ...]:
    """First (canonical) and last name only: middle names do not decide a block's pairs."""
    if len(tokens) < 2:
        return tuple(tokens)
    return (_canon_first(tokens[0]), tokens[-1])


def _canon_tokens(tokens: Sequence[str]) -> tuple[str, ...]:
    if not tokens:
        return ()
    return (_canon_first(tokens[0]), *tokens[1:])


def _name_keys(tokens: tuple[str, ...]) -> set[str]:
    """Blocking keys: one token in full (nickname forms too) plus the initial of another."""
    keys: set[str] = set()
    if len(tokens) < 2:
        return keys
    core = (tokens[0], tokens[-1])
    for x, y in permutations(core, 2):
        if len(x) < 2:
            continue
        forms = first_name_forms(x) if x == core[0] else frozenset((x,))
        initials = {y[0]} | {f[0] for f in first_name_forms(y)} if y == core[0] else {y[0]}
        for form in forms:
            for initial in initials:
                keys.add(f"n:{form}|{initial}")
    return keys
