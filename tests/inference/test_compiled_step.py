"""The compiled decoding step (PARLEY_CHAT_STEP=compiled: one row's programs compiled ahead
of time) gives what the uncompiled one gives, serves every context and buffer size with the
programs compiled once, keeps them for the next start, and falls back when it cannot compile."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from typing import Any

import pytest
import torch

from inference import Engine, ahead_of_time
from inference.config import InferenceConfig
from inference.decoding_step import FusedLlamaStep
from tests.inference.test_decoding_step import PROMPTS, answers, greedy, one_step_logits
from tests.models import build_tiny_model
from tests.processes import BASE_DIR


def engines(model: Any, tokenizer: Any) -> tuple[Engine, Engine]:
    compiled = Engine(model, tokenizer, max_batch_size=8, chat_step="compiled")
    fused = Engine(model, tokenizer, max_batch_size=8, chat_step="fused")
    assert compiled._step is not None
    assert compiled._step.compiled
    assert compiled._step.one_row is not None  # one row runs the programs compiled ahead of time
    assert fused._step is not None
    assert not fused._step.compiled
    return compiled, fused


def test_a_float64_model_gives_the_same_logits_and_greedy_answers_compiled_as_uncompiled(chat_tokenizer: Any) -> None:
    model = build_tiny_model(len(chat_tokenizer))
    compiled, fused = engines(model, chat_tokenizer)
    try:
        together = answers(compiled, 40)
        assert together == answers(fused, 40)
        assert all(together)
        for prompt in PROMPTS:  # one row: the compiled programs
            alone = compiled.generate(greedy(prompt, 40)).text
            assert alone == fused.generate(greedy(prompt, 40)).text
            assert alone
    finally:
        compiled.close()
        fused.close()
    step = FusedLlamaStep(copy.deepcopy(model), compiled=True)
    assert not ahead_of_time.compile_one_row(step)  # the engine's programs, kept
    for rows in (1, 3):
        expected, got = one_step_logits(model, step, rows)
        # the model's norm computes in float32 even for float64 weights, and compiled code
        # orders that float32 arithmetic its own way: float32's rounding, not float64's
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


def test_a_float32_model_compiled_decodes_as_its_forward_as_context_and_buffers_grow(chat_tokenizer: Any) -> None:
    model = build_tiny_model(len(chat_tokenizer)).float()
    compiled, fused = engines(model, chat_tokenizer)
    assert compiled._step is not None
    programs = compiled._step.one_row
    try:
        # batches of 1 to 8 rows, and keys and values growing past their first buffers: the
        # programs checked every input's shape and layout at each call (ahead_of_time.py)
        for rows in (1, 3, 8, 1):
            streams = [compiled.submit(greedy(prompt, 90)) for prompt in (PROMPTS * 2)[:rows]]
            assert all(stream.result().stats.completion_tokens == 90 for stream in streams)
        assert compiled._step.one_row is programs  # still the ones compiled at start
        assert answers(compiled, 24) == answers(fused, 24)
    finally:
        compiled.close()
        fused.close()
    pristine = build_tiny_model(len(chat_tokenizer)).float()
    step = FusedLlamaStep(build_tiny_model(len(chat_tokenizer)).float(), compiled=True)
    ahead_of_time.compile_one_row(step)
    for rows in (1, 3):  # one row reads the weights in a compiled loop, several through oneDNN
        expected, got = one_step_logits(pristine, step, rows)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_the_real_model_gives_the_same_greedy_answers_compiled_as_uncompiled(real_engine: Engine) -> None:
    compiled, fused = engines(copy.deepcopy(real_engine.model), real_engine.tokenizer)
    try:
        together = answers(compiled, 32)
        assert together == answers(fused, 32)
        assert "sky" in "".join(together).lower() or "blue" in "".join(together).lower()
        request = greedy("Why is the sky blue?", 24)
        assert compiled.generate(request).text == fused.generate(request).text
    finally:
        compiled.close()
        fused.close()


def test_the_one_row_programs_are_kept_checked_and_a_damaged_one_is_compiled_again(
    chat_tokenizer: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    pristine = build_tiny_model(len(chat_tokenizer)).float()

    def step() -> FusedLlamaStep:
        return FusedLlamaStep(copy.deepcopy(pristine), compiled=True)

    first = step()
    assert ahead_of_time.compile_one_row(first)  # compiled now
    kept = sorted((tmp_path / "parley-one-row").glob("*.pt2"))
    assert [path.name.split("-")[0] for path in kept] == ["head", "layer"]
    again = step()
    assert not ahead_of_time.compile_one_row(again)  # loaded
    expected, got = one_step_logits(pristine, again, 1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert again.one_row is not None
    layer_program = again.one_row[0]
    # inputs laid out otherwise than compiled for are refused, not read wrongly
    layer = again.layers[0]
    x = torch.zeros(1, 1, pristine.config.hidden_size)
    rotary = torch.zeros(1, 1, 1, again.head_dim)
    sideways = torch.zeros(1, again.kv_heads, again.head_dim, 20).transpose(2, 3)
    inputs = (x, rotary, rotary, torch.zeros(1, 1, 1, 10), sideways, sideways.clone(), layer.input_norm)
    with pytest.raises(RuntimeError, match="stride"):
        layer_program(
            *inputs, layer.post_attention_norm, *layer.projections(as_weights=True), **layer_program.constants
        )
    with pytest.raises(ValueError, match="compiled for"):
        layer_program(*inputs, **{**layer_program.constants, "heads": 1})
    kept[1].write_bytes(b"not a program")
    damaged = step()
    assert ahead_of_time.compile_one_row(damaged)  # compiled again
    expected, got = one_step_logits(pristine, damaged, 1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


RESTART = """
import logging
logging.basicConfig(level=logging.INFO)
from inference import Engine, GenerationRequest
engine = Engine.from_config()
request = GenerationRequest.of([{"role": "user", "content": "Name a colour."}], max_new_tokens=6, temperature=0)
print("answered", bool(engine.generate(request).text))
engine.close()
"""


def test_a_restarted_engine_loads_the_programs_kept_under_var_instead_of_compiling(tmp_path: Any) -> None:
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    models = str(InferenceConfig.from_env().models_dir)
    env.update(PARLEY_VAR_DIR=str(var), PARLEY_MODELS_DIR=models, PARLEY_CHAT_STEP="compiled", PARLEY_DTYPE="float32")
    logs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", RESTART], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        assert "answered True" in done.stdout
        logs.append(done.stderr)
    assert "decoding step compiled in" in logs[0]
    assert len(list((var / "cache" / "torchinductor" / "parley-one-row").glob("*.pt2"))) == 2
    assert "decoding step loaded from the compile cache in" in logs[1]


FALLBACK = """
import logging
logging.basicConfig(level=logging.INFO)
from inference import Engine, GenerationRequest
from tests.models import build_tiny_model, load_chat_tokenizer
tokenizer = load_chat_tokenizer()
engine = Engine(build_tiny_model(len(tokenizer)).float(), tokenizer, chat_step="compiled")
request = GenerationRequest.of([{"role": "user", "content": "hi"}], max_new_tokens=5, temperature=0, ignore_eos=True)
print("compiled", engine._step.compiled, "tokens", engine.generate(request).stats.completion_tokens)
engine.close()
"""


def test_without_a_working_compiler_the_step_runs_uncompiled_and_says_why(tmp_path: Any) -> None:
    env = {**os.environ, "CXX": "/bin/false", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", FALLBACK], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "compiled False tokens 5" in done.stdout
    assert "compiling the decoding step failed, so it runs uncompiled (PARLEY_CHAT_STEP=fused" in done.stderr
