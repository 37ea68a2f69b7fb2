"""Sentiment batches are all or nothing: items, rows and jobs.

A worker killed while it makes a batch's items leaves none, and the job's redelivery (by
a real Celery worker on the real broker) makes them all; the rows counted at upload are
the rows parsed into items, whatever ends the lines; a column choice sent twice queues
one job.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.processes import BASE_DIR, process_env
from tests.waiting import wait_for
from tests.webapp.jobs.workers import start_celery, stop_celery
from webapp.documents.intake import RejectedUpload
from webapp.jobs.models import Job
from webapp.jobs.services import JOB_LOCK_CLASS
from webapp.sentiment import services
from webapp.sentiment.models import SentimentBatch
from webapp.sentiment.sources import count_rows, csv_rows, line_rows
from webapp.sentiment.tasks import classify_batch

ROWS = 30

# The real task function in a process of its own, which kills itself with SIGKILL right
# after its second insert of items: the first ten and the next ten are written, not the rest.
KILLED_HALF_WAY = """
import os, signal, sys
import django
django.setup()
from django.db.models.query import QuerySet
from webapp.sentiment import services
from webapp.sentiment.tasks import classify_batch

services.ITEMS_PER_INSERT = 10
inserts = []
original = QuerySet.bulk_create

def bulk_create(self, objs, *args, **kwargs):
    created = original(self, objs, *args, **kwargs)
    inserts.append(len(created))
    if len(inserts) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return created

QuerySet.bulk_create = bulk_create
classify_batch.run(int(sys.argv[1]))
"""


def advisory_lock_held(job_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s",
            [JOB_LOCK_CLASS, job_id],
        )
        (held,) = cursor.fetchone()
    return bool(held)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_making_items_leaves_none_and_the_redelivery_makes_them_all(user: Any) -> None:
    data = "\n".join(f"Review number {i}: the parcel came on time." for i in range(1, ROWS + 1)).encode()
    job = Job.objects.create(owner=user, kind=Job.Kind.SENTIMENT)
    batch = SentimentBatch.objects.create(owner=user, name="many.txt", source="lines", raw=data, job=job)
    env = process_env(DJANGO_SETTINGS_MODULE="webapp.settings", PYTHONPATH=str(BASE_DIR))
    killed = subprocess.run([sys.executable, "-c", KILLED_HALF_WAY, str(job.pk)], env=env, cwd=BASE_DIR, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("running", 1)
    assert batch.items.count() == 0, "the twenty items written before the kill must not be kept"

    wait_for(lambda: not advisory_lock_held(job.pk), 30, "Postgres to free the killed worker's lock")
    worker = start_celery(env)  # takes up the orphaned job at start
    try:
        wait_for(lambda: Job.objects.filter(pk=job.pk, state__in=Job.FINISHED).exists(), 120, "the batch")
    finally:
        stop_celery(worker)
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("done", 2), job.error
    counted = count_rows(data, csv_file=False, limit=1000)
    assert counted == ROWS
    assert batch.items.count() == counted == job.total
    assert sorted(batch.items.values_list("row", flat=True)) == list(range(1, ROWS + 1))
    assert not batch.items.filter(label="").exists()


LS = "\u2028"  # LINE SEPARATOR: text, not a line end

LINES = [
    (b"good\rbad\rso so\r", ["good", "bad", "so so"]),
    (b"good\r\nbad\r\n\r\nso so", ["good", "bad", "so so"]),
    (b"good\nbad\n", ["good", "bad"]),
    (
        f"first{LS}still the first\nsecond\x0cand the form feed\x85too\n".encode(),
        [f"first{LS}still the first", "second\x0cand the form feed\x85too"],
    ),
    (b"mixed\rends\r\nall\nover", ["mixed", "ends", "all", "over"]),
]
CSV = [
    (b"id,review\r1,good\r2,bad\r", ["good", "bad"]),
    (b'id,review\r\n1,"two\r\nlines"\r\n2,"a lone\rreturn"\r\n\r\n3,fine', ["two\r\nlines", "a lone\rreturn", "fine"]),
    (f'id,review\n1,one{LS}cell\n2,"quoted{LS}cell"\n'.encode(), [f"one{LS}cell", f"quoted{LS}cell"]),
]


@pytest.mark.parametrize(("data", "texts"), LINES)
def test_counting_and_parsing_agree_on_the_lines_of_a_text(data: bytes, texts: list[str], user: Any, db: Any) -> None:
    assert [row.text for row in line_rows(data)] == texts
    assert count_rows(data, csv_file=False, limit=1000) == len(texts)
    batch = services.batch_create(user, name="", data=data, pasted=True)
    classify_batch.run(batch.job_id)
    assert list(batch.items.order_by("row").values_list("text", flat=True)) == texts


@pytest.mark.parametrize(("data", "texts"), CSV)
def test_counting_and_parsing_agree_on_the_rows_of_a_csv(data: bytes, texts: list[str], user: Any, db: Any) -> None:
    assert [row.text for row in csv_rows(data, "review")] == texts
    assert count_rows(data, csv_file=True, limit=1000) == len(texts)
    batch = services.batch_create(user, name="reviews.csv", data=data)
    services.batch_choose_column(batch, "review")
    classify_batch.run(batch.job_id)
    assert list(batch.items.order_by("row").values_list("text", flat=True)) == texts


@pytest.mark.parametrize("line_end", [b"\r", b"\r\n", b"\n"])
def test_the_row_limit_counts_lines_whatever_ends_them(line_end: bytes, user: Any, settings: Any, db: Any) -> None:
    settings.PARLEY_SENTIMENT_MAX_ROWS = 100
    texts = line_end.join(b"fine" for _ in range(101))
    with pytest.raises(RejectedUpload, match="more than 100 rows; the limit is 100"):
        services.batch_create(user, name="", data=texts, pasted=True)
    table = b"id,review" + line_end + line_end.join(b"%d,fine" % i for i in range(101))
    with pytest.raises(RejectedUpload, match="more than 100 rows"):
        services.batch_create(user, name="reviews.csv", data=table)
    assert not SentimentBatch.objects.exists()
    services.batch_create(user, name="", data=line_end.join(b"fine" for _ in range(100)), pasted=True)


def test_a_csv_that_cannot_be_parsed_past_its_preview_is_refused_at_upload(user: Any, db: Any) -> None:
    fine = b"id,review\n" + b"1,fine\n" * 50_000  # past what the column preview reads
    too_long = b'2,"' + b"x" * 200_000 + b'"\n'  # over the csv module's field limit
    with pytest.raises(RejectedUpload, match="could not be read past row 50002: field larger than field limit"):
        services.batch_create(user, name="reviews.csv", data=fine + too_long)
    assert not SentimentBatch.objects.exists()


def test_a_double_submitted_column_choice_makes_one_job(user: Any, logged_in_client: Client, db: Any) -> None:
    batch = services.batch_create(user, name="reviews.csv", data=b"id,review\n1,good\n2,bad\n")
    first, second = SentimentBatch.objects.get(pk=batch.pk), SentimentBatch.objects.get(pk=batch.pk)
    services.batch_choose_column(first, "review")
    services.batch_choose_column(second, "review")  # drawn before the first was saved
    assert Job.objects.filter(owner=user).count() == 1
    assert second.job_id == first.job_id
    with pytest.raises(services.BatchError, match="already being classified"):
        services.batch_choose_column(SentimentBatch.objects.get(pk=batch.pk), "id")
    for _ in range(2):
        logged_in_client.post(reverse("sentiment:column", args=[batch.pk]), {"column": "review"})
    assert Job.objects.filter(owner=user).count() == 1
    batch.refresh_from_db()
    assert (batch.text_column, batch.job_id) == ("review", first.job_id)
