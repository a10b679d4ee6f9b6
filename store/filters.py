"""The choices the dashboard's shared filters offer: theme names and customer segments."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, select

from .engine import using
from .models import CustomerRow, ThemeRow

__all__ = ["FilterOptions", "filter_options"]

_T = ThemeRow.__table__
_C = CustomerRow.__table__


@dataclass(frozen=True)
class FilterOptions:
    """Theme names in force (active themes) and the customer segments in use, sorted."""

    themes: tuple[str, ...]
    segments: tuple[str, ...]


def filter_options(conn: Connection | Engine, *, timeout_s: float | None = None) -> FilterOptions:
    """What the theme and segment filters can choose from (both small: one row per value)."""
    with using(conn, timeout_s) as c:
        themes = c.execute(
            select(func.coalesce(_T.c.name, _T.c.label))
            .where(_T.c.status == "active", _T.c.merged_into.is_(None))
            .distinct()
        ).scalars()
        segments = c.execute(
            select(_C.c.segment).where(_C.c.segment.is_not(None)).distinct()
        ).scalars()
        return FilterOptions(
            themes=tuple(sorted(str(t) for t in themes if t)),
            segments=tuple(sorted(str(s) for s in segments if s)),
        )
