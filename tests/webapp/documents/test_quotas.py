"""Per-user quotas: stored bytes and documents, jobs waiting or running, uploads a minute."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.template.defaultfilters import filesizeformat
from django.test import Client
from django.urls import reverse

from webapp.documents import services
from webapp.documents.models import Document, Summary
from webapp.jobs import sending
from webapp.jobs.models import Job
from webapp.sentiment.models import SentimentBatch

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    cache.clear()


def upload(client: Client, *files: tuple[str, bytes]) -> str:
    response = client.post(
        reverse("documents:upload"), {"files": [SimpleUploadedFile(name, data) for name, data in files]}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


def stored(owner: Any, name: str, size: int, text: str = "", **fields: Any) -> Document:
    data = name.encode().ljust(size, b".")
    return Document.objects.create(
        owner=owner,
        name=name,
        kind="text",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        original=data,
        text=text,
        **fields,
    )


def test_the_documents_page_shows_usage_against_the_quota(logged_in_client: Client, user: Any) -> None:
    stored(user, "a.txt", 3000, text="é" * 1000)  # 2,000 bytes of text
    stored(user, "b.txt", 5000)
    page = logged_in_client.get(reverse("documents:index")).content.decode()
    assert f"Your storage: {filesizeformat(10_000)} of {filesizeformat(500 * 1024 * 1024)} (documents" in page
    assert "2 of 1,000 documents" in page


def test_an_upload_over_the_storage_quota_is_refused_whole(logged_in_client: Client, user: Any, settings: Any) -> None:
    settings.PARLEY_QUOTA_STORAGE_BYTES = 2000
    stored(user, "old.txt", 1000, text="x" * 500)
    page = upload(logged_in_client, ("one.txt", b"1" * 200), ("two.txt", b"2" * 400))
    assert "would pass your storage quota of 2.0\xa0KB" in page
    assert "your documents and conversations take 1.5\xa0KB and it adds 600\xa0bytes" in page
    assert list(Document.objects.values_list("name", flat=True)) == ["old.txt"]
    assert not Job.objects.exists()
    # what fits is taken
    assert "“one.txt” uploaded" in upload(logged_in_client, ("one.txt", b"1" * 200))


def test_an_upload_over_the_document_quota_is_refused_whole(logged_in_client: Client, user: Any, settings: Any) -> None:
    settings.PARLEY_QUOTA_DOCUMENTS = 3
    stored(user, "old.txt", 10)
    page = upload(logged_in_client, *[(f"{n}.txt", f"file {n}".encode()) for n in range(3)])
    assert "would pass your quota of 3 documents: you have 1 and it adds 3" in page
    assert Document.objects.count() == 1
    # a file already there adds nothing
    assert "is already in your documents" in upload(logged_in_client, ("again.txt", b"old.txt".ljust(10, b".")))


@pytest.mark.django_db(transaction=True)
def test_two_uploads_at_once_cannot_both_pass_the_quota(user: Any, settings: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(sending, "job_send", lambda **job: None)
    settings.PARLEY_QUOTA_STORAGE_BYTES = 1000
    barrier = threading.Barrier(2)
    outcomes: list[services.UploadOutcome] = []

    def send(number: int) -> None:
        try:
            barrier.wait()
            outcomes.append(
                services.documents_upload(user, [SimpleUploadedFile(f"{number}.txt", bytes([48 + number]) * 600)], [])
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(number,)) for number in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(outcome.added) for outcome in outcomes) == [0, 1]
    refused = next(outcome for outcome in outcomes if outcome.refused)
    assert "your documents and conversations take 600\xa0bytes and it adds 600\xa0bytes" in refused.refused[0][1]
    assert Document.objects.count() == 1


def queued_jobs(owner: Any, count: int, state: str = Job.State.QUEUED) -> None:
    Job.objects.bulk_create([Job(owner=owner, kind=Job.Kind.EXTRACT, state=state) for _ in range(count)])


def test_a_summary_over_the_active_jobs_quota_is_refused(logged_in_client: Client, user: Any, settings: Any) -> None:
    settings.PARLEY_QUOTA_ACTIVE_JOBS = 3
    document = stored(user, "ready.txt", 100, text="Some text.", status=Document.Status.READY)
    queued_jobs(user, 2)
    queued_jobs(user, 1, state=Job.State.RUNNING)
    queued_jobs(user, 5, state=Job.State.DONE)  # finished ones do not count
    response = logged_in_client.post(
        reverse("documents:summarize", args=[document.pk]), {"length": "short", "form": "paragraph"}, follow=True
    )
    page = response.content.decode()
    assert "You have 3 jobs waiting or running, and your quota is 3 at once" in page
    assert not Summary.objects.exists()
    Job.objects.filter(state=Job.State.RUNNING).update(state=Job.State.DONE)
    logged_in_client.post(reverse("documents:summarize", args=[document.pk]), {"length": "short", "form": "paragraph"})
    assert Summary.objects.count() == 1


def test_a_sentiment_batch_over_the_active_jobs_quota_is_refused(
    logged_in_client: Client, user: Any, make_user: Any, settings: Any
) -> None:
    settings.PARLEY_QUOTA_ACTIVE_JOBS = 2
    queued_jobs(user, 2)
    queued_jobs(make_user("other@example.com"), 5)  # another user's jobs are theirs
    response = logged_in_client.post(reverse("sentiment:create"), {"texts": "Great!\nAwful.\n"}, follow=True)
    assert "You have 2 jobs waiting or running, and your quota is 2 at once" in response.content.decode()
    assert not SentimentBatch.objects.exists()
    csv = SimpleUploadedFile("reviews.csv", b"text,stars\nGreat,5\nAwful,1\n")
    logged_in_client.post(reverse("sentiment:create"), {"file": csv})
    batch = SentimentBatch.objects.get()
    chosen = logged_in_client.post(reverse("sentiment:column", args=[batch.pk]), {"column": "text"}, follow=True)
    assert "your quota is 2 at once" in chosen.content.decode()
    batch.refresh_from_db()
    assert batch.job is None
    assert batch.text_column == ""


def test_uploads_are_limited_per_minute(logged_in_client: Client, user: Any, settings: Any) -> None:
    settings.PARLEY_UPLOAD_RATE = "2/m"
    for number in range(2):
        assert "uploaded" in upload(logged_in_client, (f"{number}.txt", f"file {number}".encode()))
    page = upload(logged_in_client, ("third.txt", b"third"))
    assert "Too many uploads: at most 2 a minute" in page
    assert not Document.objects.filter(name="third.txt").exists()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PARLEY_QUOTA_STORAGE_MB", "0", "PARLEY_QUOTA_STORAGE_MB=0 is below the minimum of 1"),
        ("PARLEY_QUOTA_DOCUMENTS", "lots", "PARLEY_QUOTA_DOCUMENTS='lots' is not an integer"),
        ("PARLEY_QUOTA_ACTIVE_JOBS", "-1", "PARLEY_QUOTA_ACTIVE_JOBS=-1 is below the minimum of 1"),
        ("PARLEY_UPLOAD_RATE", "fast", "PARLEY_UPLOAD_RATE='fast' is not a rate"),
    ],
)
def test_a_bad_quota_setting_stops_the_process_naming_it(tmp_path: Any, name: str, value: str, message: str) -> None:
    from tests.webapp.accounts.test_signup import signup_policy

    assert message in signup_policy(tmp_path, **{name: value})
