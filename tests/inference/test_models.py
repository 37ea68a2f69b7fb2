"""Loading the chat model: in float32 or bfloat16, whichever decodes faster on this CPU,
measured once and then kept, so answers do not change character between restarts."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from inference import models
from inference.config import InferenceConfig
from inference.models import DECODING_CHOICES_FILE, faster_for_decoding, load_chat_model, recorded_decoding_choice
from tests.models import build_tiny_model


def timed_as(float32_ms: float, bfloat16_ms: float) -> Any:
    """A stand-in for one timed decoding step: the time each dtype is given here."""

    def step_seconds(model: Any, cache: Any, next_ids: Any) -> float:
        return (bfloat16_ms if model.dtype == torch.bfloat16 else float32_ms) / 1000

    return step_seconds


@pytest.mark.parametrize(
    ("float32_ms", "bfloat16_ms", "chosen"),
    [
        (60, 36, torch.bfloat16),  # clearly faster
        (60, 57, torch.float32),  # within 10%: float32, the exact one, stays
        (50, 64, torch.float32),  # slower
    ],
)
def test_bfloat16_is_kept_only_when_it_decodes_clearly_faster(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    chat_tokenizer: Any,
    float32_ms: float,
    bfloat16_ms: float,
    chosen: torch.dtype,
) -> None:
    model = build_tiny_model(len(chat_tokenizer)).to(torch.float32)
    monkeypatch.setattr(models, "_decoding_step_seconds", timed_as(float32_ms, bfloat16_ms))
    with caplog.at_level(logging.INFO, logger="inference.models"):
        result = faster_for_decoding(model, rounds=3)
    assert result.dtype == chosen
    assert model.dtype == torch.float32, "the float32 model itself is never converted"
    if chosen == torch.float32:
        assert result is model
    # two steps (1 and 8 rows) a round
    assert f"took {2 * bfloat16_ms} ms in bfloat16, {2 * float32_ms} ms in float32" in caplog.text
    assert f"chat model in {str(chosen).removeprefix('torch.')}" in caplog.text


def test_the_probe_times_real_decoding_steps_and_answers_the_same_question(chat_tokenizer: Any) -> None:
    model = build_tiny_model(len(chat_tokenizer)).to(torch.float32)
    prompt = torch.tensor([[1, 5, 9, 14]])
    with torch.inference_mode():
        before = model(input_ids=prompt).logits
        result = faster_for_decoding(model, rounds=2)
        after = result(input_ids=prompt).logits.float()
    assert result.dtype in (torch.float32, torch.bfloat16)
    assert torch.equal(before.argmax(-1), after.argmax(-1))


def test_an_explicit_dtype_is_loaded_as_it_is_without_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_expected(model: Any, **options: Any) -> Any:
        raise AssertionError("PARLEY_DTYPE=float32 should not be timed against bfloat16")

    monkeypatch.setattr(models, "faster_for_decoding", not_expected)
    config = dataclasses.replace(InferenceConfig.from_env(), dtype="float32")
    model, _ = load_chat_model(config)
    assert model.dtype == torch.float32


def not_timed(model: Any, cache: Any, next_ids: Any) -> float:
    raise AssertionError("a recorded choice should be taken without timing")


def test_the_choice_is_measured_once_and_kept_for_later_starts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, chat_tokenizer: Any, tmp_path: Path
) -> None:
    config = dataclasses.replace(InferenceConfig.from_env(), models_dir=tmp_path)
    model = build_tiny_model(len(chat_tokenizer)).to(torch.float32)
    monkeypatch.setattr(models, "_decoding_step_seconds", timed_as(60, 36))
    assert recorded_decoding_choice(model, config).dtype == torch.bfloat16
    # a later start measures float32 faster (a start under load): the first choice stands
    monkeypatch.setattr(models, "_decoding_step_seconds", not_timed)
    with caplog.at_level(logging.INFO, logger="inference.models"):
        again = recorded_decoding_choice(model, config)
    assert again.dtype == torch.bfloat16
    assert model.dtype == torch.float32
    assert "chat model in bfloat16, as measured for this model on this CPU" in caplog.text
    assert "took 72 ms in bfloat16, 120 ms in float32" in caplog.text
    assert f"delete {tmp_path / DECODING_CHOICES_FILE} to measure again" in caplog.text


def test_a_choice_recorded_on_another_cpu_or_an_unreadable_record_is_measured_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, chat_tokenizer: Any, tmp_path: Path
) -> None:
    config = dataclasses.replace(InferenceConfig.from_env(), models_dir=tmp_path)
    record = tmp_path / DECODING_CHOICES_FILE
    model = build_tiny_model(len(chat_tokenizer)).to(torch.float32)
    record.write_text(json.dumps({"tiny | another CPU | 64 threads | torch 1.0": {"dtype": "bfloat16"}}))
    monkeypatch.setattr(models, "_decoding_step_seconds", timed_as(50, 64))
    assert recorded_decoding_choice(model, config) is model
    kept = json.loads(record.read_text())
    assert len(kept) == 2, "the other machine's choice is kept beside this one's"
    assert [choice["dtype"] for key, choice in kept.items() if "another CPU" not in key] == ["float32"]

    record.write_text("{not json")
    monkeypatch.setattr(models, "_decoding_step_seconds", timed_as(60, 36))
    with caplog.at_level(logging.INFO, logger="inference.models"):
        assert recorded_decoding_choice(model, config).dtype == torch.bfloat16
    assert "is unreadable; measuring the chat model's dtype again" in caplog.text
    assert [choice["dtype"] for choice in json.loads(record.read_text()).values()] == ["bfloat16"]


def test_the_default_chat_model_is_loaded_in_the_dtype_its_timing_chose_on_every_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = dataclasses.replace(InferenceConfig.from_env(), dtype="auto", device="cpu")
    with caplog.at_level(logging.INFO, logger="inference.models"):
        model, _ = load_chat_model(config)
    dtype = str(model.dtype).removeprefix("torch.")
    assert f"chat model in {dtype}" in caplog.text
    assert "a decoding step of 1 and of 8 rows took" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="inference.models"):
        again, _ = load_chat_model(config)
    assert again.dtype == model.dtype
    assert f"chat model in {dtype}, as measured for this model on this CPU" in caplog.text
