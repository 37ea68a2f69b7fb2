"""Which models have a live generation worker: a waiting answer says so for its own model,
not for whichever worker happens to run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from inference.config import LocalModel, ModelRegistry
from tests.waiting import wait_for
from webapp.accounts.models import User
from webapp.chat import liveness, services
from webapp.chat.models import Conversation, Message
from webapp.chat.worker import GenerationWorker

pytestmark = pytest.mark.django_db(transaction=True)

DEFAULT = django_settings.PARLEY_INFERENCE.models.default
OTHER = "second-model"


@pytest.fixture
def two_models(settings: Settings) -> None:
    registry = ModelRegistry(models=(LocalModel(name=DEFAULT), LocalModel(name=OTHER)), default=DEFAULT)
    settings.PARLEY_INFERENCE = dataclasses.replace(settings.PARLEY_INFERENCE, models=registry)


def waiting_note(client: Client, answer: Message) -> str:
    html = client.get(reverse("chat:conversation", args=[answer.conversation_id])).content.decode()
    start = html.index('class="queue-position">') + len('class="queue-position">')
    return html[start : html.index("</span>", start)]


def test_an_answer_on_a_model_without_a_worker_says_so_while_another_models_worker_runs(
    two_models: None, start_worker: Callable[..., GenerationWorker], user: User, logged_in_client: Client
) -> None:
    start_worker()  # the default model's only
    wait_for(lambda: liveness.workers_alive(model=DEFAULT), what="the default model's worker")
    assert liveness.workers_per_model([DEFAULT, OTHER]) == {DEFAULT: 1, OTHER: 0}
    assert liveness.workers_alive() == 1
    on_other = services.message_send(
        conversation=Conversation.objects.create(owner=user, model=OTHER), content="Anyone there?"
    )
    note = waiting_note(logged_in_client, on_other)
    assert note == f"(no generation worker is running for {OTHER}: it starts as soon as one does)"
    on_default = services.message_send(conversation=Conversation.objects.create(owner=user), content="Hello")
    assert "no generation worker" not in waiting_note(logged_in_client, on_default)
    on_default.refresh_from_db()
    on_other.refresh_from_db()
    assert on_other.status == Message.Status.QUEUED  # the default model's worker never takes it
