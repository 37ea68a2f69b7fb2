"""The opt-in int8 chat model: close to float32 layer by layer and in perplexity."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from inference import Engine, GenerationRequest, InferenceError
from inference.config import InferenceConfig
from inference.models import load_chat_model
from inference.quantize import Int8Linear, perplexity, quantize_int8
from tests.oracles import HELD_OUT_TEXT


def test_an_int8_layer_computes_nearly_what_the_float_layer_does() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    x = torch.randn(3, 5, 64)
    expected = linear(x)
    got = Int8Linear(linear)(x)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    relative = (got - expected).norm() / expected.norm()
    assert relative < 0.02, f"relative error {relative:.4f}"


@pytest.mark.parametrize("rows", [1, 8, 32])
def test_an_int8_layer_multiplies_exactly_as_integers_do_even_at_the_extremes(rows: int) -> None:
    # oneDNN's products without VNNI sum pairs in 16 bits: inputs of ±127 against weights
    # of ±127 would saturate them if they went in whole
    torch.manual_seed(rows)
    layer = Int8Linear(torch.nn.Linear(1536, 576, bias=False))
    layer.weight_t[:, :3] = 127
    layer.weight_t[:, 3:6] = -127
    quantized = torch.randint(-127, 128, (rows, 1536)).float()
    quantized[0] = 127
    expected = (quantized.double() @ layer.weight_t.double()).float()
    assert torch.equal(layer._integer_product(quantized), expected)


def test_int8_keeps_the_default_models_perplexity_within_five_percent_and_its_answers() -> None:
    config = dataclasses.replace(InferenceConfig.from_env(), chat_quantize="none", dtype="float32")
    text = HELD_OUT_TEXT.read_text()
    model, tokenizer = load_chat_model(config)
    float_perplexity = perplexity(model, tokenizer, text)

    engine = Engine.from_config(dataclasses.replace(config, chat_quantize="int8"))
    try:
        assert engine.model_name.endswith(" (int8)")
        assert not any(isinstance(m, torch.nn.Linear) for m in engine.model.modules())
        int8_perplexity = perplexity(engine.model, engine.tokenizer, text)
        assert int8_perplexity / float_perplexity < 1.05, (float_perplexity, int8_perplexity)
        answer = engine.generate(
            GenerationRequest.of(
                [{"role": "user", "content": "What is the capital of France?"}], max_new_tokens=24, temperature=0
            )
        )
        assert "Paris" in answer.text
    finally:
        engine.close()


def test_an_unknown_quantization_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_CHAT_QUANTIZE", "int4")
    with pytest.raises(InferenceError, match="PARLEY_CHAT_QUANTIZE='int4' must be one of none, int8"):
        InferenceConfig.from_env()


def test_int8_refuses_a_model_that_is_not_on_the_cpu() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4)).to("meta")
    with pytest.raises(ValueError, match="int8 runs on the CPU"):
        quantize_int8(model)
