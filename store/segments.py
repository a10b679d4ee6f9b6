"""Segments (stored rule definitions) and the per-customer facts their rules are evaluated on.

A segment is a named rule kept in ``segments.definition`` (JSON); its members
are never stored: ``listenwell.crm.segments`` evaluates the rule over
:func:`customer_facts` each time, so a segment is always current.

The facts of a customer come from their linked mentions
(:func:`listenwell.store.customer360.linked_mentions`) with the labels in force
(an agent's correction, else the model's), and their survey answers. A
*complaint* is a mention whose intent is ``complaint`` or whose sentiment is
``negative``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine, Table, and_, case, func, literal, or_, select

from .customer360 import label_in_force, linked_mentions
from .engine import read_connection
from .errors import NotFoundError
from .models import CustomerRow, MentionRow, SegmentRow, SurveyRow, UTCDateTime, utcnow
from .writes import record_audit

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FACT_COLUMNS",
    "Segment",
    "customer_facts",
    "delete_segment",
    "get_segment",
    "list_segments",
    "save_segment",
]

FACT_COLUMNS = (
    "customer_pk",
    "customer_id",
    "name",
    "segment",
    "attributes",
    "lifetime_value",
    "mentions",
    "positive",
    "negative",
    "neutral",
    "positive_share",
    "negative_share",
    "last_mention_at",
    "last_nps",
    "last_nps_at",
)
"""The columns :func:`customer_facts` always returns (plus the windowed counts)."""

_DEFAULT_TIMEOUT_S = 30.0
_segments = cast(Table, SegmentRow.__table__)
_customers = cast(Table, CustomerRow.__table__)
_mentions = cast(Table, MentionRow.__table__)
_surveys = cast(Table, SurveyRow.__table__)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stored segment definition."""

    name: str
    definition: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_at: datetime


def _as_segment(r: Any) -> Segment:
    return Segment(
        name=r.name,
        definition=dict(r.definition or {}),
        created_by=r.created_by,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def save_segment(engine: Engine, name: str, definition: dict[str, Any], *, actor: str) -> Segment:
    """Create or replace the segment ``name`` (the caller validates ``definition``).

    The write and its audit-log entry (``segment.define``) share one transaction.

    Raises:
        ValueError: The name or actor is empty or too long.
    """
    name = name.strip()
    actor = actor.strip()
    if not name or len(name) > 100:
        raise ValueError("a segment name must be 1 to 100 characters")
    if not actor:
        raise ValueError("actor must not be empty")
    now = utcnow()
    with engine.begin() as conn:
        found = conn.execute(select(_segments.c.id).where(_segments.c.name == name)).first()
        if found is None:
            conn.execute(
                _segments.insert().values(
                    name=name,
                    definition=definition,
                    created_by=actor,
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            conn.execute(
                _segments.update()
                .where(_segments.c.id == found.id)
                .values(definition=definition, updated_at=now)
            )
        record_audit(conn, actor, "segment.define", "segment", name, {"definition": definition})
        row = conn.execute(select(_segments).where(_segments.c.name == name)).one()
    return _as_segment(row)


def get_segment(conn: Connection | Engine, name: str) -> Segment:
    """The segment called ``name``.

    Raises:
        NotFoundError: There is none.
    """
    stmt = select(_segments).where(_segments.c.name == name)
    if isinstance(conn, Engine):
        with conn.connect() as c:
            row = c.execute(stmt).first()
    else:
        row = conn.execute(stmt).first()
    if row is None:
        raise NotFoundError(f"no segment called {name!r}")
    return _as_segment(row)


def list_segments(conn: Connection | Engine) -> list[Segment]:
    """Every segment, by name."""
    stmt = select(_segments).order_by(_segments.c.name)
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return [_as_segment(r) for r in c.execute(stmt)]
    return [_as_segment(r) for r in conn.execute(stmt)]


def delete_segment(engine: Engine, name: str, *, actor: str) -> None:
    """Delete the segment ``name`` (audited as ``segment.delete``).

    Raises:
        NotFoundError: There is none.
    """
    with engine.begin() as conn:
        done = conn.execute(_segments.delete().where(_segments.c.name == name)).rowcount
        if not done:
            raise NotFoundError(f"no segment called {name!r}")
        record_audit(conn, actor, "segment.delete", "segment", name, None)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).replace(",", "").strip())
    except ValueError:
        return None


def customer_facts(
    conn: Connection | Engine,
    *,
    now: datetime | None = None,
    complaint_days: Iterable[int] = (30,),
    window_days: int = 60,
    customer_ids: Sequence[str] | None = None,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """One row of facts per customer (erased customers left out), for segment and churn rules.

    Args:
        conn: A connection or an engine.
        now: The reference time for the windows (default now).
        complaint_days: For each N, a column ``complaints_Nd``: complaints in the last N days.
        window_days: W for ``mentions_Wd``, ``positive_Wd``, ``negative_Wd`` (the last W
            days) and ``mentions_prev_Wd``, ``negative_prev_Wd`` (the W days before).
        customer_ids: Only these customers.
        timeout_s: Statement time limit when ``conn`` is an engine.

    Returns:
        :data:`FACT_COLUMNS` plus the windowed columns, by ``customer_id``.
        Shares are fractions (0-1) of the mentions with a sentiment label;
        empty (NaN) without any.
    """
    import pandas as pd

    now = now or utcnow()
    days = sorted({int(d) for d in complaint_days})
    cust_stmt = select(
        _customers.c.id,
        _customers.c.customer_id,
        _customers.c.name,
        _customers.c.segment,
        _customers.c.attributes,
    ).where(_customers.c.erased_at.is_(None))
    if customer_ids is not None:
        cust_stmt = cust_stmt.where(_customers.c.customer_id.in_(list(customer_ids)))
    with read_connection(conn, timeout_s) if isinstance(conn, Engine) else _borrow(conn) as c:
        customers = c.execute(cust_stmt.order_by(_customers.c.customer_id)).all()
        pks = [int(r.id) for r in customers]
        link = linked_mentions(pks if customer_ids is not None else None).subquery("link")
        per_mention = (
            select(
                link.c.customer_pk,
                _mentions.c.created_at.label("at"),
                label_in_force("sentiment").label("s"),
                label_in_force("intent").label("i"),
            )
            .select_from(link.join(_mentions, _mentions.c.id == link.c.mention_id))
            .subquery("pm")
        )
        at, s, i = per_mention.c.at, per_mention.c.s, per_mention.c.i

        def since(n: int) -> Any:
            return literal(now - timedelta(days=n), UTCDateTime())

        def count_if(*conds: Any) -> Any:
            return func.sum(case((and_(*conds), 1), else_=0))

        complaint = or_(i == "complaint", s == "negative")
        cols = [
            per_mention.c.customer_pk,
            func.count().label("mentions"),
            count_if(s == "positive").label("positive"),
            count_if(s == "negative").label("negative"),
            count_if(s == "neutral").label("neutral"),
            func.max(at).label("last_mention_at"),
            *(count_if(complaint, at >= since(n), at <= since(0)).label(f"complaints_{n}d")
              for n in days),
            count_if(at >= since(window_days), at <= since(0)).label(f"mentions_{window_days}d"),
            count_if(s == "positive", at >= since(window_days), at <= since(0)).label(
                f"positive_{window_days}d"
            ),
            count_if(s == "negative", at >= since(window_days), at <= since(0)).label(
                f"negative_{window_days}d"
            ),
            count_if(at >= since(2 * window_days), at < since(window_days)).label(
                f"mentions_prev_{window_days}d"
            ),
            count_if(s == "negative", at >= since(2 * window_days), at < since(window_days)).label(
                f"negative_prev_{window_days}d"
            ),
        ]  # fmt: skip
        agg = {
            int(r.customer_pk): r._asdict()
            for r in c.execute(select(*cols).group_by(per_mention.c.customer_pk))
        }
        nps: dict[int, tuple[int, Any]] = {}
        nps_stmt = (
            select(_surveys.c.customer_pk, _surveys.c.score, _surveys.c.answered_at)
            .where(
                _surveys.c.kind == "nps",
                _surveys.c.customer_pk.is_not(None),
                _surveys.c.answered_at <= literal(now, UTCDateTime()),
            )
            .order_by(_surveys.c.answered_at, _surveys.c.id)
        )
        for r in c.execute(nps_stmt):
            nps[int(r.customer_pk)] = (int(r.score), r.answered_at)
    counts = [
        "mentions",
        "positive",
        "negative",
        "neutral",
        *(f"complaints_{n}d" for n in days),
        f"mentions_{window_days}d",
        f"positive_{window_days}d",
        f"negative_{window_days}d",
        f"mentions_prev_{window_days}d",
        f"negative_prev_{window_days}d",
    ]
    rows = []
    for cr in customers:
        a = agg.get(int(cr.id), {})
        row: dict[str, Any] = {
            "customer_pk": int(cr.id),
            "customer_id": cr.customer_id,
            "name": cr.name,
            "segment": cr.segment,
            "attributes": dict(cr.attributes or {}),
            "lifetime_value": _number((cr.attributes or {}).get("lifetime_value")),
        }
        for col in counts:
            row[col] = int(a.get(col) or 0)
        labelled = row["positive"] + row["negative"] + row["neutral"]
        row["positive_share"] = row["positive"] / labelled if labelled else None
        row["negative_share"] = row["negative"] / labelled if labelled else None
        row["last_mention_at"] = a.get("last_mention_at")
        last = nps.get(int(cr.id))
        row["last_nps"] = last[0] if last else None
        row["last_nps_at"] = last[1] if last else None
        rows.append(row)
    df = pd.DataFrame(rows, columns=[*FACT_COLUMNS, *counts[4:]])
    if not df.empty:
        df["last_mention_at"] = pd.to_datetime(df["last_mention_at"], utc=True)
        df["last_nps"] = df["last_nps"].astype("Int64")
    return df


class _borrow:  # noqa: N801 - used like a function
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __enter__(self) -> Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None
