"""NLP fixtures: the real packaged MiniLM and the real fine-tuned artefact, loaded once.

The fine-tuned artefact ships in ``nlp/models/sentiment``; where it is absent
the tests that need it skip with the reason, except in CI (``CI=true``), where
a missing artefact is an error.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from listenwell import store
from listenwell.nlp.embeddings import Embedder, set_threads
from listenwell.nlp.sentiment import (
    DEFAULT_MODEL_DIR,
    FinetunedSentiment,
    SentimentModel,
    VaderSentiment,
    load_sentiment_model,
)

THREADS = 2  # the test machine has two cores, shared with other jobs

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)

TEXTS = [
    "I love this phone, best purchase of the year!",
    "Worst customer service ever. Two hours on hold and they hung up on me.",
    "What time does the store on Main Street open on Sundays?",
    "My order arrived broken and support won't answer my emails",
    "Thanks @acme_help for sorting out my refund so quickly, great team",
    "The new update is out today, version 4.2",
    "Battery dies in three hours, totally useless, I want my money back",
    "Does the premium plan include international calls?",
    "absolutely fantastic experience at the checkout, staff were lovely",
    "Package came damaged and customer service is ignoring me",
    "Store closes at 9pm on weekdays https://acme.example/hours",
    "meh. it works i guess",
]


def _seed(engine, texts=TEXTS, *, start: int = 0) -> list[int]:
    mentions = [
        store.Mention(
            source="x",
            external_id=f"m{start + i}",
            created_at=T0 + timedelta(minutes=start + i),
            text=text,
            author_handle=f"@user{i}",
        )
        for i, text in enumerate(texts)
    ]
    store.upsert_mentions(engine, mentions)
    from sqlalchemy import select

    from listenwell.store.models import MentionRow

    ids = [f"m{start + i}" for i in range(len(texts))]
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                select(MentionRow.external_id, MentionRow.id).where(MentionRow.external_id.in_(ids))
            ).all()
        )
    return [rows[i] for i in ids]


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    set_threads(THREADS)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real packaged MiniLM, loaded once for the session."""
    emb = Embedder(threads=THREADS, batch_size=32)
    emb.encode(["warm-up"])  # load the model now, not inside the first test
    return emb


@pytest.fixture(scope="session")
def sentiment_model() -> SentimentModel:
    """The real fine-tuned artefact, loaded once; skips (fails in CI) where it is absent."""
    if not (DEFAULT_MODEL_DIR / "meta.json").is_file():
        reason = f"fine-tuned sentiment artefact not found in {DEFAULT_MODEL_DIR}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI must test the shipped model)")
        pytest.skip(reason)
    return load_sentiment_model()


@pytest.fixture(scope="session")
def finetuned(sentiment_model: SentimentModel) -> FinetunedSentiment:
    """The fine-tuned sentiment stage over the session's model."""
    return FinetunedSentiment(model=sentiment_model, threads=THREADS)


@pytest.fixture(scope="session")
def vader() -> VaderSentiment:
    """The VADER baseline stage."""
    return VaderSentiment()


@pytest.fixture
def fresh_embedder(embedder: Embedder) -> Embedder:
    """An embedder sharing the session's loaded model, with its own ``texts_encoded`` count."""
    return Embedder(threads=THREADS, batch_size=embedder.batch_size)


@pytest.fixture
def seed():
    """``seed(engine, texts=TEXTS, start=0)``: store one mention per text, return their ids."""
    return _seed


@pytest.fixture
def texts() -> list[str]:
    """A dozen short brand posts of every sentiment."""
    return list(TEXTS)
