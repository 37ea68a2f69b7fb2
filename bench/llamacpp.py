"""llama.cpp on the chat model's own weights, for benchmarks that compare against it.

- ``gguf_from_safetensors`` writes the converted safetensors (var/models) as a GGUF file
  llama.cpp reads: F32 (the very weights Parley's engine runs in float32) or Q8_0 (to
  set against Parley's int8). The metadata (architecture, tokenizer, chat template) is
  copied from the packaged Q4_1 file the safetensors came from; the query and key
  projections are permuted back into llama.cpp's rotary layout, which transformers undid
  when it read the GGUF. Written once under var/bench/gguf, again when the safetensors
  change.
- ``LlamaCpp`` runs greedy decoding through llama.cpp's multi-sequence batch API
  (``llama_decode`` over one batch holding every stream), as its server does with
  parallel slots, without the HTTP in between.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import PROJECT_DIR

GGUF_DIR = PROJECT_DIR / "var" / "bench" / "gguf"

# safetensors name (after ``model.layers.N.``) -> GGUF name (after ``blk.N.``)
LAYER_TENSORS = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
# metadata that describes the file rather than the model: written anew
OWN_FIELDS = ("GGUF.", "general.file_type", "general.quantization_version")


def gguf_from_safetensors(model_dir: Path, template: Path, kind: str = "F32") -> Path:
    """The model in ``model_dir`` as a GGUF file of ``kind`` (F32 or Q8_0), written if
    missing or older than the safetensors; metadata taken from ``template``."""
    import gguf
    from safetensors.numpy import load_file

    source = model_dir / "model.safetensors"
    target = GGUF_DIR / f"{model_dir.name}.{kind}.gguf"
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    quantization = {"F32": None, "Q8_0": gguf.GGMLQuantizationType.Q8_0}[kind]
    reader = gguf.GGUFReader(template)
    GGUF_DIR.mkdir(parents=True, exist_ok=True)
    staging = target.with_suffix(".tmp")
    writer = gguf.GGUFWriter(staging, "llama")
    for key, field in reader.fields.items():
        if key.startswith(OWN_FIELDS) or key == "general.architecture":
            continue
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), field.types[0], sub_type)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if quantization is None else gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    heads = int(reader.fields["llama.attention.head_count"].contents())
    kv_heads = int(reader.fields["llama.attention.head_count_kv"].contents())
    for name, data in _gguf_tensors(load_file(source), heads, kv_heads):
        data = data.astype(np.float32)
        if quantization is None or data.ndim == 1:
            writer.add_tensor(name, data)
        else:
            writer.add_tensor(name, gguf.quants.quantize(data, quantization), raw_dtype=quantization)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    staging.replace(target)
    return target


def _gguf_tensors(tensors: dict[str, np.ndarray], heads: int, kv_heads: int) -> list[tuple[str, np.ndarray]]:
    named = [
        ("token_embd.weight", tensors["model.embed_tokens.weight"]),
        ("output_norm.weight", tensors["model.norm.weight"]),
    ]
    if "lm_head.weight" in tensors:  # untied output layer
        named.append(("output.weight", tensors["lm_head.weight"]))
    layer = 0
    while f"model.layers.{layer}.input_layernorm.weight" in tensors:
        for ours, theirs in LAYER_TENSORS.items():
            data = tensors[f"model.layers.{layer}.{ours}"]
            if ours == "self_attn.q_proj.weight":
                data = _rotary_permuted(data, heads)
            elif ours == "self_attn.k_proj.weight":
                data = _rotary_permuted(data, kv_heads)
            named.append((f"blk.{layer}.{theirs}", data))
        layer += 1
    return named


def _rotary_permuted(weights: np.ndarray, heads: int) -> np.ndarray:
    """Each head's rows from transformers' rotary layout (halves) into llama.cpp's
    (interleaved pairs), as llama.cpp's convert_hf_to_gguf.py does."""
    return (
        weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


class LlamaCpp:
    """One llama.cpp model and context holding up to ``streams`` sequences of ``context``
    tokens each, float32 keys and values (as Parley's engine keeps them)."""

    def __init__(self, path: Path, *, threads: int, streams: int = 32, context: int = 256) -> None:
        import llama_cpp
        from llama_cpp._logger import set_verbose

        self._lib = llama_cpp
        set_verbose(False)  # its errors only
        llama_cpp.llama_backend_init()
        self.path = path
        model_params = llama_cpp.llama_model_default_params()
        self._model = llama_cpp.llama_model_load_from_file(str(path).encode(), model_params)
        if not self._model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = streams * context
        params.n_batch = params.n_ctx  # every stream's prompt in one llama_decode
        params.n_seq_max = streams
        params.kv_unified = True
        params.n_threads = params.n_threads_batch = threads
        params.type_k = params.type_v = llama_cpp.GGML_TYPE_F32
        self._context = llama_cpp.llama_init_from_model(self._model, params)
        if not self._context:
            raise RuntimeError(f"llama.cpp could not make a context for {path}")
        self.vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self._model))
        self.capacity = params.n_ctx
        self._batch = llama_cpp.llama_batch_init(self.capacity, 0, 1)

    def generate(self, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
        """``new_tokens`` greedy tokens after each prompt, all prompts as one batch."""
        lib = self._lib
        lib.llama_memory_clear(lib.llama_get_memory(self._context), True)
        rows = [
            (stream, position, token, position == len(ids) - 1)
            for stream, ids in enumerate(prompts)
            for position, token in enumerate(ids)
        ]
        chosen = self._decode(rows)
        outputs = [[token] for token in chosen]
        positions = [len(ids) for ids in prompts]
        for _ in range(new_tokens - 1):
            chosen = self._decode([(s, positions[s], outputs[s][-1], True) for s in range(len(prompts))])
            for stream, token in enumerate(chosen):
                outputs[stream].append(token)
                positions[stream] += 1
        return outputs

    def _decode(self, rows: list[tuple[int, int, int, bool]]) -> list[int]:
        """Run one batch of (sequence, position, token, wants logits); the argmax of each
        row that wanted logits, in order."""
        lib, batch = self._lib, self._batch
        for index, (sequence, position, token, wants_logits) in enumerate(rows):
            batch.token[index] = token
            batch.pos[index] = position
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = sequence
            batch.logits[index] = wants_logits
        batch.n_tokens = len(rows)
        if lib.llama_decode(self._context, batch) != 0:
            raise RuntimeError("llama_decode failed")
        wanted = sum(1 for row in rows if row[3])
        pointer = ctypes.cast(lib.llama_get_logits(self._context), ctypes.POINTER(ctypes.c_float))
        logits: Any = np.ctypeslib.as_array(pointer, shape=(wanted, self.vocab))
        return [int(token) for token in logits.argmax(axis=1)]

    def close(self) -> None:
        lib = self._lib
        lib.llama_batch_free(self._batch)
        lib.llama_free(self._context)
        lib.llama_model_free(self._model)
