"""Background jobs: one row per piece of work, the truth that pages and workers read.

A Celery task takes a job's id and claims the row (``webapp.jobs.services``) before it
works; the row's state, counts and error are what every page shows. The table keeps the
name it had when jobs lived in the documents app, so existing rows stay where they are.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

# Above this many seconds left, the estimate is given in minutes.
MINUTES_AFTER_SECONDS = 90


class Job(models.Model):
    """One piece of background work; Celery tasks take its id and claim it here."""

    class Kind(models.TextChoices):
        EXTRACT = "extract", "reading the text"
        SUMMARY = "summary", "summarizing"
        SENTIMENT = "sentiment", "classifying sentiment"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (State.DONE, State.FAILED, State.CANCELLED)
    OCR_PAGES = "ocr pages"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    document = models.ForeignKey(
        "documents.Document", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # What ``done`` and ``total`` count: steps, or pages read by OCR (then shown with their pace).
    unit = models.CharField(max_length=16, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # When its message reached the broker; empty while the broker could not be reached.
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "documents_job"
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "created_at"], name="documents_job_state")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.state})"

    @property
    def is_live(self) -> bool:
        """Queued or running: the page watches it and offers Cancel."""
        return self.state in (self.State.QUEUED, self.State.RUNNING)

    @property
    def eta_seconds(self) -> int | None:
        """Seconds left at the pace so far; None until there is a pace."""
        if self.state != self.State.RUNNING or not self.started_at or not 0 < self.done < self.total:
            return None
        elapsed = (timezone.now() - self.started_at).total_seconds()
        return round(elapsed / self.done * (self.total - self.done))

    @property
    def pages_per_minute(self) -> float | None:
        if self.unit != self.OCR_PAGES or not self.started_at or not self.done:
            return None
        elapsed = (timezone.now() - self.started_at).total_seconds()
        return self.done / elapsed * 60 if elapsed > 0 else None

    @property
    def progress_text(self) -> str:
        """What the page says about a live job: the one place this text is written.

        The page draws it first and the progress frames carry it (``webapp.jobs.events``),
        so the script only puts it in place.
        """
        if self.state == self.State.QUEUED:
            return "Waiting for a worker…"
        text = f"{self.done} of {self.total} steps"
        if self.unit == self.OCR_PAGES:
            text = f"Reading page images by OCR: {self.done} of {self.total} pages"
            pace = self.pages_per_minute
            if pace is not None:
                text += f" · {pace:.1f} pages a minute"
        eta = self.eta_seconds
        if eta is not None:
            text += f" · about {round(eta / 60)} min left" if eta >= MINUTES_AFTER_SECONDS else f" · about {eta} s left"
        return text
