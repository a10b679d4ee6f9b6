"""Explanations: the words that drove a sentiment prediction (real packaged model, real VADER)."""

from __future__ import annotations

import pytest

MIXED = "I love this phone but the battery is terrible"


def _weights(pairs: list[tuple[str, float]]) -> dict[str, float]:
    return dict(pairs)


def test_mixed_post_words_push_their_own_way(finetuned):
    toward_pos = _weights(finetuned.explain(MIXED, top_k=20, label="positive"))
    toward_neg = _weights(finetuned.explain(MIXED, top_k=20, label="negative"))
    assert toward_pos["love"] > 0 > toward_pos["terrible"]
    assert toward_neg["terrible"] > 0 > toward_neg["love"]


def test_default_explains_the_predicted_label(finetuned):
    predicted = finetuned.run([MIXED])[0].label
    assert finetuned.explain(MIXED) == finetuned.explain(MIXED, label=predicted)
    top_word, top_weight = finetuned.explain(MIXED, top_k=1)[0]
    assert top_weight > 0
    # The predicted label's strongest word is the one of matching polarity.
    assert top_word == {"negative": "terrible", "positive": "love"}.get(predicted, top_word)


def test_weight_is_the_probability_drop_without_the_word(finetuned):
    text = "great service, thank you"
    result = finetuned.run([text])[0]
    words = text.split(" ")
    shorter = [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
    dropped = [r.data["probs"][result.label] for r in finetuned.run(shorter)]
    expected = {
        w: result.data["probs"][result.label] - p for w, p in zip(words, dropped, strict=True)
    }
    got = finetuned.explain(text, top_k=len(words))
    assert sorted(w for w, _ in got) == sorted(words)
    for word, weight in got:
        assert weight == pytest.approx(expected[word], abs=1e-4)


def test_top_k_orders_by_magnitude_and_words_are_as_the_model_saw_them(finetuned):
    text = "@AcmeAir lost my bag AGAIN, worst trip ever https://t.co/x"
    pairs = finetuned.explain(text, top_k=3)
    assert len(pairs) == 3
    magnitudes = [abs(w) for _, w in pairs]
    assert magnitudes == sorted(magnitudes, reverse=True)
    every = [w for w, _ in finetuned.explain(text, top_k=100)]
    assert "@user" in every and "http" in every and "@AcmeAir" not in every


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"top_k": 0}, "top_k"), ({"label": "angry"}, "label must be one of")],
)
def test_bad_arguments(finetuned, kwargs, message):
    with pytest.raises(ValueError, match=message):
        finetuned.explain(MIXED, **kwargs)


def test_empty_text_has_no_explanation(finetuned, vader):
    assert finetuned.explain("   ") == [] and vader.explain("") == []


def test_vader_plain_word_gets_its_lexicon_valence(vader):
    assert vader.explain("I love it") == [("love", vader.analyzer.lexicon["love"])]


def test_vader_applies_its_rules(vader):
    lex = vader.analyzer.lexicon
    mixed = _weights(vader.explain(MIXED))
    # VADER's "but" rule halves what comes before and boosts what follows by half.
    assert mixed["love"] == pytest.approx(0.5 * lex["love"])
    assert mixed["terrible"] == pytest.approx(1.5 * lex["terrible"])
    assert _weights(vader.explain("the food was not good"))["good"] < 0


def test_vader_compound_is_the_squashed_sum_of_the_valences(vader):
    from vaderSentiment.vaderSentiment import normalize

    for text in (MIXED, "the food was not good", "It is VERY GOOD and kind of nice"):
        total = sum(v for _, v in vader.explain(text, top_k=50))
        assert vader.run([text])[0].score == pytest.approx(round(normalize(total), 4), abs=1e-4)
    with pytest.raises(ValueError, match="top_k"):
        vader.explain(MIXED, top_k=0)
