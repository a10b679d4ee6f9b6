"""Saved views: named sets of dashboard filters, per user and page, optionally shared.

A view belongs to its ``owner`` (a username) and one dashboard ``page`` (``inbox``,
``escalations``, ...); its name is unique per owner and page, so saving under a
name that exists replaces that view's filters. A ``shared`` view is listed for
everyone on that page, but only its owner can change or delete it. The filters
are a small JSON object the page defines and reads back; the store only checks
that it is one. Every save and delete is audit-logged with the actor.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Row, Table, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from .engine import using, writing
from .errors import NotFoundError, StoreError, check_text_inputs
from .models import SavedViewRow, utcnow
from .writes import record_audit

__all__ = [
    "MAX_FILTER_CHARS",
    "SavedView",
    "ViewError",
    "delete_view",
    "get_view",
    "list_views",
    "save_view",
]

MAX_FILTER_CHARS = 10_000
"""The longest a view's filters may be, as JSON text."""

_NAME_CHARS = 100
_OWNER_CHARS = 200
_PAGE = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
_V = cast(Table, SavedViewRow.__table__)


class ViewError(StoreError):
    """A view that cannot be saved as asked (bad name, page or filters)."""


@dataclass(frozen=True, slots=True)
class SavedView:
    """One saved view.

    Attributes:
        id: Its id.
        owner: The username it belongs to.
        page: The dashboard page it is for.
        name: What its owner called it.
        filters: The page's filter values, as the page saved them.
        shared: Whether everyone sees it in their list.
        created_at: When it was (last) saved.
    """

    id: int
    owner: str
    page: str
    name: str
    filters: dict[str, Any]
    shared: bool
    created_at: datetime


def _as_view(r: Row[Any]) -> SavedView:
    return SavedView(
        id=int(r.id),
        owner=str(r.owner),
        page=str(r.page),
        name=str(r.name),
        filters=dict(r.filters) if isinstance(r.filters, dict) else {},
        shared=bool(r.shared),
        created_at=r.created_at,
    )


def _check(owner: str, page: str, name: str, filters: Any) -> tuple[str, str, str]:
    who = owner.strip()
    if not who or len(who) > _OWNER_CHARS:
        raise ViewError(f"a view needs an owner of 1 to {_OWNER_CHARS} characters")
    if not _PAGE.match(page):
        raise ViewError(f"invalid page {page!r}: lower-case letters, digits, '-' and '_'")
    label = " ".join(name.split())
    if not label:
        raise ViewError("give the view a name")
    if len(label) > _NAME_CHARS:
        raise ViewError(f"a view's name is at most {_NAME_CHARS} characters")
    if not isinstance(filters, dict):
        raise ViewError("a view's filters must be a mapping of names to values")
    try:
        size = len(json.dumps(filters))
    except (TypeError, ValueError):
        raise ViewError(
            "a view's filters must be plain JSON values (text, numbers, lists)"
        ) from None
    if size > MAX_FILTER_CHARS:
        raise ViewError(f"a view's filters are at most {MAX_FILTER_CHARS:,} characters as JSON")
    return who, page, label


def save_view(
    engine: Engine | Connection,
    *,
    owner: str,
    page: str,
    name: str,
    filters: dict[str, Any],
    shared: bool = False,
    actor: str,
) -> SavedView:
    """Save ``filters`` as ``owner``'s view ``name`` on ``page``; the same name is replaced.

    Args:
        engine: The database (or a connection inside the caller's transaction).
        owner: The username the view belongs to.
        page: The dashboard page (``inbox``, ``escalations``, ...).
        name: The view's name (spaces collapsed; 1 to 100 characters).
        filters: JSON-able filter values, at most :data:`MAX_FILTER_CHARS` as JSON.
        shared: List it for everyone on that page.
        actor: Who saves it, for the audit log (``view.save``).

    Returns:
        The stored view.

    Raises:
        ViewError: A bad owner, page, name or filters.
    """
    who, page, label = _check(owner, page, name, filters)
    now = utcnow()
    values = {
        "owner": who,
        "page": page,
        "name": label,
        "filters": filters,
        "shared": bool(shared),
        "created_at": now,
    }
    with writing(engine) as c:
        ins: Any = postgresql.insert(_V) if c.dialect.name == "postgresql" else sqlite.insert(_V)
        view_id = c.execute(
            ins.values(**values)
            .on_conflict_do_update(
                index_elements=["owner", "page", "name"],
                set_={"filters": filters, "shared": bool(shared), "created_at": now},
            )
            .returning(_V.c.id)
        ).scalar_one()
        record_audit(
            c,
            actor,
            "view.save",
            "saved_view",
            str(view_id),
            {"owner": who, "page": page, "name": label, "shared": bool(shared)},
        )
    return SavedView(int(view_id), who, page, label, dict(filters), bool(shared), now)


def list_views(conn: Connection | Engine, *, owner: str, page: str) -> list[SavedView]:
    """The views ``owner`` can use on ``page``: their own, then those others shared.

    Each group is in name order (others' shared views then by owner).
    """
    check_text_inputs(owner=owner, page=page)
    stmt = (
        select(_V)
        .where(_V.c.page == page, or_(_V.c.owner == owner, _V.c.shared.is_(True)))
        .order_by(_V.c.name, _V.c.owner, _V.c.id)
    )
    with using(conn) as c:
        rows = [_as_view(r) for r in c.execute(stmt)]
    return [v for v in rows if v.owner == owner] + [v for v in rows if v.owner != owner]


def get_view(conn: Connection | Engine, view_id: int, *, viewer: str) -> SavedView:
    """One view, if ``viewer`` owns it or it is shared.

    Raises:
        NotFoundError: No such view, or it is someone else's and not shared.
    """
    with using(conn) as c:
        r = c.execute(select(_V).where(_V.c.id == view_id)).first()
    if r is None or (r.owner != viewer and not r.shared):
        raise NotFoundError(f"no saved view {view_id}")
    return _as_view(r)


def delete_view(engine: Engine | Connection, view_id: int, *, owner: str, actor: str) -> None:
    """Delete one of ``owner``'s views (audited as ``view.delete``).

    Raises:
        NotFoundError: ``owner`` has no view ``view_id`` (others' shared views included:
            only the owner deletes a view).
    """
    with writing(engine) as c:
        r = c.execute(select(_V).where(_V.c.id == view_id, _V.c.owner == owner)).first()
        if r is None:
            raise NotFoundError(f"you have no saved view {view_id}")
        c.execute(delete(_V).where(_V.c.id == view_id))
        record_audit(
            c,
            actor,
            "view.delete",
            "saved_view",
            str(view_id),
            {"owner": owner, "page": r.page, "name": r.name},
        )
