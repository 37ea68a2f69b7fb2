"""Parley's model layer: chat generation, summaries, embeddings and sentiment.

Never imports Django. torch and transformers are imported only when a model is first
used, so importing this package is cheap for processes that never generate.
"""

from inference.engine import (
    ChatMessage,
    Engine,
    GenerationRequest,
    GenerationResult,
    GenerationStats,
    SamplingParams,
    Stream,
)
from inference.errors import EmptyTextError, InferenceError, InvalidRequestError, ModelNotFoundError

__all__ = [
    "ChatMessage",
    "EmptyTextError",
    "Engine",
    "GenerationRequest",
    "GenerationResult",
    "GenerationStats",
    "InferenceError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "SamplingParams",
    "Stream",
]
