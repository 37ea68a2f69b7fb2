"""``/v1/embeddings``: the packaged (or configured) sentence encoder, run in the web process.

The web process serves each request in a thread of its own (``webapp/core/handlers.py``),
so encoding there never holds up the event loop that the other requests and every socket
share. It runs here rather than in a Celery worker because an embedding call is a few
milliseconds of work that a caller waits for: a round trip through the broker, and a
queue in which a 200-page summary may be ahead, would cost more than the work. The cost
is the encoder's memory (about 90 MB, and torch) in a web process that has been asked for
embeddings; it is loaded at the first such request, never at start, so a web process
that serves none never loads torch. One lock: one request encodes at a time, with all the
threads torch is given, rather than several splitting the cores between them.
"""

from __future__ import annotations

import array
import base64
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from inference.embeddings import Embedder

_lock = threading.Lock()
_embedder: Embedder | None = None


@dataclass(frozen=True)
class Embedded:
    vectors: list[list[float]]
    prompt_tokens: int


def _loaded() -> Embedder:
    global _embedder
    if _embedder is None:
        from inference.embeddings import Embedder

        _embedder = Embedder.from_config(settings.PARLEY_INFERENCE)
    return _embedder


def embed(texts: list[str]) -> Embedded:
    with _lock:
        embedder = _loaded()
        rows = embedder.embed(texts)
        tokens = sum(len(ids) for ids in embedder.tokenizer(texts, truncation=True, max_length=256)["input_ids"])
    return Embedded(vectors=rows.tolist(), prompt_tokens=tokens)


def as_base64(vector: list[float]) -> str:
    """OpenAI's ``encoding_format=base64``: the little-endian float32 bytes, in base64."""
    packed = array.array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def embeddings_body(*, model: str, embedded: Embedded, base64_encoded: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": as_base64(vector) if base64_encoded else vector}
            for index, vector in enumerate(embedded.vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": embedded.prompt_tokens, "total_tokens": embedded.prompt_tokens},
    }
