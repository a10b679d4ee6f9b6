"""Satisfaction surveys: import CSAT and NPS answers, read them, and trend them next to sentiment.

**Import** (:func:`import_surveys`) is idempotent on ``(source, external_id)``:
importing the same file again updates the same rows and adds none. A row
without an ``external_id`` gets a content hash of its respondent, kind, score
and time instead, so re-imports of such files are idempotent too.

Each answer is linked to a customer by ``customer_id`` (or ``respondent``),
else by ``email`` (case-insensitive; an e-mail shared by several customers
links none), and to the conversation it most likely rates: the customer's
newest conversation resolved at or before ``answered_at``. An answer whose
respondent is unknown is still stored (it counts in the CSAT and NPS
figures), unlinked. A row that cannot be stored (unknown kind, score out of
range, bad time) is reported with its line number and reason.

**Figures.** CSAT is the share of answers of 4 or 5 (on 1-5), in percent, and
their mean. NPS is the percentage of promoters (9-10) minus the percentage of
detractors (0-6), from -100 to 100. Net sentiment is the percentage of
positive minus the percentage of negative mentions among those with a
sentiment label in force, from -100 to 100, so it reads on the NPS scale.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine, Table, case, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from .customer360 import label_in_force, linked_mentions, time_bucket
from .engine import using
from .errors import RecordError
from .models import ConversationRow, CustomerRow, MentionRow, SurveyRow, utcnow
from .records import parse_timestamp
from .writes import chunked, record_audit

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "KINDS",
    "SURVEY_COLUMNS",
    "SurveyImportResult",
    "csat_nps_trend",
    "import_surveys",
    "normalize_survey",
    "survey_frame",
]

KINDS = ("csat", "nps")
"""The kinds of survey answer."""

SURVEY_COLUMNS = ("customer_id", "email", "kind", "score", "answered_at", "comment", "external_id")
"""The columns a survey file may have (``respondent`` is read as ``customer_id``)."""

_RANGES = {"csat": (1, 5), "nps": (0, 10)}
_DEFAULT_TIMEOUT_S = 15.0
_MAX_COMMENT = 10_000

_surveys = cast(Table, SurveyRow.__table__)
_customers = cast(Table, CustomerRow.__table__)
_conv = cast(Table, ConversationRow.__table__)
_mentions = cast(Table, MentionRow.__table__)


@dataclass(slots=True)
class SurveyImportResult:
    """What an import did.

    Attributes:
        inserted: New answers stored.
        updated: Answers already stored (same source and external id), rewritten.
        linked_customers: Stored answers linked to a customer.
        linked_conversations: Stored answers linked to a resolved conversation.
        unknown_respondents: Stored answers whose customer was not found.
        errors: ``(line, reason)`` of each row that was not stored.
    """

    inserted: int = 0
    updated: int = 0
    linked_customers: int = 0
    linked_conversations: int = 0
    unknown_respondents: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "linked_customers": self.linked_customers,
            "linked_conversations": self.linked_conversations,
            "unknown_respondents": self.unknown_respondents,
            "errors": [{"line": line, "reason": reason} for line, reason in self.errors],
        }


def _text(raw: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = raw.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def normalize_survey(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check one survey row and return the values to store (without ``source`` and links).

    Returns:
        ``customer_id``, ``email``, ``kind``, ``score``, ``answered_at``,
        ``comment``, ``external_id`` (a content hash where the row has none).

    Raises:
        RecordError: Unknown kind, a score that is not a whole number in the
            kind's range, or a missing or bad ``answered_at``.
    """
    kind = (_text(raw, "kind") or "").lower()
    if kind not in KINDS:
        raise RecordError(f"kind must be csat or nps, got {kind or 'nothing'!r}")
    text = _text(raw, "score")
    if text is None:
        raise RecordError("score is missing")
    try:
        number = float(text)
    except ValueError:
        raise RecordError(f"score is not a number: {text[:20]!r}") from None
    if not number.is_integer():
        raise RecordError(f"score must be a whole number, got {text[:20]}")
    low, high = _RANGES[kind]
    score = int(number)
    if not low <= score <= high:
        raise RecordError(f"{kind} score must be {low} to {high}, got {score}")
    try:
        answered = parse_timestamp(_text(raw, "answered_at"))
    except RecordError as exc:
        raise RecordError(exc.reason.replace("created_at", "answered_at")) from None
    customer_id = _text(raw, "customer_id", "respondent")
    email = _text(raw, "email")
    comment = _text(raw, "comment")
    if comment is not None and len(comment) > _MAX_COMMENT:
        raise RecordError(f"comment is longer than {_MAX_COMMENT:,} characters")
    external_id = _text(raw, "external_id")
    if external_id is None:
        key = "|".join([customer_id or "", (email or "").lower(), kind, str(score)])
        key += "|" + answered.isoformat()
        external_id = "sha1:" + hashlib.sha1(key.encode("utf-8")).hexdigest()
    elif len(external_id) > 200:
        raise RecordError("external_id is longer than 200 characters")
    return {
        "customer_id": customer_id,
        "email": email,
        "kind": kind,
        "score": score,
        "answered_at": answered,
        "comment": comment,
        "external_id": external_id,
    }


class _Linker:
    """Finds customers and their resolved conversations, caching per customer."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.resolved: dict[int, tuple[list[datetime], list[int]]] = {}

    def customer(self, customer_id: str | None, email: str | None) -> int | None:
        live = _customers.c.erased_at.is_(None)
        if customer_id:
            pk = self.conn.execute(
                select(_customers.c.id).where(_customers.c.customer_id == customer_id, live)
            ).scalar()
            if pk is not None:
                return int(pk)
        if email:
            pks = self.conn.execute(
                select(_customers.c.id)
                .where(func.lower(_customers.c.email) == email.lower(), live)
                .limit(2)
            ).all()
            if len(pks) == 1:
                return int(pks[0][0])
        return None

    def conversation(self, pk: int, answered_at: datetime) -> int | None:
        if pk not in self.resolved:
            mine = linked_mentions([pk]).subquery("mine")
            rows = self.conn.execute(
                select(_conv.c.id, _conv.c.resolved_at)
                .where(
                    _conv.c.resolved_at.is_not(None),
                    or_(
                        _conv.c.customer_pk == pk,
                        _conv.c.mention_id.in_(select(mine.c.mention_id)),
                    ),
                )
                .order_by(_conv.c.resolved_at, _conv.c.id)
            ).all()
            self.resolved[pk] = (
                [_utc(r.resolved_at) for r in rows],
                [int(r.id) for r in rows],
            )
        times, ids = self.resolved[pk]
        i = bisect.bisect_right(times, answered_at)
        return ids[i - 1] if i else None


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Item = Mapping[str, Any] | tuple[int, Mapping[str, Any] | None, str | None]


def import_surveys(
    engine: Engine,
    rows: Iterable[Item],
    *,
    source: str = "import",
    actor: str = "system",
    batch_size: int = 500,
    first_line: int = 2,
) -> SurveyImportResult:
    """Store CSAT and NPS answers, linked to customers and resolved conversations.

    Args:
        engine: The database.
        rows: Each either a mapping with the :data:`SURVEY_COLUMNS`, or a
            ``(line, mapping or None, error or None)`` triple as a file reader
            yields them (``None`` and the error: the line could not be read).
        source: Where the answers come from (part of the idempotency key).
        actor: Who imports (for the audit log).
        batch_size: Rows written per transaction.
        first_line: The line number of the first plain mapping (after a header).

    Returns:
        The counts and the rejected rows' line numbers and reasons.

    Raises:
        ValueError: ``source`` is empty or too long.
    """
    source = source.strip()
    if not source or len(source) > 100:
        raise ValueError("source must be 1 to 100 characters")
    result = SurveyImportResult()

    def numbered() -> Iterable[tuple[int, Mapping[str, Any] | None, str | None]]:
        line = first_line
        for item in rows:
            if isinstance(item, tuple):
                yield item
            else:
                yield line, item, None
            line += 1

    for batch in chunked(numbered(), batch_size):
        with engine.begin() as conn:
            linker = _Linker(conn)
            values: dict[str, dict[str, Any]] = {}
            for line, raw, error in batch:
                if raw is None:
                    result.errors.append((line, error or "unreadable row"))
                    continue
                try:
                    v = normalize_survey(raw)
                except RecordError as exc:
                    result.errors.append((line, exc.reason))
                    continue
                pk = linker.customer(v.pop("customer_id"), v.pop("email"))
                v["customer_pk"] = pk
                v["conversation_id"] = (
                    None if pk is None else linker.conversation(pk, v["answered_at"])
                )
                v["source"] = source
                v["imported_at"] = utcnow()
                values[v["external_id"]] = v  # the last of repeats in one batch wins
            if not values:
                continue
            existing = {
                r[0]
                for r in conn.execute(
                    select(_surveys.c.external_id).where(
                        _surveys.c.source == source, _surveys.c.external_id.in_(list(values))
                    )
                )
            }
            ins: Any = (
                postgresql.insert(_surveys)
                if conn.dialect.name == "postgresql"
                else sqlite.insert(_surveys)
            )
            stmt = ins.on_conflict_do_update(
                index_elements=["source", "external_id"],
                set_={
                    k: getattr(ins.excluded, k)
                    for k in (
                        "kind",
                        "score",
                        "comment",
                        "customer_pk",
                        "conversation_id",
                        "answered_at",
                        "imported_at",
                    )
                },
            )
            conn.execute(stmt, list(values.values()))
            for v in values.values():
                result.linked_customers += v["customer_pk"] is not None
                result.linked_conversations += v["conversation_id"] is not None
                result.unknown_respondents += v["customer_pk"] is None
            result.inserted += len(values) - len(existing)
            result.updated += len(existing)
            record_audit(
                conn,
                actor,
                "surveys.import",
                "surveys",
                source,
                {"stored": len(values), "new": len(values) - len(existing)},
            )
    return result


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def survey_frame(
    conn: Connection | Engine,
    *,
    start: date | None = None,
    end: date | None = None,
    kind: str | None = None,
    limit: int = 10_000,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """Survey answers, newest first.

    Args:
        conn: A connection or an engine.
        start: First day (UTC) included.
        end: Last day (UTC) included.
        kind: Only ``csat`` or ``nps``.
        limit: At most this many rows.
        timeout_s: Statement time limit when ``conn`` is an engine.

    Returns:
        Columns ``id``, ``source``, ``external_id``, ``kind``, ``score``,
        ``comment``, ``customer_id``, ``conversation_id``, ``answered_at``.
    """
    import pandas as pd

    stmt = (
        select(
            _surveys.c.id,
            _surveys.c.source,
            _surveys.c.external_id,
            _surveys.c.kind,
            _surveys.c.score,
            _surveys.c.comment,
            _customers.c.customer_id,
            _surveys.c.conversation_id,
            _surveys.c.answered_at,
        )
        .select_from(_surveys.outerjoin(_customers, _customers.c.id == _surveys.c.customer_pk))
        .order_by(_surveys.c.answered_at.desc(), _surveys.c.id.desc())
        .limit(max(1, limit))
    )
    if start is not None:
        stmt = stmt.where(_surveys.c.answered_at >= _day_start(start))
    if end is not None:
        stmt = stmt.where(_surveys.c.answered_at < _day_start(end + timedelta(days=1)))
    if kind is not None:
        stmt = stmt.where(_surveys.c.kind == kind)
    with using(conn, timeout_s) as c:
        result = c.execute(stmt)
        df = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    df["conversation_id"] = df["conversation_id"].astype("Int64")
    return df


def _bucket_key(value: Any) -> date:
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    assert isinstance(value, datetime | date)
    return value.date() if isinstance(value, datetime) else value


def csat_nps_trend(
    conn: Connection | Engine,
    *,
    freq: str = "week",
    start: date | None = None,
    end: date | None = None,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """CSAT, NPS and net sentiment of mentions per week or month (UTC).

    Args:
        conn: A connection or an engine.
        freq: ``week`` (buckets start on Mondays) or ``month``.
        start: First day included.
        end: Last day included.
        timeout_s: Statement time limit when ``conn`` is an engine.

    Returns:
        One row per bucket with any answer or labelled mention, oldest first:
        ``bucket`` (date), ``csat_answers``, ``csat`` (% of 4-5), ``csat_mean``,
        ``nps_answers``, ``promoters``, ``detractors``, ``nps``,
        ``mentions`` (with a sentiment label), ``net_sentiment`` (% positive - %
        negative). Figures without answers or mentions are empty (NaN).

    Raises:
        ValueError: ``freq`` is not ``week`` or ``month``.
    """
    import pandas as pd

    if freq not in ("week", "month"):
        raise ValueError("freq must be week or month")
    with using(conn, timeout_s) as c:
        dialect = c.dialect.name
        sb = time_bucket(dialect, _surveys.c.answered_at, freq).label("bucket")
        s_stmt = select(
            sb,
            _surveys.c.kind,
            func.count().label("n"),
            func.avg(_surveys.c.score).label("mean"),
            func.sum(case((_surveys.c.score >= 9, 1), else_=0)).label("promoters"),
            func.sum(case((_surveys.c.score <= 6, 1), else_=0)).label("detractors"),
            func.sum(case((_surveys.c.score >= 4, 1), else_=0)).label("satisfied"),
        ).group_by(sb, _surveys.c.kind)
        label = label_in_force("sentiment").label("sentiment")
        labelled = select(_mentions.c.created_at, label)
        if start is not None:
            s_stmt = s_stmt.where(_surveys.c.answered_at >= _day_start(start))
            labelled = labelled.where(_mentions.c.created_at >= _day_start(start))
        if end is not None:
            s_stmt = s_stmt.where(_surveys.c.answered_at < _day_start(end + timedelta(days=1)))
            labelled = labelled.where(_mentions.c.created_at < _day_start(end + timedelta(days=1)))
        sub = labelled.subquery("labelled")
        mb = time_bucket(dialect, sub.c.created_at, freq).label("bucket")
        m_stmt = (
            select(
                mb,
                func.count(sub.c.sentiment).label("n"),
                func.sum(case((sub.c.sentiment == "positive", 1), else_=0)).label("pos"),
                func.sum(case((sub.c.sentiment == "negative", 1), else_=0)).label("neg"),
            )
            .where(sub.c.sentiment.in_(("positive", "neutral", "negative")))
            .group_by(mb)
        )
        survey_rows = c.execute(s_stmt).all()
        mention_rows = c.execute(m_stmt).all()
    rows: dict[date, dict[str, Any]] = {}
    for r in survey_rows:
        row = rows.setdefault(_bucket_key(r.bucket), {})
        n = int(r.n)
        if r.kind == "csat":
            row["csat_answers"] = n
            row["csat"] = 100.0 * int(r.satisfied) / n
            row["csat_mean"] = float(r.mean)
        else:
            row["nps_answers"] = n
            row["promoters"] = int(r.promoters)
            row["detractors"] = int(r.detractors)
            row["nps"] = 100.0 * (int(r.promoters) - int(r.detractors)) / n
    for r in mention_rows:
        row = rows.setdefault(_bucket_key(r.bucket), {})
        n = int(r.n)
        row["mentions"] = n
        row["net_sentiment"] = 100.0 * (int(r.pos) - int(r.neg)) / n if n else None
    columns = [
        "bucket",
        "csat_answers",
        "csat",
        "csat_mean",
        "nps_answers",
        "promoters",
        "detractors",
        "nps",
        "mentions",
        "net_sentiment",
    ]
    df = pd.DataFrame([{"bucket": b, **rows[b]} for b in sorted(rows)], columns=columns)
    for col in ("csat_answers", "nps_answers", "promoters", "detractors", "mentions"):
        df[col] = df[col].fillna(0).astype("int64")
    for col in ("csat", "csat_mean", "nps", "net_sentiment"):
        df[col] = df[col].astype("float64")
    return df
