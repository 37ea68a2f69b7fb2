"""The fused decoding step (inference/decoding_step.py) gives what the model's own forward gives."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from inference import Engine, GenerationRequest
from inference.config import InferenceConfig
from inference.decoding_step import DecodingLinear, FusedLlamaStep, supports
from inference.errors import InferenceError
from inference.kv_cache import roomy_cache
from inference.quantize import Int8Linear, quantize_int8
from tests.models import build_tiny_model

PROMPTS = ["Tell me about rivers.", "word " * 30, "Why is the sky blue?", "hi"]


def greedy(content: str, tokens: int) -> GenerationRequest:
    return GenerationRequest.of(
        [{"role": "user", "content": content}], max_new_tokens=tokens, temperature=0, ignore_eos=True
    )


def answers(engine: Engine, tokens: int) -> list[str]:
    """The prompts together, so the batch is padded to the longest."""
    streams = [engine.submit(greedy(p, tokens)) for p in PROMPTS]
    return [stream.result().text for stream in streams]


def both_answers(model: Any, tokenizer: Any, tokens: int) -> tuple[list[str], list[str]]:
    fused = Engine(model, tokenizer, max_batch_size=8)
    forward = Engine(model, tokenizer, max_batch_size=8, chat_step="transformers")
    try:
        assert fused._step is not None
        assert forward._step is None
        return answers(fused, tokens), answers(forward, tokens)
    finally:
        fused.close()
        forward.close()


def test_a_float64_model_gives_the_same_logits_and_greedy_answers_fused_as_with_its_forward(
    chat_tokenizer: Any,
) -> None:
    model = build_tiny_model(len(chat_tokenizer))
    fused, forward = both_answers(model, chat_tokenizer, 40)
    assert fused == forward
    assert all(fused)

    # one step over a left-padded batch, logits compared
    ids = torch.randint(3, 1000, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(3, 13, dtype=torch.long)
    mask[0, :4] = 0
    mask[2, :7] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        caches = [roomy_cache(), roomy_cache()]
        for cache in caches:
            model(
                input_ids=ids, attention_mask=mask[:, :12], position_ids=positions[:, :12], cache=cache, use_cache=True
            )
        step = torch.tensor([[5], [6], [7]])
        expected = model(
            input_ids=step, attention_mask=mask, position_ids=positions[:, 12:], cache=caches[0], use_cache=True
        ).logits[:, -1]
        got = FusedLlamaStep(model)(step, mask, positions[:, 12:], caches[1])
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(caches[1].layers[1].keys, caches[0].layers[1].keys, rtol=1e-10, atol=1e-10)


def one_step_logits(model: Any, step: Any, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The next-token logits of one decoding step over a left-padded batch of ``rows``: the
    model's forward, then ``step``, each on a cache prefilled by the model."""
    ids = torch.randint(3, 1000, (rows, 12), generator=torch.Generator().manual_seed(rows))
    mask = torch.ones(rows, 13, dtype=torch.long)
    mask[0, :4] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        caches = [roomy_cache(), roomy_cache()]
        for cache in caches:
            model(
                input_ids=ids, attention_mask=mask[:, :12], position_ids=positions[:, :12], cache=cache, use_cache=True
            )
        last = torch.arange(5, 5 + rows)[:, None]
        expected = model(
            input_ids=last, attention_mask=mask, position_ids=positions[:, 12:], cache=caches[0], use_cache=True
        ).logits[:, -1]
        return expected, step(last, mask, positions[:, 12:], caches[1])


def test_a_float32_model_decodes_as_its_forward_with_its_weights_laid_out_for_decoding(chat_tokenizer: Any) -> None:
    model = build_tiny_model(len(chat_tokenizer)).float()
    model.config.tie_word_embeddings = True
    model.lm_head.weight = model.model.embed_tokens.weight
    pristine = copy.deepcopy(model)
    step = FusedLlamaStep(model)
    assert isinstance(step.layers[0].qkv, DecodingLinear)
    assert isinstance(step.lm_head, DecodingLinear)
    for rows in (1, 3):  # one row and several take different kernels
        expected, got = one_step_logits(pristine, step, rows)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # the model's own layers, and the tied embedding, are views of the step's one copy
    attention = model.model.layers[0].self_attn
    transposed = step.layers[0].qkv.weight_t
    assert transposed is not None
    assert step.lm_head.weight_t is not None
    assert attention.k_proj.weight.untyped_storage().data_ptr() == transposed.untyped_storage().data_ptr()
    assert model.model.embed_tokens.weight is model.lm_head.weight
    assert model.lm_head.weight.untyped_storage().data_ptr() == step.lm_head.weight_t.untyped_storage().data_ptr()
    fused, forward = both_answers(pristine, chat_tokenizer, 40)
    assert fused == forward
    assert all(fused)


def test_the_real_model_gives_the_same_greedy_answers_fused_as_with_its_forward(real_engine: Engine) -> None:
    fused, forward = both_answers(real_engine.model, real_engine.tokenizer, 32)
    assert fused == forward
    assert "sky" in "".join(fused).lower() or "blue" in "".join(fused).lower()


def test_an_int8_model_gives_the_same_greedy_answers_fused_as_with_its_forward(chat_tokenizer: Any) -> None:
    model = build_tiny_model(len(chat_tokenizer)).float()
    quantize_int8(model)
    fused, forward = both_answers(model, chat_tokenizer, 24)
    assert fused == forward


def test_stacked_int8_layers_give_exactly_the_outputs_of_each() -> None:
    torch.manual_seed(0)
    layers = [Int8Linear(torch.nn.Linear(32, width, bias=False)) for width in (16, 8, 8)]
    x = torch.randn(5, 1, 32)
    stacked = Int8Linear.stacked(layers)
    assert torch.equal(stacked(x), torch.cat([layer(x) for layer in layers], dim=-1))
    assert stacked.out_features == 32


def test_a_model_the_step_does_not_cover_decodes_with_its_own_forward(chat_tokenizer: Any) -> None:
    model = build_tiny_model(len(chat_tokenizer))
    assert supports(model)
    biased = copy.deepcopy(model)
    biased.config.attention_bias = True
    assert not supports(biased)
    engine = Engine(biased, chat_tokenizer, max_batch_size=2)
    try:
        assert engine._step is None
        assert engine.generate(greedy("hi", 4)).stats.completion_tokens == 4
    finally:
        engine.close()


def test_the_step_is_chosen_by_a_setting_and_a_bad_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARLEY_CHAT_STEP", raising=False)
    assert InferenceConfig.from_env().chat_step == "compiled"
    monkeypatch.setenv("PARLEY_CHAT_STEP", "Transformers")
    assert InferenceConfig.from_env().chat_step == "transformers"
    monkeypatch.setenv("PARLEY_CHAT_STEP", "graphs")
    with pytest.raises(InferenceError, match="PARLEY_CHAT_STEP='graphs' must be one of compiled, fused, transformers"):
        InferenceConfig.from_env()
