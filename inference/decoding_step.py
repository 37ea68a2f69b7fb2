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
``PARLEY_CHAT_STEP=compiled`` (the default) runs a lone row's step, for float32 and float64
weights on a CPU, as the layer step and the head compiled ahead of time (ahead_of_time.py);
several rows take the fused step uncompiled, which their matrix products dominate. Figures
in docs/decisions.md ("A decoding step written out", "The compiled decoding step").

Imported only when an engine starts (it imports torch and transformers).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from transformers.models.llama.modeling_llama import rotate_half

from inference.quantize import Int8Linear

# what the one-row programs are compiled for (and tested in); other dtypes decode uncompiled
COMPILED_DTYPES = (torch.float32, torch.float64)


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

    def __init__(self, layer: Any, decoding_layout: bool, transposed: bool) -> None:
        attention, mlp = layer.self_attn, layer.mlp
        stacked = functools.partial(stacked_linear, decoding_layout=decoding_layout, transposed=transposed)
        self.input_norm = layer.input_layernorm.weight
        self.post_attention_norm = layer.post_attention_layernorm.weight
        self.eps = float(layer.input_layernorm.variance_epsilon)
        self.qkv = stacked([attention.q_proj, attention.k_proj, attention.v_proj])
        self.output = stacked([attention.o_proj])
        self.gate_up = stacked([mlp.gate_proj, mlp.up_proj])
        self.down = stacked([mlp.down_proj])

    def projections(self, *, as_weights: bool) -> tuple[Any, Any, Any, Any]:
        """The four projections, as modules or as their weights (``_project``), which the
        compiled layer takes as inputs so that one program serves every layer."""
        parts = (self.qkv, self.output, self.gate_up, self.down)
        return tuple(part.weight for part in parts) if as_weights else parts

    def plain(self) -> bool:
        """Whether every projection is its weight alone (a DecodingLinear or a Linear without bias)."""
        return all(_plain(part) for part in self.projections(as_weights=False))


class FusedLlamaStep:
    """``step(input_ids, mask, positions, cache)``: the next-token logits ``[rows, vocab]``
    of a one-token step over the engine's batch, as ``model(...)`` computes them."""

    def __init__(self, model: Any, *, decoding_layout: bool = True, compiled: bool = False) -> None:
        """``decoding_layout``: float32 weights laid out for the step's kernels (DecodingLinear);
        False keeps the model's own layers (for comparing the two). ``compiled``: the weights
        laid out for the one-row programs, where the model allows them (``self.compiled``);
        ``ahead_of_time.compile_one_row`` then gives the step its programs (``self.one_row``)."""
        config, inner = model.config, model.model
        self.embed = inner.embed_tokens
        self.rotary = inner.rotary_emb
        self.norm = inner.norm
        tied = inner.embed_tokens.weight is getattr(model.lm_head, "weight", None)
        self.lm_head = stacked_linear([model.lm_head], decoding_layout=decoding_layout, transposed=not compiled)
        if tied:  # the embedding looks its rows up in the view: still one copy
            inner.embed_tokens.weight = model.lm_head.weight
        self.layers = [_Layer(layer, decoding_layout, not compiled) for layer in inner.layers]
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.scaling = inner.layers[0].self_attn.scaling
        self.compiled = (
            compiled
            and self.embed.weight.dtype in COMPILED_DTYPES
            and self.embed.weight.device.type == "cpu"
            and _plain(self.lm_head)
            and all(layer.plain() for layer in self.layers)
        )
        # the layer step and the head for one row compiled ahead of time (ahead_of_time.py)
        self.one_row: tuple[Any, Any] | None = None

    def uncompiled(self) -> None:
        """Go on without the one-row programs (when compiling them failed)."""
        self.compiled = False
        self.one_row = None

    def __call__(
        self, input_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> torch.Tensor:
        """The step over a cache of RoomyLayers (kv_cache.py): each layer's buffers get room
        for the new column first, so ``forward`` only writes into them (and the compiled
        programs see no Python cache object)."""
        columns = mask.shape[1]
        # room for a column more than the step writes: the programs are compiled for a used
        # part shorter than the buffer
        rooms = [layer.reserve(columns + 1) for layer in cache.layers]
        logits = self.forward(input_ids, mask, positions, [k for k, _ in rooms], [v for _, v in rooms])
        for layer, (keys, values) in zip(cache.layers, rooms, strict=True):
            layer.keys, layer.values = keys[:, :, :columns], values[:, :, :columns]
        return logits

    def forward(
        self,
        input_ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        key_buffers: list[torch.Tensor],
        value_buffers: list[torch.Tensor],
    ) -> torch.Tensor:
        """The logits of a one-token step; writes the new keys and values into column
        ``mask.shape[1] - 1`` of each layer's buffers, whose earlier columns hold the cache."""
        x = self.embed(input_ids)  # [rows, 1, hidden]
        cos, sin = (part[:, None] for part in self.rotary(x, positions))  # [rows, 1, 1, dim]: every head alike
        # padding columns get the dtype's lowest value, as transformers' eager attention does
        additive = torch.zeros(mask.shape, dtype=x.dtype, device=x.device)
        additive.masked_fill_(mask == 0, torch.finfo(x.dtype).min)
        additive = additive[:, None, None, :]  # [rows, 1, 1, columns]: every head alike
        programs = self.one_row if input_ids.shape[0] == 1 else None
        step_layer, step_head = programs or (layer_step, head_step)
        for layer, key_buffer, value_buffer in zip(self.layers, key_buffers, value_buffers, strict=True):
            x = step_layer(
                x,
                cos,
                sin,
                additive,
                key_buffer,
                value_buffer,
                layer.input_norm,
                layer.post_attention_norm,
                *layer.projections(as_weights=programs is not None),
                eps=layer.eps,
                heads=self.heads,
                kv_heads=self.kv_heads,
                scaling=self.scaling,
            )
        head = self.lm_head.weight if programs is not None else self.lm_head
        return step_head(x, self.norm.weight, head, eps=float(self.norm.variance_epsilon))


def layer_step(
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    additive: torch.Tensor,
    key_buffer: torch.Tensor,
    value_buffer: torch.Tensor,
    input_norm: torch.Tensor,
    post_attention_norm: torch.Tensor,
    qkv: Any,
    output: Any,
    gate_up: Any,
    down: Any,
    *,
    eps: float,
    heads: int,
    kv_heads: int,
    scaling: float,
) -> torch.Tensor:
    """One decoder layer's step: ``x`` after the layer, with the new keys and values written
    into column ``additive.shape[-1] - 1`` of the buffers. The projections are modules, or
    DecodingLinear weights (``_project``)."""
    rows, columns = x.shape[0], additive.shape[-1]
    dim = key_buffer.shape[-1]
    group = heads // kv_heads
    qkv_out = _project(_norm(x, input_norm, eps), qkv)  # [rows, 1, (heads + 2 kv heads) * dim]
    # queries and keys rotated together: [rows, heads + kv heads, 1, dim]
    qk = qkv_out[..., : (heads + kv_heads) * dim].view(rows, 1, heads + kv_heads, dim).transpose(1, 2)
    qk = qk * cos + rotate_half(qk) * sin
    key_buffer[:, :, columns - 1 : columns] = qk[:, heads:]
    value_buffer[:, :, columns - 1 : columns] = (
        qkv_out[..., (heads + kv_heads) * dim :].view(rows, 1, kv_heads, dim).transpose(1, 2)
    )
    keys, values = key_buffer[:, :, :columns], value_buffer[:, :, :columns]  # [rows, kv heads, columns, dim]
    # the query heads sharing a key head, as the rows of one product with it
    grouped = qk[:, :heads].reshape(rows, kv_heads, group, dim) * scaling
    scores = torch.matmul(grouped, keys.transpose(2, 3)) + additive
    # half-precision scores are summed in float32, as the attention kernels do
    softmax_dtype = torch.float32 if x.dtype in (torch.bfloat16, torch.float16) else x.dtype
    attended = torch.matmul(torch.softmax(scores, dim=-1, dtype=softmax_dtype).to(x.dtype), values)
    x = x + _project(attended.reshape(rows, 1, heads * dim), output)
    gate, up = _project(_norm(x, post_attention_norm, eps), gate_up).chunk(2, dim=-1)
    return x + _project(torch.nn.functional.silu(gate) * up, down)


def head_step(x: torch.Tensor, norm: torch.Tensor, head: Any, *, eps: float) -> torch.Tensor:
    """The next-token logits ``[rows, vocab]`` of the last layer's ``x``."""
    return _project(_norm(x, norm, eps), head)[:, -1, :]


def _plain(part: Any) -> bool:
    return type(part) is DecodingLinear or (type(part) is torch.nn.Linear and part.bias is None)


def _project(x: torch.Tensor, projection: Any) -> torch.Tensor:
    """``x`` through a projection: a module, or in a compiled program its weight."""
    if not isinstance(projection, torch.Tensor):
        return projection(x)
    if DecodingLinear.covers(projection) and x.numel() == x.shape[-1]:
        # one row by a DecodingLinear's [out, in] weight: written as products and a sum over
        # each weight row, which the compiler turns into one vectorized loop reading the
        # weight once at nearly the memory's speed (BLAS's product on this layout reads it
        # at half that: docs/decisions.md)
        return (x[..., None, :] * projection).sum(-1)
    return torch.nn.functional.linear(x, projection)


def _norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' LlamaRMSNorm: for float32 its one operation, for other dtypes its own
    arithmetic (in float32, cast back before the weight)."""
    if x.dtype == torch.float32:
        return torch.nn.functional.rms_norm(x, weight.shape, weight, eps)
    normed = x.to(torch.float32)
    normed = normed * torch.rsqrt(normed.pow(2).mean(-1, keepdim=True) + eps)
    return weight * normed.to(x.dtype)


def stacked_linear(linears: list[Any], *, decoding_layout: bool = True, transposed: bool = True) -> Any:
    """One layer computing ``linears`` side by side (their outputs concatenated): for float32
    a DecodingLinear of the concatenated weights (of which theirs become views), for other
    floats a Linear of them (the same), an Int8Linear of the concatenated int8 weights and
    scales, or, for layers of other kinds, a module that calls each."""
    plain = all(type(linear) is torch.nn.Linear and linear.bias is None for linear in linears)
    decoding_layout = decoding_layout and plain and DecodingLinear.covers(linears[0].weight)
    if len(linears) == 1 and not decoding_layout:
        return linears[0]
    if plain:
        weight = torch.cat([linear.weight.detach() for linear in linears])
        if decoding_layout:
            joined: Any = DecodingLinear(weight, transposed=transposed)
            weight = joined.weight.detach()
        else:
            joined = torch.nn.Linear(
                weight.shape[1], weight.shape[0], bias=False, device=weight.device, dtype=weight.dtype
            )
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


class DecodingLinear(torch.nn.Module):
    """A float32 linear layer on the CPU laid out for the kernels that read it fastest in a
    decoding step (bench/linear_kernels.py; figures in docs/decisions.md, "The decoding
    step's matrix products"):

    - one row: ``x @ w.T`` with the transpose stored contiguous (``[in, out]``), which
      BLAS reads as a stream of rows; ``F.linear`` on the ``[out, in]`` weight reads the
      same bytes at two thirds of the speed;
    - more rows: oneDNN's linear on a copy of the weight packed in its blocked layout,
      ahead of BLAS's GEMM at 8 and 32 rows.

    ``weight`` (``[out, in]``) is a view of the transposed copy, so the model's own layers
    keep their weights as views of it: the packed copy is the only second one.
    """

    def __init__(self, weight: torch.Tensor, *, packed_rows: int = 8, transposed: bool = True) -> None:
        """``transposed``: one row reads the stored transpose; False keeps the ``[out, in]``
        weight contiguous, for the compiled one-row loop (``_project``)."""
        super().__init__()
        weight = weight.detach()
        self.weight_t = weight.t().contiguous() if transposed else None  # [in, out]
        self.weight = torch.nn.Parameter(weight if self.weight_t is None else self.weight_t.t(), requires_grad=False)
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, packed_rows)
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    @staticmethod
    def covers(weight: torch.Tensor) -> bool:
        return weight.dtype == torch.float32 and weight.device.type == "cpu" and torch.backends.mkldnn.is_available()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() == x.shape[-1]:  # one row
            return x @ self.weight_t if self.weight_t is not None else torch.nn.functional.linear(x, self.weight)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, None, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, decoding layout"


class _SideBySide(torch.nn.Module):
    def __init__(self, linears: list[Any]) -> None:
        super().__init__()
        self.parts = torch.nn.ModuleList(linears)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x) for part in self.parts], dim=-1)
