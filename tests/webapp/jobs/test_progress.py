"""A job's progress text is written once, by the server: the page and every frame carry it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.processes import BASE_DIR
from webapp.accounts.models import User
from webapp.documents import services
from webapp.documents.models import Document
from webapp.jobs.events import job_progress_frame
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


def running(job: Job, done: int, total: int, elapsed: timedelta) -> Job:
    Job.objects.filter(pk=job.pk).update(state="running", done=done, total=total, started_at=timezone.now() - elapsed)
    job.refresh_from_db()
    return job


def summary_job(owner: User) -> Job:
    text = "The river runs to the sea. " * 20
    document = Document.objects.create(
        owner=owner, name="river.txt", kind="text", size=len(text), sha256="r" * 64, original=text.encode(),
        text=text, status="ready", words=120, pages=1,
    )  # fmt: skip
    return services.summary_request(document, "short", "paragraph").job


def test_the_text_says_waiting_steps_and_time_left(user: User) -> None:
    job = summary_job(user)
    assert job.progress_text == "Waiting for a worker…"
    assert running(job, 0, 5, timedelta(seconds=3)).progress_text == "0 of 5 steps"
    assert running(job, 2, 5, timedelta(seconds=10)).progress_text == "2 of 5 steps · about 15 s left"
    assert running(job, 1, 5, timedelta(minutes=10)).progress_text == "1 of 5 steps · about 40 min left"


def test_the_page_and_the_frame_show_the_same_text(logged_in_client: Client, user: User) -> None:
    job = running(summary_job(user), 2, 5, timedelta(seconds=10))
    page = logged_in_client.get(reverse("documents:detail", args=[job.document_id])).content.decode()
    (shown,) = re.findall(r'<span class="job-status">([^<]*)</span>', page)
    frame = job_progress_frame(job)
    assert shown == frame["text"] == "2 of 5 steps · about 15 s left"
    assert (frame["type"], frame["state"], frame["done"], frame["total"]) == ("progress", "running", 2, 5)


def test_the_script_only_puts_the_servers_text_in_place() -> None:
    script = (BASE_DIR / "static" / "js" / "jobs.js").read_text()
    assert "frame.text" in script
    assert "steps" not in script
    assert "Waiting for a worker" not in script
