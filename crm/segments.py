"""Rule-based customer segments and the churn-risk flag.

A segment's rule is JSON::

    {"match": "all",                      # or "any"; default "all"
     "conditions": [
        {"field": "attributes.country", "op": "in", "value": ["FR", "BE"]},
        {"field": "lifetime_value", "op": "gte", "value": 1000},
        {"field": "negative_share", "op": "gte", "value": 0.5},
        {"field": "complaints", "days": 30, "op": "gte", "value": 2},
        {"field": "segment", "op": "eq", "value": "gold"}]}

Fields: ``segment`` (the customer column), ``attributes.KEY`` (any imported
attribute), ``lifetime_value`` (``attributes.lifetime_value`` as a number),
``mentions``, ``positive_share`` and ``negative_share`` (fractions 0-1 of the
customer's mentions with a sentiment label), ``complaints`` (intent
``complaint`` or negative sentiment, in the last ``days`` days, default 30) and
``last_nps``. Operators: ``eq``, ``ne``, ``in``, ``gte``, ``lte``. ``gte`` and
``lte`` compare numbers (text that reads as a number counts as one); a
missing value never matches, except under ``ne``.

**Churn risk** (:func:`churn_risk`), a customer is at risk when any holds, and
each that holds is given as a reason:

1. at least :data:`CHURN_COMPLAINTS` complaints in the last
   :data:`CHURN_COMPLAINT_DAYS` days;
2. their latest NPS answer is a detractor (0-6);
3. a negative trend: in the last :data:`CHURN_WINDOW_DAYS` days they posted,
   none of it positive, and a larger share of it was negative than in the
   :data:`CHURN_WINDOW_DAYS` days before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from listenwell.store.segments import Segment, customer_facts, get_segment, save_segment

__all__ = [
    "CHURN_COMPLAINTS",
    "CHURN_COMPLAINT_DAYS",
    "CHURN_WINDOW_DAYS",
    "FIELDS",
    "OPS",
    "Condition",
    "Rule",
    "RuleError",
    "churn_reasons",
    "churn_risk",
    "define_segment",
    "matches",
    "parse_rule",
    "segment_members",
]

OPS = ("eq", "ne", "in", "gte", "lte")
"""The comparison operators a condition may use."""

FIELDS = (
    "segment",
    "lifetime_value",
    "mentions",
    "positive_share",
    "negative_share",
    "complaints",
    "last_nps",
)
"""The fields a condition may name, besides ``attributes.KEY``."""

CHURN_COMPLAINTS = 2
CHURN_COMPLAINT_DAYS = 30
CHURN_WINDOW_DAYS = 60


class RuleError(ValueError):
    """A segment rule is malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class Condition:
    """One test on a customer's facts."""

    field: str
    op: str
    value: Any
    days: int = 30

    @property
    def column(self) -> str:
        """The facts column this condition reads."""
        return f"complaints_{self.days}d" if self.field == "complaints" else self.field


@dataclass(frozen=True, slots=True)
class Rule:
    """A parsed segment rule."""

    match: str
    conditions: tuple[Condition, ...]

    @property
    def complaint_days(self) -> tuple[int, ...]:
        """The complaint windows the rule needs."""
        return tuple(sorted({c.days for c in self.conditions if c.field == "complaints"}))


def parse_rule(definition: str | Mapping[str, Any]) -> Rule:
    """Parse and check a segment rule (a JSON text or a mapping).

    Raises:
        RuleError: Not JSON, not an object, unknown ``match``, field or operator,
            or a value of the wrong shape.
    """
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except json.JSONDecodeError as exc:
            raise RuleError(
                f"the rule is not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
    if not isinstance(definition, Mapping):
        raise RuleError('the rule must be a JSON object with "conditions"')
    unknown = set(definition) - {"match", "conditions"}
    if unknown:
        raise RuleError(f"unknown rule key(s): {', '.join(sorted(unknown))}")
    match = definition.get("match", "all")
    if match not in ("all", "any"):
        raise RuleError('"match" must be "all" or "any"')
    raw = definition.get("conditions")
    if not isinstance(raw, list) or not raw:
        raise RuleError('"conditions" must be a non-empty list')
    conditions = []
    for n, item in enumerate(raw, 1):
        where = f"condition {n}"
        if not isinstance(item, Mapping):
            raise RuleError(f"{where} must be an object with field, op and value")
        extra = set(item) - {"field", "op", "value", "days"}
        if extra:
            raise RuleError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        field = item.get("field")
        if not isinstance(field, str) or not (
            field in FIELDS or (field.startswith("attributes.") and len(field) > 11)
        ):
            raise RuleError(
                f"{where}: field must be attributes.KEY or one of {', '.join(FIELDS)}, "
                f"got {field!r}"
            )
        op = item.get("op")
        if op not in OPS:
            raise RuleError(f"{where}: op must be one of {', '.join(OPS)}, got {op!r}")
        if "value" not in item:
            raise RuleError(f"{where}: value is missing")
        value = item["value"]
        if op == "in" and not isinstance(value, list):
            raise RuleError(f"{where}: op in needs a list value")
        if op in ("gte", "lte") and _num(value) is None:
            raise RuleError(f"{where}: op {op} needs a number, got {value!r}")
        days = item.get("days", 30)
        if "days" in item and field != "complaints":
            raise RuleError(f"{where}: days only applies to complaints")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650:
            raise RuleError(f"{where}: days must be a whole number of days, 1 to 3650")
        conditions.append(Condition(field, op, value, days))
    return Rule(match=match, conditions=tuple(conditions))


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pandas NA
    except TypeError:
        return False


def _test(cond: Condition, value: Any) -> bool:
    if cond.op == "ne":
        return _missing(value) or str(value) != str(cond.value)
    if _missing(value):
        return False
    if cond.op == "eq":
        a, b = _num(value), _num(cond.value)
        return a == b if a is not None and b is not None else str(value) == str(cond.value)
    if cond.op == "in":
        return str(value) in {str(v) for v in cond.value}
    a, b = _num(value), _num(cond.value)
    if a is None or b is None:
        return False
    return a >= b if cond.op == "gte" else a <= b


def matches(rule: Rule, facts: Mapping[str, Any]) -> bool:
    """Whether a customer's facts (a :func:`customer_facts` row) satisfy ``rule``."""
    results = []
    for cond in rule.conditions:
        if cond.field.startswith("attributes."):
            value = (facts.get("attributes") or {}).get(cond.field.removeprefix("attributes."))
        else:
            value = facts.get(cond.column)
        results.append(_test(cond, value))
    return all(results) if rule.match == "all" else any(results)


def define_segment(
    engine: Engine, name: str, rule: str | Mapping[str, Any], *, actor: str
) -> Segment:
    """Check ``rule`` and store it as the segment ``name`` (replacing one of that name).

    Raises:
        RuleError: The rule is malformed.
        ValueError: The name or actor is empty.
    """
    parsed = parse_rule(rule)
    definition = {
        "match": parsed.match,
        "conditions": [
            {"field": c.field, "op": c.op, "value": c.value}
            | ({"days": c.days} if c.field == "complaints" else {})
            for c in parsed.conditions
        ],
    }
    return save_segment(engine, name, definition, actor=actor)


def segment_members(conn: Connection | Engine, name: str, *, now: datetime | None = None) -> Any:
    """The customers in segment ``name`` now, as a DataFrame of their facts.

    Raises:
        NotFoundError: No such segment.
        RuleError: The stored rule is no longer valid.
    """
    rule = parse_rule(get_segment(conn, name).definition)
    facts = customer_facts(conn, now=now, complaint_days=rule.complaint_days or (30,))
    if facts.empty:
        return facts
    keep = [matches(rule, row) for row in facts.to_dict("records")]
    return facts[keep].reset_index(drop=True)


def churn_reasons(facts: Mapping[str, Any]) -> list[str]:
    """Why a customer (a :func:`customer_facts` row) is at risk of churning; empty if not."""
    reasons = []
    w = CHURN_WINDOW_DAYS
    complaints = int(facts.get(f"complaints_{CHURN_COMPLAINT_DAYS}d") or 0)
    if complaints >= CHURN_COMPLAINTS:
        reasons.append(f"{complaints} complaints in {CHURN_COMPLAINT_DAYS} days")
    nps: Any = facts.get("last_nps")
    if not _missing(nps) and int(nps) <= 6:
        reasons.append(f"NPS detractor (last score {int(nps)})")
    recent = int(facts.get(f"mentions_{w}d") or 0)
    if recent and not int(facts.get(f"positive_{w}d") or 0):
        share = int(facts.get(f"negative_{w}d") or 0) / recent
        before = int(facts.get(f"mentions_prev_{w}d") or 0)
        share_before = int(facts.get(f"negative_prev_{w}d") or 0) / before if before else 0.0
        if share > share_before:
            reasons.append(
                f"negative trend ({share:.0%} negative in {w} days, {share_before:.0%} before) "
                f"and no positive mention in {w} days"
            )
    return reasons


def churn_risk(
    conn: Connection | Engine,
    customer_ids: Sequence[str] | None = None,
    *,
    now: datetime | None = None,
) -> Any:
    """The churn-risk flag of each customer (see the module docstring for the rule).

    Args:
        conn: A connection or an engine.
        customer_ids: Only these customers (default every customer).
        now: The reference time for the windows.

    Returns:
        A DataFrame with ``customer_id``, ``churn_risk`` (bool) and ``reasons``
        (a list of strings), by ``customer_id``.
    """
    import pandas as pd

    facts = customer_facts(
        conn,
        now=now,
        complaint_days=(CHURN_COMPLAINT_DAYS,),
        window_days=CHURN_WINDOW_DAYS,
        customer_ids=customer_ids,
    )
    rows = []
    for row in facts.to_dict("records"):
        reasons = churn_reasons(row)
        rows.append(
            {"customer_id": row["customer_id"], "churn_risk": bool(reasons), "reasons": reasons}
        )
    df = pd.DataFrame(rows, columns=["customer_id", "churn_risk", "reasons"])
    df["churn_risk"] = df["churn_risk"].astype(bool)
    return df
