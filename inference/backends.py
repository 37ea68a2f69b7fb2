"""What a generation worker drives: one model of the registry, local or upstream.

``Backend`` is the interface the worker uses, and both kinds give it: the in-process
``Engine`` (engine.py) for a ``local`` model and ``UpstreamEngine`` (upstream.py) for an
``openai`` one. ``submit`` returns a ``Stream`` (streams.py) of text deltas whose ``stats``
say how it ended; ``together()`` groups submissions into one prefill where that means
anything; ``model_name`` is what answers record as the model that wrote them.
"""

from __future__ import annotations

import dataclasses
import threading
from contextlib import AbstractContextManager
from typing import Protocol

from inference.config import InferenceConfig, ModelEntry, UpstreamModel
from inference.streams import Stream
from inference.types import GenerationRequest


class Backend(Protocol):
    model_name: str
    max_batch_size: int
    max_context: int  # prompt and answer together, in the model's tokens

    def count_text_tokens(self, text: str) -> int:
        """About how many of the model's tokens ``text`` takes (for fitting documents in)."""
        ...

    def submit(self, request: GenerationRequest, *, wake: threading.Event | None = None) -> Stream: ...

    def together(self) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...


def backend_for(
    model: ModelEntry,
    config: InferenceConfig,
    *,
    max_batch_size: int,
    prefill_tokens: int,
    max_new_tokens_limit: int,
) -> Backend:
    """The backend for one model of the registry; a local one is loaded here (seconds),
    an upstream one only connects when the first answer is sent."""
    if isinstance(model, UpstreamModel):
        from inference.upstream import UpstreamEngine

        return UpstreamEngine(model, max_batch_size=max_batch_size, max_new_tokens_limit=max_new_tokens_limit)
    from inference.engine import Engine

    return Engine.from_config(
        dataclasses.replace(config, chat_model=model.path),
        name=model.name,
        max_batch_size=max_batch_size,
        prefill_tokens=prefill_tokens,
        max_new_tokens_limit=max_new_tokens_limit,
    )
