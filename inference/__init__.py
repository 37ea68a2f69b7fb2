"""Parley's model layer: chat generation, summaries, embeddings and sentiment.

Never imports Django. torch and transformers are imported only when a model is first
used, so importing this package is cheap for processes that never generate.
"""

import os

# Parley runs its models in more than one process on the same cores (the generation
# worker, the Celery worker), next to the web process and the databases. By default
# libgomp, torch's OpenMP, keeps every waiting thread spinning for 300,000 turns after
# each parallel region, so two busy model processes spend much of their time spinning
# on a core the other one needs (python -m bench.shared_cpu; figures in docs/decisions.md).
# Waiting threads sleep instead, unless the operator has chosen; this must happen
# before torch loads libgomp.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

from inference.engine import Engine
from inference.errors import EmptyTextError, InferenceError, InvalidRequestError, ModelNotFoundError
from inference.streams import Stream
from inference.types import ChatMessage, GenerationRequest, GenerationResult, GenerationStats, SamplingParams

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
