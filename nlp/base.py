"""The stage protocol, the pass-through stage, and the registry of stage factories.

A stage turns a batch of texts (and, if it asks for them, the batch's
precomputed embeddings) into one :class:`StageResult` per text. It declares
the ``name`` its results are stored under (the ``enrichments.stage`` column)
and the ``model_name`` and ``model_version`` that made them.

Stages are chosen by name from an explicit registry (:data:`REGISTRY`), never by
looking at the type of an object: ``create_stage("sentiment.vader")``. A stage
whose optional dependency is missing fails when it is created, not at import,
with the exact install line (:class:`NotInstalledError`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "REGISTRY",
    "MentionContext",
    "NlpError",
    "NotInstalledError",
    "PassThroughStage",
    "Stage",
    "StageResult",
    "UnknownStageError",
    "available_stages",
    "create_stage",
    "register_stage",
    "require",
]


class NlpError(Exception):
    """Base class for every error raised by ``listenwell.nlp``."""


class NotInstalledError(NlpError):
    """An optional dependency of a stage is missing; the message has the install line."""


class UnknownStageError(NlpError, KeyError):
    """No stage is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown stage"


@dataclass(frozen=True, slots=True)
class StageResult:
    """One stage's result for one text.

    Attributes:
        label: The predicted label (``None`` when the stage has nothing to say).
        score: The stage's confidence or score for ``label``; its meaning is
            documented by each stage.
        data: Anything else worth keeping (probabilities, evidence, flags), as
            JSON-serialisable values.
    """

    label: str | None
    score: float | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MentionContext:
    """What a stage that sets ``needs_context`` is told about each mention besides its text.

    Attributes:
        id: The mention's id (``mentions.id``).
        source: ``reddit``, ``x``, ``appstore``, ``csv``, ...
        author_handle: The author's handle as stored (``u/name``, ``@name``), if any.
        author_name: The author's display name, if any.
        created_at: When it was posted (UTC).
    """

    id: int
    source: str
    author_handle: str | None
    author_name: str | None
    created_at: datetime | None


@runtime_checkable
class Stage(Protocol):
    """What the pipeline needs from a stage.

    Attributes:
        name: The name its results are stored under (``enrichments.stage``).
        model_name: The model that makes the results, stored with each one.
        model_version: Its version, stored with each result.
        needs_embeddings: Whether :meth:`run` must be given the batch's embeddings.
        off: ``True`` for a stage that stands for "this stage is off"; the
            pipeline then neither runs it nor writes anything for it.

    Optional extras, looked up with ``getattr`` (a stage without them gets the default):

    * ``needs_context: bool = False`` -- :meth:`run` is then also given
      ``contexts=[MentionContext, ...]``, one per text (author, source, ids).
    * ``phase: int = 0`` -- stages of phase 0 run over all pending mentions
      first, then phase 1, and so on. A stage that needs the whole corpus
      embedded before it starts (themes fits clusters) uses phase 1.
    * ``prepare(engine) -> None`` -- called once before the stage's first batch
      of a run (load a customer index, fit or load a theme model).
    """

    name: str
    model_name: str
    model_version: str
    needs_embeddings: bool
    off: bool

    def run(
        self, texts: Sequence[str], embeddings: npt.NDArray[np.float32] | None = None
    ) -> list[StageResult]:
        """Compute one result per text, in order.

        Args:
            texts: The batch's texts, verbatim.
            embeddings: A ``(len(texts), dim)`` array of precomputed vectors,
                given when the stage sets ``needs_embeddings``.

        Returns:
            Exactly ``len(texts)`` results.
        """
        ...


class PassThroughStage:
    """A stage that is switched off: it computes nothing and the pipeline skips it.

    Use it where a stage object is expected and the user chose ``off``, so the
    pipeline's shape does not change with the configuration.
    """

    def __init__(self, name: str) -> None:
        """Stand in for the stage called ``name``."""
        self.name = name
        self.model_name = "off"
        self.model_version = "0"
        self.needs_embeddings = False
        self.off = True

    def run(
        self, texts: Sequence[str], embeddings: npt.NDArray[np.float32] | None = None
    ) -> list[StageResult]:
        """Return an empty result per text (the pipeline does not call this)."""
        return [StageResult(label=None) for _ in texts]

    def __repr__(self) -> str:
        return f"PassThroughStage({self.name!r})"


StageFactory = Callable[..., Stage]

REGISTRY: dict[str, StageFactory | str] = {
    "sentiment.finetuned": "listenwell.nlp.sentiment:FinetunedSentiment",
    "sentiment.vader": "listenwell.nlp.sentiment:VaderSentiment",
    "intent.prototypes": "listenwell.nlp.intent:PrototypeIntent",
    "language.langid": "listenwell.nlp.language:LangidLanguage",
    "themes.kmeans": "listenwell.nlp.themes:ThemeAssigner",
    "links.evidence": "listenwell.nlp.linking:EvidenceLinker",
}
"""Stage factories by name: a callable, or ``"module:attribute"`` imported on first use.

Built-ins are listed here the way an extension registers itself with
:func:`register_stage`; nothing is imported until a stage is created.
"""


def register_stage(name: str, factory: StageFactory | str, *, replace: bool = False) -> None:
    """Register a stage factory under ``name``.

    Args:
        name: The registry key, ``<stage>.<implementation>`` by convention.
        factory: Called with keyword options to build the stage, or a
            ``"module:attribute"`` path to such a callable.
        replace: Allow replacing an existing entry.

    Raises:
        ValueError: ``name`` is taken and ``replace`` is false.
    """
    if name in REGISTRY and not replace:
        raise ValueError(f"a stage is already registered as {name!r}")
    REGISTRY[name] = factory


def available_stages() -> list[str]:
    """The registered stage names, sorted."""
    return sorted(REGISTRY)


def create_stage(name: str, **options: Any) -> Stage:
    """Build the stage registered under ``name``.

    ``<stage>.off`` (e.g. ``sentiment.off``) always works and gives a
    :class:`PassThroughStage`.

    Raises:
        UnknownStageError: Nothing is registered under ``name``; the message
            lists what is.
        NotInstalledError: The stage's optional dependency is missing.
    """
    stage_name, _, impl = name.partition(".")
    if impl == "off" and stage_name:
        return PassThroughStage(stage_name)
    try:
        factory = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise UnknownStageError(
            f"unknown stage {name!r}; registered: {known} (or <stage>.off)"
        ) from None
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    return factory(**options)


def require(module: str, install: str) -> ModuleType:
    """Import an optional dependency, or fail with the exact line that installs it.

    Args:
        module: The module to import, e.g. ``vaderSentiment.vaderSentiment``.
        install: The install line to show, e.g. ``pip install 'vadersentiment>=3.3.2'``.

    Raises:
        NotInstalledError: The module cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise NotInstalledError(
            f"{module} is not installed ({exc.name or exc}); install it with: {install}"
        ) from None
