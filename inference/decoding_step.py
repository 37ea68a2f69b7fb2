"""The engine's decoding step for Llama models, written out in few operations.

At one stream a decoding step is a chain of small operations, and on a CPU each costs
its dispatch whatever its size: transformers' Llama layer is about forty of them (three
projections for queries, keys and values, two for the MLP, a norm of eight, rotary
embeddings for queries and keys apart, keys and values repeated for grouped-query
attention, a mask built per step). ``FusedLlamaStep`` does the same arithmetic in about
twenty a layer:

- the query, key and value projections as one matrix product, and the MLP's gate and up
  projections as another (the weights concatenated once, at start; int8 layers are
  concatenated as int8, with their per-channel scales, so the result is the same);
- the rotary embedding applied to queries and keys together, as one slice of that product;
- attention over the grouped keys without repeating them: the query heads that share a
  key head are one matrix product with it;
- float32 norms with ``torch.nn.functional.rms_norm`` (one operation instead of eight);
  other dtypes keep the model's own norm, which computes in float32 and casts back;
- the additive mask built once a step, for every layer.

It reads and writes the same key/value cache the model does (kv_cache.py), so prefill,
the batch's surgery (batch.py) and kept prefixes (prefix_cache.py) are unchanged; only
the one-token step changes. Prefill stays the model's own forward: its cost is the
matrix products, not the dispatch.

Used for ``LlamaForCausalLM`` models without biases (SmolLM2, Llama, many others); any
other model, or ``PARLEY_CHAT_STEP=transformers``, decodes with the model's forward.
Figures in docs/decisions.md ("A decoding step written out").

Imported only when an engine starts (it imports torch and transformers).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.models.llama.modeling_llama import rotate_half

from inference.quantize import Int8Linear


def supports(model: Any) -> bool:
    """Whether ``model`` is a Llama this step computes exactly as the model does."""
    config = getattr(model, "config", None)
    return (
        type(model).__name__ == "LlamaForCausalLM"
        and getattr(config, "hidden_act", "") == "silu"
        and not getattr(config, "attention_bias", True)
        and not getattr(config, "mlp_bias", True)
        and getattr(config, "pretraining_tp", 1) == 1
    )


class _Layer:
    """One decoder layer's weights, the projections concatenated."""

    def __init__(self, layer: Any) -> None:
        attention, mlp = layer.self_attn, layer.mlp
        self.input_norm = layer.input_layernorm
        self.post_attention_norm = layer.post_attention_layernorm
        self.qkv = stacked([attention.q_proj, attention.k_proj, attention.v_proj])
        self.output = attention.o_proj
        self.gate_up = stacked([mlp.gate_proj, mlp.up_proj])
        self.down = mlp.down_proj


class FusedLlamaStep:
    """``step(input_ids, mask, positions, cache)``: the next-token logits ``[rows, vocab]``
    of a one-token step over the engine's batch, as ``model(...)`` computes them."""

    def __init__(self, model: Any) -> None:
        config, inner = model.config, model.model
        self.embed = inner.embed_tokens
        self.rotary = inner.rotary_emb
        self.norm = inner.norm
        self.lm_head = model.lm_head
        self.layers = [_Layer(layer) for layer in inner.layers]
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.scaling = inner.layers[0].self_attn.scaling

    def __call__(
        self, input_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> torch.Tensor:
        rows = input_ids.shape[0]
        heads, kv_heads, dim = self.heads, self.kv_heads, self.head_dim
        group = heads // kv_heads
        x = self.embed(input_ids)  # [rows, 1, hidden]
        cos, sin = (part[:, None] for part in self.rotary(x, positions))  # [rows, 1, 1, dim]: every head alike
        # padding columns get the dtype's lowest value, as transformers' eager attention does
        additive = torch.zeros(mask.shape, dtype=x.dtype, device=x.device)
        additive.masked_fill_(mask == 0, torch.finfo(x.dtype).min)
        additive = additive[:, None, None, :]  # [rows, 1, 1, columns]: every head alike
        # half-precision scores are summed in float32, as the attention kernels do
        softmax_dtype = torch.float32 if x.dtype in (torch.bfloat16, torch.float16) else x.dtype
        for index, layer in enumerate(self.layers):
            qkv = layer.qkv(_norm(layer.input_norm, x))  # [rows, 1, (heads + 2 kv heads) * dim]
            # queries and keys rotated together: [rows, heads + kv heads, 1, dim]
            qk = qkv[..., : (heads + kv_heads) * dim].view(rows, 1, heads + kv_heads, dim).transpose(1, 2)
            qk = qk * cos + rotate_half(qk) * sin
            queries, keys = qk[:, :heads], qk[:, heads:]
            values = qkv[..., (heads + kv_heads) * dim :].view(rows, 1, kv_heads, dim).transpose(1, 2)
            keys, values = cache.layers[index].update(keys, values)  # [rows, kv heads, columns, dim]
            # the query heads sharing a key head, as the rows of one product with it
            grouped = queries.reshape(rows, kv_heads, group, dim) * self.scaling
            scores = torch.matmul(grouped, keys.transpose(2, 3)) + additive
            attended = torch.matmul(torch.softmax(scores, dim=-1, dtype=softmax_dtype).to(x.dtype), values)
            x = x + layer.output(attended.reshape(rows, 1, heads * dim))
            gate, up = layer.gate_up(_norm(layer.post_attention_norm, x)).chunk(2, dim=-1)
            x = x + layer.down(torch.nn.functional.silu(gate) * up)
        return self.lm_head(_norm(self.norm, x))[:, -1, :]


def _norm(norm: Any, x: torch.Tensor) -> torch.Tensor:
    if x.dtype == torch.float32:
        return torch.nn.functional.rms_norm(x, norm.weight.shape, norm.weight, norm.variance_epsilon)
    return norm(x)


def stacked(linears: list[Any]) -> Any:
    """One layer computing ``linears`` side by side (their outputs concatenated): a Linear of
    the concatenated weights (of which theirs become views), an Int8Linear of the
    concatenated int8 weights and scales, or, for layers of other kinds, a module that
    calls each."""
    if all(type(linear) is torch.nn.Linear and linear.bias is None for linear in linears):
        weight = torch.cat([linear.weight.detach() for linear in linears])
        joined = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, device=weight.device, dtype=weight.dtype)
        joined.weight = torch.nn.Parameter(weight, requires_grad=False)
        # the layers' own weights become views of the concatenation: one copy in memory
        start = 0
        for linear in linears:
            rows = linear.weight.shape[0]
            linear.weight = torch.nn.Parameter(weight[start : start + rows], requires_grad=False)
            start += rows
        return joined
    if all(type(linear) is Int8Linear and linear.bias is None for linear in linears):
        return Int8Linear.stacked(linears)
    return _SideBySide(linears)


class _SideBySide(torch.nn.Module):
    def __init__(self, linears: list[Any]) -> None:
        super().__init__()
        self.parts = torch.nn.ModuleList(linears)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x) for part in self.parts], dim=-1)
