"""Engines for the inference tests: the real default chat model, and a tiny random Llama."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from inference import Engine
from inference.config import InferenceConfig
from tests.models import build_tiny_model


@pytest.fixture
def tiny_engine(chat_tokenizer: Any) -> Iterator[Engine]:
    engine = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, model_name="tiny", max_batch_size=16)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def real_engine() -> Iterator[Engine]:
    """The default chat model in float32, named rather than left to the start-up timing
    that picks float32 or bfloat16 by the CPU: what the tests expect of its text must not
    depend on the machine they run on."""
    engine = Engine.from_config(dataclasses.replace(InferenceConfig.from_env(), dtype="float32"))
    yield engine
    engine.close()
