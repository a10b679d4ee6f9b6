"""Sentiment stages: the real fine-tuned artefact, calibration, low confidence, VADER."""

from __future__ import annotations

import json
from contextlib import nullcontext

import numpy as np
import pytest

from listenwell.nlp.evaluate import evaluate_sentiment, normalise_labels
from listenwell.nlp.sentiment import (
    LABELS,
    FinetunedSentiment,
    SentimentModelMissingError,
    load_sentiment_model,
    preprocess,
    vader_label,
)

PER_CLASS = 30  # held-out TweetEval TEST tweets per class for the sanity check


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@Acme_Help my order!", "@user my order!"),
        ("see https://t.co/abc123 and www.acme.com now", "see http and http now"),
        ("fish &amp;amp; chips &lt;3", "fish & chips <3"),
        ("caf\\u00e9 \\ud83d\\ude00", "café 😀"),
        ("  lots \n of\t space  ", "lots of space"),
        ("email me at joe@acme.com", "email me at joe@acme.com"),
        (None, ""),
    ],
)
def test_preprocess_matches_training(raw, expected):
    assert preprocess(raw) == expected


@pytest.mark.parametrize(
    ("compound", "label"),
    [(0.05, "positive"), (0.049, "neutral"), (0.0, "neutral"), (-0.049, "neutral"),
     (-0.05, "negative"), (0.9, "positive"), (-0.9, "negative")],
)  # fmt: skip
def test_vader_thresholds(compound, label):
    assert vader_label(compound) == label


def test_vader_stage(vader):
    pos, neg, neu = vader.run(["I love it!", "I hate it.", "It is on the table."])
    assert (pos.label, neg.label, neu.label) == ("positive", "negative", "neutral")
    assert pos.score == pos.data["compound"] > 0.05 and neg.score < -0.05
    assert vader.model_name == "vaderSentiment" and vader.model_version.startswith("3.")


def test_missing_artefact_says_how_to_get_it(tmp_path):
    with pytest.raises(SentimentModelMissingError, match=r"train_sentiment\.py.*vader"):
        load_sentiment_model(tmp_path)


def test_model_is_loaded_once(sentiment_model):
    assert load_sentiment_model() is sentiment_model
    assert FinetunedSentiment(threads=2).model is sentiment_model


def test_name_and_version_come_from_meta(finetuned, sentiment_model):
    meta = json.loads((sentiment_model.path / "meta.json").read_text(encoding="utf-8"))
    assert finetuned.model_name == meta["name"] and finetuned.model_version == meta["version"]
    assert tuple(meta["labels"]) == LABELS == sentiment_model.labels
    assert meta["preprocessing"]["version"] == "tweeteval-style-v1"
    assert sentiment_model.temperature == pytest.approx(float(meta["temperature"]))


def test_clear_cases(finetuned):
    results = finetuned.run(
        [
            "I love this phone, best purchase of the year! Thank you @acme",
            "Worst airline ever, lost my bag again and nobody answers. Never again.",
        ]
    )
    assert [r.label for r in results] == ["positive", "negative"]
    assert all(r.score > 0.5 for r in results)


def test_scores_are_calibrated_probabilities(finetuned, sentiment_model, texts):
    results = finetuned.run(texts)
    assert len(results) == len(texts)
    logits = sentiment_model.logits([preprocess(t) for t in texts])
    z = logits / sentiment_model.temperature
    expected = np.exp(z - z.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    for r, row in zip(results, expected, strict=True):
        probs = r.data["probs"]
        assert set(probs) == set(LABELS)
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
        assert r.score == pytest.approx(float(row.max()), abs=1e-5)
        assert r.label == LABELS[int(row.argmax())] == max(probs, key=probs.get)


@pytest.mark.parametrize(
    ("threshold", "expect"),
    [(0.0, nullcontext("none")), (1.0, nullcontext("all")), (0.5, nullcontext("below")),
     (1.5, pytest.raises(ValueError)), (-0.1, pytest.raises(ValueError))],
)  # fmt: skip
def test_low_confidence_flag(sentiment_model, texts, threshold, expect):
    with expect as which:
        stage = FinetunedSentiment(model=sentiment_model, low_confidence=threshold, threads=2)
        results = stage.run(texts)
        flags = [r.data["low_confidence"] for r in results]
        if which == "none":
            assert not any(flags)
        elif which == "all":
            assert all(flags)
        else:
            assert flags == [r.score < 0.5 for r in results]
            # The label is kept whatever the confidence.
            assert all(r.label in LABELS for r in results)


def _tweeteval_sample(shared_data) -> tuple[list[str], list[str]]:
    folder = shared_data("tweeteval", "sentiment")
    texts = (folder / "test_text.txt").read_text(encoding="utf-8").splitlines()
    raw = (folder / "test_labels.txt").read_text(encoding="utf-8").split()
    gold = normalise_labels(raw, "tweeteval")
    picked: dict[str, list[int]] = {label: [] for label in LABELS}
    for i, label in enumerate(gold):
        if len(picked[label]) < PER_CLASS:
            picked[label].append(i)
    idx = sorted(i for ids in picked.values() for i in ids)
    return [texts[i] for i in idx], [gold[i] for i in idx]


def test_finetuned_beats_vader_on_held_out_tweeteval_test(shared_data, finetuned, vader):
    texts, gold = _tweeteval_sample(shared_data)
    assert len(texts) == 3 * PER_CLASS
    ours = evaluate_sentiment(finetuned, texts, gold)
    baseline = evaluate_sentiment(vader, texts, gold)
    assert ours["macro_recall"] > baseline["macro_recall"]
    assert ours["macro_f1"] > baseline["macro_f1"]
    assert ours["macro_recall"] >= 0.6


def test_a_saved_workspace_recalibration_is_applied_from_the_next_run(engine, sentiment_model):
    """prepare() loads the recalibration saved for this model; run() uses it, keeps model_probs."""
    from listenwell.nlp.corrections import Calibration
    from listenwell.nlp.sentiment import FinetunedSentiment
    from listenwell.store.corrections import save_calibration

    stage = FinetunedSentiment(model=sentiment_model)
    texts = ["the update broke everything, awful", "ok, it arrived today"]
    stage.prepare(engine)
    before = stage.run(texts)
    assert all("model_probs" not in r.data for r in before)
    labels = list(sentiment_model.labels)
    strong_positive = Calibration(labels=tuple(labels), bias=(0.0, 0.0, 50.0), temperature=1.0)
    save_calibration(
        engine,
        "sentiment",
        stage.model_name,
        stage.model_version,
        strong_positive.to_params(),
        60,
        actor="test",
    )
    stage.prepare(engine)
    after = stage.run(texts)
    assert [r.label for r in after] == ["positive", "positive"]
    for b, a in zip(before, after, strict=True):
        assert a.data["model_probs"] == b.data["probs"]  # the model's own, kept
        assert a.data["calibration"]
    # Another model version's calibration is not applied.
    other = FinetunedSentiment(model=sentiment_model)
    other.model_version = "another"
    other.prepare(engine)
    assert other.calibration is None
