"""Small models for tests: a tiny random Llama built from a config in float64 (fast, and
exact enough to compare batches), with the default chat model's tokenizer."""

from __future__ import annotations

from typing import Any


def on_each_pass(model: Any, hook: Any) -> Any:
    """Call ``hook(module, args, output)`` at every forward pass of ``model``, the model's
    own (a prefill) or the engine's fused decoding step (inference/decoding_step.py): each
    starts by embedding its input ids, ``args[0]`` ``[rows, tokens]``. Returns the handle."""
    return model.get_input_embeddings().register_forward_hook(hook)


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
    model: Any = LlamaForCausalLM(config)
    return model.to(torch.float64).eval()


def load_chat_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from inference.config import InferenceConfig
    from inference.models import chat_model_dir

    return AutoTokenizer.from_pretrained(chat_model_dir(InferenceConfig.from_env()))
