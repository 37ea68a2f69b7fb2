"""Engines for the inference tests: the real default chat model, and a tiny random Llama."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from inference import Engine
from tests.models import build_tiny_model


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
