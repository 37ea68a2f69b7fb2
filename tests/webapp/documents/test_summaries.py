"""Whole-document summaries on Celery: requests, cancel, and a killed worker."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from inference.config import LocalModel, ModelRegistry, UpstreamModel
from inference.embeddings import Embedder
from inference.summarize import Summarizer, readable_text, text_units
from tests.processes import process_env
from tests.upstream import LlamaServer
from tests.waiting import wait_for
from tests.webapp.chat.conftest import slow_tiny_engine
from tests.webapp.documents.corpus import read_document
from tests.webapp.jobs.workers import start_celery
from webapp.accounts.models import TokenUsage, User
from webapp.accounts.usage import usage_record
from webapp.documents import services, summaries, tasks
from webapp.documents.models import ChunkSummary, Document, Summary
from webapp.jobs.models import Job
from webapp.jobs.services import job_cancel
from webapp.review.models import ReviewItem

pytestmark = pytest.mark.django_db(transaction=True)

LOCAL = django_settings.PARLEY_INFERENCE.models.default

SENTENCES = [
    "The harbour of Veldmark was rebuilt in 1884 after the great storm.",
    "Fishermen brought herring, cod and mackerel to the new quays.",
    "The town council argued for years about the price of a lighthouse.",
    "Merchants from Bremen opened a trading house near the market square.",
    "Children learned to mend nets before they learned to read.",
]


def long_text(words: int, last_fact: str = "") -> str:
    text = ""
    i = 0
    while len(text.split()) < words:
        text += SENTENCES[i % len(SENTENCES)] + " "
        i += 1
    return text + last_fact


def ready_document(owner: User, text: str, name: str = "history.txt") -> Document:
    return Document.objects.create(
        owner=owner, name=name, kind="text", size=len(text), sha256=str(hash(text)).ljust(64, "0")[:64],
        original=text.encode(), text=text, status="ready", words=len(text.split()), pages=1,
    )  # fmt: skip


@pytest.fixture
def celery_env() -> dict[str, str]:
    # one chunk at a time, so that a kill falls between two finished chunks
    return process_env(PARLEY_SUMMARY_BATCH_SIZE="1")


def test_a_killed_worker_resumes_from_finished_chunks_and_writes_one_summary(
    user: User, celery_env: dict[str, str]
) -> None:
    """The real Celery worker, the real broker and the real model, killed with SIGKILL."""
    document = ready_document(user, long_text(1500))
    summary = services.summary_request(document, "short", "bullets")
    first = start_celery(celery_env)
    try:
        wait_for(lambda: ChunkSummary.objects.filter(summary=summary).exists(), 240)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    kept = {c.index: (c.pk, c.text) for c in ChunkSummary.objects.filter(summary=summary)}
    job = Job.objects.get(pk=summary.job_id)
    assert job.state == "running"
    assert job.total >= 3, "the test document should span several chunks"
    assert len(kept) < job.total - 1, "the kill should land before every chunk is done"

    second = start_celery(celery_env)  # takes up the orphaned job at start
    try:
        wait_for(lambda: Job.objects.filter(pk=job.pk, state__in=Job.FINISHED).exists(), 400)
    finally:
        second.terminate()
        second.wait(timeout=60)
    job.refresh_from_db()
    summary.refresh_from_db()
    assert job.state == "done", job.error
    assert job.attempts == 2
    chunks = list(ChunkSummary.objects.filter(summary=summary))
    assert [c.index for c in chunks] == list(range(job.total - 1))
    assert all(kept[c.index] == (c.pk, c.text) for c in chunks if c.index in kept), "finished chunks were redone"
    assert summary.text.strip()
    assert summary.key_sentences
    assert all(sentence in document.text for sentence in summary.key_sentences)
    assert Summary.objects.filter(document=document).count() == 1
    # the finished summary waits in the review queue
    assert ReviewItem.objects.filter(summary=summary, kind="summary", owner=user).count() == 1


@pytest.fixture
def tiny_summarizer(chat_tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Summarizer]:
    engine = slow_tiny_engine(chat_tokenizer, step_seconds=0.002, max_batch_size=1)
    writer = Summarizer(engine, chunk_tokens=200)
    monkeypatch.setattr(summaries, "summarizer", lambda model: writer)
    yield writer
    engine.close()


def test_cancel_stops_a_running_summary(user: User, tiny_summarizer: Summarizer) -> None:
    document = ready_document(user, long_text(900))
    summary = services.summary_request(document, "medium", "paragraph")

    def summarize() -> None:
        tasks.summarize_document.run(summary.job_id)
        connection.close()

    worker = threading.Thread(target=summarize)
    worker.start()
    wait_for(lambda: ChunkSummary.objects.filter(summary=summary).exists(), 60)
    assert job_cancel(job=summary.job)
    worker.join(timeout=60)
    assert not worker.is_alive()
    job = Job.objects.get(pk=summary.job_id)
    summary.refresh_from_db()
    assert job.state == "cancelled"
    assert summary.text == ""
    assert ChunkSummary.objects.filter(summary=summary).count() < job.total - 1
    assert not job_cancel(job=job), "a finished job cannot be cancelled again"


def test_asking_twice_gives_the_same_summary_and_unread_documents_are_refused(user: User) -> None:
    document = ready_document(user, long_text(100))
    first = services.summary_request(document, "short", "paragraph")
    assert services.summary_request(document, "short", "paragraph") == first
    assert services.summary_request(document, "long", "paragraph") != first
    Document.objects.filter(pk=document.pk).update(status="pending")
    document.refresh_from_db()
    with pytest.raises(services.DocumentError, match="not been read yet"):
        services.summary_request(document, "medium", "bullets")


def test_another_users_summary_and_job_are_not_found(client: Client, make_user: Callable[..., User]) -> None:
    owner = make_user()
    document = ready_document(owner, long_text(100))
    summary = services.summary_request(document, "short", "paragraph")
    client.force_login(make_user())
    assert (
        client.post(
            reverse("documents:summarize", args=[document.pk]), {"length": "short", "form": "paragraph"}
        ).status_code
        == 404
    )
    assert client.post(reverse("documents:cancel", args=[summary.job_id])).status_code == 404
    assert Job.objects.get(pk=summary.job_id).state == "queued"


def test_bad_summary_options_are_refused(logged_in_client: Client, user: User) -> None:
    document = ready_document(user, long_text(100))
    response = logged_in_client.post(
        reverse("documents:summarize", args=[document.pk]), {"length": "enormous", "form": "poem"}, follow=True
    )
    assert "Pick a length" in response.content.decode()
    assert not Summary.objects.exists()


@pytest.fixture
def offer_upstream(llama_server: LlamaServer, settings: Settings) -> Iterator[UpstreamModel]:
    """The registry: the default local model and llama.cpp's server as "upstream"."""
    upstream = llama_server.model()
    registry = ModelRegistry(models=(LocalModel(name=LOCAL), upstream), default=LOCAL)
    settings.PARLEY_INFERENCE = dataclasses.replace(settings.PARLEY_INFERENCE, models=registry)
    yield upstream
    for name in (upstream.name,):
        with contextlib.suppress(Exception):
            summaries.summarizer(name).engine.close()
    summaries.summarizer.cache_clear()


def test_a_summary_is_written_by_the_model_its_owner_picked(
    logged_in_client: Client, user: User, offer_upstream: UpstreamModel
) -> None:
    document = ready_document(user, long_text(400))
    page = logged_in_client.get(reverse("documents:detail", args=[document.pk])).content.decode()
    assert f'<option value="{LOCAL}" selected>{LOCAL}</option>' in page  # the installation's summary model
    assert '<option value="upstream">upstream</option>' in page
    response = logged_in_client.post(
        reverse("documents:summarize", args=[document.pk]),
        {"length": "short", "form": "paragraph", "model": "upstream"},
    )
    assert response.status_code == 302
    summary = Summary.objects.get(document=document)
    assert summary.model == "upstream"
    tasks.summarize_document.run(summary.job_id)
    summary.refresh_from_db()
    assert Job.objects.get(pk=summary.job_id).state == "done"
    assert summary.model_name == "upstream (smollm2)"
    assert summary.text.strip()
    assert ChunkSummary.objects.filter(summary=summary).exists()
    [usage] = TokenUsage.objects.filter(user=user)  # the summary's tokens, on its model
    assert usage.model == "upstream"
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0


def test_the_operators_summary_model_is_the_default_and_an_unknown_one_is_refused(
    logged_in_client: Client, user: User, offer_upstream: UpstreamModel, settings: Settings
) -> None:
    document = ready_document(user, long_text(100))
    response = logged_in_client.post(
        reverse("documents:summarize", args=[document.pk]),
        {"length": "short", "form": "paragraph", "model": "no-such-model"},
        follow=True,
    )
    assert "a model offered here" in response.content.decode()
    assert not Summary.objects.exists()
    with pytest.raises(services.DocumentError, match="no model “gone”"):
        services.summary_request(document, "short", "paragraph", "gone")
    settings.PARLEY_SUMMARY_MODEL = "upstream"
    page = logged_in_client.get(reverse("documents:detail", args=[document.pk])).content.decode()
    assert '<option value="upstream" selected>upstream</option>' in page
    assert services.summary_request(document, "short", "paragraph").model == "upstream"
    # the same options by another model is another summary
    assert services.summary_request(document, "short", "paragraph", LOCAL).model == LOCAL
    assert Summary.objects.count() == 2
    settings.PARLEY_USER_DAILY_TOKENS = 50
    usage_record(user_id=user.pk, model=LOCAL, prompt_tokens=40, completion_tokens=10)
    with pytest.raises(services.DocumentError, match="the daily limit is 50"):
        services.summary_request(document, "long", "bullets")
    assert Summary.objects.count() == 2


def test_a_read_documents_key_sentences_are_found_through_its_passages(user: User) -> None:
    """A document read for asking has its passages' vectors: the key sentences are picked
    through them, so the summary never embeds every sentence of the document again."""
    text = " ".join(f"{SENTENCES[i % 5][:-1]}, as the records of {1700 + i} say." for i in range(100))
    document = read_document(user, "harbour.txt", "text", text.encode())
    assert document.passages.count() > 10
    embedder = Embedder.from_config()
    embedded: list[int] = []

    class Counting:
        tokenizer = embedder.tokenizer

        def embed(self, texts: list[str], **options: Any) -> Any:
            embedded.append(len(texts))
            return embedder.embed(texts, **options)

    writer = Summarizer(engine=None, embedder=Counting(), tokenizer=embedder.tokenizer)  # type: ignore[arg-type]  # key sentences need no model
    picked = summaries.document_key_sentences(writer, document)
    sentences = [unit.text for unit in text_units(readable_text(document.text)) if unit.is_sentence]
    assert len(picked) == 5
    assert [sentences.index(s) for s in picked] == sorted(sentences.index(s) for s in picked)
    assert 0 < sum(embedded) < len(sentences)  # only those of the passages picked, not every sentence again
    # a document without passages (read before they existed) embeds its sentences, as before
    document.passages.all().delete()
    embedded.clear()
    assert len(summaries.document_key_sentences(writer, document)) == 5
    assert embedded == [len(sentences)]
