"""Choosing a model per conversation, claiming answers per model, and the registry as
staff and the command line see it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from inference.config import LocalModel, ModelRegistry, UpstreamModel
from tests.migrations import migrated_back
from tests.processes import BASE_DIR, process_env
from tests.webapp.chat.conftest import Converse, finish
from webapp.accounts.models import User
from webapp.chat import services
from webapp.chat.answers import answer_claim, answers_fail_unserved
from webapp.chat.models import Conversation, Message

LOCAL = django_settings.PARLEY_INFERENCE.models.default
TEAM = UpstreamModel(
    name="team-llama", base_url="http://gpu:8000/v1", model="llama-3.1-8b", context_length=8192, api_key_env="TEAM_KEY"
)
HX = {"HX-Request": "true"}


@pytest.fixture
def offered(settings: Settings) -> ModelRegistry:
    registry = ModelRegistry(models=(LocalModel(name=LOCAL), TEAM), default=LOCAL, source="PARLEY_MODELS")
    settings.PARLEY_INFERENCE = dataclasses.replace(settings.PARLEY_INFERENCE, models=registry)
    return registry


def settings_form(**values: str) -> dict[str, str]:
    return {"system_prompt": "", "temperature": "0.7", "top_p": "0.95", "max_tokens": "200", **values}


@pytest.mark.django_db
def test_the_settings_panel_offers_the_models_and_saves_the_choice(
    offered: ModelRegistry, logged_in_client: Client, converse: Converse
) -> None:
    conversation, answer = converse()
    finish(answer)
    page = logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert f'<option value="" selected>Default ({LOCAL})</option>' in page
    assert '<option value="team-llama">team-llama</option>' in page
    url = reverse("chat:settings", args=[conversation.pk])
    assert logged_in_client.post(url, settings_form(model="team-llama")).status_code == 302
    conversation.refresh_from_db()
    assert conversation.model == "team-llama"
    # the next answer is asked of it, and only its worker takes it
    response = logged_in_client.post(reverse("chat:send", args=[conversation.pk]), {"content": "And now?"}, headers=HX)
    assert response.status_code == 200
    queued = conversation.messages.get(status=Message.Status.QUEUED)
    assert queued.settings["model"] == "team-llama"
    assert answer_claim(worker_key=1, model=LOCAL, model_name="local", limit=5) == []
    assert answer_claim(worker_key=2, model="team-llama", model_name="team-llama (llama-3.1-8b)", limit=5) == [queued]


@pytest.mark.django_db
def test_a_model_that_is_not_offered_is_refused_and_nothing_changes(
    offered: ModelRegistry, logged_in_client: Client, converse: Converse
) -> None:
    conversation, _ = converse()
    response = logged_in_client.post(reverse("chat:settings", args=[conversation.pk]), settings_form(model="gpt-9"))
    assert response.status_code == 422
    assert "Select a valid choice. gpt-9 is not one of the available choices." in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.model == ""


@pytest.mark.django_db
def test_new_and_existing_conversations_follow_the_default(offered: ModelRegistry, converse: Converse) -> None:
    conversation, answer = converse()
    assert conversation.model == ""
    assert answer.settings["model"] == LOCAL


@pytest.mark.django_db
def test_each_worker_claims_only_its_models_answers(
    offered: ModelRegistry, converse: Converse, make_user: Callable[..., User]
) -> None:
    _, on_local = converse()
    on_team = services.message_send(
        conversation=Conversation.objects.create(owner=make_user(), model="team-llama"), content="Hi"
    )
    # an answer queued before answers recorded their model is the default model's
    _, older = converse(owner=make_user())
    Message.objects.filter(pk=older.pk).update(settings={"temperature": 0.7})
    assert answer_claim(worker_key=1, model="team-llama", model_name="team", limit=5) == [on_team]
    assert answer_claim(worker_key=2, model=LOCAL, model_name="local", limit=5) == [on_local, older]


@pytest.mark.django_db
def test_a_conversation_whose_model_was_removed_is_refused_with_the_reason(
    offered: ModelRegistry, logged_in_client: Client, converse: Converse
) -> None:
    conversation, answer = converse()
    finish(answer)
    Conversation.objects.filter(pk=conversation.pk).update(model="retired-model")
    before = Message.objects.count()
    send = reverse("chat:send", args=[conversation.pk])
    response = logged_in_client.post(send, {"content": "Still there?"}, headers=HX)
    assert response.status_code == 422
    assert "This conversation&#x27;s model, “retired-model”, is no longer offered here." in response.content.decode()
    assert Message.objects.count() == before
    page = logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert "“retired-model”, this conversation's model, is no longer offered here" in page
    # choosing another lets it go on
    logged_in_client.post(reverse("chat:settings", args=[conversation.pk]), settings_form(model=LOCAL))
    response = logged_in_client.post(reverse("chat:send", args=[conversation.pk]), {"content": "Now?"}, headers=HX)
    assert response.status_code == 200


@pytest.mark.django_db
def test_answers_left_queued_for_a_removed_model_fail_saying_so(
    offered: ModelRegistry, converse: Converse, make_user: Callable[..., User]
) -> None:
    _, kept = converse()
    orphan = services.message_send(
        conversation=Conversation.objects.create(owner=make_user(), model="team-llama"), content="Hi"
    )
    assert answers_fail_unserved(models=[LOCAL]) == 1
    orphan.refresh_from_db()
    kept.refresh_from_db()
    assert (orphan.status, orphan.error) == (
        "failed",
        "The model 'team-llama' this answer was asked of is no longer offered here.",
    )
    assert kept.status == "queued"


@pytest.mark.django_db
def test_staff_see_the_registry_without_its_secrets(
    offered: ModelRegistry, client: Client, staff_user: User, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_KEY", "sk-very-secret")
    url = reverse("chat:models")
    client.force_login(user)
    assert client.get(url).status_code == 403
    client.force_login(staff_user)
    page = client.get(url).content.decode()
    assert f'{LOCAL} <span class="muted small">(default)</span>' in page
    assert "<code>http://gpu:8000/v1</code>, model <code>llama-3.1-8b</code>" in page
    assert "<code>TEAM_KEY</code> (set)" in page
    assert "sk-very-secret" not in page


@pytest.mark.django_db(transaction=True)
def test_conversations_made_before_models_could_be_chosen_keep_their_rows_and_follow_the_default() -> None:
    with migrated_back(("chat", "0002_sharedconversation")) as old:
        owner = old.get_model("accounts", "User").objects.create(email="old@example.com", username="old@example.com")
        made = old.get_model("chat", "Conversation").objects.create(owner=owner, title="From before", temperature=0.2)
    conversation = Conversation.objects.get(pk=made.pk)
    assert (conversation.title, conversation.temperature, conversation.model) == ("From before", 0.2, "")


@pytest.mark.django_db
def test_a_worker_for_a_model_not_in_the_registry_stops_naming_it() -> None:
    registry = json.dumps({"models": [{"name": "small", "kind": "local"}]})
    result = subprocess.run(
        [sys.executable, "manage.py", "generation_worker", "--model", "big"],
        cwd=BASE_DIR, env=process_env(PARLEY_MODELS=registry), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "PARLEY_MODELS has no model 'big'; it lists small." in result.stderr
