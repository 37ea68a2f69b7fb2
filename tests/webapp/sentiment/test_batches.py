"""Sentiment batches: sources, limits, a real classifier, results, exports and other users."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from tests.waiting import wait_for
from tests.webapp.jobs.workers import start_celery, stop_celery
from tests.webapp.responses import streamed
from webapp.accounts.models import User
from webapp.documents.intake import RejectedUpload
from webapp.jobs.models import Job
from webapp.sentiment import selectors, services
from webapp.sentiment.models import SentimentBatch, SentimentItem
from webapp.sentiment.sources import csv_preview, csv_rows, line_rows
from webapp.sentiment.tasks import classify_batch

pytestmark = pytest.mark.django_db

REVIEWS = [
    ("1", "I love this phone, the battery lasts for days!", "alice"),
    ("2", "Terrible service. I waited two hours and nobody came.", "bob"),
    ("3", "The package arrived on Tuesday.", "carol"),
    ("4", "", "dave"),
    ("5", "Absolutely wonderful experience, would recommend to everyone.", "erin"),
]


def reviews_csv(rows: list[tuple[str, str, str]] = REVIEWS) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "review", "author"])
    writer.writerows(rows)
    return buffer.getvalue().encode()


def test_csv_preview_rows_and_ragged_lines() -> None:
    header, rows = csv_preview(reviews_csv())
    assert header == ["id", "review", "author"]
    assert rows[0] == ["1", "I love this phone, the battery lasts for days!", "alice"]
    ragged = b"id,review\n1,good,extra,values\n2\n"
    parsed = list(csv_rows(ragged, "review"))
    assert (parsed[0].text, parsed[0].extra) == ("good", {"id": "1", "_extra": ["extra", "values"]})
    assert (parsed[1].text, parsed[1].extra) == ("", {"id": "2"})
    assert [r.text for r in line_rows(b"one\n\n  two  \r\nthree")] == ["one", "two", "three"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b",,\n1,2,3\n", "no header row"),
        (b"a,a\n1,2\n", "same name"),
    ],
)
def test_bad_csv_headers(data: bytes, message: str) -> None:
    with pytest.raises(RejectedUpload, match=message):
        csv_preview(data)


def test_a_missing_column_is_refused(user: User) -> None:
    batch = services.batch_create(user, name="reviews.csv", data=reviews_csv())
    assert batch.job is None
    assert batch.columns == ["id", "review", "author"]
    with pytest.raises(services.BatchError, match="no column named “rating”"):
        services.batch_choose_column(batch, "rating")
    assert not Job.objects.exists()


def test_too_many_rows_are_refused_before_anything_is_kept(user: User) -> None:
    data = reviews_csv([(str(i), "fine", "x") for i in range(200_000)])
    with pytest.raises(RejectedUpload, match="more than 100,000 rows; the limit is 100,000"):
        services.batch_create(user, name="huge.csv", data=data)
    assert not SentimentBatch.objects.exists()


def test_other_kinds_and_empty_texts_are_refused(user: User) -> None:
    with pytest.raises(RejectedUpload, match=r"Upload a \.csv"):
        services.batch_create(user, name="report.pdf", data=b"%PDF-1.4")
    with pytest.raises(RejectedUpload, match="nothing to classify"):
        services.batch_create(user, name="", data=b"  \n ", pasted=True)


def _classified(user: User) -> SentimentBatch:
    batch = services.batch_create(user, name="reviews.csv", data=reviews_csv())
    services.batch_choose_column(batch, "review")
    batch.refresh_from_db()
    classify_batch.run(batch.job_id)
    batch.refresh_from_db()
    return batch


def test_a_batch_is_classified_with_the_real_model(user: User) -> None:
    batch = _classified(user)
    assert batch.job is not None
    assert batch.job.state == "done"
    assert batch.job.done == batch.job.total == 5
    labels = dict(batch.items.values_list("row", "label"))
    assert labels[1] == "positive"
    assert labels[2] == "negative"
    assert labels[4] == "empty"
    assert labels[5] == "positive"
    assert all(
        s is not None and 0 <= s <= 1 for s in batch.items.exclude(label="empty").values_list("score", flat=True)
    )
    assert batch.model_name
    counts = {c.label: c.count for c in selectors.batch_counts(batch)}
    assert sum(counts.values()) == 5


def test_low_confidence_items_are_marked_for_review(user: User, settings: Settings) -> None:
    settings.PARLEY_SENTIMENT_REVIEW_BELOW = 1.01  # every real label is below that
    batch = _classified(user)
    assert batch.items.filter(needs_review=True).count() == 4  # all but the empty one


def test_a_retried_batch_only_labels_what_is_left(user: User) -> None:
    batch = _classified(user)
    SentimentItem.objects.filter(batch=batch, row__in=[1, 2]).update(label="", score=None)
    SentimentItem.objects.filter(batch=batch, row=3).update(label="neutral", score=0.123)
    assert batch.job_id is not None
    Job.objects.filter(pk=batch.job_id).update(state="running")
    classify_batch.run(batch.job_id)
    assert SentimentItem.objects.get(batch=batch, row=3).score == 0.123
    assert SentimentItem.objects.filter(batch=batch, label="").count() == 0
    assert batch.items.count() == 5


def test_results_page_filters_and_exports(logged_in_client: Client, user: User) -> None:
    batch = _classified(user)
    url = reverse("sentiment:batch", args=[batch.pk])
    page = logged_in_client.get(url).content.decode()
    assert "<svg" in page
    assert "positive" in page
    assert "Export CSV" in page
    negatives = logged_in_client.get(url, {"label": "negative"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Terrible service" in negatives
    assert "I love this phone" not in negatives
    confident = logged_in_client.get(url, {"below": "0"}, HTTP_HX_REQUEST="true").content.decode()
    assert "No items match." in confident

    exported = b"".join(streamed(logged_in_client.get(reverse("sentiment:export", args=[batch.pk, "csv"]))))
    rows = list(csv.DictReader(io.StringIO(exported.decode())))
    assert [r["row"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert [r["author"] for r in rows] == ["alice", "bob", "carol", "dave", "erin"]
    assert rows[1]["review"].startswith("Terrible service")
    assert rows[1]["label"] == "negative"

    jsonl = b"".join(streamed(logged_in_client.get(reverse("sentiment:export", args=[batch.pk, "jsonl"]))))
    records = [json.loads(line) for line in jsonl.decode().splitlines()]
    assert len(records) == 5
    assert records[0]["columns"] == {"id": "1", "author": "alice"}
    assert set(records[0]["probabilities"]) == {"negative", "neutral", "positive"}
    assert logged_in_client.get(reverse("sentiment:export", args=[batch.pk, "xml"])).status_code == 404


def test_pasted_texts_and_a_text_file(logged_in_client: Client, user: User) -> None:
    logged_in_client.post(reverse("sentiment:create"), {"texts": "Great!\n\nAwful.\n"})
    pasted = SentimentBatch.objects.get(owner=user, source="paste")
    assert pasted.job is not None
    assert pasted.job.state == "queued"
    upload = SimpleUploadedFile("lines.txt", b"good\nbad\n")
    logged_in_client.post(reverse("sentiment:create"), {"file": upload})
    assert SentimentBatch.objects.get(owner=user, source="lines").name == "lines.txt"


def test_choosing_a_column_in_the_page(logged_in_client: Client, user: User) -> None:
    upload = SimpleUploadedFile("reviews.csv", reviews_csv())
    response = logged_in_client.post(reverse("sentiment:create"), {"file": upload}, follow=True)
    html = response.content.decode()
    assert "Which column holds the texts" in html
    assert "I love this phone" in html
    batch = SentimentBatch.objects.get(owner=user)
    logged_in_client.post(reverse("sentiment:column", args=[batch.pk]), {"column": "review"})
    batch.refresh_from_db()
    assert batch.text_column == "review"
    assert batch.job is not None


def test_another_users_batch_is_not_found(client: Client, make_user: Callable[..., User]) -> None:
    batch = _classified(make_user())
    client.force_login(make_user())
    assert client.get(reverse("sentiment:batch", args=[batch.pk])).status_code == 404
    assert client.get(reverse("sentiment:export", args=[batch.pk, "csv"])).status_code == 404
    assert client.post(reverse("sentiment:column", args=[batch.pk]), {"column": "review"}).status_code == 404
    assert client.post(reverse("documents:cancel", args=[batch.job_id])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_classifies_a_batch(logged_in_client: Client, user: User) -> None:
    worker = start_celery()
    try:
        rows = [(str(i), text, author) for i in range(40) for _, text, author in REVIEWS[i % 5 : i % 5 + 1]]
        logged_in_client.post(reverse("sentiment:create"), {"file": SimpleUploadedFile("many.csv", reviews_csv(rows))})
        batch = SentimentBatch.objects.get(owner=user)
        logged_in_client.post(reverse("sentiment:column", args=[batch.pk]), {"column": "review"})
        wait_for(
            lambda: Job.objects.filter(sentiment_batch=batch, state__in=Job.FINISHED).exists(),
            120,
            "the batch to be classified",
        )
    finally:
        stop_celery(worker)
    batch.refresh_from_db()
    assert batch.job is not None
    assert batch.job.state == "done"
    assert batch.items.count() == 40
    assert not batch.items.filter(label="").exists()
