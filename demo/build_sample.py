"""Build the pseudonymised demo data set shipped in ``listenwell.demo``.

Reads the IBM Twitter customer-care conversations (Apache-2.0) from the shared data folder and
writes three files under ``demo/data/``:

* ``mentions.jsonl``: every tweet of every conversation, pseudonymised, one JSON object a line;
* ``customers.csv``: a synthetic customer list, part of which owns handles seen in the mentions;
* ``brand.json``: a suggested demo brand (Rockstar Games) with its competitors and keywords.

Run from the repository root (standard library only)::

    python demo/build_sample.py --shared ../shared

The output is deterministic: every random choice comes from a ``random.Random`` seeded from
``SEED`` and a purpose name, and every input is processed in a fixed order. The mapping from real
handles to pseudonyms lives in memory only and is never written. ``demo/SOURCE.md`` documents the
rules applied here; keep it in step when a rule changes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

SEED = 20200401
SOURCE_SUBDIR = Path("data") / "ibm-twitter-customer-care"
SOURCE_FILES = ("dev.json", "test.json")
# Digests of the files the rules below were reviewed against; another version still builds, with
# a warning, because the manual review (REVIEWED_TOKENS) may then miss something.
SOURCE_SHA256 = {
    "dev.json": "5d42ec6f900d81c6e803e4bd7b1f4a07697fed96ed61792d5ced72f634c348dc",
    "test.json": "1f80246bea00339a4e742ec98e81da0d86e4ce8a940bb492a3d42844b1635364",
}
FIRST_NEW_ID = 1_300_000_000_000_000_000
TWITTER_EPOCH_MS = 1_288_834_974_657
REDACTED_URL = "https://example.com/redacted"

# The 25 brand support accounts of the data set, with display names. Corporate accounts, kept.
COMPANY_ACCOUNTS: dict[str, str] = {
    "AdobeCare": "Adobe Care",
    "AmazonHelp": "Amazon Help",
    "AppleSupport": "Apple Support",
    "AskPlayStation": "Ask PlayStation",
    "Ask_Spectrum": "Ask Spectrum",
    "Ask_WellsFargo": "Wells Fargo",
    "AskeBay": "Ask eBay",
    "ChaseSupport": "Chase Support",
    "Delta": "Delta",
    "DropboxSupport": "Dropbox Support",
    "GoDaddyHelp": "GoDaddy Help",
    "Google": "Google",
    "HPSupport": "HP Support",
    "MicrosoftHelps": "Microsoft Helps",
    "MojangSupport": "Mojang Support",
    "RockstarSupport": "Rockstar Support",
    "SouthwestAir": "Southwest Airlines",
    "SpotifyCares": "Spotify Cares",
    "TMobileHelp": "T-Mobile Help",
    "TeamYouTube": "TeamYouTube",
    "Uber_Support": "Uber Support",
    "XboxSupport": "Xbox Support",
    "YahooCare": "Yahoo Customer Care",
    "hulu_support": "Hulu Support",
    "zoom_us": "Zoom",
}

# Other organisations' accounts that appear as authors or @mentions (lower case). Every handle
# not listed here or above is treated as a person and pseudonymised, public figures included:
# a missed company only gets a pseudonym, a missed person would leak.
OTHER_ORG_ACCOUNTS = frozenset(
    """
    30for30 acccgovau adobe adobeae adobepremiere adobestock affinitybyserif amazon amazonin
    apple archerfxx att attorneygeneral baliawear bbb_us bbcworld beatsbydre behance
    captureonepro chase chaseforbiz citibank clawstnt cnn costcoaus cr_uk creativecloud
    cyberpowerpc delta disneyplus dojph dropbox dropboxbusiness ebay ebay_uk ebaynewsroom
    espnplushelp facebook fbidallas fortnitegame getspectrum gmail godaddy google googlechrome
    googleindia googlesupport googleuk hemgaranti24 hotmail hp hpindia hulu illustrator indesign
    instagram itunes jetblue lightroom lysol micromax_mobile microsoft minecraft mlbtheshow mojang
    mojangstatus nbc30rock netflix nzxt oann offerup paypal photoshop playstation pncbank
    pncbank_help primevideo primevideoin rockstargames samsungindia socialblade sprint spotify
    spotifyartists spotifyuk spotifyusa teamyoutub tmobile tunecore uber verizon verizonsupport
    vogmask vp walmart wawa wellsfargo wfassetmgmt windows windowsind wwe xiaomi yahoo yahoomail
    youtube youtubeindia youtubetv ytcreators ytcreatorsde ytcreatorsindia zelle
    """.split()
)
ORG_ACCOUNTS = frozenset(h.lower() for h in COMPANY_ACCOUNTS) | OTHER_ORG_ACCOUNTS

# Hosts whose links a customer may post and that we keep (news, product and help pages). Any
# other host in a customer's tweet is redacted: it is too often their own site, channel or shop.
CUSTOMER_URL_HOSTS = frozenset(
    """
    app.com blog.aboutamazon.com blog.dropbox.com blog.zoom.us classic.minecraft.net dropbox.com
    locator.chase.com medium.com minecraft.net mojang.com quill.com rawstory.com sbcglobal.net
    secureserver.net store.hp.com t-mobile.com t-mobiletuesdays.com vice.com
    """.split()
)
# Links that point at a person wherever they appear (profiles, channels, videos, listings).
PERSONAL_URL = re.compile(
    r"(?ix)(youtube\.com/(?!error\b)|youtu\.be/|ebay\.[a-z.]+/(usr|itm|ulk)/|ebay\.us/|patreon\.com"
    r"|soundcloud\.com|twitter\.com/|instagram\.com/|facebook\.com/(?!help)|twitch\.tv/"
    r"|d\.pr/|urlscan\.io/screenshots)"
)

# Words after a greeting that are not names ("Hi there", "Thanks, Rockstar").
NOT_NAMES = frozenset(
    """
    Account Additionally Again All Also And Apologies App Apple Are Arg Artists Beats Can Chrome
    Correct Customer Customers Dear Effects Enter Everyone Fargo Firefox Folks For Friend Friends
    From Gamertag Glad Google Gotcha Great Hallo Happy Have Hello Here Hey Hi Hmm Hope How If
    India Internet Jr Just Let Library Mac Mail Message Microsoft Minecraft Mojang Music Now OK
    Office Ok Okay Only Options Orville Please Premiere Pro Problem Rockstar Saturdays Services So
    Sorry Studio Support Team Thank Thanks That The Then There Therefore These This Touch Tweet
    Tweeting Twitter Unfortunately Welcome What When Where Which While Windows With Yes Yikes You
    Your Zoom
    """.split()
)

# Tokens found in a manual review of this data that the generic rules below miss: customers' real
# names typed in full (signatures, "call me" notes, a third person named) and game ids given
# without a "gamertag is" cue. Listed as salted SHA-256 prefixes (see _review_digest) so that the
# script does not itself carry the personal data. The value is the kind of stand-in: a generated
# first or last name, the author's own pseudonymous first or last name, or a generated id.
REVIEW_SALT = "listenwell-demo-review"
REVIEWED_TOKENS: dict[str, str] = {
    "baf48817e34ee0db": "own_first",
    "b9347fbc2a9d6b85": "own_last",
    "e1db565108b85786": "own_last",
    "7d339ed81b0f97d6": "first",
    "2dcb3078fb8fa9bf": "own_first",
    "b231b1f0b2017a27": "own_first",
    "52907079e89e9431": "own_first",
    "9bea918b62462dc8": "first",
    "b11f7f57ce6aca16": "id",
    "65a6f7cbc9dbc0e5": "id",
    "ebd693c6a51317b6": "id",
    "974f6f0ef9e78142": "id",
    "22612c4f2c068ffb": "id",
}

FIRST_NAMES = """
    Nora Liam Priya Mateo Aisha Jonas Mei Omar Elena Kofi Ines Ravi Sofia Tomas Yuki Amara Felix
    Leila Noah Chloe Diego Hana Idris Julia Kenji Lucia Malik Nadia Oscar Petra Quinn Rosa Samir
    Tara Uma Wanda Xavi Yara Zane Alma Bruno Carla Dev Emil Farah Gia Hugo Iris Jasper Kira Luca
    Maya Nico Olga Pablo Rhea Sven Tess Ayo Leo Anya Eli Ruth Theo Vera Wes Zoe Arjun Beth Cyrus
    Dina Ezra Fern Gus Ivy Jude Kai Lena Milo
""".split()
SURNAMES = """
    Vale Brook Marsh Stone Hale Wren Fields Ashby Birch Cole Dale Frost Glen Heath Lake Moss North
    Park Reed Shaw Thorne Vance West York Quill Rowan Sage Lowe Pike Hart Ford Blake Carver Dunn
    Ellis Finch Gray Hayes Ives Kerr Lark Mercer Nash Oakes Pryor Rhodes Sloan Tate Voss Wilde
    Banks Crane Drake Faye Gale Holt Keene Lane Mays Noble Price Rivers Steele Torres Urban Wolfe
    Yates Bloom Cruz Dias Endo Fox Gomez Haas Jain Kato Lund Mori Nair Okafor Patel Rossi Silva
    Tan Ueda Varga Weber Zhou
""".split()

URL_RE = re.compile(r"(?i)\b(?:https?:\s?//|www\.)[^\s<>\"]+")
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9_]+)")
PHONE_RE = re.compile(r"(?<![\w+])(?:\+?1[\s.-]?)?\(?(\d{3})\)?[\s.-]?\d{3}[\s.-]\d{4}(?!\w)")
TOLL_FREE = frozenset({"800", "833", "844", "855", "866", "877", "888"})
LONG_DIGITS_RE = re.compile(r"(?<![\w.,])\+?\d{7,}(?!\w|[.,]\d)")
PHONE_CONTEXT_RE = re.compile(r"(?i)(phone|call|cell|mobile|reached|whatsapp|line|tel)\W")
MY_NAME_RE = re.compile(
    r"(?i:\bmy name is|\baccount name\s*:)\s*([A-Z][\w'-]*(?:[ \t]+[A-Z][\w'-]*)?)"
)
GAME_ID_RE = re.compile(
    r"(?i:\b(?:gamer\s?tag|gt|psn(?:\s+id)?|online\s+id|my\s+id|ign)\s*(?:is|:|=)\s*)"
    r"([A-Za-z0-9][\w-]{2,})"
)
# How replies address a person by first name: "Hi Leslie", "Hey again Leslie!", "@x Hannah, we
# are...", "Thanks for the feedback, Faith, and", "Congrats on the sale Craig!".
NAME = r"([A-Z][a-z]+)"
GREETING_NAME_RE = re.compile(
    r"\b(?:Hi|Hey|Hello|Howdy|Hiya|Greetings|Thanks|Thank you|Sorry|Good (?:morning|afternoon"
    rf"|evening|day))(?:,?\s+(?:again|there))?,?\s+{NAME}\b(?![-'’])"
)
LEADING_NAME_RE = re.compile(rf"^(?:\.?@\w+\s+)+{NAME}(?=,|\s+-\s|!)")
VOCATIVE_NAME_RE = re.compile(rf",\s+{NAME}(?: Jr)?(?=[!?.,]|\s+(?:and|but|we)\b)")
TRAILING_NAME_RE = re.compile(rf"(?<=[a-z] ){NAME}(?: Jr)?(?=[!.](?:\s|$))")
TOKEN_RE = re.compile(r"\b[\w-]+\b")


@dataclass(frozen=True)
class Pseudonym:
    """A generated stand-in identity for one real person handle."""

    first: str
    last: str
    number: int

    @property
    def handle(self) -> str:
        """The pseudonymous handle with its leading ``@``, e.g. ``@NoraVale31``."""
        return f"@{self.first}{self.last}{self.number}"

    @property
    def name(self) -> str:
        """The matching display name, e.g. ``Nora Vale``."""
        return f"{self.first} {self.last}"


@dataclass
class Turn:
    """One tweet of a conversation as read from the source, before scrubbing."""

    tweet_id: str
    created_at: datetime
    author: str
    text: str
    in_reply_to: str | None
    conversation: int
    is_org: bool


@dataclass
class Scrubber:
    """Pseudonymises tweet texts; holds the consistent replacement tables in memory only."""

    pseudonyms: dict[str, Pseudonym]
    reviewed: dict[str, str]
    rng: random.Random
    emails: dict[str, str] = field(default_factory=dict)
    phones: dict[str, str] = field(default_factory=dict)
    digits: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    _bare_re: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        """Compile the pattern for person handles written without their ``@``."""
        long_handles = sorted((h for h in self.pseudonyms if len(h) >= 5), key=len, reverse=True)
        if long_handles:
            alternation = "|".join(re.escape(h) for h in long_handles)
            self._bare_re = re.compile(rf"(?i)(?<![\w@/.])(?:{alternation})(?!\w)")

    def scrub(self, text: str, *, author: str, is_org: bool, names: dict[str, str]) -> str:
        """Return ``text`` with personal data replaced.

        Args:
            text: The tweet text as published.
            author: The real handle of the tweet's author (without ``@``).
            is_org: Whether the author is an organisation (its links are kept unless personal).
            names: Real first names used in this conversation mapped to pseudonymous ones.

        Returns:
            The scrubbed text. Links are judged whole; everything else is scrubbed piecewise.
        """
        parts: list[str] = []
        last = 0
        for match in URL_RE.finditer(text):
            url, tail = _split_trailing_punctuation(match.group(0))
            parts.append(self._scrub_plain(text[last : match.start()], author, is_org, names))
            parts.append(url if _keep_url(url, is_org=is_org) else REDACTED_URL)
            parts.append(tail)
            last = match.end()
        parts.append(self._scrub_plain(text[last:], author, is_org, names))
        return "".join(parts)

    def _scrub_plain(self, text: str, author: str, is_org: bool, names: dict[str, str]) -> str:
        """Scrub a stretch of text that holds no link."""
        own = self.pseudonyms.get(author.lower())
        text = EMAIL_RE.sub(lambda m: self._email(m.group(0), is_org), text)
        text = MENTION_RE.sub(self._mention, text)
        if self._bare_re is not None:
            text = self._bare_re.sub(lambda m: self.pseudonyms[m.group(0).lower()].handle[1:], text)
        text = PHONE_RE.sub(self._phone, text)
        text = LONG_DIGITS_RE.sub(self._long_digits, text)
        if own is not None:
            text = MY_NAME_RE.sub(lambda m: _replace_group(m, own.name), text)
            text = GAME_ID_RE.sub(lambda m: _replace_group(m, own.handle[1:]), text)
        for real, fake in names.items():
            text = re.sub(rf"\b{re.escape(real)}\b(?![-'’])", fake, text)
        return TOKEN_RE.sub(lambda m: self._reviewed_token(m.group(0), own), text)

    def _email(self, address: str, is_org: bool) -> str:
        """Map an e-mail address to a consistent one under example.com."""
        key = address.lower()
        if key not in self.emails:
            # An organisation's role address (abuse@, reportphish@) keeps its local part.
            local = key.split("@")[0] if is_org else f"user{len(self.emails) + 1:03d}"
            self.emails[key] = f"{local}@example.com"
        return self.emails[key]

    def _mention(self, match: re.Match[str]) -> str:
        """Replace an @mention of a person; keep organisations' handles as written."""
        handle = match.group(1)
        pseudonym = self.pseudonyms.get(handle.lower())
        return pseudonym.handle if pseudonym is not None else match.group(0)

    def _phone(self, match: re.Match[str]) -> str:
        """Replace a formatted phone number unless it is a toll-free company line."""
        if match.group(1) in TOLL_FREE:
            return match.group(0)
        return self._fictional_phone(re.sub(r"\D", "", match.group(0)))

    def _fictional_phone(self, digits: str) -> str:
        """Return a consistent number from the fictional +1-555-01xx range."""
        if digits not in self.phones:
            self.phones[digits] = f"+1-555-01{len(self.phones) % 100:02d}"
        return self.phones[digits]

    def _long_digits(self, match: re.Match[str]) -> str:
        """Replace an order, account or phone number written as a bare run of digits."""
        raw = match.group(0)
        before = match.string[max(0, match.start() - 60) : match.start()]
        if PHONE_CONTEXT_RE.search(before) and len(raw.lstrip("+")) >= 9:
            return self._fictional_phone(raw)
        if raw not in self.digits:
            fake = raw
            while fake == raw or fake in self.digits.values():
                body = "".join(self.rng.choice("0123456789") for _ in raw.lstrip("+"))
                fake = ("+" if raw.startswith("+") else "") + body
            self.digits[raw] = fake
        return self.digits[raw]

    def _reviewed_token(self, token: str, own: Pseudonym | None) -> str:
        """Replace a token found in the manual review by a stand-in.

        ``own_first`` and ``own_last`` tokens are the author's own name and become the author's
        pseudonymous name; the other kinds get a consistent generated name or id.
        """
        kind = self.reviewed.get(_review_digest(token))
        if kind is None:
            return token
        if kind == "own_first" and own is not None:
            return own.first
        if kind == "own_last" and own is not None:
            return own.last
        if token not in self.tokens:
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(SURNAMES)
            self.tokens[token] = {
                "first": first,
                "own_first": first,
                "last": last,
                "own_last": last,
            }.get(kind, f"{first.lower()}{last.lower()}{self.rng.randint(10, 999)}")
        return self.tokens[token]


def _review_digest(token: str) -> str:
    """Return the salted digest prefix under which a reviewed token is listed."""
    return hashlib.sha256(f"{REVIEW_SALT}:{token}".encode()).hexdigest()[:16]


def _replace_group(match: re.Match[str], replacement: str) -> str:
    """Return the whole match with its first group replaced."""
    start, end = match.span(1)
    whole = match.group(0)
    offset = match.start(0)
    return whole[: start - offset] + replacement + whole[end - offset :]


def _split_trailing_punctuation(url: str) -> tuple[str, str]:
    """Split sentence punctuation glued to the end of a link off it."""
    stripped = url.rstrip(".,;:!?)]'’”")
    return stripped, url[len(stripped) :]


def _url_host(url: str) -> str:
    """Return the lower-case host of a link, looking through web.archive.org wrappers."""
    url = re.sub(r"(?i)^https?:\s?//web\.archive\.org/web/\d+[a-z_]*/", "", url)
    url = re.sub(r"(?i)^(?:https?:\s?//)?", "", url)
    host = url.split("/")[0].split("?")[0].split(":")[0].lower()
    return host.removeprefix("www.")


def _keep_url(url: str, *, is_org: bool) -> bool:
    """Decide whether a link stays in the text or becomes the redaction placeholder."""
    if PERSONAL_URL.search(url):
        return False
    if is_org:
        return True
    host = _url_host(url)
    return any(host == h or host.endswith("." + h) for h in CUSTOMER_URL_HOSTS)


def _parse_time(value: str) -> datetime:
    """Parse the source's ``2020-04-01T17:31:32.000Z`` timestamps."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _snowflake_time(tweet_id: str) -> datetime:
    """Return the creation time encoded in a tweet id, truncated to the second."""
    millis = (int(tweet_id) >> 22) + TWITTER_EPOCH_MS
    return datetime.fromtimestamp(millis // 1000, tz=UTC)


def _format_time(value: datetime) -> str:
    """Format a UTC time as ISO 8601 with a ``Z`` suffix."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def load_conversations(source_dir: Path) -> list[dict[str, object]]:
    """Read the source conversations in file order (dev, then test).

    Args:
        source_dir: The ``ibm-twitter-customer-care`` folder.

    Returns:
        The conversations as parsed JSON objects.
    """
    conversations: list[dict[str, object]] = []
    for name in SOURCE_FILES:
        raw = (source_dir / name).read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        if digest != SOURCE_SHA256[name]:
            print(
                f"warning: {name} differs from the reviewed version; check the output by hand",
                file=sys.stderr,
            )
        conversations.extend(json.loads(raw))
    return conversations


def _turn_author(turn: dict[str, str]) -> tuple[str, str]:
    """Return ``(role, handle)`` of a dialog turn (role is client, client1 or agent)."""
    for role in ("client", "client1", "agent"):
        if role in turn:
            return role, turn[role]
    raise ValueError(f"dialog turn without an author: {sorted(turn)}")


def extract_turns(conversations: Sequence[dict[str, object]]) -> list[Turn]:
    """Flatten conversations into turns, each replying to the previous one; dedupe by id.

    A few conversations share tweets (the same thread collected twice); the first occurrence, in
    file order, wins.

    Args:
        conversations: The parsed source conversations.

    Returns:
        One turn per distinct tweet id, including each conversation's closing agent reply.
    """
    turns: dict[str, Turn] = {}
    for index, conversation in enumerate(conversations):
        header = conversation["dialogHeader"]
        content = conversation["dialogContent"]
        agent_url = conversation["agentURL"]
        assert isinstance(header, dict) and isinstance(content, list)
        assert isinstance(agent_url, dict)
        previous: str | None = None
        for item in content:
            role, handle = _turn_author(item)
            tweet_id = item["tweet_ID"]
            is_org = role == "agent" or handle.lower() in ORG_ACCOUNTS
            turns.setdefault(
                tweet_id,
                Turn(
                    tweet_id,
                    _parse_time(item["datetime"]),
                    handle,
                    item["message"],
                    previous,
                    index,
                    is_org,
                ),
            )
            previous = tweet_id
        # The closing reply carries no time. dialogHeader.duration cannot give it: it keeps only
        # the HH:MM:SS of the span and drops whole days, so about a fifth of the values are off
        # by days (38 are even negative). The tweet id is a Twitter snowflake whose top bits are
        # the creation time in ms; for every one of the 1,325 dialog turns it matches the given
        # datetime to the second, so we read the reply's time from its id (truncated to the
        # second). The id itself is replaced below, so nothing of it is written.
        url_id = agent_url["tweet_ID"]
        turns.setdefault(
            url_id,
            Turn(
                url_id,
                _snowflake_time(url_id),
                str(header["company"]),
                agent_url["url_utterance"],
                previous,
                index,
                True,
            ),
        )
    return sorted(turns.values(), key=lambda t: (t.created_at, int(t.tweet_id)))


def person_handles(turns: Iterable[Turn]) -> tuple[list[str], list[str]]:
    """Collect the handles to pseudonymise (lower case).

    Returns:
        ``(authors, all_persons)``: person handles that authored a tweet, in order of first
        appearance; and those plus every other non-organisation handle @mentioned in a text.
    """
    authors: dict[str, None] = {}
    persons: dict[str, None] = {}
    for turn in turns:
        if not turn.is_org:
            authors.setdefault(turn.author.lower())
            persons.setdefault(turn.author.lower())
    for turn in turns:
        text = EMAIL_RE.sub(" ", turn.text)
        for handle in MENTION_RE.findall(text):
            if handle.lower() not in ORG_ACCOUNTS:
                persons.setdefault(handle.lower())
    return list(authors), list(persons)


def make_pseudonyms(
    count: int, rng: random.Random, taken: set[tuple[str, str]], reserved: set[str]
) -> list[Pseudonym]:
    """Draw distinct pseudonyms.

    Args:
        count: How many to draw.
        rng: The seeded generator.
        taken: ``(first, last)`` pairs already used; updated in place, so names stay distinct.
        reserved: Lower-case handles (without ``@``) that no pseudonym may equal, such as the
            real handles of the data set.

    Returns:
        ``count`` pseudonyms, in the order drawn.
    """
    result: list[Pseudonym] = []
    while len(result) < count:
        first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
        pseudonym = Pseudonym(first, last, rng.randint(10, 99))
        if (first, last) in taken or pseudonym.handle[1:].lower() in reserved:
            continue
        taken.add((first, last))
        result.append(pseudonym)
    return result


def conversation_names(
    turns: Sequence[Turn], pseudonyms: dict[str, Pseudonym]
) -> dict[int, dict[str, str]]:
    """Find the first names agents greet customers with, per conversation.

    Agents often write "Hi Leslie" or "Thanks for letting us know, Kasidy!": a real first name
    next to a pseudonymous handle. Each such name is mapped to the first name of the pseudonym
    of the person addressed (the first person @mentioned, else the conversation's customer), and
    replaced in every tweet of that conversation, the customer's own signature included.

    Returns:
        ``{conversation index: {real first name: pseudonymous first name}}``.
    """
    customer: dict[int, Pseudonym] = {}
    for turn in turns:
        if not turn.is_org and turn.conversation not in customer:
            customer[turn.conversation] = pseudonyms[turn.author.lower()]
    names: dict[int, dict[str, str]] = {}
    for turn in turns:
        mentioned = [
            pseudonyms[h.lower()]
            for h in MENTION_RE.findall(turn.text)
            if h.lower() in pseudonyms and h.lower() != turn.author.lower()
        ]
        if turn.is_org:
            addressed = mentioned[0] if mentioned else customer.get(turn.conversation)
            found = [
                r.findall(turn.text)
                for r in (GREETING_NAME_RE, LEADING_NAME_RE, VOCATIVE_NAME_RE, TRAILING_NAME_RE)
            ]
        else:
            # A customer greeting another person ("@x Hi Tucker"); their own name is left to
            # the agents' greetings and the reviewed tokens.
            addressed = mentioned[0] if mentioned else None
            found = [GREETING_NAME_RE.findall(turn.text)]
        if addressed is None:
            continue
        for name in (n for group in found for n in group):
            if name not in NOT_NAMES and name.lower() not in ORG_ACCOUNTS:
                names.setdefault(turn.conversation, {}).setdefault(name, addressed.first)
    return names


@dataclass
class MentionSet:
    """The built mention records and what the customer list needs to know about their authors."""

    records: list[dict[str, object]]
    authors: list[Pseudonym]
    first_seen: dict[str, datetime]
    conversation_count: dict[str, int]
    reserved: set[str]


def build_mentions(conversations: Sequence[dict[str, object]]) -> MentionSet:
    """Turn the source conversations into pseudonymised mention records.

    Args:
        conversations: The parsed source conversations.

    Returns:
        The records sorted by time, with the pseudonyms of the person authors (in order of first
        appearance), when and in how many conversations each posted, and every real and
        generated handle in lower case (handles generated later must avoid them).
    """
    turns = extract_turns(conversations)
    authors, persons = person_handles(turns)
    reserved = set(persons) | set(ORG_ACCOUNTS)
    handles = sorted(persons)
    drawn = make_pseudonyms(len(handles), random.Random(f"{SEED}:handles"), set(), reserved)
    pseudonyms = dict(zip(handles, drawn, strict=True))
    names = conversation_names(turns, pseudonyms)
    scrubber = Scrubber(pseudonyms, REVIEWED_TOKENS, random.Random(f"{SEED}:scrub"))

    new_ids = {t.tweet_id: str(FIRST_NEW_ID + i) for i, t in enumerate(turns)}
    records: list[dict[str, object]] = []
    first_seen: dict[str, datetime] = {}
    conversations_of: dict[str, set[int]] = {}
    for turn in turns:
        pseudonym = None if turn.is_org else pseudonyms[turn.author.lower()]
        if pseudonym is not None:
            first_seen.setdefault(pseudonym.handle, turn.created_at)
            conversations_of.setdefault(pseudonym.handle, set()).add(turn.conversation)
            handle, name = pseudonym.handle, pseudonym.name
        else:
            handle, name = f"@{turn.author}", COMPANY_ACCOUNTS.get(turn.author, turn.author)
        text = scrubber.scrub(
            turn.text,
            author=turn.author,
            is_org=turn.is_org,
            names=names.get(turn.conversation, {}),
        )
        records.append(
            {
                "source": "x",
                "external_id": new_ids[turn.tweet_id],
                "created_at": _format_time(turn.created_at),
                "author_handle": handle,
                "author_name": name,
                "text": text,
                "url": None,
                "rating": None,
                "in_reply_to": new_ids[turn.in_reply_to] if turn.in_reply_to else None,
            }
        )
    return MentionSet(
        records=records,
        authors=[pseudonyms[h] for h in authors],
        first_seen=first_seen,
        conversation_count={h: len(c) for h, c in conversations_of.items()},
        reserved=reserved | {p.handle[1:].lower() for p in drawn},
    )


# --- customers -----------------------------------------------------------------------------

CUSTOMER_COUNT = 300
MATCHED_SHARE = 0.40
SEGMENTS = (("vip", 0.08), ("at_risk", 0.17), ("new", 0.23), ("standard", 0.52))
COUNTRIES = (
    ("US", 40),
    ("GB", 12),
    ("IN", 10),
    ("CA", 8),
    ("AU", 5),
    ("DE", 4),
    ("FR", 3),
    ("NL", 3),
    ("BR", 3),
    ("MX", 2),
    ("ES", 2),
    ("IE", 2),
    ("SE", 2),
    ("ZA", 2),
    ("NG", 1),
    ("PH", 1),
)
AREA_CODES = ("202", "212", "303", "312", "415", "503", "617", "702", "737", "808", "919")
CUSTOMER_COLUMNS = (
    "customer_id",
    "name",
    "email",
    "phone",
    "handles",
    "segment",
    "lifetime_value",
    "country",
    "customer_since",
)


@dataclass
class Customer:
    """One row of the synthetic customer list."""

    first: str
    last: str
    email: str = ""
    phone: str = ""
    x_handle: str = ""
    reddit_handle: str = ""
    segment: str = "standard"
    lifetime_value: float = 0.0
    country: str = "US"
    customer_since: date = date(2015, 1, 1)
    first_seen: date | None = None
    customer_id: str = ""
    name_override: str = ""

    @property
    def name(self) -> str:
        """The display name as typed in the CRM."""
        return self.name_override or f"{self.first} {self.last}"

    def row(self) -> list[str]:
        """Return the CSV row in ``CUSTOMER_COLUMNS`` order."""
        handles = [
            h
            for h in (
                self.x_handle and f"x:{self.x_handle}",
                self.reddit_handle and f"reddit:{self.reddit_handle}",
            )
            if h
        ]
        return [
            self.customer_id,
            self.name,
            self.email,
            self.phone,
            ";".join(handles),
            self.segment,
            f"{self.lifetime_value:.2f}",
            self.country,
            self.customer_since.isoformat(),
        ]


def _random_date(rng: random.Random, start: date, end: date) -> date:
    """Return a uniformly drawn date between two dates, both included."""
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))


def build_customers(mentions: MentionSet) -> tuple[list[Customer], list[tuple[str, str]]]:
    """Generate the synthetic customer list.

    About 40% of the customers own a pseudonymous X handle from the mentions: every author seen
    in more than one conversation, then a seeded sample of the others. The rest never posted.
    Three customers are entered twice with a slightly different name or e-mail.

    Args:
        mentions: The built mentions (authors, when each first posted, handles to avoid).

    Returns:
        ``(customers, duplicate_pairs)``: rows in ``customer_id`` order, and the ids of each
        original and its near-duplicate.
    """
    rng = random.Random(f"{SEED}:customers")
    taken = {(p.first, p.last) for p in mentions.authors}
    duplicates_wanted = 3
    unique_count = CUSTOMER_COUNT - duplicates_wanted
    matched_count = round(CUSTOMER_COUNT * MATCHED_SHARE)

    first_seen = mentions.first_seen
    recurring = [p for p in mentions.authors if mentions.conversation_count[p.handle] > 1]
    others = [p for p in mentions.authors if mentions.conversation_count[p.handle] == 1]
    chosen = recurring + rng.sample(others, matched_count - len(recurring))

    customers = [
        Customer(p.first, p.last, x_handle=p.handle, first_seen=first_seen[p.handle].date())
        for p in chosen
    ]
    for pseudonym in make_pseudonyms(unique_count - matched_count, rng, taken, mentions.reserved):
        customer = Customer(pseudonym.first, pseudonym.last)
        if rng.random() < 0.65:
            customer.x_handle = pseudonym.handle
        customers.append(customer)
    rng.shuffle(customers)

    segments = [s for s, share in SEGMENTS for _ in range(round(share * len(customers)))]
    segments = (segments + ["standard"] * len(customers))[: len(customers)]
    rng.shuffle(segments)
    used_emails: set[str] = set()
    used_phones: set[str] = set()
    for customer, segment in zip(customers, segments, strict=True):
        _fill_customer(customer, segment, rng, used_emails, used_phones)
    return _add_duplicates(customers, rng, used_emails)


def _customer_phone(country: str, rng: random.Random) -> str:
    """Draw a number from a range reserved for fiction.

    North American 555-0100 to 555-0199 (any area code) and, for the UK, Ofcom's drama range
    020 7946 0000 to 0999; customers elsewhere get a North American number too.
    """
    if country == "GB":
        return f"+44-20-7946-0{rng.randint(0, 999):03d}"
    return f"+1-{rng.choice(AREA_CODES)}-555-01{rng.randint(0, 99):02d}"


def _fill_customer(
    customer: Customer,
    segment: str,
    rng: random.Random,
    used_emails: set[str],
    used_phones: set[str],
) -> None:
    """Draw the contact details and attributes of one customer in place."""
    first, last = customer.first.lower(), customer.last.lower()
    domain = rng.choice(("example.com", "example.com", "example.org"))
    for local in (
        f"{first}.{last}",
        f"{first[0]}{last}",
        f"{first}{last}{rng.randint(1, 99)}",
        f"{first}.{last}{rng.randint(100, 999)}",
    ):
        if f"{local}@{domain}" not in used_emails:
            customer.email = f"{local}@{domain}"
            break
    used_emails.add(customer.email)
    customer.country = rng.choices([c for c, _ in COUNTRIES], [w for _, w in COUNTRIES])[0]
    if rng.random() < (0.85 if customer.country in ("US", "CA", "GB") else 0.4):
        while not customer.phone or customer.phone in used_phones:
            customer.phone = _customer_phone(customer.country, rng)
        used_phones.add(customer.phone)
    if not customer.x_handle or rng.random() < 0.30:
        if customer.x_handle or rng.random() < 0.75:
            suffix = f"_{rng.randint(1, 999)}" if rng.random() < 0.5 else ""
            customer.reddit_handle = f"u/{first}_{last}{suffix}"
    customer.segment = segment
    low, high = {
        "vip": (5_000, 25_000),
        "standard": (150, 3_000),
        "at_risk": (80, 2_500),
        "new": (0, 400),
    }[segment]
    customer.lifetime_value = round(rng.uniform(low, high), 2)
    start, end = (
        (date(2019, 11, 1), date(2020, 4, 30))
        if segment == "new"
        else (date(2012, 1, 1), date(2019, 10, 31))
    )
    if customer.first_seen is not None:
        end = min(end, customer.first_seen)
        start = min(start, end - timedelta(days=60))
    customer.customer_since = _random_date(rng, start, end)


def _add_duplicates(
    customers: list[Customer], rng: random.Random, used_emails: set[str]
) -> tuple[list[Customer], list[tuple[str, str]]]:
    """Insert three near-duplicate rows and number every customer.

    Each copy differs the way a record typed twice does: an initial for the first name with the
    same phone (the original owns an X handle seen in the mentions); a typo in the surname with
    the same phone and another e-mail domain; a middle initial with a Reddit handle spelled
    differently. A copy never repeats a handle of its original, because the importer refuses a
    handle that already belongs to another customer. Copies are later, smaller records (segment
    ``new``), placed a little after their original.
    """
    with_x = [c for c in customers if c.x_handle and c.phone and c.first_seen is not None]
    with_phone = [c for c in customers if c.phone and not c.x_handle and not c.reddit_handle]
    with_reddit = [c for c in customers if c.reddit_handle and not c.x_handle]
    first, second, third = rng.choice(with_x), rng.choice(with_phone), rng.choice(with_reddit)

    def copy_of(original: Customer, name: str, email: str, phone: str = "") -> Customer:
        twin = Customer(
            original.first,
            original.last,
            email=email,
            phone=phone,
            country=original.country,
            segment="new",
            name_override=name,
        )
        twin.customer_since = _random_date(rng, original.customer_since, date(2020, 4, 30))
        twin.lifetime_value = round(rng.uniform(20, 400), 2)
        return twin

    local, domain = first.email.split("@")
    short = copy_of(
        first, f"{first.first[0]}. {first.last}", f"{local.replace('.', '')}@{domain}", first.phone
    )
    local, domain = second.email.split("@")
    other_domain = "example.org" if domain == "example.com" else "example.com"
    typo = copy_of(
        second, f"{second.first} {_transpose(second.last)}", f"{local}@{other_domain}", second.phone
    )
    initial = copy_of(
        third,
        f"{third.first} {rng.choice('ABCDEJKLMRST')}. {third.last}",
        f"{third.first.lower()}{third.last.lower()}@example.org",
    )
    initial.reddit_handle = f"u/{third.first.lower()}{third.last.lower()}"
    for twin in (short, typo, initial):
        while twin.email in used_emails:
            twin.email = twin.email.replace("@", f"{rng.randint(1, 9)}@", 1)
        used_emails.add(twin.email)

    pairs = [(first, short), (second, typo), (third, initial)]
    for original, twin in pairs:
        customers.insert(min(customers.index(original) + rng.randint(5, 60), len(customers)), twin)
    for number, customer in enumerate(customers, start=1):
        customer.customer_id = f"C{number:05d}"
    return customers, [(o.customer_id, t.customer_id) for o, t in pairs]


def _transpose(word: str) -> str:
    """Swap the second and third letters of a word, a common typing slip (``Vale`` -> ``Vlae``)."""
    return word[0] + word[2] + word[1] + word[3:] if len(word) > 3 else word + word[-1]


# --- brand -------------------------------------------------------------------------------

BRAND: dict[str, object] = {
    "name": "Rockstar Games",
    "keywords": [
        "@RockstarSupport",
        "@RockstarGames",
        "Rockstar",
        "GTA",
        "GTA Online",
        "Red Dead",
        "RDR2",
        "Social Club",
        "Shark Card",
    ],
    "competitors": {
        "Xbox": ["@XboxSupport", "@Xbox", "Xbox", "Xbox Live"],
        "PlayStation": ["@AskPlayStation", "@PlayStation", "PlayStation", "PS4", "PSN"],
        "Mojang": ["@MojangSupport", "@Mojang", "Mojang", "Minecraft", "Realms"],
    },
}


def keyword_hits(records: Iterable[dict[str, object]], keywords: Iterable[str]) -> int:
    """Count the records whose text contains any of the keywords (case-insensitive, whole word)."""
    patterns = [re.compile(rf"(?i)(?<![\w@#]){re.escape(k)}(?!\w)") for k in keywords]
    return sum(1 for r in records if any(p.search(str(r["text"])) for p in patterns))


# --- output ------------------------------------------------------------------------------


def check_no_leaks(
    records: Sequence[dict[str, object]], conversations: Sequence[dict[str, object]]
) -> list[str]:
    """Look for real person handles, original tweet ids and foreign e-mails in the output.

    Returns:
        One line per problem found; empty when the output is clean.
    """
    turns = extract_turns(conversations)
    _, persons = person_handles(turns)
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    problems = [f"original tweet id {t.tweet_id}" for t in turns if t.tweet_id in text]
    for handle in persons:
        pattern = rf"(?i)@{re.escape(handle)}(?!\w)"
        if len(handle) >= 5:
            pattern = rf"(?i)(?<![\w])@?{re.escape(handle)}(?!\w)"
        if re.search(pattern, text):
            problems.append(f"real handle {handle!r}")
    for address in EMAIL_RE.findall(text):
        if not address.lower().endswith(("@example.com", "@example.org")):
            problems.append(f"e-mail {address!r}")
    return problems


def write_outputs(
    out_dir: Path, records: Sequence[dict[str, object]], customers: Sequence[Customer]
) -> None:
    """Write mentions.jsonl, customers.csv and brand.json into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "mentions.jsonl").open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    with (out_dir / "customers.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CUSTOMER_COLUMNS)
        writer.writerows(c.row() for c in customers)
    (out_dir / "brand.json").write_text(
        json.dumps(BRAND, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def _summary(
    records: Sequence[dict[str, object]],
    customers: Sequence[Customer],
    pairs: Sequence[tuple[str, str]],
    conversations: int,
) -> Iterator[str]:
    """Yield the human-readable summary lines printed after a build."""
    mention_handles = {str(r["author_handle"]) for r in records}
    matched = sum(1 for c in customers if c.x_handle in mention_handles)
    yield f"conversations read:     {conversations}"
    yield f"mentions written:       {len(records)}"
    yield f"distinct authors:       {len(mention_handles)}"
    yield f"customers written:      {len(customers)} ({matched} with a handle seen in mentions)"
    yield "near-duplicate pairs:   " + ", ".join(f"{a}~{b}" for a, b in pairs)
    yield f"brand keyword hits:     {keyword_hits(records, BRAND['keywords'])}"  # type: ignore[arg-type]
    competitors = BRAND["competitors"]
    assert isinstance(competitors, dict)
    for name, keywords in competitors.items():
        yield f"  {name + ':':20s} {keyword_hits(records, keywords)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Build the demo data set; return the process exit code."""
    repo = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared",
        type=Path,
        default=repo.parent / "shared",
        help="the shared material folder (default: <repo>/../shared)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "data",
        help="where to write the files (default: demo/data)",
    )
    args = parser.parse_args(argv)

    conversations = load_conversations(args.shared / SOURCE_SUBDIR)
    mentions = build_mentions(conversations)
    problems = check_no_leaks(mentions.records, conversations)
    if problems:
        print("refusing to write: personal data left in the output", file=sys.stderr)
        for problem in problems[:20]:
            print(f"  {problem}", file=sys.stderr)
        return 1
    customers, pairs = build_customers(mentions)
    write_outputs(args.out, mentions.records, customers)
    for line in _summary(mentions.records, customers, pairs, len(conversations)):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
