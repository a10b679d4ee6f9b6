"""Language identification with py3langid (registry name ``language.langid``).

Each text is cleaned first (:func:`clean`): HTML entities decoded, URLs,
``@handles``, ``#hashtags``, emoji and other symbols removed. What is left is
classified by py3langid's naive Bayes model with normalised probabilities
(py3langid 0.4 knows 140 labels: ISO 639-1 codes such as ``en``, and ISO
639-3 codes for languages without one, such as ``pcm`` or ``yue``).

* ``label`` is the model's code (ISO 639-1 where the language has one), or
  ``und`` (undetermined) when the cleaned text has fewer than ``min_letters``
  letters, the top probability is below ``min_confidence``, or the model's
  answer is ``zxx`` ("no linguistic content").
* ``score`` is the top probability, as py3langid computes it (``0.0`` when
  there was nothing to classify). py3langid 0.4 divides its scores by the
  square root of the text's length in bytes before the softmax, so short texts
  get modest probabilities ("Thanks!" is ``en`` at about 0.09): that is why
  ``und`` is common for one- or two-word posts.
* ``data`` holds ``language`` (the best guess even when the label is ``und``),
  ``reason`` (``too_short``, ``low_confidence`` or ``no_language``, only with
  ``und``) and ``chars`` (the cleaned length).

With ``languages`` set, the model only chooses among those languages and the
probabilities are renormalised over them: a restricted stage is more
confident, and never answers a language outside the set (a text in another
language gets whichever allowed language is closest, often with a low
probability, hence ``und``).

The model is loaded once per process and language set (:func:`load_identifier`).
"""

from __future__ import annotations

import functools
import html
import importlib.metadata
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .base import NlpError, StageResult, require

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "UNDETERMINED",
    "LangidLanguage",
    "clean",
    "load_identifier",
]

UNDETERMINED = "und"
"""The label for a text whose language cannot be told (ISO 639-2 ``und``)."""

_NO_LANGUAGE = "zxx"  # py3langid's label for "no linguistic content"

_INSTALL = "pip install 'py3langid>=0.3,<0.5'"
_URL = re.compile(r"https?://\S+|\bwww\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)[@＠]\w+")
_HASHTAG = re.compile(r"(?<!\w)[#＃]\w+")
_WS = re.compile(r"\s+")
# Emoji variation selectors are combining marks (Mn), not symbols: removed by name.
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")


class _Strip(dict[int, "int | str | None"]):
    """The ``str.translate`` table of :func:`clean`, filled in per character on first sight.

    Whitespace becomes a space, symbols and controls (categories ``S*``, ``C*``)
    are deleted, anything else is kept; one dict lookup per character instead of
    a ``unicodedata`` call.
    """

    def __missing__(self, code: int) -> int | str | None:
        ch = chr(code)
        value: int | str | None
        if ch.isspace():
            value = " "
        elif unicodedata.category(ch)[0] in "SC":
            value = None
        else:
            value = code
        self[code] = value
        return value


_STRIP = _Strip()


def clean(text: str | None) -> str:
    """Strip what carries no language: URLs, @handles, #hashtags, emoji and symbols.

    HTML entities are decoded first (``&amp;`` becomes ``&``); characters of the
    Unicode categories ``S*`` (symbols, emoji) and ``C*`` (controls, zero-width
    joiners) and emoji variation selectors are removed; punctuation stays; whitespace is
    collapsed.
    """
    if not text:
        return ""
    s = html.unescape(str(text))
    s = _URL.sub(" ", s)
    s = _HANDLE.sub(" ", s)
    s = _HASHTAG.sub(" ", s)
    s = _VARIATION_SELECTORS.sub("", s)
    return _WS.sub(" ", s.translate(_STRIP)).strip()


@functools.cache
def _identifier(languages: tuple[str, ...] | None) -> Any:
    langid = require("py3langid.langid", _INSTALL)
    identifier = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
    if languages is not None:
        try:
            identifier.set_languages(list(languages))
        except ValueError as exc:
            raise NlpError(
                f"py3langid does not know a language in {list(languages)}: {exc}"
            ) from None
    return identifier


def load_identifier(languages: Iterable[str] | None = None) -> Any:
    """The py3langid identifier with normalised probabilities, loaded once per language set.

    Args:
        languages: Codes to choose among (``en``, ``fr``, ...); ``None`` means all 140.

    Raises:
        NotInstalledError: py3langid is not installed.
        NlpError: A code is not one py3langid knows.
    """
    key = None if languages is None else tuple(sorted({code.strip().lower() for code in languages}))
    if key is not None and not key:
        raise NlpError("languages must name at least one language (or be None for all)")
    return _identifier(key)


def _version() -> str:
    try:
        return importlib.metadata.version("py3langid")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class LangidLanguage:
    """The language stage over py3langid (registry name ``language.langid``); see the module.

    NOTE: it needs no embeddings and ignores ``nlp.threads``.
    """

    name = "language"
    needs_embeddings = False
    off = False
    model_name = "py3langid"

    def __init__(
        self,
        *,
        languages: Sequence[str] | None = None,
        min_confidence: float = 0.5,
        min_letters: int = 3,
        **_ignored: Any,
    ) -> None:
        """Load (or share) the identifier.

        Args:
            languages: Restrict the answers to these codes (``None``: all 140).
            min_confidence: Below this top probability the label is ``und``.
            min_letters: Cleaned texts with fewer letters than this are ``und``.
            **_ignored: Options meant for other stages, so one set of settings
                builds any stage.

        Raises:
            ValueError: ``min_confidence`` is not in [0, 1] or ``min_letters`` is negative.
            NotInstalledError: py3langid is not installed.
            NlpError: ``languages`` names a code py3langid does not know.
        """
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError("min_confidence must be between 0 and 1")
        if min_letters < 0:
            raise ValueError("min_letters must be >= 0")
        self.identifier = load_identifier(languages)
        self.languages = None if languages is None else sorted({c.lower() for c in languages})
        self.min_confidence = min_confidence
        self.min_letters = min_letters
        self.model_version = _version()

    def detect(self, text: str | None) -> StageResult:
        """Identify one text's language; see the module docstring for the result."""
        cleaned = clean(text)
        letters = sum(map(str.isalpha, cleaned))
        if letters < max(self.min_letters, 1):
            return StageResult(
                label=UNDETERMINED,
                score=0.0,
                data={"language": None, "reason": "too_short", "chars": len(cleaned)},
            )
        code, prob = self.identifier.classify(cleaned)
        prob = float(prob)
        data: dict[str, Any] = {"language": code, "chars": len(cleaned)}
        if code == _NO_LANGUAGE or prob < self.min_confidence:
            data["reason"] = "no_language" if code == _NO_LANGUAGE else "low_confidence"
            return StageResult(label=UNDETERMINED, score=round(prob, 6), data=data)
        return StageResult(label=code, score=round(prob, 6), data=data)

    def run(
        self, texts: Sequence[str], embeddings: npt.NDArray[np.float32] | None = None
    ) -> list[StageResult]:
        """Identify the language of each text, in order (``embeddings`` is ignored)."""
        return [self.detect(text) for text in texts]

    def __repr__(self) -> str:
        langs = "all" if self.languages is None else ",".join(self.languages)
        return f"LangidLanguage(py3langid {self.model_version}, languages={langs})"
