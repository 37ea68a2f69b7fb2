"""Sentence embeddings with the packaged all-MiniLM-L6-v2 (mean pooling, unit length)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from inference.config import InferenceConfig
from inference.models import choose_device, choose_dtype, embedding_model_dir

if TYPE_CHECKING:
    import torch


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors of each row, ignoring padding (MiniLM's own pooling).

    The sum runs in float32 whatever the model's dtype: bfloat16 keeps 8 bits of mantissa,
    too few to add up a few hundred token vectors.
    """
    hidden = hidden.float()
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class Embedder:
    def __init__(self, model: Any, tokenizer: Any, device: torch.device) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device

    @classmethod
    def from_config(cls, config: InferenceConfig | None = None) -> Embedder:
        from transformers import AutoModel, AutoTokenizer

        config = config or InferenceConfig.from_env()
        folder = embedding_model_dir(config)
        device = choose_device(config)
        model = AutoModel.from_pretrained(folder, dtype=choose_dtype(config, device, encoder=True)).to(device).eval()
        return cls(model, AutoTokenizer.from_pretrained(folder), device)

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """One unit-length row per text, in the order given (batched by length)."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        rows = torch.zeros((len(texts), self.model.config.hidden_size))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                encoded = self.tokenizer(
                    [texts[i] for i in batch], padding=True, truncation=True, max_length=256, return_tensors="pt"
                ).to(self.device)
                pooled = mean_pool(self.model(**encoded).last_hidden_state, encoded["attention_mask"])
                rows[batch] = torch.nn.functional.normalize(pooled, dim=-1).cpu()
        return rows
