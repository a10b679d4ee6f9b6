"""Agents' corrections of stage labels, the labels in force, and per-workspace recalibrations.

An agent can override the ``sentiment``, ``intent`` or ``themes`` label of any
mention (:func:`correct`). Every correction is kept with who made it and when,
together with a snapshot of what the model said at that moment
(``model_label``, ``model_name``, ``model_version``), and each one writes an
audit-log entry in the same transaction. The newest correction of a
``(mention, stage)`` is the one in force: it beats the model's label
(:func:`effective_labels`), survives ``listenwell enrich --redo`` (which only
rewrites ``enrichments``), and is the gold label of the workspace's labelled
set (:func:`labelled_set`).

A recalibration fitted on those corrections is stored per stage and model
(:func:`save_calibration`, :func:`load_calibration`); the parameters are
opaque JSON here and are interpreted by ``listenwell.nlp.corrections``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import Connection, Engine, Select, Table, delete, func, insert, select

from .engine import read_connection, using, writing
from .errors import NotFoundError, StoreError
from .models import (
    CalibrationRow,
    CorrectionRow,
    EnrichmentRow,
    MentionRow,
    ThemeRow,
    utcnow,
)
from .writes import record_audit

if TYPE_CHECKING:  # pandas is imported on first use
    import pandas as pd

__all__ = [
    "CORRECTION_COLUMNS",
    "INTENT_LABELS",
    "SENTIMENT_LABELS",
    "STAGES",
    "CalibrationExample",
    "Correction",
    "CorrectionError",
    "EffectiveLabel",
    "LabelledExample",
    "StoredCalibration",
    "calibration_examples",
    "correct",
    "corrections_frame",
    "corrections_in_force",
    "current_model",
    "delete_calibration",
    "effective_labels",
    "iter_corrections",
    "labelled_set",
    "load_calibration",
    "save_calibration",
]

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
INTENT_LABELS: tuple[str, ...] = ("complaint", "question", "praise", "feature_request", "other")
STAGES: tuple[str, ...] = ("sentiment", "intent", "themes")
"""The stages an agent can correct. ``themes`` labels are theme ids (as strings)."""

CORRECTION_COLUMNS = [
    "id",
    "mention_id",
    "stage",
    "label",
    "model_label",
    "model_name",
    "model_version",
    "actor",
    "created_at",
]

_FIXED_LABELS: dict[str, tuple[str, ...]] = {
    "sentiment": SENTIMENT_LABELS,
    "intent": INTENT_LABELS,
}
_MAX_ACTOR = 200
_CHUNK = 500  # ids per IN (...) list
DEFAULT_TIMEOUT_S = 15.0

_corrections = cast(Table, CorrectionRow.__table__)
_enrichments = cast(Table, EnrichmentRow.__table__)
_mentions = cast(Table, MentionRow.__table__)
_themes = cast(Table, ThemeRow.__table__)
_calibrations = cast(Table, CalibrationRow.__table__)


class CorrectionError(StoreError, ValueError):
    """A correction names an unknown stage, an invalid label, or no actor."""


@dataclass(frozen=True, slots=True)
class Correction:
    """One stored correction.

    Attributes:
        id: Its row id.
        mention_id: The corrected mention.
        stage: ``sentiment``, ``intent`` or ``themes``.
        label: The agent's label.
        model_label: What the model said when the agent corrected it (``None``
            when the stage had no result for the mention yet).
        model_name: The model that made ``model_label``.
        model_version: Its version.
        actor: Who made the correction.
        created_at: When (UTC).
    """

    id: int
    mention_id: int
    stage: str
    label: str
    model_label: str | None
    model_name: str | None
    model_version: str | None
    actor: str
    created_at: datetime

    @property
    def agrees(self) -> bool | None:
        """Whether the model had said the same (``None`` when it had said nothing)."""
        return None if self.model_label is None else self.model_label == self.label


@dataclass(frozen=True, slots=True)
class EffectiveLabel:
    """The label in force for one mention and stage.

    Attributes:
        label: The newest correction's label, else the model's.
        source: ``agent`` when a correction is in force, else ``model``.
        actor: Who made the correction; ``None`` for a model label.
        at: When the correction was made, or when the model's result was written.
        model_label: The model's current label (``None`` if the stage has not run).
    """

    label: str
    source: Literal["agent", "model"]
    actor: str | None
    at: datetime | None
    model_label: str | None = None


@dataclass(frozen=True, slots=True)
class LabelledExample:
    """A mention's text with the correction in force for it: one row of the labelled set."""

    mention_id: int
    text: str
    stage: str
    label: str
    model_label: str | None
    actor: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CalibrationExample:
    """A corrected mention's stored class probabilities and the agent's label."""

    mention_id: int
    probs: dict[str, float]
    label: str


@dataclass(frozen=True, slots=True)
class StoredCalibration:
    """A recalibration of one stage's model, fitted on this workspace's corrections."""

    stage: str
    model_name: str
    model_version: str
    params: dict[str, Any]
    n_corrections: int
    fitted_at: datetime


# --------------------------------------------------------------------------- helpers


def _check_stage(stage: str) -> str:
    name = stage.strip().lower()
    if name not in STAGES:
        raise CorrectionError(f"unknown stage {stage!r}; corrections are for {', '.join(STAGES)}")
    return name


def corrections_in_force(stage: str | None = None, mention_ids: list[int] | None = None) -> Any:
    """Corrections ranked per (mention, stage), newest first, as a subquery to join.

    The row with ``rank == 1`` is the correction in force. Join it with an
    outer join whose ON clause includes ``rank == 1`` and ``COALESCE`` its
    ``label`` with the model's to read the effective label in one query (the
    export and the dashboard filters do this).

    Args:
        stage: Only this stage's corrections (not validated here).
        mention_ids: Only these mentions' corrections.

    Returns:
        A subquery with the ``corrections`` columns and ``rank``.
    """
    rank = (
        func.row_number()
        .over(
            partition_by=(_corrections.c.mention_id, _corrections.c.stage),
            order_by=(_corrections.c.created_at.desc(), _corrections.c.id.desc()),
        )
        .label("rank")
    )
    stmt = select(_corrections, rank)
    if stage is not None:
        stmt = stmt.where(_corrections.c.stage == stage)
    if mention_ids is not None:
        stmt = stmt.where(_corrections.c.mention_id.in_(mention_ids))
    return stmt.subquery("newest")


def _as_correction(row: Any) -> Correction:
    return Correction(
        id=int(row.id),
        mention_id=int(row.mention_id),
        stage=row.stage,
        label=row.label,
        model_label=row.model_label,
        model_name=row.model_name,
        model_version=row.model_version,
        actor=row.actor,
        created_at=row.created_at,
    )


def _resolve_theme(conn: Connection, label: str) -> str:
    try:
        theme_id = int(label)
    except ValueError:
        raise CorrectionError(f"a themes label is a theme id, got {label!r}") from None
    seen: set[int] = set()
    current = theme_id
    while True:
        row = conn.execute(
            select(_themes.c.id, _themes.c.status, _themes.c.merged_into).where(
                _themes.c.id == current
            )
        ).first()
        if row is None:
            raise CorrectionError(f"theme {current} does not exist")
        if row.status == "active":
            return str(row.id)
        seen.add(current)
        if row.status == "merged" and row.merged_into is not None and row.merged_into not in seen:
            current = int(row.merged_into)
            continue
        raise CorrectionError(f"theme {theme_id} is {row.status} and has no active successor")


def _check_label(conn: Connection, stage: str, label: str) -> str:
    value = label.strip()
    if stage == "themes":
        return _resolve_theme(conn, value)
    allowed = _FIXED_LABELS[stage]
    name = value.lower()
    if name not in allowed:
        raise CorrectionError(
            f"{label!r} is not a valid {stage} label; use one of {', '.join(allowed)}"
        )
    return name


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _check_actor(actor: str) -> str:
    who = " ".join(actor.split())
    if not who:
        raise CorrectionError("a correction needs the name of whoever made it")
    if len(who) > _MAX_ACTOR:
        raise CorrectionError(f"the actor name is longer than {_MAX_ACTOR} characters")
    return who


# --------------------------------------------------------------------------- writes


def correct(
    conn: Connection | Engine,
    mention_id: int,
    stage: str,
    label: str,
    actor: str,
    *,
    at: datetime | None = None,
) -> Correction:
    """Override one stage's label on one mention, with an audit-log entry, in one transaction.

    The model's current label, name and version are copied from ``enrichments``
    into the correction, so the corrections double as a labelled set for
    measuring the model. A ``themes`` label is a theme id; a merged theme is
    followed to the active theme it was merged into, and that id is stored.

    Args:
        conn: An engine (a transaction is opened) or a connection (the caller's
            transaction is used).
        mention_id: The mention to correct.
        stage: ``sentiment``, ``intent`` or ``themes``.
        label: ``negative|neutral|positive`` for sentiment;
            ``complaint|question|praise|feature_request|other`` for intent; an
            active theme's id for themes. Case and surrounding spaces are ignored.
        actor: Who makes the correction (kept with it and in the audit log).
        at: When it was made; default now. For importing corrections made elsewhere.

    Returns:
        The stored correction.

    Raises:
        CorrectionError: Unknown stage, invalid label, or empty actor.
        NotFoundError: No mention has this id (never stored, or erased).
    """
    stage = _check_stage(stage)
    who = _check_actor(actor)
    when = utcnow() if at is None else _utc(at)
    with writing(conn) as c:
        exists = c.execute(select(_mentions.c.id).where(_mentions.c.id == mention_id)).first()
        if exists is None:
            raise NotFoundError(f"mention {mention_id} not found (unknown id, or erased)")
        value = _check_label(c, stage, label)
        model = c.execute(
            select(
                _enrichments.c.label, _enrichments.c.model_name, _enrichments.c.model_version
            ).where(_enrichments.c.mention_id == mention_id, _enrichments.c.stage == stage)
        ).first()
        previous = c.execute(
            select(_corrections.c.label)
            .where(_corrections.c.mention_id == mention_id, _corrections.c.stage == stage)
            .order_by(_corrections.c.created_at.desc(), _corrections.c.id.desc())
            .limit(1)
        ).scalar()
        values: dict[str, Any] = {
            "mention_id": mention_id,
            "stage": stage,
            "label": value,
            "model_label": model.label if model else None,
            "model_name": model.model_name if model else None,
            "model_version": model.model_version if model else None,
            "actor": who,
            "created_at": when,
        }
        result = c.execute(insert(_corrections).values(**values))
        pk = result.inserted_primary_key
        assert pk is not None
        correction_id = int(pk[0])
        record_audit(
            c,
            who,
            "correction.add",
            "mention",
            str(mention_id),
            {
                "correction_id": correction_id,
                "stage": stage,
                "label": value,
                "previous_correction": previous,
                "model_label": values["model_label"],
                "model": (f"{values['model_name']} {values['model_version']}" if model else None),
            },
        )
    return Correction(id=correction_id, **values)


# --------------------------------------------------------------------------- reads


def iter_corrections(
    conn: Connection | Engine,
    *,
    stage: str | None = None,
    current_only: bool = False,
    mention_id: int | None = None,
) -> Iterator[Correction]:
    """Stored corrections, oldest first.

    Args:
        conn: A connection or an engine.
        stage: Only this stage's corrections.
        current_only: Only the correction in force per (mention, stage).
        mention_id: Only this mention's corrections.

    Raises:
        CorrectionError: ``stage`` is not a correctable stage.
    """
    if stage is not None:
        stage = _check_stage(stage)
    if current_only:
        sub = corrections_in_force(stage)
        stmt: Select[Any] = select(*[sub.c[name] for name in CORRECTION_COLUMNS]).where(
            sub.c.rank == 1
        )
        col = sub.c
    else:
        stmt = select(_corrections)
        if stage is not None:
            stmt = stmt.where(_corrections.c.stage == stage)
        col = _corrections.c
    if mention_id is not None:
        stmt = stmt.where(col.mention_id == mention_id)
    stmt = stmt.order_by(col.created_at, col.id)
    with using(conn) as c:
        for row in c.execute(stmt):
            yield _as_correction(row)


def corrections_frame(
    conn: Connection | Engine,
    *,
    stage: str | None = None,
    current_only: bool = False,
    limit: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> pd.DataFrame:
    """Corrections as a DataFrame, newest first, with :data:`CORRECTION_COLUMNS`.

    Args:
        conn: An engine (read under ``timeout_s``) or a connection.
        stage: Only this stage's corrections.
        current_only: Only the correction in force per (mention, stage).
        limit: At most this many rows (the newest).
        timeout_s: The read's time limit when given an engine.

    Raises:
        CorrectionError: ``stage`` is not a correctable stage.
        QueryTimeoutError: The read took longer than ``timeout_s``.
    """
    import pandas as pd

    if stage is not None:
        stage = _check_stage(stage)
    if current_only:
        sub = corrections_in_force(stage)
        stmt: Select[Any] = select(*[sub.c[name] for name in CORRECTION_COLUMNS]).where(
            sub.c.rank == 1
        )
        col = sub.c
    else:
        stmt = select(*[_corrections.c[name] for name in CORRECTION_COLUMNS])
        if stage is not None:
            stmt = stmt.where(_corrections.c.stage == stage)
        col = _corrections.c
    stmt = stmt.order_by(col.created_at.desc(), col.id.desc())
    if limit is not None:
        stmt = stmt.limit(max(1, limit))
    if isinstance(conn, Engine):
        with read_connection(conn, timeout_s) as c:
            rows = c.execute(stmt).fetchall()
    else:
        rows = conn.execute(stmt).fetchall()
    return pd.DataFrame([tuple(r) for r in rows], columns=CORRECTION_COLUMNS)


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    it = iter(ids)
    while chunk := list(islice(it, _CHUNK)):
        yield chunk


def effective_labels(
    conn: Connection | Engine, mention_ids: Iterable[int] | None, stage: str
) -> dict[int, EffectiveLabel]:
    """The label in force per mention: the newest correction beats the model.

    Args:
        conn: A connection or an engine.
        mention_ids: The mentions to look up; ``None`` for every mention with a
            correction or a model label of ``stage``.
        stage: ``sentiment``, ``intent`` or ``themes``.

    Returns:
        One entry per mention that has a correction or a non-empty model
        label; mentions with neither are absent.

    Raises:
        CorrectionError: ``stage`` is not a correctable stage.
    """
    stage = _check_stage(stage)
    batches: Iterable[list[int] | None] = (
        [None] if mention_ids is None else _chunks(sorted(set(mention_ids)))
    )
    out: dict[int, EffectiveLabel] = {}
    with using(conn) as c:
        for ids in batches:
            model_stmt = select(
                _enrichments.c.mention_id, _enrichments.c.label, _enrichments.c.created_at
            ).where(_enrichments.c.stage == stage, _enrichments.c.label.is_not(None))
            if ids is not None:
                model_stmt = model_stmt.where(_enrichments.c.mention_id.in_(ids))
            models = {int(r.mention_id): r for r in c.execute(model_stmt)}
            for mid, r in models.items():
                out[mid] = EffectiveLabel(
                    label=r.label, source="model", actor=None, at=r.created_at, model_label=r.label
                )
            sub = corrections_in_force(stage, ids)
            for r in c.execute(select(sub).where(sub.c.rank == 1)):
                mid = int(r.mention_id)
                model = models.get(mid)
                out[mid] = EffectiveLabel(
                    label=r.label,
                    source="agent",
                    actor=r.actor,
                    at=r.created_at,
                    model_label=model.label if model is not None else None,
                )
    return out


def labelled_set(conn: Connection | Engine, stage: str | None = None) -> list[LabelledExample]:
    """The workspace's labelled set: per mention and stage, the text and the correction in force.

    Args:
        conn: A connection or an engine.
        stage: Only this stage; ``None`` for all of them.

    Returns:
        Examples ordered by stage, then mention id.

    Raises:
        CorrectionError: ``stage`` is not a correctable stage.
    """
    if stage is not None:
        stage = _check_stage(stage)
    sub = corrections_in_force(stage)
    stmt = (
        select(
            sub.c.mention_id,
            _mentions.c.text,
            sub.c.stage,
            sub.c.label,
            sub.c.model_label,
            sub.c.actor,
            sub.c.created_at,
        )
        .join(_mentions, _mentions.c.id == sub.c.mention_id)
        .where(sub.c.rank == 1)
        .order_by(sub.c.stage, sub.c.mention_id)
    )
    with using(conn) as c:
        return [
            LabelledExample(
                mention_id=int(r.mention_id),
                text=r.text,
                stage=r.stage,
                label=r.label,
                model_label=r.model_label,
                actor=r.actor,
                created_at=r.created_at,
            )
            for r in c.execute(stmt)
        ]


def current_model(conn: Connection | Engine, stage: str) -> tuple[str, str] | None:
    """The ``(model_name, model_version)`` of the stage's most recently written result, if any."""
    stmt = (
        select(_enrichments.c.model_name, _enrichments.c.model_version)
        .where(_enrichments.c.stage == stage)
        .order_by(_enrichments.c.created_at.desc(), _enrichments.c.id.desc())
        .limit(1)
    )
    with using(conn) as c:
        row = c.execute(stmt).first()
    return None if row is None else (str(row.model_name), str(row.model_version))


def calibration_examples(
    conn: Connection | Engine, stage: str, model_name: str, model_version: str
) -> list[CalibrationExample]:
    """The corrected mentions whose stored result of ``stage`` was made by the given model.

    Each example pairs the model's uncalibrated class probabilities (the
    result's ``data["model_probs"]`` when a calibration was applied, else
    ``data["probs"]``) with the agent's label in force. Results without
    probabilities are skipped.

    Raises:
        CorrectionError: ``stage`` is not a correctable stage.
    """
    stage = _check_stage(stage)
    sub = corrections_in_force(stage)
    stmt = (
        select(sub.c.mention_id, sub.c.label, _enrichments.c.data)
        .join(
            _enrichments,
            (_enrichments.c.mention_id == sub.c.mention_id) & (_enrichments.c.stage == stage),
        )
        .where(
            sub.c.rank == 1,
            _enrichments.c.model_name == model_name,
            _enrichments.c.model_version == model_version,
        )
        .order_by(sub.c.mention_id)
    )
    out: list[CalibrationExample] = []
    with using(conn) as c:
        for r in c.execute(stmt):
            data = r.data if isinstance(r.data, Mapping) else {}
            probs = data.get("model_probs") or data.get("probs")
            if not isinstance(probs, Mapping) or not probs:
                continue
            try:
                clean = {str(k): float(v) for k, v in probs.items()}
            except (TypeError, ValueError):
                continue
            out.append(CalibrationExample(int(r.mention_id), clean, r.label))
    return out


# --------------------------------------------------------------------------- calibrations


def _as_calibration(row: Any) -> StoredCalibration:
    return StoredCalibration(
        stage=row.stage,
        model_name=row.model_name,
        model_version=row.model_version,
        params=dict(row.params or {}),
        n_corrections=int(row.n_corrections),
        fitted_at=row.fitted_at,
    )


def save_calibration(
    conn: Connection | Engine,
    stage: str,
    model_name: str,
    model_version: str,
    params: dict[str, Any],
    n_corrections: int,
    *,
    actor: str = "system",
) -> StoredCalibration:
    """Store (or replace) the recalibration of one stage's model, with an audit-log entry.

    Args:
        conn: An engine (a transaction is opened) or a connection.
        stage: The stage, e.g. ``sentiment``.
        model_name: The model it recalibrates.
        model_version: That model's version; another version is not affected.
        params: The fitted parameters, as JSON-serialisable data.
        n_corrections: How many corrections it was fitted on.
        actor: Who ran the fit, for the audit log.

    Returns:
        The stored calibration.
    """
    fitted_at = utcnow()
    row: dict[str, Any] = {
        "stage": stage,
        "model_name": model_name,
        "model_version": model_version,
        "params": params,
        "n_corrections": n_corrections,
        "fitted_at": fitted_at,
    }
    with writing(conn) as c:
        c.execute(delete(_calibrations).where(*_calibration_key(stage, model_name, model_version)))
        c.execute(insert(_calibrations).values(**row))
        record_audit(
            c,
            actor,
            "calibration.save",
            "calibration",
            f"{stage}:{model_name}:{model_version}",
            {"n_corrections": n_corrections, "params": params},
        )
    return StoredCalibration(
        stage=stage,
        model_name=model_name,
        model_version=model_version,
        params=params,
        n_corrections=n_corrections,
        fitted_at=fitted_at,
    )


def _calibration_key(stage: str, model_name: str, model_version: str) -> list[Any]:
    return [
        _calibrations.c.stage == stage,
        _calibrations.c.model_name == model_name,
        _calibrations.c.model_version == model_version,
    ]


def load_calibration(
    conn: Connection | Engine, stage: str, model_name: str, model_version: str
) -> StoredCalibration | None:
    """The stored recalibration of one stage's model and version, or ``None``."""
    stmt = select(_calibrations).where(*_calibration_key(stage, model_name, model_version))
    with using(conn) as c:
        row = c.execute(stmt).first()
    return None if row is None else _as_calibration(row)


def delete_calibration(
    conn: Connection | Engine,
    stage: str,
    model_name: str,
    model_version: str,
    *,
    actor: str = "system",
) -> bool:
    """Remove a stored recalibration (with an audit-log entry). Returns whether one existed."""
    with writing(conn) as c:
        n = c.execute(
            delete(_calibrations).where(*_calibration_key(stage, model_name, model_version))
        ).rowcount
        if n:
            record_audit(
                c,
                actor,
                "calibration.delete",
                "calibration",
                f"{stage}:{model_name}:{model_version}",
            )
    return bool(n)
