"""Engines for the inference tests: the real default chat model, and a tiny random
Llama built from a config in float64 (fast, and exact enough to compare batches)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from inference import Engine
from inference.config import InferenceConfig
from inference.models import chat_model_dir


@pytest.fixture(scope="session")
def chat_tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(chat_model_dir(InferenceConfig.from_env()))


def build_tiny_model(vocab_size: int, max_positions: int = 1024) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        eos_token_id=2,
        bos_token_id=1,
    )
    return LlamaForCausalLM(config).to(torch.float64).eval()


@pytest.fixture
def tiny_engine(chat_tokenizer: Any) -> Iterator[Engine]:
    engine = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, model_name="tiny", max_batch_size=16)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def real_engine() -> Iterator[Engine]:
    engine = Engine.from_config()
    yield engine
    engine.close()
