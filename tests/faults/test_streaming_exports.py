"""Exports stream from the real ASGI server: the first lines arrive while the last rows are
still being read, and the server's memory stays flat however long the export.

Django's ASGI handler reads a synchronous body whole before its first byte; the exports
hand it an async iterator (``webapp.core.streaming``). Thousands of rows are made with
``bulk_create``, beside large uploaded bytes (document originals, a batch's upload) that
the export joins but must never read; uvicorn runs on the test database, and its
resident memory (VmRSS) is sampled while the body is read.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db.models import OuterRef, Subquery
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.browser.conftest import _wait_for_sessions_to_end, _wait_until_serving
from tests.processes import BASE_DIR, free_port, process_env
from webapp.accounts.models import User
from webapp.documents.models import Document, Summary
from webapp.jobs.models import Job
from webapp.review.models import Decision, Kind, ReviewItem, Verdict
from webapp.review.services import REVIEWER_GROUP
from webapp.sentiment.models import SentimentBatch, SentimentItem

pytestmark = pytest.mark.django_db(transaction=True)

SUMMARIES = 2000
SENTIMENT_ROWS = 12000
DOCUMENTS = 20
ORIGINAL_BYTES = 4 * 1024 * 1024  # each document's upload: 80 MB in all, never to be read by an export
BATCH_RAW_BYTES = 16 * 1024 * 1024
# Streamed, the server grew 3.5-5.6 MB; a body read whole first grew 15-96 MB (13-23 MB bodies)
RSS_GROWTH_LIMIT_KB = 10 * 1024


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


@pytest.fixture
def server() -> Iterator[Server]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "webapp.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--ws", "websockets-sansio", "--lifespan", "off", "--no-access-log"],
        cwd=BASE_DIR, env=process_env(),
    )  # fmt: skip
    try:
        _wait_until_serving(f"http://127.0.0.1:{port}", process)
        yield Server(port, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _wait_for_sessions_to_end()


@dataclass
class Reading:
    first_line: bytes
    first_line_seconds: float
    total_seconds: float
    lines: int
    body_bytes: int
    rss_growth_kb: int


def read_export(server: Server, path: str, session: str) -> Reading:
    """GET the export, noting when its first line comes and the server's peak RSS meanwhile."""
    baseline = server.rss_kb()
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], server.rss_kb())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        started = time.monotonic()
        connection.request("GET", path, headers={"Cookie": f"sessionid={session}"})
        response = connection.getresponse()
        assert response.status == 200
        first_line = response.readline()
        first_line_seconds = time.monotonic() - started
        rest = response.read()
        total_seconds = time.monotonic() - started
    finally:
        connection.close()
        done.set()
        sampler.join()
    body = first_line + rest
    return Reading(first_line, first_line_seconds, total_seconds, body.count(b"\n"), len(body), peak[0] - baseline)


def session_of(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def warm_up(server: Server, path: str, session: str) -> None:
    """Load the view's code and the ORM's caches, so that growth measured after is the export's."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request("GET", path, headers={"Cookie": f"sessionid={session}"})
    response = connection.getresponse()
    assert response.status == 200
    response.read()
    connection.close()


def make_batch(owner: User, rows: int) -> SentimentBatch:
    batch = SentimentBatch.objects.create(
        owner=owner, name="survey.csv", source=SentimentBatch.Source.CSV, raw=b"r" * BATCH_RAW_BYTES,
        columns=["id", "review"], text_column="review", model_name="minilm-sentiment",
        labels=["negative", "neutral", "positive"],
    )  # fmt: skip
    text = "The delivery came on time and the box was fine, though the colour was not what I had picked. "
    SentimentItem.objects.bulk_create(
        (
            SentimentItem(
                batch=batch,
                row=row,
                text=f"{row}: {text * 3}",
                extra={"id": str(row)},
                label="neutral",
                score=0.8,
                probabilities={"negative": 0.1, "neutral": 0.8, "positive": 0.1},
            )
            for row in range(1, rows + 1)
        ),
        batch_size=2000,
    )
    return batch


def make_reviewed_outputs(owner: User, reviewer: User) -> int:
    """Summaries of large uploads and sentiment labels, each approved; how many."""
    now = timezone.now()
    documents = Document.objects.bulk_create(
        Document(
            owner=owner,
            name=f"report-{n}.pdf",
            kind=Document.Kind.TEXT,
            size=ORIGINAL_BYTES,
            sha256=f"{n:064}",
            original=bytes([n]) * ORIGINAL_BYTES,
            text="A long report about rivers. " * 40,
            status=Document.Status.READY,
            words=200,
            pages=1,
        )
        for n in range(DOCUMENTS)
    )
    jobs = Job.objects.bulk_create(
        Job(owner=owner, kind=Job.Kind.SUMMARY, document=documents[n % DOCUMENTS], state=Job.State.DONE)
        for n in range(SUMMARIES)
    )
    summaries = Summary.objects.bulk_create(
        Summary(document=documents[n % DOCUMENTS], job=job, text=f"Summary {n}: the report is about rivers.")
        for n, job in enumerate(jobs)
    )
    batch = make_batch(owner, SENTIMENT_ROWS)
    items = [
        ReviewItem(kind=Kind.SUMMARY, summary=summary, owner=owner, model_name="smollm2-135m", produced_at=now)
        for summary in summaries
    ] + [
        ReviewItem(kind=Kind.SENTIMENT, sentiment_item=entry, owner=owner, model_name="minilm", produced_at=now)
        for entry in batch.items.all()
    ]
    items = ReviewItem.objects.bulk_create(items, batch_size=2000)
    Verdict.objects.bulk_create(
        (Verdict(item=item, reviewer=reviewer, decision=Decision.APPROVE, rating=5) for item in items),
        batch_size=2000,
    )
    ReviewItem.objects.update(
        latest=Subquery(Verdict.objects.filter(item=OuterRef("pk")).values("pk")[:1]),
        decision=Decision.APPROVE,
        rating=5,
        reviewed_at=now,
    )
    return len(items)


def report(what: str, reading: Reading) -> None:
    print(
        f"{what}: {reading.lines} lines, {reading.body_bytes / 1e6:.1f} MB; first line after "
        f"{reading.first_line_seconds:.3f} s of {reading.total_seconds:.3f} s; server RSS grew "
        f"{reading.rss_growth_kb / 1024:.1f} MB"
    )


def test_the_review_export_streams_from_the_asgi_server_in_flat_memory(
    server: Server, make_user: Callable[..., User]
) -> None:
    owner = make_user("owner@example.com")
    reviewer = make_user("reviewer@example.com")
    reviewer.groups.add(Group.objects.get_or_create(name=REVIEWER_GROUP)[0])
    made = make_reviewed_outputs(owner, reviewer)
    session = session_of(reviewer)
    export = reverse("review:export")
    warm_up(server, f"{export}?dataset=preference", session)  # nothing corrected: an empty export

    reading = read_export(server, f"{export}?dataset=reviews", session)
    report("review export", reading)
    assert reading.lines == made
    assert reading.first_line.startswith(b'{"prompt"')  # the first summary, with its document's text
    # the first line came while most of the export was still to be read and sent
    assert reading.first_line_seconds < reading.total_seconds / 4
    assert reading.rss_growth_kb < RSS_GROWTH_LIMIT_KB


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_sentiment_export_streams_from_the_asgi_server_in_flat_memory(
    server: Server, make_user: Callable[..., User], fmt: str
) -> None:
    owner = make_user("owner@example.com")
    batch = make_batch(owner, 4 * SENTIMENT_ROWS)
    session = session_of(owner)
    small = make_batch(owner, 1)
    warm_up(server, reverse("sentiment:export", args=[small.pk, fmt]), session)

    reading = read_export(server, reverse("sentiment:export", args=[batch.pk, fmt]), session)
    report(f"sentiment {fmt} export", reading)
    assert reading.lines == 4 * SENTIMENT_ROWS + (fmt == "csv")  # a CSV's header line too
    assert reading.first_line_seconds < reading.total_seconds / 4
    assert reading.rss_growth_kb < RSS_GROWTH_LIMIT_KB


def test_a_client_that_leaves_mid_export_leaves_the_server_serving(
    server: Server, make_user: Callable[..., User]
) -> None:
    owner = make_user("owner@example.com")
    batch = make_batch(owner, 4 * SENTIMENT_ROWS)
    session = session_of(owner)
    path = reverse("sentiment:export", args=[batch.pk, "jsonl"])
    for _ in range(3):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.request("GET", path, headers={"Cookie": f"sessionid={session}"})
        response = connection.getresponse()
        assert response.readline().startswith(b'{"row": 1,')
        connection.close()  # gone after the first line, the rest unread

    reading = read_export(server, path, session)
    assert reading.lines == 4 * SENTIMENT_ROWS
    assert server.process.poll() is None
