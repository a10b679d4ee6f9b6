"""Intent stage: rules, prototypes over the real packaged MiniLM, and the labelled sample."""

from __future__ import annotations

import json
import sys
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest

from listenwell.nlp.base import NlpError, Stage
from listenwell.nlp.intent import (
    DEFAULT_PARAMS,
    LABELS,
    MODEL_NAME,
    RULES,
    SEEDS,
    IntentParams,
    PrototypeIntent,
    fired_rules,
    rule_text,
    rules_label,
)

BENCH = Path(__file__).resolve().parents[2] / "bench" / "intent"
sys.path.insert(0, str(BENCH))

import eval_intent  # noqa: E402
import sample  # noqa: E402

# Written for these tests; none is in the seeds or the labelled sample.
CLEAR = [
    ("Please add an option to change the alarm sound", "feature_request"),
    ("Thank you, the service on my trip was excellent", "praise"),
    ("My suitcase never arrived and nobody at the desk will help me", "complaint"),
    ("Do you have flights from Boston to Rome in June?", "question"),
]


@pytest.fixture(scope="module")
def stage(embedder) -> PrototypeIntent:
    """The intent stage over the session's real MiniLM; seeds embedded once for the module."""
    return PrototypeIntent(embedder=embedder)


def test_is_a_stage(stage):
    assert isinstance(stage, Stage)
    assert (stage.name, stage.model_name, stage.needs_embeddings) == ("intent", MODEL_NAME, True)
    assert stage.seed_vectors.shape == (sum(len(v) for v in SEEDS.values()), 384)


def test_one_valid_result_per_text(stage, embedder, texts):
    batch = [*texts, "", "🙂"]
    results = stage.run(batch, embedder.encode(batch))
    assert len(results) == len(batch)
    for r in results:
        assert r.label in LABELS
        assert set(r.data["scores"]) == set(LABELS)
        assert sum(r.data["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert r.score == pytest.approx(max(r.data["scores"].values()), abs=1e-6)
        assert r.label == max(r.data["scores"], key=r.data["scores"].get)
        assert all(name in {rule.name for rule in RULES} for name in r.data["rules"])
    json.dumps([r.data for r in results])  # stored as JSON


def test_clear_cases(stage):
    results = stage.run([t for t, _ in CLEAR])  # embeds them itself when not given vectors
    assert [r.label for r in results] == [label for _, label in CLEAR]


def test_embeddings_given_or_computed_agree(stage, embedder):
    batch = [t for t, _ in CLEAR]
    given = stage.run(batch, embedder.encode(batch))
    computed = stage.run(batch)
    assert [r.label for r in given] == [r.label for r in computed]
    for a, b in zip(given, computed, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-5)


def test_prototypes_alone_separate_classes_without_any_rule(stage, embedder):
    # No rule fires on these, so the label comes from the prototypes (and biases) alone.
    cases = [
        ("The package showed up smashed to pieces", "complaint"),
        ("Our grandchildren adore this little speaker", "praise"),
    ]
    for text, _ in cases:
        assert fired_rules(text) == []
    sims = stage.similarities(embedder.encode([t for t, _ in cases]))
    assert [LABELS[int(i)] for i in sims.argmax(axis=1)] == [label for _, label in cases]
    # A seed phrase is nearest to its own class (cosine 1 with itself).
    seeds = [SEEDS["question"][0], SEEDS["feature_request"][0]]
    own = PrototypeIntent.similarities(_with_top_k(stage, 1), embedder.encode(seeds))
    assert own[:, LABELS.index("question")][0] == pytest.approx(1.0, abs=1e-5)
    assert own[:, LABELS.index("feature_request")][1] == pytest.approx(1.0, abs=1e-5)


def _with_top_k(stage: PrototypeIntent, top_k: int) -> PrototypeIntent:
    clone = object.__new__(PrototypeIntent)
    clone.__dict__.update(stage.__dict__)
    clone.params = IntentParams(top_k=top_k)
    return clone


@pytest.mark.parametrize(
    ("text", "rules", "label"),
    [
        ("@acme please add dark mode!", {"feature_wish"}, "feature_request"),
        ("I wish it had a bigger screen", {"feature_wish"}, "feature_request"),
        # "would" at the start also counts as a question word; precedence still decides.
        ("Would be nice if you flew to Lisbon", {"feature_wish", "question_start"},
         "feature_request"),
        ("Can you add Spotify support?", {"feature_wish", "question_mark", "question_start"},
         "feature_request"),
        ("How do I change my seat?", {"question_mark", "question_start", "help_request"},
         "question"),
        ("@acme is the store open on Sunday", {"question_start"}, "question"),
        ("Thanks so much, great crew", {"thanks", "positive_words"}, "praise"),
        ("Doesn’t disappoint", {"positive_words"}, "praise"),
        ("Still waiting for my refund, worst airline", {"problem_words", "negative_words"},
         "complaint"),
        ("Can’t connect to the wifi", {"problem_words"}, "complaint"),
        ("Just landed in Denver https://t.co/x", set(), "other"),
        ("", set(), "other"),
    ],
)  # fmt: skip
def test_rules(text, rules, label):
    assert set(fired_rules(text)) == rules
    assert rules_label(text) == label


def test_rule_text_normalises():
    assert rule_text("@Acme_Help Can’t log in &amp; https://t.co/x NOW") == "can't log in & now"
    assert rule_text(None) == ""


def test_rules_shift_scores(stage, embedder):
    text = ["Can you add a sleep timer to the app?"]
    emb = embedder.encode(text)
    with_rules = stage.probabilities(text, emb)[0][0]
    no_rules = _with_top_k(stage, DEFAULT_PARAMS.top_k)
    without = no_rules.probabilities(text, emb)[0][0]
    j = LABELS.index("feature_request")
    assert "feature_wish" in fired_rules(text[0])
    assert with_rules[j] > without[j]


def test_empty_batch_and_bad_shapes(stage):
    assert stage.run([]) == []
    with pytest.raises(NlpError, match="2 texts but 1 embeddings"):
        stage.run(["a", "b"], np.zeros((1, 384), dtype=np.float32))
    with pytest.raises(NlpError, match="shape"):
        stage.similarities(np.zeros((2, 10), dtype=np.float32))


@pytest.mark.parametrize(
    ("kwargs", "expect"),
    [({}, nullcontext()), ({"top_k": 0}, pytest.raises(ValueError)),
     ({"temperature": 0}, pytest.raises(ValueError)),
     ({"rule_weights": {"nope": 1.0}}, pytest.raises(ValueError)),
     ({"bias": {"angry": 0.1}}, pytest.raises(ValueError))],
)  # fmt: skip
def test_params_validation(kwargs, expect):
    with expect:
        IntentParams(**kwargs)


def test_default_params_are_the_dev_tuning_output():
    tuned = json.loads((BENCH / "tuning.json").read_text(encoding="utf-8"))
    assert tuned["split"] == "dev"
    p = tuned["params"]
    assert DEFAULT_PARAMS.top_k == p["top_k"]
    assert dict(DEFAULT_PARAMS.rule_weights) == p["rule_weights"]
    assert dict(DEFAULT_PARAMS.bias) == p["bias"]
    assert DEFAULT_PARAMS.temperature == p["temperature"]


# --------------------------------------------------------------------------- the labelled sample


@pytest.fixture(scope="module")
def labelled() -> list[dict[str, str]]:
    return sample.read_labelled(BENCH / "labelled.csv")


def test_sample_is_fully_labelled(labelled):
    assert list(labelled[0]) == list(sample.COLUMNS)
    assert all(r["label"] in LABELS for r in labelled)
    assert len({r["id"] for r in labelled}) == len(labelled)
    assert len({(r["source"], r["source_id"]) for r in labelled}) == len(labelled)
    assert {r["source"] for r in labelled} == {"twcs", "airline", "alexa"}
    test = Counter(r["label"] for r in labelled if r["split"] == "test")
    assert min(test.values()) >= 20, test  # every class has a usable test support


def test_dev_and_test_are_disjoint(labelled):
    dev = [r for r in labelled if r["split"] == "dev"]
    test = [r for r in labelled if r["split"] == "test"]
    assert len(dev) + len(test) == len(labelled) and dev and test
    assert not {r["id"] for r in dev} & {r["id"] for r in test}
    assert not {sample.normalise(r["text"]) for r in dev} & {
        sample.normalise(r["text"]) for r in test
    }


def test_seeds_are_not_copied_from_the_sample(labelled):
    texts = {sample.normalise(r["text"]) for r in labelled}
    for label, phrases in SEEDS.items():
        assert label in LABELS
        for phrase in phrases:
            assert sample.normalise(phrase) not in texts, phrase
    for text, _ in CLEAR:
        assert sample.normalise(text) not in texts


def test_sample_matches_a_fresh_seeded_draw(shared_data):
    shared = shared_data().parent
    assert sample.check(BENCH / "labelled.csv", shared) == []


def test_metrics_on_a_worked_example():
    gold = ["complaint", "complaint", "question", "praise", "other"]
    pred = ["complaint", "question", "question", "praise", "praise"]
    m = eval_intent.metrics(gold, pred)
    assert m["per_class"]["complaint"] == {
        "precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2, "predicted": 1,
    }  # fmt: skip
    assert m["per_class"]["question"]["precision"] == 0.5
    assert m["per_class"]["other"]["recall"] == 0.0
    assert m["per_class"]["feature_request"]["support"] == 0
    # Macro-F1 over the four classes that occur: (0.6667 + 0.6667 + 0.6667 + 0) / 4.
    assert m["macro_f1"] == pytest.approx(0.5, abs=1e-3)
    assert m["accuracy"] == 0.6
    assert m["confusion"]["matrix"][0] == [1, 1, 0, 0, 0]
