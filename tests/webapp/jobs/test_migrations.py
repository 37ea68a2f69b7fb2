"""Moving Job to the jobs app and the sentiment models to the sentiment app keeps every row.

The database is taken back to the migrations before the move, filled through the
models as they were then, and migrated forward again; the rows are then read through
today's models. The test leaves the database migrated forward.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db.migrations.state import StateApps
from django.utils import timezone

from tests.migrations import migrated_back
from webapp.documents.models import Document, Summary
from webapp.jobs.models import Job
from webapp.review.models import ReviewItem
from webapp.sentiment.models import SentimentBatch, SentimentItem

# The newest migration of each app before the move; the two new apps had none.
BEFORE = [("documents", "0001_initial"), ("review", "0002_reviewer_group"), ("jobs", None), ("sentiment", None)]


def fill_before_the_move(old: StateApps) -> dict[str, Any]:
    """Rows of every moved model, and what points at them, made with the models of then."""
    owner = old.get_model("accounts", "User").objects.create(email="old@example.com", username="old@example.com")
    document = old.get_model("documents", "Document").objects.create(
        owner=owner, name="report.txt", kind="text", size=5, sha256="a" * 64, original=b"Hello",
        text="Hello", status="ready",
    )  # fmt: skip
    jobs = old.get_model("documents", "Job").objects
    summary_job = jobs.create(owner=owner, kind="summary", document=document, state="done", done=2, total=2)
    summary = old.get_model("documents", "Summary").objects.create(document=document, job=summary_job, text="Hi.")
    batch_job = jobs.create(owner=owner, kind="sentiment", state="done", done=2, total=2, attempts=1)
    batch = old.get_model("documents", "SentimentBatch").objects.create(
        owner=owner, name="survey.csv", source="csv", raw=b"id,text\n1,good\n2,bad\n", columns=["id", "text"],
        text_column="text", job=batch_job, model_name="minilm-sentiment",
    )  # fmt: skip
    items = old.get_model("documents", "SentimentItem").objects
    good = items.create(batch=batch, row=1, text="good", extra={"id": "1"}, label="positive", score=0.9)
    bad = items.create(batch=batch, row=2, text="bad", extra={"id": "2"}, label="negative", score=0.4,
                       needs_review=True)  # fmt: skip
    review_item = old.get_model("review", "ReviewItem").objects.create(
        kind="sentiment", sentiment_item=bad, owner=owner, produced_at=timezone.now(), confidence=0.4
    )
    summary_review = old.get_model("review", "ReviewItem").objects.create(
        kind="summary", summary=summary, owner=owner, produced_at=timezone.now()
    )
    # The admin's history and the permissions point at the content type of then.
    content_types = old.get_model("contenttypes", "ContentType").objects
    job_type = content_types.get_or_create(app_label="documents", model="job")[0]
    old.get_model("admin", "LogEntry").objects.create(
        content_type_id=job_type.pk, object_id=str(batch_job.pk), object_repr="job", action_flag=2,
        user_id=owner.pk, action_time=timezone.now(),
    )  # fmt: skip
    old.get_model("auth", "Permission").objects.get_or_create(
        content_type_id=job_type.pk, codename="view_job", defaults={"name": "Can view job"}
    )
    return {
        "owner": owner.pk, "document": document.pk, "summary_job": summary_job.pk, "summary": summary.pk,
        "batch_job": batch_job.pk, "batch": batch.pk, "good": good.pk, "bad": bad.pk,
        "review_item": review_item.pk, "summary_review": summary_review.pk, "job_type": job_type.pk,
    }  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_rows_made_before_the_move_are_read_through_the_new_apps() -> None:
    with migrated_back(*BEFORE) as old:
        made = fill_before_the_move(old)

    document = Document.objects.get(pk=made["document"])
    summary_job = Job.objects.get(pk=made["summary_job"])
    assert (summary_job.kind, summary_job.state, summary_job.document, summary_job.done) == (
        "summary", "done", document, 2,
    )  # fmt: skip
    summary = Summary.objects.get(pk=made["summary"])
    assert (summary.job, summary.document, summary.text) == (summary_job, document, "Hi.")
    assert list(document.jobs.all()) == [summary_job]

    batch = SentimentBatch.objects.get(pk=made["batch"])
    assert batch.job == Job.objects.get(pk=made["batch_job"], kind="sentiment", attempts=1)
    assert (batch.name, batch.columns, batch.text_column, bytes(batch.raw)) == (
        "survey.csv", ["id", "text"], "text", b"id,text\n1,good\n2,bad\n",
    )  # fmt: skip
    assert batch.labels == ["negative", "neutral", "positive"]  # filled for batches made before labels were kept
    assert list(batch.items.values_list("pk", "row", "label", "score", "needs_review", "extra")) == [
        (made["good"], 1, "positive", 0.9, False, {"id": "1"}),
        (made["bad"], 2, "negative", 0.4, True, {"id": "2"}),
    ]
    assert ReviewItem.objects.get(pk=made["review_item"]).sentiment_item == SentimentItem.objects.get(pk=made["bad"])
    assert ReviewItem.objects.get(pk=made["summary_review"]).summary == summary

    job_type = ContentType.objects.get_for_model(Job)
    assert job_type.pk == made["job_type"]  # the same row, renamed
    assert not ContentType.objects.filter(app_label="documents", model__in=["job", "sentimentbatch", "sentimentitem"])
    assert LogEntry.objects.get(object_id=str(made["batch_job"])).get_edited_object() == batch.job
    assert Permission.objects.filter(content_type=job_type, codename="view_job").exists()
