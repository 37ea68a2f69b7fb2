"""/v1 driven by the official ``openai`` client against the real web server and a real
generation worker (a tiny random model: it never ends on its own, so an answer runs to
``max_tokens`` unless a stop sequence or a Stop ends it)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import openai
import pytest
from django.test import Client

from tests.waiting import wait_for
from tests.webapp.api.conftest import WebServer
from webapp.accounts.models import User
from webapp.api.models import ApiKey
from webapp.api.services import api_key_revoke
from webapp.chat.models import Conversation, Message
from webapp.chat.worker import GenerationWorker
from webapp.review.models import Kind, ReviewItem

pytestmark = pytest.mark.django_db(transaction=True)

StartWorker = Callable[..., GenerationWorker]
KeyOf = Callable[[User], str]


def ask(content: str = "Tell me about bread") -> list[Any]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}]


def api_answers(user: User) -> list[Message]:
    return list(
        Message.objects.filter(
            conversation__owner=user, conversation__origin=Conversation.Origin.API, role=Message.Role.ASSISTANT
        ).order_by("pk")
    )


def test_a_streamed_completion_arrives_in_chunks_and_ends_with_its_usage(
    web: WebServer, start_worker: StartWorker, user: User, key_of: KeyOf, model: str
) -> None:
    start_worker()
    stream = web.client(key_of(user)).chat.completions.create(
        model=model, messages=ask(), max_tokens=24, temperature=0, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    pieces = [chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices]
    finish = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([piece for piece in pieces if piece]) >= 2  # it streamed, not one piece at the end
    assert finish == ["length"]  # the tiny model never ends by itself
    assert chunks[-1].choices == []
    assert len({chunk.id for chunk in chunks}) == 1
    [answer] = api_answers(user)
    assert answer.status == Message.Status.COMPLETE
    assert "".join(pieces) == answer.content
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == answer.completion_tokens == 24
    assert usage.prompt_tokens == answer.prompt_tokens
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_a_whole_completion_has_its_text_finish_reason_and_usage(
    web: WebServer, start_worker: StartWorker, user: User, key_of: KeyOf, model: str
) -> None:
    start_worker()
    completion = web.client(key_of(user)).chat.completions.create(
        model=model, messages=ask(), max_tokens=16, temperature=0.5, top_p=0.9
    )
    [answer] = api_answers(user)
    assert completion.id == f"chatcmpl-{answer.pk}"
    assert completion.object == "chat.completion"
    assert completion.model == model
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == answer.content
    assert choice.message.content
    assert choice.finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 16
    assert completion.usage.prompt_tokens == answer.prompt_tokens
    assert answer.settings["temperature"] == 0.5
    assert answer.settings["top_p"] == 0.9
    assert answer.settings["system_prompt"] == "Be brief."
