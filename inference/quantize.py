"""Opt-in int8 for the chat model on a CPU, and the perplexity that judges it.

Every linear layer keeps its weights as int8 with one scale per output channel and
quantizes its input per token (one scale per row) at each call, then multiplies in
integers: with oneDNN's int8 product (``onednn::qlinear_pointwise``, on a packed copy of
the weights), or PyTorch's ``torch._int_mm`` where oneDNN is missing. Per-token scales are
what keep quality: torch.ao's dynamic quantization uses one scale for the whole input, and
SmolLM2's activation outliers then cost most of the precision (docs/decisions.md, "int8,
opt-in").

oneDNN multiplies unsigned 8-bit inputs by signed 8-bit weights. On a CPU without VNNI it
adds each two products in 16 bits, which saturate for inputs past 129; so there each input
row goes in as two halves of at most 64 either side (the product is linear: the two
results add up to the whole), one call of twice the rows that reads the weights once.
Inputs quantized to 7 bits instead cost 12% of perplexity; ``_int_mm`` is exact but runs
a reference loop there, 13x (one row) to 57x (32 rows) slower than oneDNN.

Written here rather than taken from torchao: its int8 configurations (weight-only and
dynamic activation) measured slower than float32 on a CPU (docs/decisions.md).
"""

from __future__ import annotations

import math
from typing import Any

import torch

# whether oneDNN's int8 products take 8-bit inputs whole (VNNI) or in halves (above)
_WHOLE_INPUTS = torch.cpu._is_vnni_supported()


class _Packed:
    """oneDNN's packed copy of a layer's int8 weights, made at its first product. Not
    copied with the layer (an opaque tensor cannot be): a copy packs its own."""

    def __init__(self) -> None:
        self.weights: torch.Tensor | None = None
        self.unit_scales = self.zero_points = torch.empty(0)  # the scales are applied outside

    def __deepcopy__(self, memo: dict[int, Any]) -> _Packed:
        return _Packed()


class Int8Linear(torch.nn.Module):
    """A linear layer with int8 weights (per output channel) and int8 inputs (per token)."""

    weight_t: torch.Tensor
    weight_scale: torch.Tensor

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127
        # stored transposed and contiguous: _int_mm multiplies [rows, in] by [in, out]
        self.register_buffer("weight_t", torch.round(weight / scale[:, None]).to(torch.int8).t().contiguous())
        self.register_buffer("weight_scale", scale)
        self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().float())
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.packed = _Packed()

    @classmethod
    def stacked(cls, layers: list[Int8Linear]) -> Int8Linear:
        """One layer computing ``layers`` side by side on the same input, their outputs
        concatenated: each output channel keeps its int8 weights and scale, and the input's
        per-token scale is the same for all, so the outputs are exactly theirs."""
        joined = cls.__new__(cls)
        torch.nn.Module.__init__(joined)
        joined.register_buffer("weight_t", torch.cat([layer.weight_t for layer in layers], dim=1).contiguous())
        joined.register_buffer("weight_scale", torch.cat([layer.weight_scale for layer in layers]))
        joined.bias = None  # type: ignore[assignment]
        joined.in_features = layers[0].in_features
        joined.out_features = sum(layer.out_features for layer in layers)
        joined.packed = _Packed()
        return joined

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).float()
        row_scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127
        quantized = torch.round(rows / row_scale)
        y = self._integer_product(quantized) * row_scale * self.weight_scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def _integer_product(self, quantized: torch.Tensor) -> torch.Tensor:
        """The exact integer product of the quantized inputs (whole numbers within ±127, as
        floats) and the int8 weights, as float32."""
        if not torch.backends.mkldnn.is_available():
            return torch._int_mm(quantized.to(torch.int8), self.weight_t).float()
        packed = self.packed
        if packed.weights is None:
            # from the [out, in] weights laid out contiguous: a transposed view packs wrongly
            packed.weights = torch.ops.onednn.qlinear_prepack(self.weight_t.t().contiguous(), None)
            packed.unit_scales = torch.ones(self.out_features)
            packed.zero_points = torch.zeros(self.out_features, dtype=torch.int64)
        if _WHOLE_INPUTS:
            return self._unsigned_product(quantized, zero_point=128)
        low = torch.floor(quantized / 2)  # low and quantized - low: each within [-64, 64]
        halves = self._unsigned_product(torch.cat([low, quantized - low]), zero_point=64)
        return halves[: len(quantized)] + halves[len(quantized) :]

    def _unsigned_product(self, quantized: torch.Tensor, *, zero_point: int) -> torch.Tensor:
        """oneDNN's product of the inputs shifted to unsigned bytes by ``zero_point``, which
        it takes off again."""
        packed = self.packed
        return torch.ops.onednn.qlinear_pointwise(
            (quantized + zero_point).to(torch.uint8),
            1.0,
            zero_point,
            packed.weights,
            packed.unit_scales,
            packed.zero_points,
            None,
            1.0,
            0,
            torch.float32,
            "none",
            [],
            "",
        )

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_int8(model: Any) -> int:
    """Replace every linear layer of a CPU model with an Int8Linear; returns how many."""
    if next(model.parameters()).device.type != "cpu":
        raise ValueError("int8 runs on the CPU; on a GPU use bfloat16 (PARLEY_DTYPE=auto) instead.")
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(parent, name, Int8Linear(child))
                replaced += 1
    return replaced


def perplexity(model: Any, tokenizer: Any, text: str, window: int = 512) -> float:
    """Token-level perplexity of text, in non-overlapping windows."""
    ids = tokenizer(text, return_tensors="pt")["input_ids"][0]
    total_loss, total_tokens = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(ids) - 1, window):
            piece = ids[start : start + window + 1].unsqueeze(0)
            if piece.shape[1] < 2:
                break
            output = model(input_ids=piece, labels=piece)
            tokens = piece.shape[1] - 1
            total_loss += float(output.loss) * tokens
            total_tokens += tokens
    return math.exp(total_loss / total_tokens)
