"""The NLP settings, read from ``Settings.nlp`` where it exists, with documented defaults.

Until the ``nlp`` section is declared in ``config/settings.py`` these defaults
apply; once it is, the values set there (YAML or ``LISTENWELL_NLP__*``) win.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["NlpOptions"]


@dataclass(frozen=True, slots=True)
class NlpOptions:
    """What the enrichment pipeline reads from the settings.

    Attributes:
        batch_size: Mentions per enrichment batch; each batch's results and
            embeddings are written in one transaction.
        threads: Torch CPU threads for the models.
        low_confidence: A sentiment whose calibrated probability is below this
            is flagged ``low_confidence`` (its label is kept).
        sentiment_model: ``finetuned``, ``vader`` or ``off``.
        sentiment_model_dir: The fine-tuned artefact's folder; ``None`` means
            the one shipped in ``nlp/models/sentiment``.
        embeddings: Compute and store an embedding for every mention.
        intent_model: ``prototypes`` or ``off``.
        language_model: ``langid`` or ``off``.
        languages: Language codes the language stage may choose from (``None``: all).
        language_min_confidence: Below this probability the language is ``und``.
        language_min_letters: Fewer letters than this gives ``und``.
        themes: ``kmeans`` or ``off`` (its other settings are read by
            :meth:`listenwell.nlp.themes.ThemeOptions.from_settings`).
    """

    batch_size: int = 256
    threads: int = 2
    low_confidence: float = 0.5
    sentiment_model: str = "finetuned"
    sentiment_model_dir: Path | None = None
    embeddings: bool = True
    intent_model: str = "prototypes"
    language_model: str = "langid"
    languages: tuple[str, ...] | None = None
    language_min_confidence: float = 0.5
    language_min_letters: int = 3
    themes: str = "kmeans"

    @classmethod
    def from_settings(cls, settings: Any) -> NlpOptions:
        """Read ``settings.nlp`` field by field; anything absent keeps its default."""
        section = getattr(settings, "nlp", None)
        if section is None:
            return cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            if hasattr(section, f.name):
                values[f.name] = getattr(section, f.name)
        if values.get("languages") is not None:
            values["languages"] = tuple(values["languages"])
        if values.get("sentiment_model_dir") is not None:
            values["sentiment_model_dir"] = Path(values["sentiment_model_dir"])
        return cls(**values)
