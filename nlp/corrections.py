"""What agents' corrections teach: the model's drift, and a recalibration for this workspace.

**Drift** (:func:`drift_report`). Each correction stores what the model said
(``model_label``) next to what the agent said (``label``). The report takes
the correction in force per mention and stage, groups them by the week or
month they were made in, and gives the model's accuracy against the agents
per period and overall, each with a 95% Wilson interval, plus the recall of
every class (of the mentions the agents put in a class, how many the model had
put there too). Corrections made before the stage had any result for the
mention are counted as ``unscored`` and left out of the accuracy.

Read it with its bias in mind: agents mostly correct labels they find wrong,
so accuracy on corrections is lower than accuracy on a random sample. It is a
measure of trend (is the model getting worse on what agents look at?) unless
agents also confirm the labels they find right (a correction equal to the
model's label), which counts as a hit.

**Recalibration** (:func:`recalibrate`, sentiment only). A model's class
probabilities ``p`` are moved by per-class logit biases ``b`` and, optionally,
a temperature ``T``: ``softmax(log(p) / T + b)``. ``b`` and ``log T`` are
fitted by minimising the negative log-likelihood of the agents' labels plus an
L2 penalty pulling them toward zero (no change), with L-BFGS. A fit is only
accepted when a stratified k-fold cross-validation over the corrections shows
that it lowers the held-out NLL without lowering held-out accuracy; both
numbers, before and after, are reported either way. Fewer than
``min_corrections`` corrections (default 50) are refused.

Everything here is pure (numpy and scipy); the store reads and writes the data.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from .base import NlpError

__all__ = [
    "DEFAULT_FOLDS",
    "DEFAULT_L2",
    "DEFAULT_MIN_CORRECTIONS",
    "PERIODS",
    "Calibration",
    "CalibrationError",
    "ClassRecall",
    "CrossValidation",
    "DriftReport",
    "Judgement",
    "NotEnoughCorrectionsError",
    "Period",
    "PeriodRow",
    "Recalibration",
    "accuracy",
    "cross_validate",
    "drift_report",
    "fit_calibration",
    "mean_nll",
    "period_of",
    "recalibrate",
    "to_arrays",
    "wilson_interval",
]

Period = Literal["week", "month"]
PERIODS: tuple[str, ...] = ("week", "month")
DEFAULT_MIN_CORRECTIONS = 50
DEFAULT_FOLDS = 5
DEFAULT_L2 = 1.0
Z95 = 1.959963984540054
_EPS = 1e-6  # stored probabilities are rounded to 6 places: 0.0 means "below 5e-7"
_METHOD = "logit-bias"
_PARAMS_VERSION = 1

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class CalibrationError(NlpError):
    """Calibration parameters that cannot be used (malformed, or for other labels)."""


class NotEnoughCorrectionsError(NlpError):
    """Too few corrections to fit, or to trust, a recalibration."""


# --------------------------------------------------------------------------- drift


class Judgement(Protocol):
    """What the drift report needs of a correction (``store.corrections.Correction`` has it)."""

    @property
    def created_at(self) -> datetime:
        """When the agent made it."""
        ...

    @property
    def label(self) -> str:
        """The agent's label."""
        ...

    @property
    def model_label(self) -> str | None:
        """The model's label at that moment."""
        ...


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default).

    Args:
        successes: How many hits.
        n: Out of how many; ``0`` gives the uninformative ``(0.0, 1.0)``.
        z: The normal quantile of the interval's confidence.

    Raises:
        ValueError: ``successes`` is outside ``[0, n]``.
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def period_of(at: datetime | date, period: str) -> tuple[str, date]:
    """The period a time falls in: its name and first day.

    Weeks are ISO weeks (Monday first, named like ``2024-W18``); months are
    named like ``2024-05``. Times are taken as they are (store times are UTC).

    Raises:
        ValueError: ``period`` is not ``week`` or ``month``.
    """
    day = at.date() if isinstance(at, datetime) else at
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}", day - timedelta(days=day.weekday())
    if period == "month":
        return f"{day.year}-{day.month:02d}", day.replace(day=1)
    raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


@dataclass(frozen=True, slots=True)
class PeriodRow:
    """The model's accuracy on the corrections made in one period."""

    period: str
    start: date
    n: int
    correct: int
    accuracy: float
    low: float
    high: float
    models: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "period": self.period,
            "start": self.start.isoformat(),
            "n": self.n,
            "correct": self.correct,
            "accuracy": _rounded(self.accuracy),
            "ci95": [_rounded(self.low), _rounded(self.high)],
            "models": dict(self.models),
        }


@dataclass(frozen=True, slots=True)
class ClassRecall:
    """Of the mentions the agents put in ``label``, how many the model had put there too."""

    label: str
    n: int
    correct: int
    recall: float
    low: float
    high: float

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "n": self.n,
            "correct": self.correct,
            "recall": _rounded(self.recall),
            "ci95": [_rounded(self.low), _rounded(self.high)],
        }


@dataclass(frozen=True, slots=True)
class DriftReport:
    """The model's accuracy on the agents' corrections: overall, per class and per period.

    ``accuracy`` is ``None`` when no correction could be scored (``n == 0``).
    """

    stage: str
    period: str
    n: int
    correct: int
    accuracy: float | None
    low: float
    high: float
    unscored: int
    per_class: list[ClassRecall]
    periods: list[PeriodRow]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (``listenwell eval corrections --json``)."""
        return {
            "stage": self.stage,
            "period": self.period,
            "n": self.n,
            "correct": self.correct,
            "accuracy": _rounded(self.accuracy),
            "ci95": [_rounded(self.low), _rounded(self.high)],
            "unscored": self.unscored,
            "per_class_recall": {c.label: c.as_dict() for c in self.per_class},
            "periods": [p.as_dict() for p in self.periods],
        }


def drift_report(
    corrections: Iterable[Judgement],
    *,
    stage: str,
    period: str = "week",
    labels: Sequence[str] | None = None,
    model_of: Any = None,
) -> DriftReport:
    """Score the model's labels against the agents' corrections, overall and per period.

    Pass the correction in force per mention (one per mention and stage);
    passing every correction would count a mention once per change of mind.

    Args:
        corrections: Corrections of one stage.
        stage: The stage's name, for the report.
        period: ``week`` (ISO weeks) or ``month``.
        labels: The classes to report recall for, in this order; default the
            agents' labels seen, sorted. A listed class nobody used gets ``n=0``.
        model_of: A function from a correction to the name of the model that
            made ``model_label`` (counted per period); default
            ``"{model_name} {model_version}"`` where the correction has them.

    Raises:
        ValueError: ``period`` is not ``week`` or ``month``.
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    if model_of is None:
        model_of = _model_of
    buckets: dict[str, tuple[date, list[bool], Counter[str]]] = {}
    class_hits: dict[str, list[bool]] = {}
    unscored = 0
    for c in corrections:
        if c.model_label is None:
            unscored += 1
            continue
        hit = c.model_label == c.label
        name, start = period_of(c.created_at, period)
        bucket = buckets.setdefault(name, (start, [], Counter()))
        bucket[1].append(hit)
        model = model_of(c)
        if model:
            bucket[2][model] += 1
        class_hits.setdefault(c.label, []).append(hit)
    rows = []
    for name, (start, hits, models) in sorted(buckets.items(), key=lambda kv: kv[1][0]):
        k = sum(hits)
        low, high = wilson_interval(k, len(hits))
        rows.append(PeriodRow(name, start, len(hits), k, k / len(hits), low, high, dict(models)))
    order = list(labels) if labels is not None else sorted(class_hits)
    order += sorted(set(class_hits) - set(order))
    per_class = []
    for label in order:
        hits = class_hits.get(label, [])
        k = sum(hits)
        low, high = wilson_interval(k, len(hits))
        per_class.append(
            ClassRecall(label, len(hits), k, k / len(hits) if hits else 0.0, low, high)
        )
    n = sum(r.n for r in rows)
    k = sum(r.correct for r in rows)
    low, high = wilson_interval(k, n)
    return DriftReport(
        stage=stage,
        period=period,
        n=n,
        correct=k,
        accuracy=k / n if n else None,
        low=low,
        high=high,
        unscored=unscored,
        per_class=per_class,
        periods=rows,
    )


def _model_of(c: Any) -> str | None:
    name = getattr(c, "model_name", None)
    if not name:
        return None
    version = getattr(c, "model_version", None)
    return f"{name} {version}" if version else str(name)


# --------------------------------------------------------------------------- calibration


def _log_probs(probs: npt.ArrayLike) -> FloatArray:
    p = np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1.0)
    p = p / p.sum(axis=-1, keepdims=True)
    return np.asarray(np.log(p), dtype=np.float64)


def _softmax(z: FloatArray) -> FloatArray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Calibration:
    """Per-class logit biases and a temperature: ``softmax(log(p) / temperature + bias)``.

    Attributes:
        labels: The class names, in the order of the columns it applies to.
        bias: One additive logit bias per class.
        temperature: Divides the log-probabilities first (``1.0``: unchanged).
    """

    labels: tuple[str, ...]
    bias: tuple[float, ...]
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise CalibrationError(f"need two or more distinct labels, got {list(self.labels)}")
        if len(self.bias) != len(self.labels):
            raise CalibrationError(
                f"{len(self.bias)} biases for {len(self.labels)} labels {list(self.labels)}"
            )
        if not all(math.isfinite(b) for b in self.bias):
            raise CalibrationError("biases must be finite numbers")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise CalibrationError(f"temperature must be positive, got {self.temperature}")

    @classmethod
    def identity(cls, labels: Sequence[str]) -> Calibration:
        """The calibration that changes nothing."""
        return cls(tuple(labels), tuple(0.0 for _ in labels), 1.0)

    def apply(self, probs: npt.ArrayLike) -> FloatArray:
        """Recalibrate class probabilities.

        Args:
            probs: ``(n, k)`` rows (or one ``(k,)`` row) of probabilities in the
                order of :attr:`labels`. Zeros are clipped to ``1e-6`` and rows
                renormalised first.

        Returns:
            Same shape, rows summing to 1, same class order.

        Raises:
            CalibrationError: The number of columns is not the number of labels.
        """
        arr = np.asarray(probs, dtype=np.float64)
        if arr.shape[-1:] != (len(self.labels),):
            raise CalibrationError(
                f"probabilities have shape {arr.shape}; expected {len(self.labels)} columns "
                f"({', '.join(self.labels)})"
            )
        z = _log_probs(arr) / self.temperature + np.asarray(self.bias, dtype=np.float64)
        return _softmax(z)

    def for_labels(self, labels: Sequence[str]) -> Calibration:
        """The same calibration with its classes in the order of ``labels``.

        Raises:
            CalibrationError: ``labels`` are not the same classes.
        """
        if sorted(labels) != sorted(self.labels):
            raise CalibrationError(
                f"the calibration is for {list(self.labels)}, not {list(labels)}"
            )
        index = {name: i for i, name in enumerate(self.labels)}
        return Calibration(
            tuple(labels), tuple(self.bias[index[name]] for name in labels), self.temperature
        )

    def to_params(self) -> dict[str, Any]:
        """JSON-serialisable parameters (stored in ``calibrations.params``)."""
        return {
            "method": _METHOD,
            "version": _PARAMS_VERSION,
            "labels": list(self.labels),
            "bias": [round(b, 8) for b in self.bias],
            "temperature": round(self.temperature, 8),
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Calibration:
        """Rebuild a calibration from :meth:`to_params` output.

        Raises:
            CalibrationError: The parameters are malformed or of another method.
        """
        if params.get("method") != _METHOD:
            raise CalibrationError(f"unknown calibration method {params.get('method')!r}")
        try:
            labels = tuple(str(x) for x in params["labels"])
            bias = tuple(float(x) for x in params["bias"])
            temperature = float(params.get("temperature", 1.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"malformed calibration parameters: {exc}") from None
        return cls(labels, bias, temperature)


def to_arrays(
    examples: Iterable[tuple[Mapping[str, float], str]], labels: Sequence[str]
) -> tuple[FloatArray, IntArray]:
    """Stack ``(probabilities by class, gold label)`` pairs into arrays in ``labels`` order.

    Pairs whose gold label is not one of ``labels``, or whose probabilities
    lack a class, are skipped.

    Returns:
        ``(probs, y)``: an ``(n, k)`` float array and the gold class indices.
    """
    index = {name: i for i, name in enumerate(labels)}
    rows: list[list[float]] = []
    ys: list[int] = []
    for probs, gold in examples:
        if gold not in index or any(name not in probs for name in labels):
            continue
        rows.append([float(probs[name]) for name in labels])
        ys.append(index[gold])
    return (
        np.asarray(rows, dtype=np.float64).reshape(len(rows), len(labels)),
        np.asarray(ys, dtype=np.int64),
    )


def mean_nll(probs: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """The mean negative log-likelihood of gold classes ``y`` (probabilities clipped at 1e-6)."""
    logp = _log_probs(probs)
    idx = np.asarray(y, dtype=np.int64)
    return float(-logp[np.arange(len(idx)), idx].mean())


def accuracy(probs: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """The share of rows whose most probable class is the gold class."""
    arr = np.asarray(probs, dtype=np.float64)
    return float((arr.argmax(axis=1) == np.asarray(y)).mean())


def fit_calibration(
    probs: npt.ArrayLike,
    y: npt.ArrayLike,
    labels: Sequence[str],
    *,
    l2: float = DEFAULT_L2,
    temperature: bool = False,
) -> Calibration:
    """Fit per-class logit biases (and optionally a temperature) to gold labels.

    Minimises ``sum NLL + l2 * (|bias|^2 + log(T)^2)`` with L-BFGS-B and an
    exact gradient. The penalty pulls the fit toward "no change" and makes the
    biases unique (they sum to about zero).

    Args:
        probs: ``(n, k)`` model probabilities, columns in ``labels`` order.
        y: ``n`` gold class indices.
        labels: The class names.
        l2: Penalty strength; larger keeps the fit closer to the model.
        temperature: Also fit a temperature (``T`` kept within ``[0.05, 20]``).

    Raises:
        ValueError: Shapes disagree, no rows, or a negative ``l2``.
    """
    from scipy.optimize import minimize

    logp = _log_probs(probs)
    gold = np.asarray(y, dtype=np.int64)
    n, k = logp.shape if logp.ndim == 2 else (0, 0)
    if n == 0 or k != len(labels) or gold.shape != (n,):
        raise ValueError(
            f"need (n, {len(labels)}) probabilities and n gold labels, got "
            f"{np.shape(probs)} and {gold.shape}"
        )
    if l2 < 0:
        raise ValueError("l2 must not be negative")
    if gold.min() < 0 or gold.max() >= k:
        raise ValueError(f"gold class indices must be in 0..{k - 1}")
    onehot = np.zeros((n, k))
    onehot[np.arange(n), gold] = 1.0

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        b = theta[:k]
        s = theta[k] if temperature else 0.0
        scale = math.exp(-s)
        z = logp * scale + b
        zmax = z.max(axis=1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
        loss = float((lse - z[np.arange(n), gold]).sum() + l2 * (b @ b + s * s))
        resid = _softmax(z) - onehot
        grad_b = resid.sum(axis=0) + 2 * l2 * b
        if not temperature:
            return loss, grad_b
        grad_s = float(-(resid * logp).sum() * scale + 2 * l2 * s)
        return loss, np.append(grad_b, grad_s)

    dim = k + (1 if temperature else 0)
    bounds = [(None, None)] * k + ([(math.log(0.05), math.log(20.0))] if temperature else [])
    result = minimize(objective, np.zeros(dim), jac=True, method="L-BFGS-B", bounds=bounds)
    theta = np.asarray(result.x, dtype=np.float64)
    t = math.exp(float(theta[k])) if temperature else 1.0
    return Calibration(tuple(labels), tuple(float(b) for b in theta[:k]), t)


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """Held-out scores of a recalibration, pooled over the k folds.

    ``*_before`` score the model's own probabilities on every held-out row;
    ``*_after`` score them recalibrated by a fit on the other folds.
    """

    folds: int
    n: int
    nll_before: float
    nll_after: float
    accuracy_before: float
    accuracy_after: float

    @property
    def improves(self) -> bool:
        """Lower held-out NLL and no lower held-out accuracy: the acceptance rule."""
        return self.nll_after < self.nll_before and self.accuracy_after >= self.accuracy_before

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "folds": self.folds,
            "n": self.n,
            "nll_before": round(self.nll_before, 6),
            "nll_after": round(self.nll_after, 6),
            "accuracy_before": round(self.accuracy_before, 6),
            "accuracy_after": round(self.accuracy_after, 6),
        }


def _stratified_folds(y: IntArray, folds: int, seed: int) -> list[IntArray]:
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(folds)]
    offset = 0
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            parts[(offset + j) % folds].append(int(i))
        offset += len(idx)
    return [np.asarray(sorted(p), dtype=np.int64) for p in parts]


def cross_validate(
    probs: npt.ArrayLike,
    y: npt.ArrayLike,
    labels: Sequence[str],
    *,
    folds: int = DEFAULT_FOLDS,
    l2: float = DEFAULT_L2,
    temperature: bool = False,
    seed: int = 0,
) -> CrossValidation:
    """Stratified k-fold cross-validation of :func:`fit_calibration`.

    Raises:
        ValueError: Fewer than 2 folds, or fewer rows than folds.
    """
    arr = np.asarray(probs, dtype=np.float64)
    gold = np.asarray(y, dtype=np.int64)
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    if len(gold) < folds:
        raise ValueError(f"{len(gold)} rows cannot be split into {folds} folds")
    after = np.empty_like(arr)
    for test in _stratified_folds(gold, folds, seed):
        train = np.setdiff1d(np.arange(len(gold)), test)
        cal = fit_calibration(arr[train], gold[train], labels, l2=l2, temperature=temperature)
        after[test] = cal.apply(arr[test])
    return CrossValidation(
        folds=folds,
        n=len(gold),
        nll_before=mean_nll(arr, gold),
        nll_after=mean_nll(after, gold),
        accuracy_before=accuracy(arr, gold),
        accuracy_after=accuracy(after, gold),
    )


@dataclass(frozen=True, slots=True)
class Recalibration:
    """The outcome of :func:`recalibrate`.

    Attributes:
        accepted: Whether the fit passed cross-validation and should be used.
        reason: One line saying why it was accepted or not.
        n: How many corrections it was fitted on.
        calibration: The fit on all corrections (kept even when not accepted,
            so it can be shown).
        cv: The held-out scores before and after.
    """

    accepted: bool
    reason: str
    n: int
    calibration: Calibration
    cv: CrossValidation

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "n": self.n,
            "params": self.calibration.to_params(),
            "cross_validation": self.cv.as_dict(),
        }


def recalibrate(
    probs: npt.ArrayLike,
    y: npt.ArrayLike,
    labels: Sequence[str],
    *,
    min_corrections: int = DEFAULT_MIN_CORRECTIONS,
    folds: int = DEFAULT_FOLDS,
    l2: float = DEFAULT_L2,
    temperature: bool = False,
    seed: int = 0,
) -> Recalibration:
    """Fit a recalibration on corrections and accept it only if cross-validation says it helps.

    Args:
        probs: ``(n, k)`` uncalibrated model probabilities of the corrected
            mentions, columns in ``labels`` order.
        y: The agents' labels as class indices.
        labels: The model's class names, in its output order.
        min_corrections: Refuse to fit on fewer corrections than this.
        folds: Cross-validation folds.
        l2: Penalty strength toward "no change".
        temperature: Also fit a temperature.
        seed: Seeds the fold assignment, so a rerun gives the same answer.

    Raises:
        NotEnoughCorrectionsError: Fewer than ``min_corrections`` (or ``folds``) rows.
    """
    gold = np.asarray(y, dtype=np.int64)
    n = len(gold)
    needed = max(min_corrections, folds, 1)
    if n < needed:
        raise NotEnoughCorrectionsError(
            f"{n} corrections with stored probabilities for this model; at least {needed} "
            "are needed to recalibrate"
        )
    cv = cross_validate(probs, gold, labels, folds=folds, l2=l2, temperature=temperature, seed=seed)
    calibration = fit_calibration(probs, gold, labels, l2=l2, temperature=temperature)
    if cv.improves:
        reason = (
            f"held-out NLL {cv.nll_before:.4f} -> {cv.nll_after:.4f}, accuracy "
            f"{cv.accuracy_before:.3f} -> {cv.accuracy_after:.3f} over {folds} folds"
        )
    elif cv.nll_after >= cv.nll_before:
        reason = (
            f"not accepted: held-out NLL would not improve "
            f"({cv.nll_before:.4f} -> {cv.nll_after:.4f})"
        )
    else:
        reason = (
            f"not accepted: held-out accuracy would drop "
            f"({cv.accuracy_before:.3f} -> {cv.accuracy_after:.3f})"
        )
    return Recalibration(cv.improves, reason, n, calibration, cv)
