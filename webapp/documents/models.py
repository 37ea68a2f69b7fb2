"""Uploaded documents and the background jobs that work on them.

The original bytes live in Postgres with the document (one store to back up); the job
row is the truth about background work, and the page reads it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models


class Document(models.Model):
    class Kind(models.TextChoices):
        TEXT = "text", "plain text"
        MARKDOWN = "markdown", "Markdown"
        HTML = "html", "HTML"
        PDF = "pdf", "PDF"
        DOCX = "docx", "Word document"
        CSV = "csv", "CSV"

    class Status(models.TextChoices):
        PENDING = "pending", "waiting to be read"
        READY = "ready", "ready"
        FAILED = "failed", "could not be read"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents")
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    original = models.BinaryField()
    text = models.TextField(blank=True)
    pages = models.PositiveIntegerField(null=True, blank=True)
    words = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    # The whole document's sentiment: label, score and mean probabilities over its sentences.
    sentiment = models.JSONField(default=dict, blank=True)
    # Name and the start of the text, filled when the text is extracted (tsvector has a size limit).
    search = SearchVectorField(null=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["owner", "sha256"], name="documents_one_copy_per_owner")]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="documents_owner_recent"),
            GinIndex(fields=["search"], name="documents_search"),
        ]

    def __str__(self) -> str:
        return self.name


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

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    document = models.ForeignKey(Document, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "created_at"], name="documents_job_state")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.state})"

    @property
    def group_name(self) -> str:
        return f"documents.job.{self.pk}"


class Summary(models.Model):
    """A summary of a whole document, in the length and form its owner asked for."""

    class Length(models.TextChoices):
        SHORT = "short"
        MEDIUM = "medium"
        LONG = "long"

    class Form(models.TextChoices):
        PARAGRAPH = "paragraph"
        BULLETS = "bullets", "bullet points"

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="summaries")
    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="summary")
    length = models.CharField(max_length=16, choices=Length.choices, default=Length.MEDIUM)
    form = models.CharField(max_length=16, choices=Form.choices, default=Form.PARAGRAPH)
    text = models.TextField(blank=True)
    key_sentences = models.JSONField(default=list, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_length_display()} {self.get_form_display()} summary of {self.document}"


class ChunkSummary(models.Model):
    """One chunk's summary, saved as soon as it is written, so a retried job resumes."""

    summary = models.ForeignKey(Summary, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["index"]
        constraints = [models.UniqueConstraint(fields=["summary", "index"], name="documents_one_summary_per_chunk")]

    def __str__(self) -> str:
        return f"chunk {self.index} of {self.summary}"


class SentimentBatch(models.Model):
    """Texts whose sentiment a user asked for: a CSV column, the lines of a file, or pasted lines."""

    class Source(models.TextChoices):
        CSV = "csv", "CSV file"
        LINES = "lines", "text file, one item a line"
        PASTE = "paste", "pasted text"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sentiment_batches")
    name = models.CharField(max_length=255)
    source = models.CharField(max_length=16, choices=Source.choices)
    raw = models.BinaryField()  # the upload as sent; the task turns it into items
    columns = models.JSONField(default=list, blank=True)  # a CSV's header, in order
    text_column = models.CharField(max_length=255, blank=True)
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="sentiment_batch")
    model_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name


class SentimentItem(models.Model):
    batch = models.ForeignKey(SentimentBatch, on_delete=models.CASCADE, related_name="items")
    row = models.PositiveIntegerField()  # 1-based, in the order of the source
    text = models.TextField()
    extra = models.JSONField(default=dict, blank=True)  # the CSV's other columns, kept for the export
    label = models.CharField(max_length=16, blank=True)  # negative / neutral / positive / empty; "" until classified
    score = models.FloatField(null=True, blank=True)
    probabilities = models.JSONField(default=dict, blank=True)
    needs_review = models.BooleanField(default=False)

    class Meta:
        ordering = ["row"]
        constraints = [models.UniqueConstraint(fields=["batch", "row"], name="documents_one_item_per_row")]
        indexes = [
            models.Index(fields=["batch", "label"], name="documents_item_label"),
            models.Index(fields=["batch", "score"], name="documents_item_score"),
        ]

    def __str__(self) -> str:
        return f"row {self.row} of {self.batch}"
