"""Escalation rules: the rules file, evaluation with a breakdown, preview, backtest, versions.

The rules and SLA policies are one YAML document (the shipped default is
``config/rules.yaml``, whose comments document every key). It is validated by pydantic
models that forbid unknown keys; every problem is reported at once, on one line, naming
the key (``rules[churn_risk].when.keywrds: unknown key``) as a :class:`RulesError`.

**Evaluation.** A rule fires when all its conditions hold. A mention gets the highest
priority of the rules that fired (``default_priority`` when none did) and is escalated
when any rule that fired says ``escalate``. The :class:`Decision` keeps the breakdown:
one reason per condition of each rule that fired, ``{rule, condition, value, threshold,
contribution}``. Missing data never fires a condition: no follower count, no customer, no
rating, no sentiment probability all mean "false".

**Versions.** :func:`save_rules` validates a text and stores it as the next version in
``rule_sets`` (with an audit entry); the newest version is in force
(:func:`rules_in_force`). Until one is saved, the shipped file is in force as version 0.
:func:`preview` and :func:`backtest` run a text over the stored mentions without saving.

**Applying.** :func:`apply_rules` evaluates the open conversations that the rules in force
have not evaluated yet and writes priority, escalated flag and breakdown. Rules raise a
priority and never lower it, except on a conversation's first evaluation while nobody has
touched it (``version`` 1): then the decided priority, ``low`` included, is set.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import Engine

from listenwell.store import escalations as se
from listenwell.store.corrections import INTENT_LABELS, SENTIMENT_LABELS
from listenwell.store.models import utcnow

from .sla import PRIORITIES, WEEKDAYS, BusinessCalendar, CalendarError, SlaPolicy, Targets

__all__ = [
    "SHIPPED_RULES",
    "ApplyReport",
    "Backtest",
    "Decision",
    "Preview",
    "RuleSet",
    "RulesError",
    "RulesFile",
    "Sample",
    "apply_rules",
    "backtest",
    "evaluate",
    "evaluate_many",
    "load_rules",
    "parse_rules",
    "preview",
    "rules_in_force",
    "save_rules",
    "shipped_rules_text",
]

Priority = Literal["low", "normal", "high", "urgent"]
_RANK = {p: i for i, p in enumerate(PRIORITIES)}
_MAX_TEXT = 1_000_000
_HOLIDAY_YEARS = range(1990, 2101)  # MM-DD holidays repeat over these years
SHIPPED_RULES = "rules.yaml"
"""The shipped default's file name in the ``listenwell.config`` package."""


class RulesError(ValueError):
    """A rules text is invalid; the message names every bad key, on one line."""


# --------------------------------------------------------------------------- the file format


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _as_list(value: Any) -> Any:
    """One value or a list of them; numbers become words (``keywords: [503]``)."""
    items = value if isinstance(value, list) else [value]
    if any(isinstance(v, bool) or not isinstance(v, str | int | float) for v in items):
        return value  # let pydantic name the bad item (YAML reads yes/no/off as booleans)
    return [str(v) for v in items]


class RepeatContact(_Model):
    """At least ``count`` mentions by the same author on one source within ``days`` days."""

    count: int = Field(ge=2, le=1000)
    days: int = Field(ge=1, le=366)


class Conditions(_Model):
    """A rule's conditions; all that are set must hold."""

    keywords: list[str] | None = None
    not_keywords: list[str] | None = None
    sentiment: list[str] | None = None
    min_probability: float | None = Field(default=None, ge=0.0, le=1.0)
    intent: list[str] | None = None
    min_followers: int | None = Field(default=None, ge=0)
    segment: list[str] | None = None
    min_lifetime_value: float | None = None
    repeat_contact: RepeatContact | None = None
    max_rating: int | None = Field(default=None, ge=1, le=5)
    source: list[str] | None = None

    @field_validator(
        "keywords", "not_keywords", "sentiment", "intent", "segment", "source", mode="before"
    )
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator("keywords", "not_keywords", "segment", "source")
    @classmethod
    def _words(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        words = [w.strip() for w in value]
        if not words or any(not w or w == "*" for w in words):
            raise ValueError("needs at least one non-empty word")
        return words

    @field_validator("sentiment")
    @classmethod
    def _sentiments(cls, value: list[str] | None) -> list[str] | None:
        return _known(value, SENTIMENT_LABELS)

    @field_validator("intent")
    @classmethod
    def _intents(cls, value: list[str] | None) -> list[str] | None:
        return _known(value, INTENT_LABELS)

    @model_validator(mode="after")
    def _complete(self) -> Conditions:
        if self.min_probability is not None and not self.sentiment:
            raise ValueError("min_probability needs a sentiment to apply to")
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("a rule needs at least one condition")
        return self


def _known(value: list[str] | None, labels: tuple[str, ...]) -> list[str] | None:
    if value is None:
        return None
    out = [v.strip().lower() for v in value]
    bad = [v for v in out if v not in labels]
    if bad or not out:
        raise ValueError(f"unknown label {', '.join(bad) or '(none)'}; use {', '.join(labels)}")
    return out


class Rule(_Model):
    """One escalation rule."""

    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,59}$")
    description: str | None = None
    priority: Priority
    escalate: bool = True
    enabled: bool = True
    when: Conditions


class TargetMinutes(_Model):
    """One priority's SLA targets in business minutes."""

    first_response_minutes: float = Field(gt=0)
    resolution_minutes: float = Field(gt=0)

    @model_validator(mode="after")
    def _order(self) -> TargetMinutes:
        if self.resolution_minutes < self.first_response_minutes:
            raise ValueError("resolution_minutes cannot be shorter than first_response_minutes")
        return self


class Upgrades(_Model):
    """The upgrade ladder on a breach."""

    raise_priority: bool = True
    supervisor_minutes: float = Field(default=60.0, gt=0)
    manager_minutes: float = Field(default=120.0, gt=0)


class Sla(_Model):
    """SLA policies: calendar, targets per priority, reminders, upgrades."""

    timezone: str = "UTC"
    hours: dict[str, list[str]] | None = None
    holidays: list[date | str] = Field(default_factory=list)
    reminder_at: float = Field(default=0.8, ge=0.0, lt=1.0)
    targets: dict[Priority, TargetMinutes]
    upgrades: Upgrades = Field(default_factory=Upgrades)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        BusinessCalendar(value)  # raises CalendarError (a ValueError) naming the zone
        return value

    @field_validator("hours", mode="before")
    @classmethod
    def _windows(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: ([] if v is None else _as_list(v)) for k, v in value.items()}

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is None:
            return None
        for day in value:
            if str(day).strip().lower() not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
        BusinessCalendar("UTC", {k: v for k, v in value.items()})
        return value

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: list[date | str]) -> list[date | str]:
        for item in value:
            _holiday_dates(item)
        return value

    @field_validator("targets")
    @classmethod
    def _all_priorities(cls, value: dict[str, TargetMinutes]) -> dict[str, TargetMinutes]:
        missing = [p for p in PRIORITIES if p not in value]
        if missing:
            raise ValueError(f"targets missing for {', '.join(missing)}")
        return value


def _holiday_dates(item: date | str) -> list[date]:
    if isinstance(item, date):
        return [item]
    text = str(item).strip()
    if re.fullmatch(r"\d{2}-\d{2}", text):
        month, day = int(text[:2]), int(text[3:])
        try:
            date(2000, month, day)  # a leap year, so 02-29 is allowed
        except ValueError:
            raise ValueError(f"not a day of the year: {text!r} (use MM-DD)") from None
        out = []
        for year in _HOLIDAY_YEARS:
            try:
                out.append(date(year, month, day))
            except ValueError:
                continue  # 02-29 in a common year
        return out
    try:
        return [date.fromisoformat(text)]
    except ValueError:
        raise ValueError(f"not a date: {text!r} (use YYYY-MM-DD, or MM-DD every year)") from None


class RulesFile(_Model):
    """The whole rules document."""

    format: Literal[1] = 1
    default_priority: Priority = "normal"
    rules: list[Rule] = Field(default_factory=list)
    sla: Sla

    @model_validator(mode="after")
    def _unique_names(self) -> RulesFile:
        seen = Counter(r.name for r in self.rules)
        twice = sorted(n for n, k in seen.items() if k > 1)
        if twice:
            raise ValueError(f"rule names must be unique: {', '.join(twice)}")
        return self


def _where(loc: tuple[Any, ...], data: Any) -> str:
    """A pydantic error location as a key path; a rule is named by its name: ``rules[churn]``."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            item = node[key] if isinstance(node, list) and key < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            label = name if isinstance(name, str) else key
            parts[-1:] = [f"{parts[-1] if parts else ''}[{label}]"]
            node = item
        else:
            parts.append(str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def parse_rules(text: str, origin: str = "rules") -> RulesFile:
    """Validate a rules text.

    Args:
        text: The YAML document.
        origin: Where it came from, for the error message (a path, ``version 3``).

    Returns:
        The validated rules.

    Raises:
        RulesError: Bad YAML, or any key that is unknown or invalid (all named at once).
    """
    if len(text) > _MAX_TEXT:
        raise RulesError(f"invalid rules ({origin}): longer than {_MAX_TEXT:,} characters")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RulesError(f"invalid rules ({origin}): not YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise RulesError(f"invalid rules ({origin}): expected a mapping with rules: and sla:")
    try:
        return RulesFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            key = _where(loc, data)
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            elif err["type"] == "missing":
                msg = "missing"
            else:
                msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{key}: {msg}")
        raise RulesError(f"invalid rules ({origin}): " + "; ".join(problems)) from None


# --------------------------------------------------------------------------- rule sets


@dataclass(frozen=True)
class RuleSet:
    """Validated rules with where they came from.

    Attributes:
        spec: The validated document.
        text: Its YAML text, as written.
        version: The saved version; 0 for a text that is not saved (the shipped default
            or a file being previewed).
        origin: ``version N``, ``shipped default`` or a file path.
    """

    spec: RulesFile
    text: str
    version: int = 0
    origin: str = "rules"

    @cached_property
    def policy(self) -> SlaPolicy:
        """The SLA policy: calendar, targets, reminders, upgrade ladder."""
        sla = self.spec.sla
        holidays: set[date] = set()
        for item in sla.holidays:
            holidays.update(_holiday_dates(item))
        try:
            calendar = BusinessCalendar(sla.timezone, sla.hours, holidays)
        except CalendarError as exc:  # validated already; kept for a clear message
            raise RulesError(f"invalid rules ({self.origin}): sla: {exc}") from None
        return SlaPolicy(
            calendar=calendar,
            targets={
                p: Targets(t.first_response_minutes * 60.0, t.resolution_minutes * 60.0)
                for p, t in sla.targets.items()
            },
            reminder_at=sla.reminder_at,
            raise_priority=sla.upgrades.raise_priority,
            supervisor_s=sla.upgrades.supervisor_minutes * 60.0,
            manager_s=sla.upgrades.manager_minutes * 60.0,
        )

    @cached_property
    def _compiled(self) -> list[_CompiledRule]:
        return [_compile(r) for r in self.spec.rules if r.enabled]

    @property
    def repeat_days(self) -> tuple[int, ...]:
        """The repeat-contact windows the rules count (days)."""
        days = {r.when.repeat_contact.days for r in self.spec.rules if r.when.repeat_contact}
        return tuple(sorted(days))

    @property
    def needs_reach(self) -> bool:
        """Whether a rule looks at follower counts."""
        return any(r.when.min_followers is not None for r in self.spec.rules)

    @property
    def needs_customer(self) -> bool:
        """Whether a rule looks at the linked customer."""
        return any(
            r.when.segment is not None or r.when.min_lifetime_value is not None
            for r in self.spec.rules
        )


def shipped_rules_text() -> str:
    """The text of the shipped default, ``config/rules.yaml``."""
    return resources.files("listenwell.config").joinpath(SHIPPED_RULES).read_text("utf-8")


def load_rules(path: str | Path) -> RuleSet:
    """Read and validate a rules file (not saved: version 0).

    Raises:
        RulesError: The file cannot be read or is invalid.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RulesError(f"cannot read {p}: {reason}") from None
    return RuleSet(parse_rules(text, str(p)), text, 0, str(p))


def rules_in_force(engine: Engine, *, default_path: str | Path | None = None) -> RuleSet:
    """The newest saved version, else ``default_path``, else the shipped default (version 0).

    Raises:
        RulesError: The text in force is invalid (a saved one is validated when saved, so
            this means a default file was edited badly).
    """
    saved = se.latest_rule_set(engine)
    if saved is not None:
        origin = f"version {saved.version}"
        return RuleSet(parse_rules(saved.text, origin), saved.text, saved.version, origin)
    if default_path is not None:
        return load_rules(default_path)
    text = shipped_rules_text()
    return RuleSet(parse_rules(text, "shipped default"), text, 0, "shipped default")


def save_rules(engine: Engine, text: str, actor: str, note: str | None = None) -> RuleSet:
    """Validate ``text`` and save it as the next version (it is then in force), audit-logged.

    Raises:
        RulesError: The text is invalid, or no actor is named; nothing is saved.
    """
    who = actor.strip()
    if not who or len(who) > 200:
        raise RulesError("name who saves the rules (1 to 200 characters)")
    spec = parse_rules(text, "new rules")
    record = se.insert_rule_set(engine, text, who, note.strip() if note else None)
    origin = f"version {record.version}"
    return RuleSet(spec, text, record.version, origin)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rules decided for one mention.

    Attributes:
        mention_id: The mention.
        priority: The highest priority of the rules that fired, else the default.
        escalated: Whether a rule that fired escalates.
        rules: The names of the rules that fired, in file order.
        reasons: One ``{rule, condition, value, threshold, contribution}`` per condition
            of each rule that fired.
    """

    mention_id: int
    priority: str
    escalated: bool
    rules: tuple[str, ...] = ()
    reasons: tuple[dict[str, Any], ...] = ()

    def breakdown(self, version: int, at: datetime | None = None) -> dict[str, Any]:
        """The JSON stored in ``conversations.escalation`` (the SLA state is kept apart)."""
        return {
            "rule_version": version,
            "evaluated_at": (at or utcnow()).isoformat(),
            "priority": self.priority,
            "escalated": self.escalated,
            "rules": list(self.rules),
            "reasons": [dict(r) for r in self.reasons],
        }


Check = Callable[[se.MentionFacts], tuple[Any, Any] | None]
"""A compiled condition: ``(value, threshold)`` when it holds, else ``None``."""


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: Rule
    checks: tuple[tuple[str, Check], ...]


def _keyword_regex(words: Sequence[str]) -> re.Pattern[str]:
    parts = []
    for word in sorted(words, key=len, reverse=True):
        prefix = word.endswith("*")
        body = r"\s+".join(re.escape(w) for w in word.rstrip("*").split())
        parts.append(body + (r"\w*" if prefix else ""))
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


def _compile(rule: Rule) -> _CompiledRule:
    w = rule.when
    checks: list[tuple[str, Check]] = []
    if w.keywords:
        rx = _keyword_regex(w.keywords)
        shown = "any of " + ", ".join(w.keywords)

        def keywords(f: se.MentionFacts, rx: re.Pattern[str] = rx, shown: str = shown) -> Any:
            m = rx.search(f.text or "")
            return (m.group(0).lower(), shown) if m else None

        checks.append(("keywords", keywords))
    if w.not_keywords:
        nrx = _keyword_regex(w.not_keywords)
        nshown = "none of " + ", ".join(w.not_keywords)

        def not_keywords(f: se.MentionFacts, rx: re.Pattern[str] = nrx, shown: str = nshown) -> Any:
            return None if rx.search(f.text or "") else ("none found", shown)

        checks.append(("not_keywords", not_keywords))
    if w.sentiment:
        labels = frozenset(w.sentiment)
        floor = w.min_probability
        shown_s = " or ".join(w.sentiment) + (f", p >= {floor:g}" if floor is not None else "")

        def sentiment(f: se.MentionFacts) -> Any:
            if f.sentiment not in labels:
                return None
            if floor is not None and (f.sentiment_p is None or f.sentiment_p < floor):
                return None
            value = (
                f.sentiment if f.sentiment_p is None else f"{f.sentiment} (p={f.sentiment_p:.2f})"
            )
            return value, shown_s

        checks.append(("sentiment", sentiment))
    if w.intent:
        intents = frozenset(w.intent)
        shown_i = " or ".join(w.intent)

        def intent(f: se.MentionFacts) -> Any:
            return (f.intent, shown_i) if f.intent in intents else None

        checks.append(("intent", intent))
    if w.min_followers is not None:
        least = w.min_followers

        def reach(f: se.MentionFacts) -> Any:
            ok = f.followers is not None and f.followers >= least
            return (f.followers, f">= {least}") if ok else None

        checks.append(("min_followers", reach))
    if w.segment:
        segments = frozenset(s.lower() for s in w.segment)
        shown_g = " or ".join(w.segment)

        def segment(f: se.MentionFacts) -> Any:
            ok = f.segment is not None and f.segment.strip().lower() in segments
            return (f.segment, shown_g) if ok else None

        checks.append(("segment", segment))
    if w.min_lifetime_value is not None:
        floor_v = w.min_lifetime_value

        def value(f: se.MentionFacts) -> Any:
            ok = f.lifetime_value is not None and f.lifetime_value >= floor_v
            return (f.lifetime_value, f">= {floor_v:g}") if ok else None

        checks.append(("min_lifetime_value", value))
    if w.repeat_contact is not None:
        count, days = w.repeat_contact.count, w.repeat_contact.days

        def repeat(f: se.MentionFacts) -> Any:
            n = f.contacts.get(days, 0)
            return (f"{n} in {days} days", f">= {count} in {days} days") if n >= count else None

        checks.append(("repeat_contact", repeat))
    if w.max_rating is not None:
        most = w.max_rating

        def rating(f: se.MentionFacts) -> Any:
            return (f.rating, f"<= {most}") if f.rating is not None and f.rating <= most else None

        checks.append(("max_rating", rating))
    if w.source:
        sources = frozenset(s.lower() for s in w.source)
        shown_src = " or ".join(w.source)

        def source(f: se.MentionFacts) -> Any:
            return (f.source, shown_src) if (f.source or "").lower() in sources else None

        checks.append(("source", source))
    return _CompiledRule(rule, tuple(checks))


def evaluate(rules: RuleSet, facts: se.MentionFacts) -> Decision:
    """Decide priority and escalation for one mention, with the breakdown of why.

    Args:
        rules: The rules.
        facts: What is known about the mention (:func:`listenwell.store.escalations.iter_facts`).

    Returns:
        The decision; ``reasons`` is empty when no rule fired.
    """
    fired: list[tuple[Rule, list[tuple[str, Any, Any]]]] = []
    for compiled in rules._compiled:
        seen: list[tuple[str, Any, Any]] = []
        for name, check in compiled.checks:
            hit = check(facts)
            if hit is None:
                break
            seen.append((name, hit[0], hit[1]))
        else:
            fired.append((compiled.rule, seen))
    priority = rules.spec.default_priority
    for rule, _ in fired:
        if _RANK[rule.priority] > _RANK[priority]:
            priority = rule.priority
    reasons = []
    for rule, seen in fired:
        contribution = f"priority {rule.priority}" + (", escalates" if rule.escalate else "")
        if rule.priority == priority:
            contribution += " (decides the priority)"
        for name, value, threshold in seen:
            reasons.append(
                {
                    "rule": rule.name,
                    "condition": name,
                    "value": value,
                    "threshold": threshold,
                    "contribution": contribution,
                }
            )
    return Decision(
        mention_id=facts.mention_id,
        priority=priority,
        escalated=any(rule.escalate for rule, _ in fired),
        rules=tuple(rule.name for rule, _ in fired),
        reasons=tuple(reasons),
    )


def evaluate_many(rules: RuleSet, facts: Iterable[se.MentionFacts]) -> list[Decision]:
    """:func:`evaluate` over a batch (the rules are compiled once per rule set)."""
    return [evaluate(rules, f) for f in facts]


# --------------------------------------------------------------------------- preview, backtest


@dataclass(frozen=True, slots=True)
class Sample:
    """A mention a rule fired on, for the preview."""

    mention_id: int
    created_at: datetime | None
    source: str
    author_handle: str | None
    text: str
    priority: str
    escalated: bool
    reasons: tuple[dict[str, Any], ...]


@dataclass
class Preview:
    """What a rules text would decide on the stored mentions.

    Attributes:
        origin: Where the rules came from.
        evaluated: Mentions evaluated.
        by_priority: Mentions per decided priority (every priority listed).
        escalated: Mentions that would be escalated.
        by_rule: Mentions each rule fired on (every enabled rule listed).
        samples: Up to ``samples`` mentions per rule, newest evaluated last.
        escalated_per_day: Escalations per posting day (UTC), the load on the team.
    """

    origin: str
    evaluated: int = 0
    by_priority: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRIORITIES, 0))
    escalated: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    escalated_per_day: dict[str, int] = field(default_factory=dict)

    def add(self, facts: se.MentionFacts, d: Decision, keep: int) -> None:
        """Count one decision."""
        self.evaluated += 1
        self.by_priority[d.priority] = self.by_priority.get(d.priority, 0) + 1
        if d.escalated:
            self.escalated += 1
            day = facts.created_at.astimezone(UTC).date().isoformat() if facts.created_at else "?"
            self.escalated_per_day[day] = self.escalated_per_day.get(day, 0) + 1
        for name in d.rules:
            self.by_rule[name] = self.by_rule.get(name, 0) + 1
            kept = self.samples.setdefault(name, [])
            if len(kept) < keep:
                kept.append(
                    Sample(
                        mention_id=facts.mention_id,
                        created_at=facts.created_at,
                        source=facts.source,
                        author_handle=facts.author_handle,
                        text=facts.text if len(facts.text) <= 280 else facts.text[:277] + "...",
                        priority=d.priority,
                        escalated=d.escalated,
                        reasons=tuple(r for r in d.reasons if r["rule"] == name),
                    )
                )

    def as_dict(self) -> dict[str, Any]:
        """The preview as JSON-ready values."""
        per_day = list(self.escalated_per_day.values())
        return {
            "origin": self.origin,
            "evaluated": self.evaluated,
            "by_priority": self.by_priority,
            "escalated": self.escalated,
            "by_rule": self.by_rule,
            "escalated_per_day": {
                "days": len(per_day),
                "mean": round(sum(per_day) / len(per_day), 2) if per_day else 0.0,
                "max": max(per_day, default=0),
            },
            "samples": {
                rule: [
                    {
                        "mention_id": s.mention_id,
                        "created_at": s.created_at.isoformat() if s.created_at else None,
                        "source": s.source,
                        "author_handle": s.author_handle,
                        "text": s.text,
                        "priority": s.priority,
                        "escalated": s.escalated,
                        "reasons": list(s.reasons),
                    }
                    for s in kept
                ]
                for rule, kept in self.samples.items()
            },
        }


@dataclass
class Backtest:
    """A candidate rules text against the rules in force and against the inbox.

    Attributes:
        candidate: What the candidate decides.
        baseline: What the rules in force decide on the same mentions.
        changes: ``newly_escalated``, ``no_longer_escalated``, ``raised``, ``lowered``,
            and ``matrix[baseline priority][candidate priority]``.
        inbox: For mentions with a conversation, agreement between the candidate's
            escalation (escalated, or high/urgent) and the conversation as it stands
            (escalated, or high/urgent): ``both``, ``rules_only``, ``inbox_only``,
            ``neither``.
    """

    candidate: Preview
    baseline: Preview
    changes: dict[str, Any]
    inbox: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        """The backtest as JSON-ready values."""
        return {
            "candidate": self.candidate.as_dict(),
            "baseline": self.baseline.as_dict(),
            "changes": self.changes,
            "inbox": self.inbox,
        }


def _rules_of(text_or_rules: str | RuleSet, origin: str) -> RuleSet:
    if isinstance(text_or_rules, RuleSet):
        return text_or_rules
    return RuleSet(parse_rules(text_or_rules, origin), text_or_rules, 0, origin)


def _as_since(since: date | datetime | None) -> datetime | None:
    if since is None or isinstance(since, datetime):
        return since if since is None or since.tzinfo else since.replace(tzinfo=UTC)
    return datetime(since.year, since.month, since.day, tzinfo=UTC)


def _facts(
    engine: Engine, sets: Sequence[RuleSet], since: datetime | None, limit: int | None
) -> Iterator[list[se.MentionFacts]]:
    days = sorted({d for rs in sets for d in rs.repeat_days})
    return se.iter_facts(
        engine,
        since=since,
        limit=limit,
        repeat_days=days,
        need_reach=any(rs.needs_reach for rs in sets),
        need_customer=any(rs.needs_customer for rs in sets),
    )


def preview(
    engine: Engine,
    rules_text: str | RuleSet,
    *,
    since: date | datetime | None = None,
    limit: int | None = None,
    samples: int = 5,
    origin: str = "preview",
) -> Preview:
    """Run a rules text over the stored mentions without saving anything.

    Args:
        engine: The database.
        rules_text: The YAML text (validated here) or parsed rules.
        since: Only mentions posted on or after this day or time (UTC).
        limit: At most this many mentions (oldest ids first).
        samples: Mentions kept per rule as examples.
        origin: A name for the rules in messages (a file path).

    Returns:
        Counts per priority and rule, escalations per day, and sample mentions.

    Raises:
        RulesError: The text is invalid.
    """
    rules = _rules_of(rules_text, origin)
    result = Preview(origin=rules.origin, by_rule={r.rule.name: 0 for r in rules._compiled})
    for batch in _facts(engine, [rules], _as_since(since), limit):
        for f in batch:
            result.add(f, evaluate(rules, f), samples)
    return result


def _hot(priority: str, escalated: bool) -> bool:
    return escalated or _RANK.get(priority, 1) >= _RANK["high"]


def backtest(
    engine: Engine,
    rules_text: str | RuleSet,
    *,
    since: date | datetime | None = None,
    limit: int | None = None,
    samples: int = 5,
    origin: str = "candidate",
    baseline: RuleSet | None = None,
) -> Backtest:
    """Replay a rules text over the stored mentions and compare it before saving it.

    Compares with the rules in force (what would change) and with the conversations as
    they stand (escalated or high/urgent, by agents, earlier rules or SLA upgrades).

    Args:
        engine: The database.
        rules_text: The candidate YAML text (validated here) or parsed rules.
        since: Only mentions posted on or after this day or time (UTC).
        limit: At most this many mentions.
        samples: Mentions kept per rule as examples.
        origin: A name for the candidate in messages.
        baseline: The rules to compare with; default: the rules in force.

    Returns:
        Both previews, the changes between them, and agreement with the inbox.

    Raises:
        RulesError: The text is invalid.
    """
    cand = _rules_of(rules_text, origin)
    base = baseline or rules_in_force(engine)
    cp = Preview(origin=cand.origin, by_rule={r.rule.name: 0 for r in cand._compiled})
    bp = Preview(origin=base.origin, by_rule={r.rule.name: 0 for r in base._compiled})
    matrix = {p: dict.fromkeys(PRIORITIES, 0) for p in PRIORITIES}
    changes = {"newly_escalated": 0, "no_longer_escalated": 0, "raised": 0, "lowered": 0}
    inbox = {"conversations": 0, "both": 0, "rules_only": 0, "inbox_only": 0, "neither": 0}
    for batch in _facts(engine, [cand, base], _as_since(since), limit):
        flags = se.escalation_flags(engine, [f.mention_id for f in batch if f.conversation_id])
        for f in batch:
            dc, db = evaluate(cand, f), evaluate(base, f)
            cp.add(f, dc, samples)
            bp.add(f, db, samples)
            matrix[db.priority][dc.priority] += 1
            if dc.escalated and not db.escalated:
                changes["newly_escalated"] += 1
            elif db.escalated and not dc.escalated:
                changes["no_longer_escalated"] += 1
            if _RANK[dc.priority] > _RANK[db.priority]:
                changes["raised"] += 1
            elif _RANK[dc.priority] < _RANK[db.priority]:
                changes["lowered"] += 1
            state = flags.get(f.mention_id)
            if state is not None:
                inbox["conversations"] += 1
                ours, theirs = _hot(dc.priority, dc.escalated), _hot(state[1], state[0])
                key = (
                    ("both" if theirs else "rules_only")
                    if ours
                    else ("inbox_only" if theirs else "neither")
                )
                inbox[key] += 1
    return Backtest(cp, bp, {**changes, "matrix": matrix}, inbox)


# --------------------------------------------------------------------------- applying


@dataclass
class ApplyReport:
    """What :func:`apply_rules` did.

    Attributes:
        rule_version: The version in force that decided (0: the shipped default).
        evaluated: Conversations evaluated.
        written: Conversations written (the others changed meanwhile; next pass).
        escalated: Conversations newly escalated.
        reprioritised: Conversations whose priority changed without a new escalation.
        conflicts: Conversations skipped because they changed meanwhile.
    """

    rule_version: int
    evaluated: int = 0
    written: int = 0
    escalated: int = 0
    reprioritised: int = 0
    conflicts: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "rule_version": self.rule_version,
            "evaluated": self.evaluated,
            "written": self.written,
            "escalated": self.escalated,
            "reprioritised": self.reprioritised,
            "conflicts": self.conflicts,
        }


def _outcome(conv: se.ToEvaluate, d: Decision, version: int, now: datetime) -> se.RuleOutcome:
    untouched = conv.rule_version is None and conv.version == 1
    if untouched or _RANK[d.priority] > _RANK.get(conv.priority, 1):
        priority = d.priority
    else:
        priority = conv.priority
    escalated = conv.escalated or d.escalated
    event: str | None = None
    detail: dict[str, Any] | None = None
    if escalated and not conv.escalated:
        event = "escalated"
    elif priority != conv.priority:
        event = "prioritised"
    if event:
        detail = {
            "rule_version": version,
            "from_priority": conv.priority,
            "to_priority": priority,
            "rules": list(d.rules),
            "reasons": [dict(r) for r in d.reasons],
        }
    return se.RuleOutcome(
        conversation_id=conv.id,
        version=conv.version,
        priority=priority,
        escalated=escalated,
        rule_version=version,
        escalation=d.breakdown(version, now),
        changed=priority != conv.priority or escalated != conv.escalated,
        event=event,
        detail=detail,
    )


def apply_rules(
    engine: Engine,
    rules: RuleSet | None = None,
    *,
    now: datetime | None = None,
    batch_size: int = 1000,
    actor: str = "system:rules",
) -> ApplyReport:
    """Evaluate the open conversations not yet evaluated under ``rules`` and write the result.

    Args:
        engine: The database.
        rules: The rules; default: the rules in force.
        now: The evaluation time written into the breakdown and events.
        batch_size: Conversations per transaction.
        actor: Who the changes and events are recorded as.

    Returns:
        Counts of what was evaluated and written.
    """
    rs = rules or rules_in_force(engine)
    when = now or utcnow()
    report = ApplyReport(rule_version=rs.version)
    after = 0
    while True:
        todo = se.conversations_to_evaluate(engine, rs.version, after_id=after, limit=batch_size)
        if not todo:
            return report
        after = todo[-1].id
        decisions: dict[int, Decision] = {}
        for batch in se.iter_facts(
            engine,
            mention_ids=[c.mention_id for c in todo],
            repeat_days=rs.repeat_days,
            need_reach=rs.needs_reach,
            need_customer=rs.needs_customer,
            batch_size=batch_size,
        ):
            for f in batch:
                decisions[f.mention_id] = evaluate(rs, f)
        outcomes = [_outcome(c, decisions[c.mention_id], rs.version, when) for c in todo]
        written = se.write_rule_outcomes(engine, outcomes, now=when, actor=actor)
        report.evaluated += len(outcomes)
        report.written += len(written)
        report.conflicts += len(outcomes) - len(written)
        done = [o for o in outcomes if o.conversation_id in written]
        report.escalated += sum(1 for o in done if o.event == "escalated")
        report.reprioritised += sum(1 for o in done if o.event == "prioritised")
