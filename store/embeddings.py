"""Stored sentence embeddings: one vector per mention, computed once and reused.

Every NLP stage that needs an embedding (themes, intent, linking) reads it
from here instead of running the encoder again. A vector is kept as raw
``float32`` little-endian bytes with its dimension and the model that made it,
so it reads back bit-for-bit on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    delete,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from .models import BigId, UTCDateTime, metadata, utcnow

__all__ = [
    "EMBEDDING_DTYPE",
    "Embedding",
    "count_embeddings",
    "delete_embeddings",
    "embeddings",
    "read_embeddings",
    "write_embeddings",
]

# float32, little-endian, whatever the machine's byte order.
EMBEDDING_DTYPE = np.dtype("<f4")

embeddings = Table(
    "embeddings",
    metadata,
    Column(
        "mention_id",
        BigId,
        ForeignKey("mentions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(100), nullable=False),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
)


@dataclass(frozen=True, slots=True)
class Embedding:
    """One mention's vector and the model that made it."""

    mention_id: int
    model_name: str
    model_version: str
    vector: npt.NDArray[np.float32]


def _to_bytes(vector: npt.ArrayLike) -> tuple[int, bytes]:
    arr = np.asarray(vector, dtype=EMBEDDING_DTYPE)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"an embedding must be a non-empty 1-d vector, got shape {arr.shape}")
    return int(arr.size), arr.tobytes()


def _from_bytes(data: bytes, dim: int) -> npt.NDArray[np.float32]:
    arr = np.frombuffer(data, dtype=EMBEDDING_DTYPE)
    if arr.size != dim:
        raise ValueError(f"stored embedding has {arr.size} values, expected {dim}")
    return arr.astype(np.float32)


def _insert(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(embeddings)
    return sqlite.insert(embeddings)


def write_embeddings(
    conn: Connection | Engine,
    mention_ids: Sequence[int],
    vectors: npt.ArrayLike,
    *,
    model_name: str,
    model_version: str,
) -> int:
    """Store one vector per mention, replacing a vector already stored for it.

    Pass a connection to write inside the caller's transaction (the
    enrichment pipeline writes a batch's embeddings and results together).

    Args:
        conn: A connection in a transaction, or an engine (one transaction).
        mention_ids: The mentions, in the order of ``vectors``.
        vectors: A ``(len(mention_ids), dim)`` array.
        model_name: The model that made the vectors.
        model_version: Its version.

    Returns:
        How many vectors were written.

    Raises:
        ValueError: The number of ids and vectors differ.
    """
    arr = np.asarray(vectors, dtype=EMBEDDING_DTYPE)
    if arr.ndim != 2 or arr.shape[0] != len(mention_ids):
        raise ValueError(
            f"expected {len(mention_ids)} vectors as a 2-d array, got shape {arr.shape}"
        )
    if not mention_ids:
        return 0
    now = utcnow()
    rows = []
    for mid, vec in zip(mention_ids, arr, strict=True):
        dim, data = _to_bytes(vec)
        rows.append(
            {
                "mention_id": int(mid),
                "model_name": model_name,
                "model_version": model_version,
                "dim": dim,
                "vector": data,
                "created_at": now,
            }
        )
    if isinstance(conn, Engine):
        with conn.begin() as c:
            return _write(c, rows)
    return _write(conn, rows)


def _write(conn: Connection, rows: list[dict[str, Any]]) -> int:
    stmt = _insert(conn)
    stmt = stmt.on_conflict_do_update(
        index_elements=["mention_id"],
        set_={
            "model_name": stmt.excluded.model_name,
            "model_version": stmt.excluded.model_version,
            "dim": stmt.excluded.dim,
            "vector": stmt.excluded.vector,
            "created_at": stmt.excluded.created_at,
        },
    )
    conn.execute(stmt, rows)
    return len(rows)


def read_embeddings(conn: Connection | Engine, mention_ids: Iterable[int]) -> dict[int, Embedding]:
    """The stored vectors of these mentions, keyed by mention id; absent ones are left out."""
    ids = sorted({int(i) for i in mention_ids})
    if not ids:
        return {}
    stmt = select(embeddings).where(embeddings.c.mention_id.in_(ids))
    if isinstance(conn, Engine):
        with conn.connect() as c:
            rows = c.execute(stmt).all()
    else:
        rows = conn.execute(stmt).all()
    return {
        r.mention_id: Embedding(
            mention_id=r.mention_id,
            model_name=r.model_name,
            model_version=r.model_version,
            vector=_from_bytes(r.vector, r.dim),
        )
        for r in rows
    }


def count_embeddings(engine: Engine) -> int:
    """How many mentions have a stored vector."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(embeddings)).scalar_one())


def delete_embeddings(conn: Connection | Engine) -> int:
    """Delete every stored vector (after an embedding model change). Returns how many."""
    if isinstance(conn, Engine):
        with conn.begin() as c:
            return int(c.execute(delete(embeddings)).rowcount)
    return int(conn.execute(delete(embeddings)).rowcount)
