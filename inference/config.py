"""Where the models are and how they run, read from the environment.

This is the one reader of the models' variables: Django settings build
``PARLEY_INFERENCE`` with ``InferenceConfig.from_env()`` (an InferenceError, which names
the variable, stops the web project at start) and hand it to whatever loads a model;
the command line (``python -m inference``) calls ``from_env()`` itself, without Django.

The chat models users choose from are the registry (``InferenceConfig.models``), read
from ``PARLEY_MODELS`` by ``read_registry``: ``local`` models run in the generation
worker's process, ``openai`` ones on an upstream server (inference/upstream.py).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.errors import InferenceError

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
QUANTIZATIONS = ("none", "int8")
CHAT_STEPS = ("compiled", "fused", "transformers")
MODEL_NAME_MAX_LENGTH = 100  # Conversation.model holds it


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
    # "fused": a Llama chat model's decoding step written out in few operations
    # (inference/decoding_step.py); "compiled": that step's one-row programs compiled ahead
    # of time by AOTInductor where the model runs in float32 or float64 on a CPU
    # (inference/ahead_of_time.py; the fused step elsewhere and for several rows);
    # "transformers": the model's own forward for every step
    chat_step: str = "compiled"
    # inductor's cache directory, where the compiled programs are kept, so that a restarted
    # worker loads them in a second
    compile_cache_dir: Path | None = None
    # the chat models users choose from (PARLEY_MODELS); unset: the one local model above
    models: ModelRegistry = field(default_factory=lambda: default_registry())

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
        chat_step = os.environ.get("PARLEY_CHAT_STEP", "compiled").strip().lower() or "compiled"
        if chat_step not in CHAT_STEPS:
            raise InferenceError(f"PARLEY_CHAT_STEP={chat_step!r} must be one of {', '.join(CHAT_STEPS)}.")
        return cls(
            chat_step=chat_step,
            compile_cache_dir=var_dir / "cache" / "torchinductor",
            prefix_cache_mb=_whole_number("PARLEY_PREFIX_CACHE_MB", 256, "0 = off"),
            threads=_whole_number("PARLEY_TORCH_THREADS", 0, "0 = one per core"),
            models_dir=Path(os.environ.get("PARLEY_MODELS_DIR") or var_dir / "models"),
            chat_model=os.environ.get("PARLEY_CHAT_MODEL", ""),
            embedding_model=os.environ.get("PARLEY_EMBEDDING_MODEL", ""),
            sentiment_model=os.environ.get("PARLEY_SENTIMENT_MODEL", ""),
            device=device,
            dtype=dtype,
            chat_quantize=chat_quantize,
            models=read_registry(
                os.environ.get(MODELS_VARIABLE, ""), chat_model=os.environ.get("PARLEY_CHAT_MODEL", "")
            ),
        )


def _whole_number(name: str, default: int, zero_means: str) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise InferenceError(f"{name}={text!r} must be a whole number ({zero_means}).")
    return int(text)


# ---- the model registry --------------------------------------------------------------------

DEFAULT_CHAT_NAME = "SmolLM2-135M-Instruct"  # the packaged chat model
MODEL_KINDS = ("local", "openai")
MODELS_VARIABLE = "PARLEY_MODELS"


@dataclass(frozen=True)
class LocalModel:
    """The in-process engine (inference/engine.py) on a Hugging Face folder."""

    name: str  # shown to users; answers record it with how the model ran, e.g. "… (bfloat16)"
    path: str = ""  # a folder in Hugging Face format; "" means the packaged SmolLM2
    kind: str = "local"


@dataclass(frozen=True)
class UpstreamModel:
    """A model served by an OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp, Ollama),
    streamed by inference/upstream.py."""

    name: str
    base_url: str  # up to and including the API's version, e.g. http://gpu-box:8000/v1
    model: str  # the upstream's own id for it
    context_length: int  # prompt and answer together, in the upstream's tokens
    api_key_env: str = ""  # the variable that holds the key sent as a Bearer token; "" sends none
    max_concurrency: int = 0  # answers streamed from it at once by one worker; 0: the worker's batch size
    connect_timeout: float = 5.0  # seconds to open a connection
    timeout: float = 60.0  # seconds to wait for the response, and then for each next chunk
    retries: int = 2  # further attempts after a named transient error, before the first token only
    kind: str = "openai"

    def api_key(self) -> str:
        """The key, read when a worker starts (never stored in the registry or shown)."""
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""


ModelEntry = LocalModel | UpstreamModel


@dataclass(frozen=True)
class ModelRegistry:
    """The chat models an installation offers, in the operator's order, and the default."""

    models: tuple[ModelEntry, ...]
    default: str
    source: str = ""  # where it was read from, for messages: "PARLEY_MODELS" or the file's path

    def get(self, name: str) -> ModelEntry | None:
        return next((model for model in self.models if model.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(model.name for model in self.models)

    def resolve(self, name: str) -> ModelEntry | None:
        """The model a conversation asks for ("" meaning the default); None when it is gone."""
        return self.get(name or self.default)


def default_registry(chat_model: str = "") -> ModelRegistry:
    """What an installation offers with ``PARLEY_MODELS`` unset: the one local chat model
    of ``PARLEY_CHAT_MODEL`` (or the packaged SmolLM2), exactly as before there was a registry."""
    model = LocalModel(name=Path(chat_model).name if chat_model else DEFAULT_CHAT_NAME, path=chat_model)
    return ModelRegistry(models=(model,), default=model.name)


def read_registry(value: str, *, chat_model: str = "") -> ModelRegistry:
    """``PARLEY_MODELS``: JSON itself, or the path of a ``.json`` or ``.toml`` file holding
    ``{"default": NAME, "models": [{"name", "kind", …options}, …]}`` (``default`` is the
    first model when left out). Raises InferenceError naming the variable or the file,
    and the entry at fault."""
    value = value.strip()
    if not value:
        return default_registry(chat_model)
    if value.startswith(("{", "[")):
        source = MODELS_VARIABLE
        try:
            document = json.loads(value)
        except json.JSONDecodeError as error:
            raise InferenceError(f"{MODELS_VARIABLE} is not valid JSON: {error}.") from None
    else:
        path = Path(value)
        source = f"{MODELS_VARIABLE} file {path}"
        if path.suffix not in (".json", ".toml"):
            raise InferenceError(f"{MODELS_VARIABLE}={value!r} is neither JSON nor the path of a .json or .toml file.")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise InferenceError(f"{source} cannot be read: {error.strerror or error}.") from None
        try:
            document = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
            kind = "TOML" if path.suffix == ".toml" else "JSON"
            raise InferenceError(f"{source} is not valid {kind}: {error}.") from None
    return _registry(document, source)


def _registry(document: Any, source: str) -> ModelRegistry:
    if not isinstance(document, dict) or not isinstance(document.get("models"), list):
        raise InferenceError(f'{source} must be an object with a "models" list (and optionally "default").')
    unknown = set(document) - {"models", "default"}
    if unknown:
        raise InferenceError(f"{source} has unknown keys: {', '.join(sorted(unknown))}.")
    if not document["models"]:
        raise InferenceError(f"{source} lists no models; list at least one.")
    models: list[ModelEntry] = []
    for position, item in enumerate(document["models"], start=1):
        model = _entry(item, f"{source}, model {position}")
        if any(other.name == model.name for other in models):
            raise InferenceError(f"{source}, model {position}: the name {model.name!r} is used twice.")
        models.append(model)
    default = document.get("default", models[0].name)
    if not isinstance(default, str) or default not in {model.name for model in models}:
        raise InferenceError(f"{source}: the default {default!r} is not one of the models listed.")
    return ModelRegistry(models=tuple(models), default=default, source=source)


_OPTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "local": {"name": str, "kind": str, "path": str},
    "openai": {
        "name": str,
        "kind": str,
        "base_url": str,
        "model": str,
        "context_length": int,
        "api_key_env": str,
        "max_concurrency": int,
        "connect_timeout": (int, float),
        "timeout": (int, float),
        "retries": int,
    },
}


def _entry(item: Any, where: str) -> ModelEntry:
    if not isinstance(item, dict):
        raise InferenceError(f"{where} must be an object with a name and a kind.")
    name = item.get("name")
    if isinstance(name, str) and name.strip():
        where = f"{where} ({name})"
    kind = item.get("kind")
    if kind not in MODEL_KINDS:
        raise InferenceError(f"{where}: kind {kind!r} is not one of {', '.join(MODEL_KINDS)}.")
    options = _OPTIONS[kind]
    unknown = set(item) - set(options)
    if unknown:
        raise InferenceError(
            f"{where}: unknown options {', '.join(sorted(unknown))} for a {kind} model (it takes {', '.join(options)})."
        )
    for option, wanted in options.items():
        value = item.get(option)
        # bool is an int to Python, never a count or a number of seconds here
        if value is not None and (not isinstance(value, wanted) or isinstance(value, bool)):
            raise InferenceError(f"{where}: {option} = {value!r} is not a {_type_name(wanted)}.")
    if not isinstance(name, str) or not name.strip() or len(name) > MODEL_NAME_MAX_LENGTH:
        raise InferenceError(f"{where}: a model needs a name of 1 to {MODEL_NAME_MAX_LENGTH} characters.")
    if name != name.strip():
        raise InferenceError(f"{where}: the name {name!r} begins or ends with spaces.")
    if kind == "local":
        return LocalModel(name=name, path=item.get("path", ""))
    for required in ("base_url", "model", "context_length"):
        if not item.get(required):
            raise InferenceError(f"{where}: an openai model needs {required}.")
    if not item["base_url"].startswith(("http://", "https://")):
        raise InferenceError(f"{where}: base_url {item['base_url']!r} must start with http:// or https://.")
    for option in ("context_length", "connect_timeout", "timeout"):
        if option in item and item[option] <= 0:
            raise InferenceError(f"{where}: {option} = {item[option]!r} must be above 0.")
    for option in ("max_concurrency", "retries"):
        if option in item and item[option] < 0:
            raise InferenceError(f"{where}: {option} = {item[option]!r} cannot be below 0.")
    optional = ("api_key_env", "max_concurrency", "connect_timeout", "timeout", "retries")
    return UpstreamModel(
        name=name,
        base_url=item["base_url"].rstrip("/"),
        model=item["model"],
        context_length=item["context_length"],
        **{option: item[option] for option in optional if option in item},
    )


def _type_name(wanted: type | tuple[type, ...]) -> str:
    names = {str: "string", int: "whole number", float: "number"}
    if isinstance(wanted, tuple):
        return "number"
    return names[wanted]
