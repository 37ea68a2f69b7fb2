"""Titles the model writes after a conversation's first answer, with the real default chat
model in a real generation worker, against the test database and Redis."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from inference import prompts
from inference.types import GenerationRequest
from tests.waiting import wait_for
from tests.webapp.chat.conftest import settled
from webapp.accounts.models import User
from webapp.chat import services
from webapp.chat.models import Conversation, Message
from webapp.chat.worker import GenerationWorker
from webapp.core.events import ThreadPublisher

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = "How do I bake bread at home?"


def start(user: User, content: str = QUESTION) -> tuple[Conversation, Message]:
    conversation, answer = services.conversation_start(owner=user, content=content)
    Conversation.objects.filter(pk=conversation.pk).update(max_tokens=32, temperature=0)
    Message.objects.filter(pk=answer.pk).update(settings={**answer.settings, "max_tokens": 32, "temperature": 0})
    return conversation, answer


def titled(conversation: Conversation) -> Conversation | None:
    conversation.refresh_from_db()
    return conversation if conversation.title_source != Conversation.TitleSource.FALLBACK else None


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every frame the worker publishes, as it goes out to the real channel layer."""
    frames: list[dict[str, Any]] = []
    original = ThreadPublisher.publish_many

    def recording(publisher: ThreadPublisher, events: list[tuple[str, dict[str, Any]]]) -> None:
        frames.extend(event for _, event in events)
        original(publisher, events)

    monkeypatch.setattr(ThreadPublisher, "publish_many", recording)
    return frames


def test_a_first_answer_gets_a_short_title_from_the_model(
    start_real_worker: Callable[..., GenerationWorker], user: User, published: list[dict[str, Any]]
) -> None:
    conversation, answer = start(user)
    assert conversation.title == QUESTION
    assert conversation.title_source == Conversation.TitleSource.FALLBACK
    start_real_worker()
    assert wait_for(functools.partial(settled, answer), timeout=120).status == Message.Status.COMPLETE
    done = wait_for(functools.partial(titled, conversation), timeout=120)
    assert done.title_source == Conversation.TitleSource.MODEL
    assert done.title == prompts.clean_title(done.title)  # one line, no quotes, no label, short
    assert done.title != QUESTION
    assert 0 < len(done.title) <= prompts.TITLE_MAX_CHARS
    assert "bread" in done.title.lower()
    assert {"type": "chat.title", "title": done.title} in published
    # the answer ended before the title was asked for
    kinds = [frame.get("type") for frame in published]
    assert kinds.index("chat.title") > max(i for i, f in enumerate(published) if f.get("status") == "complete")


def test_a_later_answer_leaves_the_models_title(
    start_real_worker: Callable[..., GenerationWorker], user: User, published: list[dict[str, Any]]
) -> None:
    conversation, _answer = start(user)
    start_real_worker()
    first = wait_for(functools.partial(titled, conversation), timeout=120).title
    second = services.message_send(conversation=conversation, content="And how long should it rise?")
    wait_for(functools.partial(settled, second), timeout=120)
    conversation.refresh_from_db()
    assert conversation.title == first
    assert [f for f in published if f.get("type") == "chat.title"] == [{"type": "chat.title", "title": first}]


def test_a_conversation_renamed_before_its_answer_ends_keeps_the_users_name(
    start_real_worker: Callable[..., GenerationWorker], user: User, published: list[dict[str, Any]]
) -> None:
    conversation, answer = start(user)
    services.conversation_rename(conversation=conversation, title="My bread notes")
    start_real_worker()
    assert wait_for(functools.partial(settled, answer), timeout=120).status == Message.Status.COMPLETE
    # the worker decides at the answer's end; give it a second answer's end too, then look
    second = services.message_send(conversation=conversation, content="Thanks!")
    wait_for(functools.partial(settled, second), timeout=120)
    conversation.refresh_from_db()
    assert (conversation.title, conversation.title_source) == ("My bread notes", Conversation.TitleSource.USER)
    assert not [f for f in published if f.get("type") == "chat.title"]


def test_a_rename_while_the_title_is_written_wins(user: User) -> None:
    conversation, _ = start(user)
    services.conversation_rename(conversation=conversation, title="Mine")
    assert not services.conversation_title_by_model(conversation_id=conversation.pk, title="Baking bread")
    conversation.refresh_from_db()
    assert (conversation.title, conversation.title_source) == ("Mine", Conversation.TitleSource.USER)
    assert not services.conversation_title_by_model(conversation_id=123456789, title="Gone")


@pytest.mark.parametrize("fault", ["the prompt fails", "the engine refuses it", "the model writes nothing usable"])
def test_a_failing_title_never_fails_the_answer(
    start_real_worker: Callable[..., GenerationWorker],
    user: User,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    def failing(**kwargs: Any) -> GenerationRequest:
        raise RuntimeError("no title today")

    def refused(**kwargs: Any) -> GenerationRequest:
        # more new tokens than the engine allows: submit raises InvalidRequestError
        return GenerationRequest.of([{"role": "user", "content": "hi"}], max_new_tokens=10**9)

    if fault == "the prompt fails":
        monkeypatch.setattr(prompts, "title_request", failing)
    elif fault == "the engine refuses it":
        monkeypatch.setattr(prompts, "title_request", refused)
    else:
        monkeypatch.setattr(prompts, "clean_title", lambda text: None)
    conversation, answer = start(user)
    start_real_worker()
    done = wait_for(functools.partial(settled, answer), timeout=120)
    assert done.status == Message.Status.COMPLETE
    assert done.content
    # a second answer still comes: the worker is fine
    second = services.message_send(conversation=conversation, content="Thanks!")
    assert wait_for(functools.partial(settled, second), timeout=120).status == Message.Status.COMPLETE
    conversation.refresh_from_db()
    assert (conversation.title, conversation.title_source) == (QUESTION, Conversation.TitleSource.FALLBACK)
