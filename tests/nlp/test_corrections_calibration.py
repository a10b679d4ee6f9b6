"""Recalibration on corrections and the drift report: pure maths, no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from listenwell.nlp.corrections import (
    Calibration,
    CalibrationError,
    CrossValidation,
    NotEnoughCorrectionsError,
    accuracy,
    cross_validate,
    drift_report,
    fit_calibration,
    mean_nll,
    period_of,
    recalibrate,
    to_arrays,
    wilson_interval,
)

LABELS = ("negative", "neutral", "positive")


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def synthetic(n: int, *, bias=(0.0, 0.0, 0.0), scale: float = 1.0, seed: int = 0):
    """Gold labels drawn from true probabilities; the "model" reports them distorted.

    The model's logits are ``scale * true - bias``, so the exact correction is
    ``+bias`` (up to a constant) with temperature ``scale``.
    """
    rng = np.random.default_rng(seed)
    true = rng.normal(0.0, 2.0, size=(n, 3))
    p_true = softmax(true)
    y = (p_true.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    model = softmax(scale * true - np.asarray(bias))
    return model, y


def test_calibration_recovers_a_known_bias():
    bias = np.array([0.9, -0.4, -0.5])  # sums to zero, as the L2-regularised fit does
    probs, y = synthetic(4000, bias=bias, seed=1)
    cal = fit_calibration(probs, y, LABELS)
    assert cal.temperature == 1.0
    np.testing.assert_allclose(cal.bias, bias, atol=0.12)
    # Undoing the bias is better than the model on the data it was fitted on.
    assert mean_nll(cal.apply(probs), y) < mean_nll(probs, y) - 0.02


def test_calibration_recovers_a_temperature():
    probs, y = synthetic(4000, scale=0.5, seed=2)  # an under-confident model
    cal = fit_calibration(probs, y, LABELS, temperature=True)
    assert cal.temperature == pytest.approx(0.5, abs=0.05)
    np.testing.assert_allclose(cal.bias, 0.0, atol=0.1)


def test_cross_validation_shows_held_out_improvement_and_is_accepted():
    probs, y = synthetic(600, bias=(1.0, -0.5, -0.5), seed=3)
    result = recalibrate(probs, y, LABELS, min_corrections=50, folds=5)
    cv = result.cv
    assert (cv.folds, cv.n, result.n) == (5, 600, 600)
    assert cv.nll_before == pytest.approx(mean_nll(probs, y))
    assert cv.accuracy_before == pytest.approx(accuracy(probs, y))
    assert cv.nll_after < cv.nll_before - 0.02
    assert cv.accuracy_after >= cv.accuracy_before
    assert result.accepted and "held-out NLL" in result.reason
    assert result.calibration.bias[0] > 0.5  # the negative class was under-predicted
    again = recalibrate(probs, y, LABELS, min_corrections=50, folds=5)
    assert again.cv == cv  # seeded folds: a rerun gives the same answer


def test_held_out_scores_come_from_fits_that_never_saw_the_fold():
    probs, y = synthetic(200, bias=(1.0, -0.5, -0.5), seed=4)
    cv = cross_validate(probs, y, LABELS, folds=4, l2=1.0)
    in_sample = fit_calibration(probs, y, LABELS)
    # Scoring a fit on the rows it was fitted on is optimistic; the held-out score is not.
    assert mean_nll(in_sample.apply(probs), y) < cv.nll_after
    with pytest.raises(ValueError, match="at least 2 folds"):
        cross_validate(probs, y, LABELS, folds=1)


@pytest.mark.parametrize(
    ("nll_after", "acc_after", "improves"),
    [(0.9, 0.70, True), (0.9, 0.69, False), (1.0, 0.75, False), (1.1, 0.80, False)],
)
def test_acceptance_rule_needs_lower_nll_and_no_lower_accuracy(nll_after, acc_after, improves):
    cv = CrossValidation(5, 100, 1.0, nll_after, 0.70, acc_after)
    assert cv.improves is improves


def test_too_few_corrections_are_refused():
    probs, y = synthetic(49, bias=(1.0, 0.0, -1.0), seed=5)
    with pytest.raises(NotEnoughCorrectionsError, match="49 corrections.*at least 50"):
        recalibrate(probs, y, LABELS)
    with pytest.raises(NotEnoughCorrectionsError, match="at least 10"):
        recalibrate(probs[:4], y[:4], LABELS, min_corrections=2, folds=10)


def test_apply_keeps_rows_normalised_and_order():
    cal = Calibration(LABELS, (0.5, 0.0, -0.5), 1.3)
    probs = np.array([[0.7, 0.2, 0.1], [0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3]])
    out = cal.apply(probs)
    assert out.shape == probs.shape
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    assert out[2].argmax() == 0  # a flat row leans the way of the largest bias
    np.testing.assert_allclose(Calibration.identity(LABELS).apply(probs[:1]), probs[:1])
    assert cal.apply(probs[0]).shape == (3,)
    with pytest.raises(CalibrationError, match="expected 3 columns"):
        cal.apply(np.ones((2, 4)) / 4)


def test_params_round_trip_and_reordering():
    cal = Calibration(LABELS, (0.25, -0.125, -0.125), 0.75)
    back = Calibration.from_params(cal.to_params())
    assert back == cal
    other = cal.for_labels(("positive", "negative", "neutral"))
    assert other.bias == (-0.125, 0.25, -0.125)
    probs = np.array([[0.6, 0.3, 0.1]])
    np.testing.assert_allclose(other.apply(probs[:, [2, 0, 1]]), cal.apply(probs)[:, [2, 0, 1]])
    with pytest.raises(CalibrationError, match="unknown calibration method"):
        Calibration.from_params({"method": "isotonic"})
    with pytest.raises(CalibrationError, match="malformed"):
        Calibration.from_params({"method": "logit-bias", "labels": LABELS})
    with pytest.raises(CalibrationError, match="2 biases for 3 labels"):
        Calibration(LABELS, (0.0, 0.0))
    with pytest.raises(CalibrationError, match="not"):
        cal.for_labels(("negative", "positive", "mixed"))


def test_to_arrays_orders_columns_and_skips_unusable_rows():
    rows = [
        ({"positive": 0.1, "negative": 0.6, "neutral": 0.3}, "neutral"),
        ({"negative": 1.0}, "negative"),  # lacks classes
        ({"negative": 0.2, "neutral": 0.2, "positive": 0.6}, "mixed"),  # unknown gold
    ]
    probs, y = to_arrays(rows, LABELS)
    np.testing.assert_allclose(probs, [[0.6, 0.3, 0.1]])
    assert y.tolist() == [1]
    empty, ys = to_arrays([], LABELS)
    assert empty.shape == (0, 3) and ys.shape == (0,)


# --------------------------------------------------------------------------- drift


@dataclass
class Judged:
    created_at: datetime
    label: str
    model_label: str | None
    model_name: str | None = "minilm"
    model_version: str | None = "1"


def test_wilson_interval_matches_the_textbook_values():
    # 8 of 10 at 95%: 0.490 to 0.943 (Wilson 1927; Newcombe 1998, table I).
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and round(high, 4) == 0.2775
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_periods_are_iso_weeks_or_months():
    at = datetime(2024, 1, 3, 12, tzinfo=UTC)  # a Wednesday
    assert period_of(at, "week") == ("2024-W01", datetime(2024, 1, 1).date())
    assert period_of(datetime(2021, 1, 2, tzinfo=UTC), "week")[0] == "2020-W53"
    assert period_of(at, "month") == ("2024-01", datetime(2024, 1, 1).date())
    with pytest.raises(ValueError):
        period_of(at, "day")


def test_drift_report_per_period_overall_and_per_class():
    week1 = datetime(2024, 5, 6, 10, tzinfo=UTC)  # Monday of 2024-W19
    week2 = week1 + timedelta(days=7)
    rows = (
        [Judged(week1, "negative", "negative")] * 3
        + [Judged(week1, "positive", "positive")]
        + [Judged(week2, "negative", "neutral")] * 3
        + [Judged(week2, "positive", "positive", "minilm", "2")]
        + [Judged(week2, "neutral", None)]  # made before the model had a label
    )
    report = drift_report(reversed(rows), stage="sentiment", period="week", labels=LABELS)
    assert (report.n, report.correct, report.unscored) == (8, 5, 1)
    assert report.accuracy == pytest.approx(5 / 8)
    assert (report.low, report.high) == wilson_interval(5, 8)
    assert [(p.period, p.n, p.correct) for p in report.periods] == [
        ("2024-W19", 4, 4),
        ("2024-W20", 4, 1),
    ]
    assert report.periods[1].models == {"minilm 1": 3, "minilm 2": 1}
    recall = {c.label: (c.n, c.correct) for c in report.per_class}
    assert recall == {"negative": (6, 3), "neutral": (0, 0), "positive": (2, 2)}
    data = report.as_dict()
    assert data["periods"][1]["accuracy"] == 0.25 and data["periods"][0]["start"] == "2024-05-06"
    assert data["per_class_recall"]["negative"]["recall"] == 0.5
    monthly = drift_report(rows, stage="sentiment", period="month")
    assert [(p.period, p.n) for p in monthly.periods] == [("2024-05", 8)]


def test_drift_report_without_scored_corrections():
    report = drift_report([], stage="intent")
    assert report.n == 0 and report.accuracy is None and report.periods == []
    assert report.as_dict()["accuracy"] is None
