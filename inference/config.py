"""Where the models are and how they run, read from the environment.

This is the one reader of the models' variables: Django settings build
``PARLEY_INFERENCE`` with ``InferenceConfig.from_env()`` (an InferenceError, which names
the variable, stops the web project at start) and hand it to whatever loads a model;
the command line (``python -m inference``) calls ``from_env()`` itself, without Django.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from inference.errors import InferenceError

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
QUANTIZATIONS = ("none", "int8")


@dataclass(frozen=True)
class InferenceConfig:
    models_dir: Path
    chat_model: str  # a folder in Hugging Face format; "" means the packaged SmolLM2
    embedding_model: str  # "" means the packaged all-MiniLM-L6-v2
    sentiment_model: str  # "" means the trained head shipped in inference/sentiment_head/
    device: str
    dtype: str
    # CPU threads for torch; 0 keeps torch's default (one per core). On a small CPU-only
    # machine, leaving a core to the web process can serve users better than the model alone.
    threads: int = 0
    # "int8": the chat model's linear layers in int8 on a CPU (see inference/quantize.py):
    # faster batches for a perplexity within a few percent of float32's.
    chat_quantize: str = "none"
    # memory for keys and values kept from finished chats, to start the next message of a
    # conversation without prefilling it all again (inference/prefix_cache.py); 0 turns it off
    prefix_cache_mb: int = 256

    @classmethod
    def from_env(cls) -> InferenceConfig:
        var_dir = Path(os.environ.get("PARLEY_VAR_DIR") or PROJECT_DIR / "var")
        device = os.environ.get("PARLEY_DEVICE", "auto").strip().lower()
        dtype = os.environ.get("PARLEY_DTYPE", "auto").strip().lower()
        if device not in DEVICES:
            raise InferenceError(f"PARLEY_DEVICE={device!r} must be one of {', '.join(DEVICES)}.")
        if dtype not in DTYPES:
            raise InferenceError(f"PARLEY_DTYPE={dtype!r} must be one of {', '.join(DTYPES)}.")
        chat_quantize = os.environ.get("PARLEY_CHAT_QUANTIZE", "none").strip().lower() or "none"
        if chat_quantize not in QUANTIZATIONS:
            raise InferenceError(f"PARLEY_CHAT_QUANTIZE={chat_quantize!r} must be one of {', '.join(QUANTIZATIONS)}.")
        return cls(
            prefix_cache_mb=_whole_number("PARLEY_PREFIX_CACHE_MB", 256, "0 = off"),
            threads=_whole_number("PARLEY_TORCH_THREADS", 0, "0 = one per core"),
            models_dir=Path(os.environ.get("PARLEY_MODELS_DIR") or var_dir / "models"),
            chat_model=os.environ.get("PARLEY_CHAT_MODEL", ""),
            embedding_model=os.environ.get("PARLEY_EMBEDDING_MODEL", ""),
            sentiment_model=os.environ.get("PARLEY_SENTIMENT_MODEL", ""),
            device=device,
            dtype=dtype,
            chat_quantize=chat_quantize,
        )


def _whole_number(name: str, default: int, zero_means: str) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise InferenceError(f"{name}={text!r} must be a whole number ({zero_means}).")
    return int(text)
