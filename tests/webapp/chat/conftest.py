"""Fixtures for chat: conversations, and a real generation worker on a tiny model, on
the real default chat model, or streaming from an ``openai`` model's server.

The worker runs in this process (threads) against the test database and real Redis,
exactly as ``manage.py generation_worker`` runs it, with a tiny random model slowed to a
few milliseconds a step so that a test can act in the middle of an answer, or with the
default chat model where what it writes matters (its titles).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from pytest_django import Settings

from inference.config import LocalModel, ModelRegistry, UpstreamModel
from inference.engine import Engine
from inference.upstream import UpstreamEngine
from tests.models import build_tiny_model, on_each_pass
from webapp.accounts.models import User
from webapp.chat import services
from webapp.chat.models import Conversation, Message
from webapp.chat.worker import GenerationWorker

STEP_SECONDS = 0.01

# What the ``converse`` fixture gives: start a conversation (content, owner, max_tokens) with its queued answer.
Converse = Callable[..., tuple[Conversation, Message]]


def slow_tiny_engine(tokenizer: Any, *, step_seconds: float = STEP_SECONDS, **options: Any) -> Engine:
    model = build_tiny_model(len(tokenizer))
    on_each_pass(model, lambda *args: time.sleep(step_seconds))
    return Engine(model, tokenizer, model_name="tiny-test-model", **options)


class RunningWorker:
    def __init__(self, worker: GenerationWorker) -> None:
        self.worker = worker
        self.thread = threading.Thread(target=worker.run, name="generation-worker", daemon=True)

    def stop(self, *, close_engine: bool = True) -> None:
        self.worker.stop()
        self.thread.join(timeout=30)
        if close_engine:
            self.worker.engine.close()


@contextlib.contextmanager
def worker_threads(*, close_engines: bool = True) -> Iterator[Callable[[GenerationWorker], GenerationWorker]]:
    """Run workers in threads of this process; every one is stopped (and its engine closed,
    unless others share it) when the block ends."""
    running: list[RunningWorker] = []

    def run(worker: GenerationWorker) -> GenerationWorker:
        handle = RunningWorker(worker)
        handle.thread.start()
        running.append(handle)
        return worker

    try:
        yield run
    finally:
        for handle in running:
            handle.stop(close_engine=close_engines)
        connection.close()


@pytest.fixture
def start_worker(chat_tokenizer: Any) -> Iterator[Callable[..., GenerationWorker]]:
    with worker_threads() as run:

        def start(*, capacity: int = 8, step_seconds: float = STEP_SECONDS, **options: Any) -> GenerationWorker:
            engine = slow_tiny_engine(chat_tokenizer, step_seconds=step_seconds, max_batch_size=capacity)
            return run(GenerationWorker(engine, **{"poll_interval": 0.2, "save_interval": 0.05, **options}))

        yield start


@pytest.fixture
def start_upstream_worker(settings: Settings) -> Iterator[Callable[[UpstreamModel], GenerationWorker]]:
    """A generation worker streaming from an ``openai`` model's server, the model offered
    beside the default local one (the registry: those two)."""
    local = settings.PARLEY_INFERENCE.models.default
    with worker_threads() as run:

        def start(model: UpstreamModel) -> GenerationWorker:
            registry = ModelRegistry(models=(LocalModel(name=local), model), default=local)
            settings.PARLEY_INFERENCE = dataclasses.replace(settings.PARLEY_INFERENCE, models=registry)
            engine = UpstreamEngine(model, max_batch_size=4, retry_first_wait=0.05)
            return run(GenerationWorker(engine, model=model.name, poll_interval=0.2, save_interval=0.05))

        yield start


@pytest.fixture(scope="module")
def real_chat_engine() -> Iterator[Engine]:
    """The default chat model in float32 (what it writes must not depend on the CPU)."""
    from inference.config import InferenceConfig

    engine = Engine.from_config(dataclasses.replace(InferenceConfig.from_env(), dtype="float32"))
    yield engine
    engine.close()


@pytest.fixture
def start_real_worker(real_chat_engine: Engine) -> Iterator[Callable[..., GenerationWorker]]:
    """A generation worker on the real default chat model, stopped after the test (the
    model stays loaded for the module's other tests)."""
    with worker_threads(close_engines=False) as run:
        yield lambda: run(GenerationWorker(real_chat_engine, poll_interval=0.2, save_interval=0.05))


@pytest.fixture
def converse(user: User) -> Converse:
    """Start a conversation of ``user`` whose first answer is queued."""

    def make(
        content: str = "Hello there", owner: User | None = None, max_tokens: int = 60
    ) -> tuple[Conversation, Message]:
        conversation = Conversation.objects.create(owner=owner or user, max_tokens=max_tokens, temperature=0)
        answer = services.message_send(conversation=conversation, content=content)
        conversation.refresh_from_db()
        return conversation, answer

    return make


def finish(answer: Message, content: str = "An answer.", model_name: str = "tiny-model") -> Message:
    """``answer`` as a worker would have left it, complete with ``content``."""
    Message.objects.filter(pk=answer.pk).update(status="complete", content=content, model_name=model_name)
    answer.refresh_from_db()
    return answer


def settled(answer: Message) -> Message | None:
    answer.refresh_from_db()
    return None if answer.in_flight else answer
