"""The stacked sentiment path (v0.3): artefact loading, the stacker's arithmetic, stored vectors.

The stacks here are built in a temporary folder over the real fine-tuned weights (linked,
not copied), with seeded weights, so the tests check the code paths and not one fitted stack.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from listenwell import store
from listenwell.nlp import NlpError
from listenwell.nlp.pipeline import Pipeline
from listenwell.nlp.sentiment import (
    DEFAULT_MODEL_DIR,
    FinetunedSentiment,
    SentimentModelMissingError,
    SentimentStack,
    load_sentiment_model,
    preprocess,
)

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sentiment"


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def write_stack(folder: Path, inputs, coef, intercept, temperature, arrays, **extra) -> Path:
    """A complete artefact folder: the shipped meta.json plus a stack, weights linked."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = json.loads((DEFAULT_MODEL_DIR / "meta.json").read_text(encoding="utf-8"))
    meta["version"] = "0.3.0-test"
    meta["stack"] = {"file": "stack.json"}
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    (folder / "model.safetensors").symlink_to(DEFAULT_MODEL_DIR / "model.safetensors")
    np.savez_compressed(folder / "stack.npz", **arrays)
    stack = {
        "inputs": list(inputs),
        "arrays": "stack.npz",
        "stacker": {"coef": np.asarray(coef).tolist(), "intercept": list(intercept)},
        "temperature": temperature,
        **extra,
    }
    (folder / "stack.json").write_text(json.dumps(stack), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def head_arrays():
    rng = np.random.default_rng(0)
    return {
        "head_coef": rng.normal(0, 3, (3, 384)).astype(np.float32),
        "head_intercept": np.array([0.2, -0.1, 0.0], dtype=np.float32),
    }


@pytest.fixture(scope="module")
def stacked(tmp_path_factory, sentiment_model, head_arrays):
    """A stack over ``ft`` and ``head`` with seeded weights."""
    rng = np.random.default_rng(1)
    folder = write_stack(
        tmp_path_factory.mktemp("stack") / "model",
        ("ft", "head"),
        rng.normal(0, 1, (3, 6)),
        [0.1, 0.0, -0.1],
        1.7,
        head_arrays,
    )
    return load_sentiment_model(folder)


def test_a_stack_is_loaded_with_its_version(stacked):
    assert stacked.version == "0.3.0-test"
    assert stacked.stack is not None and stacked.stack.inputs == ("ft", "head")
    assert stacked.needs_embeddings


def test_ft_only_stack_with_identity_weights_is_the_plain_model(tmp_path, sentiment_model, texts):
    folder = write_stack(
        tmp_path / "model", ("ft",), np.eye(3), [0.0, 0.0, 0.0], sentiment_model.temperature, {}
    )
    model = load_sentiment_model(folder)
    assert not model.needs_embeddings
    np.testing.assert_allclose(
        model.predict_proba(texts), sentiment_model.predict_proba(texts), atol=1e-9
    )


def test_stack_probabilities_follow_its_weights(stacked, sentiment_model, embedder, texts):
    clean = [preprocess(t) for t in texts]
    ft = _log_softmax(sentiment_model.logits(clean).astype(np.float64))
    a = stacked.stack.arrays
    emb = embedder.encode(texts).astype(np.float64)
    head = _log_softmax(emb @ a["head_coef"].T.astype(np.float64) + a["head_intercept"])
    x = np.hstack([ft, head])
    expected = _softmax((x @ stacked.stack.coef.T + stacked.stack.intercept) / 1.7)
    np.testing.assert_allclose(stacked.predict_proba(texts), expected, atol=1e-6)
    # Passing the vectors gives the same answer as letting the model encode them.
    np.testing.assert_allclose(
        stacked.predict_proba(texts, embeddings=embedder.encode(texts)), expected, atol=1e-6
    )


def test_pipeline_gives_a_stacked_stage_the_stored_vectors(
    engine, seed, texts, stacked, fresh_embedder
):
    stage = FinetunedSentiment(model=stacked, embedder=fresh_embedder)
    assert stage.needs_embeddings
    ids = seed(engine)
    Pipeline([stage], embedder=fresh_embedder, batch_size=5).run(engine)
    # Each text was embedded once, for storage; the stage reused those vectors.
    assert fresh_embedder.texts_encoded == len(texts)

    stored = store.read_enrichments(engine, "sentiment")
    alone = FinetunedSentiment(model=stacked)
    assert not alone.needs_embeddings  # no pipeline embedder: it encodes the texts itself
    for mention_id, want in zip(ids, alone.run(texts), strict=True):
        got = stored[mention_id]
        assert got.label == want.label
        assert got.model_version == "0.3.0-test"
        assert got.score == pytest.approx(want.score, abs=1e-5)


def test_stack_without_its_arrays_is_reported_missing(tmp_path, head_arrays):
    folder = write_stack(
        tmp_path / "model", ("ft", "head"), np.zeros((3, 6)), [0, 0, 0], 1.0, head_arrays
    )
    (folder / "stack.npz").unlink()
    with pytest.raises(SentimentModelMissingError, match="stack.npz"):
        load_sentiment_model(folder)


@pytest.mark.parametrize(
    ("inputs", "coef_shape", "message"),
    [
        (("ft", "bert"), (3, 6), "unknown stack inputs"),
        (("ft", "head"), (3, 3), "does not fit"),
        (("ft", "vader"), (3, 6), "does not fit"),
    ],
)
def test_a_malformed_stack_is_refused(tmp_path, head_arrays, inputs, coef_shape, message):
    folder = write_stack(
        tmp_path / "model", inputs, np.zeros(coef_shape), [0, 0, 0], 1.0, head_arrays
    )
    with pytest.raises(NlpError, match=message):
        load_sentiment_model(folder)


def test_vader_input_is_its_four_scores(vader):
    stack = SentimentStack(
        inputs=("ft", "vader"),
        coef=np.zeros((3, 7)),
        intercept=np.zeros(3),
        temperature=1.0,
        arrays={},
        spec={},
    )
    text = "What a great day, I love it!"
    x = stack.features(np.zeros((1, 3)), clean=[preprocess(text)], raw=[text])
    s = vader.analyzer.polarity_scores(text)
    assert x.shape == (1, 7)
    np.testing.assert_allclose(x[0, 3:], [s["neg"], s["neu"], s["pos"], s["compound"]])
    np.testing.assert_allclose(x[0, :3], np.log(np.full(3, 1 / 3)))


def test_tfidf_export_is_rebuilt_exactly():
    """The training script's TF-IDF export, rebuilt by the product, scores like sklearn did."""
    import scipy.sparse as sp

    sys.path.insert(0, str(BENCH))
    try:
        import train_stack
    finally:
        sys.path.remove(str(BENCH))
    rng = np.random.default_rng(0)
    words = "good bad awful great service phone love hate late flight ok today".split()
    corpus = [" ".join(rng.choice(words, size=6)) for _ in range(120)]
    y = np.array([i % 3 for i in range(120)])
    arrays = train_stack.fit_tfidf(corpus, y, seed=0)
    stack = SentimentStack(
        inputs=("tfidf",),
        coef=np.eye(3),
        intercept=np.zeros(3),
        temperature=1.0,
        arrays=arrays,
        spec={"tfidf": train_stack.TFIDF},
    )
    texts = corpus[:10] + ["a text with unseen words only", ""]
    x = sp.hstack([v.transform(texts) for v in _fitted(corpus)]).tocsr()
    expected = x @ arrays["tfidf_coef"].T.astype(np.float64) + arrays["tfidf_intercept"]
    np.testing.assert_allclose(stack._tfidf_logits(texts), expected, atol=1e-5)


def _fitted(corpus):
    from sklearn.feature_extraction.text import TfidfVectorizer

    sys.path.insert(0, str(BENCH))
    try:
        import train_stack
    finally:
        sys.path.remove(str(BENCH))
    return [
        TfidfVectorizer(
            analyzer=p["analyzer"],
            ngram_range=tuple(p["ngram_range"]),
            min_df=p["min_df"],
            max_features=p["max_features"],
            sublinear_tf=True,
        ).fit(corpus)
        for p in train_stack.TFIDF.values()
    ]


def test_build_pipeline_lets_a_stack_read_the_stored_vectors(stacked):
    from listenwell.nlp.options import NlpOptions
    from listenwell.nlp.pipeline import build_pipeline

    pipeline = build_pipeline(NlpOptions(sentiment_model_dir=stacked.path, threads=2))
    stage = next(s for s in pipeline.stages if s.name == "sentiment")
    assert stage.needs_embeddings
    assert stage.embedder is pipeline.embedder
    assert stage.model_version == "0.3.0-test"


def test_without_embeddings_setting_a_stack_encodes_for_itself(stacked):
    from listenwell.nlp.options import NlpOptions
    from listenwell.nlp.pipeline import build_pipeline

    pipeline = build_pipeline(
        NlpOptions(sentiment_model_dir=stacked.path, threads=2, embeddings=False)
    )
    stage = next(s for s in pipeline.stages if s.name == "sentiment")
    assert pipeline.embedder is None
    assert not stage.needs_embeddings and stage.embedder is not None
