"""Opt-in int8 for the chat model on a CPU, and the perplexity that judges it.

Every linear layer keeps its weights as int8 with one scale per output channel and
quantizes its input per token (one scale per row) at each call, then multiplies in
integers with PyTorch's ``torch._int_mm``. Per-token scales are what keep quality:
torch.ao's dynamic quantization uses one scale for the whole input, and SmolLM2's
activation outliers then cost most of the precision (docs/decisions.md, "int8, opt-in").

Written here rather than taken from torchao: its int8 configurations (weight-only and
dynamic activation) measured slower than float32 on a CPU (docs/decisions.md), while
``_int_mm`` runs a 32-row batch several times faster than a float32 matmul.
"""

from __future__ import annotations

import math
from typing import Any

import torch


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
        return joined

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).float()
        row_scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127
        quantized = torch.round(rows / row_scale).to(torch.int8)
        y = torch._int_mm(quantized, self.weight_t).float() * row_scale * self.weight_scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

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
