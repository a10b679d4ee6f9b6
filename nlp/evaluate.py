"""Measuring a sentiment stage against labelled data: label formats, metrics, CSV input.

Labels are accepted in three formats (:func:`normalise_labels`):

* ``names``: ``negative``, ``neutral``, ``positive`` (any case);
* ``signed``: ``-1``, ``0``, ``1``;
* ``tweeteval``: TweetEval's ``0`` (negative), ``1`` (neutral), ``2`` (positive).

With ``scheme="auto"`` the format is read from the values: names if every
value is a name; ``signed`` if a ``-1`` occurs; ``tweeteval`` if a ``2``
occurs. A column holding only ``0`` and ``1`` fits both number formats, means
different things in each, and is refused: name the format explicitly
(``--labels signed`` or ``--labels tweeteval``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from .base import NlpError, Stage
from .sentiment import LABELS

__all__ = [
    "LabelFormatError",
    "LabelScheme",
    "SCHEMES",
    "evaluate_sentiment",
    "normalise_labels",
    "read_labelled_csv",
    "sentiment_metrics",
]

LabelScheme = Literal["auto", "names", "signed", "tweeteval"]
SCHEMES: tuple[str, ...] = ("auto", "names", "signed", "tweeteval")

_NUMBERS: dict[str, dict[int, str]] = {
    "signed": {-1: "negative", 0: "neutral", 1: "positive"},
    "tweeteval": {0: "negative", 1: "neutral", 2: "positive"},
}


class LabelFormatError(NlpError):
    """Gold labels that are not in a known format, or whose format is ambiguous."""


def _as_int(value: str) -> int | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def normalise_labels(values: Iterable[str], scheme: LabelScheme = "auto") -> list[str]:
    """Turn gold labels in any accepted format into ``negative|neutral|positive``.

    Args:
        values: The labels as read from a file (strings).
        scheme: ``auto`` to detect the format (see the module docstring), or the format.

    Returns:
        One label name per value, in order.

    Raises:
        LabelFormatError: A value does not fit the format, the values mix
            formats, or ``auto`` meets the ambiguous 0/1-only case.
    """
    raw = [str(v).strip() for v in values]
    if scheme not in SCHEMES:
        raise LabelFormatError(f"unknown label format {scheme!r}; use one of {', '.join(SCHEMES)}")
    if scheme == "auto":
        scheme = _detect(raw)
    if scheme == "names":
        out = []
        for i, v in enumerate(raw):
            name = v.lower()
            if name not in LABELS:
                raise LabelFormatError(
                    f"label {v!r} (row {i + 1}) is not one of {', '.join(LABELS)}"
                )
            out.append(name)
        return out
    mapping = _NUMBERS[scheme]
    out = []
    for i, v in enumerate(raw):
        n = _as_int(v)
        if n not in mapping:
            allowed = "/".join(str(k) for k in mapping)
            raise LabelFormatError(f"label {v!r} (row {i + 1}) is not {allowed} ({scheme} labels)")
        out.append(mapping[n])
    return out


def _detect(raw: Sequence[str]) -> LabelScheme:
    if not raw:
        return "names"
    if all(v.lower() in LABELS for v in raw):
        return "names"
    numbers = {_as_int(v) for v in raw}
    if None in numbers:
        names = [v for v in raw if v.lower() in LABELS]
        if names:
            raise LabelFormatError(
                f"labels mix names and numbers (e.g. {names[0]!r}); use one format throughout"
            )
        bad = next(v for v in raw if _as_int(v) is None)
        raise LabelFormatError(
            f"label {bad!r} is not a sentiment name or number; use negative|neutral|positive, "
            "-1/0/1, or TweetEval's 0/1/2"
        )
    if numbers <= {-1, 0, 1} and -1 in numbers:
        return "signed"
    if numbers <= {0, 1, 2} and 2 in numbers:
        return "tweeteval"
    if numbers <= {0, 1}:
        raise LabelFormatError(
            "labels are only 0 and 1, which is ambiguous (-1/0/1 or TweetEval's 0/1/2?); "
            "pass --labels signed or --labels tweeteval"
        )
    raise LabelFormatError(
        f"numeric labels {sorted(n for n in numbers if n is not None)} fit neither -1/0/1 "
        "nor TweetEval's 0/1/2"
    )


def sentiment_metrics(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Macro-averaged recall and F1 over the three classes, accuracy, and ``n``.

    A class absent from both gold and predictions counts 0 towards the macro
    averages (the usual convention: the average is always over three classes).

    Raises:
        ValueError: The sequences differ in length or are empty.
    """
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted labels differ in length")
    if not gold:
        raise ValueError("no labelled rows to evaluate")
    recalls, f1s = [], []
    for label in LABELS:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == label)
        n_gold = sum(1 for g in gold if g == label)
        n_pred = sum(1 for p in predicted if p == label)
        recall = tp / n_gold if n_gold else 0.0
        precision = tp / n_pred if n_pred else 0.0
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    correct = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p)
    return {
        "macro_recall": round(sum(recalls) / len(LABELS), 6),
        "macro_f1": round(sum(f1s) / len(LABELS), 6),
        "accuracy": round(correct / len(gold), 6),
        "n": len(gold),
    }


def read_labelled_csv(
    path: Path, text_column: str, label_column: str, *, encoding: str = "utf-8-sig"
) -> tuple[list[str], list[str]]:
    """Read texts and raw gold labels from a CSV file with a header row.

    Rows whose label is empty are skipped (unlabelled); empty texts are kept.

    Raises:
        NlpError: The file cannot be read or lacks a named column.
    """
    try:
        with path.open(encoding=encoding, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in (text_column, label_column) if c not in header]
            if missing:
                raise NlpError(
                    f"{path} has no column {', '.join(repr(m) for m in missing)}; "
                    f"columns: {', '.join(header) or 'none'}"
                )
            texts, labels = [], []
            for row in reader:
                label = (row.get(label_column) or "").strip()
                if not label:
                    continue
                texts.append(row.get(text_column) or "")
                labels.append(label)
    except OSError as exc:
        raise NlpError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise NlpError(f"{path} is not a readable UTF-8 CSV file: {exc}") from None
    return texts, labels


def evaluate_sentiment(
    stage: Stage, texts: Sequence[str], gold: Sequence[str], *, batch_size: int = 256
) -> dict[str, Any]:
    """Run a sentiment stage over texts and score it against gold label names.

    Returns:
        ``macro_recall``, ``macro_f1``, ``accuracy`` and ``n``.
    """
    predicted: list[str] = []
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start : start + batch_size])
        predicted.extend(r.label or "neutral" for r in stage.run(chunk))
    return sentiment_metrics(gold, predicted)
