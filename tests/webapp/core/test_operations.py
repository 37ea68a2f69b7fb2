"""/metrics and /readyz, as an operator's scraper and load balancer see them: a real web
server, a real generation worker writing real answers, Prometheus' own parser."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

import pytest
import requests
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client.parser import text_string_to_metric_families
from pytest_django import Settings

from inference.config import LocalModel, ModelRegistry, UpstreamModel
from tests.upstream import LlamaServer
from tests.waiting import wait_for
from tests.webapp.api.conftest import WebServer
from tests.webapp.chat.conftest import settled
from webapp.accounts.models import User
from webapp.chat import answers, services
from webapp.chat.models import Conversation, Message
from webapp.chat.worker import GenerationWorker
from webapp.jobs.models import Job
from webapp.jobs.services import job_finish

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "a-scraper's-secret"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(web: WebServer) -> Samples:
    response = requests.get(f"{web.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def growth(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_a_scrape_after_answers_shows_them_counted_with_their_tokens_timings_finishes_and_cache(
    start_web: Callable[..., WebServer],
    start_worker: Callable[..., GenerationWorker],
    user: User,
    key_of: Callable[[User], str],
    model: str,
) -> None:
    web = start_web(PARLEY_METRICS_TOKEN=TOKEN)
    before = scrape(web)
    assert value(before, "parley_generation_workers", model=model) == 0
    # before any worker runs: one answer stopped by its user while queued, one failed
    stopped = services.message_send(conversation=Conversation.objects.create(owner=user), content="Never mind")
    assert answers.answer_interrupt(answer=stopped)
    failed = services.message_send(conversation=Conversation.objects.create(owner=user), content="Doomed")
    assert answers.answer_fail(answer_id=failed.pk, reason="The test failed it.")
    start_worker()
    client = web.client(key_of(user))
    question: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Tell me about rye"}]
    first = client.chat.completions.create(model=model, messages=question, max_tokens=12)
    # the same question again: its prompt is read from the prefix cache the first one left
    completion = client.chat.completions.create(model=model, messages=question, max_tokens=12)
    assert first.usage is not None
    assert completion.usage is not None

    def moved() -> Samples | None:
        samples = scrape(web)
        answered = value(samples, "parley_answers_total", model=model, outcome="complete")
        done = value(before, "parley_answers_total", model=model, outcome="complete") + 2
        return samples if answered >= done else None

    after = wait_for(moved, what="the answer on /metrics")

    def grew(name: str, **labels: str) -> float:
        return growth(before, after, name, **labels)

    prompt_tokens = first.usage.prompt_tokens + completion.usage.prompt_tokens
    assert grew("parley_answers_total", model=model, outcome="complete") == 2
    assert grew("parley_answers_total", model=model, outcome="failed") == 1
    assert grew("parley_answers_total", model=model, outcome="interrupted") == 1
    # both ran to their 12-token limit
    assert grew("parley_answer_finishes_total", model=model, reason="length") == 2
    assert grew("parley_answer_finishes_total", model=model, reason="stop") == 0
    assert grew("parley_answer_finishes_total", model=model, reason="cancelled") == 1
    assert grew("parley_answer_finishes_total", model=model, reason="failed") == 1
    assert grew("parley_generated_tokens_total", model=model) == completion.usage.completion_tokens * 2 == 24
    assert grew("parley_prompt_tokens_total", model=model) == prompt_tokens
    assert grew("parley_time_to_first_token_seconds_count", model=model) == 2
    assert grew("parley_time_to_first_token_seconds_sum", model=model) > 0
    # the two answers a worker started; the two that ended while queued never started
    assert grew("parley_queue_time_seconds_count", model=model) == 2
    assert grew("parley_inter_token_latency_seconds_count", model=model) == 2
    assert grew("parley_inter_token_latency_seconds_sum", model=model) > 0
    hits = grew("parley_prefix_cache_prompt_tokens_total", model=model, result="hit")
    misses = grew("parley_prefix_cache_prompt_tokens_total", model=model, result="miss")
    assert hits + misses == prompt_tokens
    assert hits >= first.usage.prompt_tokens - 1  # the second answer's prompt, but for its last token
    assert grew("parley_answer_duration_seconds_count", model=model) == 4
    assert value(after, "parley_generation_workers", model=model) == 1
    assert value(after, "parley_answers_waiting", model=model) == 0
    assert value(after, "parley_answers_running", model=model) == 0
    assert ("parley_jobs_waiting", frozenset({("kind", "summary")})) in after


def test_an_answer_ended_by_a_stop_sequence_is_counted_as_a_stop_finish(
    start_web: Callable[..., WebServer],
    start_worker: Callable[..., GenerationWorker],
    user: User,
    key_of: Callable[[User], str],
    model: str,
) -> None:
    web = start_web(PARLEY_METRICS_TOKEN=TOKEN)
    before = scrape(web)
    start_worker()
    client = web.client(key_of(user))
    question: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Tell me about oats"}]
    # greedy, so that asking again writes the same text, up to where it is told to stop
    whole = client.chat.completions.create(model=model, messages=question, max_tokens=12, temperature=0)
    text = whole.choices[0].message.content or ""
    assert whole.choices[0].finish_reason == "length"
    assert len(text) >= 4
    stop = text[len(text) // 2 :][:2]  # a piece of its own second half
    stopped = client.chat.completions.create(model=model, messages=question, max_tokens=12, temperature=0, stop=[stop])
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == text[: text.index(stop)]
    assert stopped.usage is not None
    assert stopped.usage.completion_tokens < 12

    def counted() -> Samples | None:
        samples = scrape(web)
        answered = growth(before, samples, "parley_answers_total", model=model, outcome="complete")
        return samples if answered >= 2 else None

    after = wait_for(counted, what="both answers on /metrics")
    assert growth(before, after, "parley_answer_finishes_total", model=model, reason="stop") == 1
    assert growth(before, after, "parley_answer_finishes_total", model=model, reason="length") == 1


def test_an_upstream_models_answer_is_counted_but_kept_out_of_the_prefix_cache(
    llama_server: LlamaServer,
    start_upstream_worker: Callable[[UpstreamModel], GenerationWorker],
    user: User,
    staff_user: User,
    client: Client,
) -> None:
    # a name no other test gives a model, so that any series of it is this answer's
    upstream = llama_server.model("metrics-llama")
    client.force_login(staff_user)
    before = parse(client.get(reverse("metrics")).content.decode())
    start_upstream_worker(upstream)
    conversation = Conversation.objects.create(owner=user, model=upstream.name, temperature=0, max_tokens=8)
    answer = services.message_send(conversation=conversation, content="Name a colour of the rainbow.")
    done = wait_for(lambda: settled(answer), timeout=60, what="the upstream's answer")
    assert done.status == Message.Status.COMPLETE
    assert done.prompt_tokens > 0
    assert done.completion_tokens > 0

    def counted() -> Samples | None:
        samples = parse(client.get(reverse("metrics")).content.decode())
        answered = growth(before, samples, "parley_answers_total", model=upstream.name, outcome="complete")
        return samples if answered else None

    after = wait_for(counted, what="the upstream's answer on /metrics")
    assert growth(before, after, "parley_prompt_tokens_total", model=upstream.name) == done.prompt_tokens
    assert growth(before, after, "parley_generated_tokens_total", model=upstream.name) == done.completion_tokens
    assert growth(before, after, "parley_time_to_first_token_seconds_count", model=upstream.name) == 1
    cache = "parley_prefix_cache_prompt_tokens"
    assert not [labels for name, labels in after if name.startswith(cache) and ("model", upstream.name) in labels]

    def cached(samples: Samples) -> float:
        return sum(count for (name, _), count in samples.items() if name == f"{cache}_total")

    assert cached(after) == cached(before)  # nor counted under another model's name


def test_metrics_are_refused_without_the_token_or_a_staff_session(
    start_web: Callable[..., WebServer], client: Client, user: User, staff_user: User
) -> None:
    web = start_web(PARLEY_METRICS_TOKEN=TOKEN)
    assert requests.get(f"{web.url}/metrics", timeout=30).status_code == 403
    wrong = requests.get(f"{web.url}/metrics", headers={"Authorization": "Bearer guessed"}, timeout=30)
    assert wrong.status_code == 403
    assert "PARLEY_METRICS_TOKEN" in wrong.text
    client.force_login(user)
    assert client.get(reverse("metrics")).status_code == 403
    client.force_login(staff_user)
    staff = client.get(reverse("metrics"))
    assert staff.status_code == 200
    assert "parley_answers_waiting" in staff.content.decode()


def test_a_finished_job_is_timed_by_kind_and_outcome(staff_user: User, client: Client) -> None:
    client.force_login(staff_user)
    labels = {"kind": "summary", "outcome": "done"}
    before = value(
        parse(client.get(reverse("metrics")).content.decode()), "parley_job_duration_seconds_count", **labels
    )
    job = Job.objects.create(
        owner=staff_user,
        kind=Job.Kind.SUMMARY,
        state=Job.State.RUNNING,
        total=1,
        started_at=timezone.now() - timedelta(seconds=3),
    )
    job_finish(job=job)
    after = parse(client.get(reverse("metrics")).content.decode())
    assert value(after, "parley_job_duration_seconds_count", **labels) == before + 1
    assert value(after, "parley_jobs_running", kind="summary") == 0


def test_readyz_is_not_ready_without_a_worker_for_the_model_and_ready_with_one(
    client: Client, start_worker: Callable[..., GenerationWorker], model: str
) -> None:
    response = client.get(reverse("readyz"))
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "not ready"
    assert (report["database"], report["redis"], report["migrations"]) == ("ok", "ok", "ok")
    assert report["generation_worker"] == f"not ready: {model}: 0"
    assert client.get(reverse("healthz")).status_code == 200  # alive, though not ready
    start_worker()
    ready = wait_for(lambda: (response := client.get(reverse("readyz"))).status_code == 200 and response)
    assert ready.json()["generation_worker"] == f"ok: {model}: 1"


def test_readyz_is_not_ready_until_each_configured_model_has_a_worker(
    client: Client, start_worker: Callable[..., GenerationWorker], model: str, settings: Settings
) -> None:
    other = "second-model"
    registry = ModelRegistry(models=(LocalModel(name=model), LocalModel(name=other)), default=model)
    settings.PARLEY_INFERENCE = dataclasses.replace(settings.PARLEY_INFERENCE, models=registry)
    start_worker()  # the default model's only
    one = wait_for(
        lambda: f"{model}: 1" in (response := client.get(reverse("readyz"))).json()["generation_worker"] and response
    )
    assert one.status_code == 503
    assert one.json()["generation_worker"] == f"not ready: {model}: 1, {other}: 0"
    start_worker(model=other)
    both = wait_for(lambda: (response := client.get(reverse("readyz"))).status_code == 200 and response)
    assert both.json()["generation_worker"] == f"ok: {model}: 1, {other}: 1"
