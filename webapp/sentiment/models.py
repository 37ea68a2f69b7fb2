"""Sentiment batches and their items.

A batch is the texts a user asked about (a CSV's column, a file's lines, pasted lines);
the classifier's label names are stored on it, in the classifier's order, when it is
classified, and every page, chart, filter, export and review form reads them from there.
An item whose text was blank carries ``EMPTY`` instead, which is no label of the
classifier's. The tables keep the names they had in the documents app, so existing rows
stay where they are.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from inference.sentiment import EMPTY  # the label of a blank text, which the classifier never sees

__all__ = ["EMPTY", "SentimentBatch", "SentimentItem"]


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
    job = models.OneToOneField(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="sentiment_batch"
    )
    model_name = models.CharField(max_length=200, blank=True)
    # The classifier's label names in its order (its id2label); empty until classifying starts.
    labels = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "documents_sentimentbatch"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def shown_labels(self) -> list[str]:
        """The labels an item of this batch can have, in order: the classifier's, then EMPTY."""
        return [*self.labels, EMPTY]


class SentimentItem(models.Model):
    batch = models.ForeignKey(SentimentBatch, on_delete=models.CASCADE, related_name="items")
    row = models.PositiveIntegerField()  # 1-based, in the order of the source
    text = models.TextField()
    extra = models.JSONField(default=dict, blank=True)  # the CSV's other columns, kept for the export
    label = models.CharField(max_length=16, blank=True)  # one of the batch's labels, or EMPTY; "" until classified
    score = models.FloatField(null=True, blank=True)
    probabilities = models.JSONField(default=dict, blank=True)
    needs_review = models.BooleanField(default=False)

    class Meta:
        db_table = "documents_sentimentitem"
        ordering = ["row"]
        constraints = [models.UniqueConstraint(fields=["batch", "row"], name="documents_one_item_per_row")]
        indexes = [
            models.Index(fields=["batch", "label"], name="documents_item_label"),
            models.Index(fields=["batch", "score"], name="documents_item_score"),
        ]

    def __str__(self) -> str:
        return f"row {self.row} of {self.batch}"
