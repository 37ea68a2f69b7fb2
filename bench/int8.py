"""The int8 experiment of bench/generation.py, and the perplexity that judges it.

Dynamic int8 of every linear layer with one scale per tensor loses too much
(SmolLM2-135M: perplexity 19 → 54). Here weights get one scale per output channel and
the layers quantization hurts most stay in float (``down_proj``, whose inputs carry the
largest activation outliers, and the output head). It is measured, not offered: Parley
ships no int8 setting until a variant keeps perplexity within 5% of float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

KEEP_IN_FLOAT = ("down_proj", "lm_head")


def quantize_int8_dynamic(model: Any, keep_in_float: Sequence[str] = KEEP_IN_FLOAT) -> Any:
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    if next(model.parameters()).device.type != "cpu":
        return model  # int8 kernels here are CPU kernels; a GPU runs bf16 instead
    spec = {
        name: per_channel_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not any(part in name for part in keep_in_float)
    }
    quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)
    return model


def perplexity(model: Any, tokenizer: Any, text: str, window: int = 512) -> float:
    """Token-level perplexity of text, in non-overlapping windows."""
    import torch

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
