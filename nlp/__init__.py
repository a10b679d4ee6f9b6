"""NLP enrichment: stages over batches of mentions, embeddings stored once, measured models.

Importing this package loads no model and no torch; models load when a stage
or embedder is first used.
"""

from .base import (
    REGISTRY,
    NlpError,
    NotInstalledError,
    PassThroughStage,
    Stage,
    StageResult,
    UnknownStageError,
    available_stages,
    create_stage,
    register_stage,
    require,
)
from .options import NlpOptions

__all__ = [
    "REGISTRY",
    "NlpError",
    "NlpOptions",
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
