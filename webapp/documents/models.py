"""Uploaded documents and their summaries.

The original bytes live in Postgres with the document (one store to back up). The work
done on a document (reading it, summarizing it) is a ``webapp.jobs`` job, whose row is
the truth the page reads.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models.functions import Lower
from pgvector.django import HnswIndex, VectorField

# all-MiniLM-L6-v2's vectors; another embedding model must give as many (reading checks it).
EMBEDDING_DIMENSIONS = 384


class Document(models.Model):
    class Kind(models.TextChoices):
        TEXT = "text", "plain text"
        MARKDOWN = "markdown", "Markdown"
        HTML = "html", "HTML"
        PDF = "pdf", "PDF"
        DOCX = "docx", "Word document"
        CSV = "csv", "CSV"
        IMAGE = "image", "image (PNG or JPEG)"

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
    # The pages (1-based) whose text was read from their images by OCR.
    ocr_pages = models.JSONField(default=list, blank=True)
    # The OCR engine that read them, as the page names it ("Tesseract 5.3.0"); "" when none did.
    ocr_engine = models.CharField(max_length=100, blank=True, default="")
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


COLLECTION_NAME_MAX_LENGTH = 100


class Collection(models.Model):
    """A named set of one user's documents, attached to a conversation (or set as a
    project's default) as one. Its documents are read when each question is answered, so a
    change to the collection reaches the conversations it is attached to; a deleted document
    leaves it (the through rows cascade). Its name is unique per owner, whatever the case."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="collections")
    name = models.CharField(max_length=COLLECTION_NAME_MAX_LENGTH)
    documents = models.ManyToManyField(Document, blank=True, related_name="collections")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = [Lower("name"), "pk"]
        constraints = [models.UniqueConstraint("owner", Lower("name"), name="documents_collection_owner_name_unique")]

    def __str__(self) -> str:
        return self.name


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
    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="summary")
    length = models.CharField(max_length=16, choices=Length.choices, default=Length.MEDIUM)
    form = models.CharField(max_length=16, choices=Form.choices, default=Form.PARAGRAPH)
    # the model of the registry asked to write it; "" (summaries asked for before there was
    # a choice) is the installation's PARLEY_SUMMARY_MODEL
    model = models.CharField(max_length=100, blank=True, default="", db_default="")
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


class Passage(models.Model):
    """A window of a document's text, with its vector, for asking about the document.

    Written with the document's text in the transaction that finishes reading it (and
    replaced when it is read again); deleted with the document. ``start`` and ``end`` are
    offsets into ``Document.text``, so the document page can highlight the passage.
    """

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="passages")
    index = models.PositiveIntegerField()
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    page = models.PositiveIntegerField(null=True, blank=True)
    heading = models.CharField(max_length=300, blank=True)
    text = models.TextField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    # English stemming and stop words: a question's "what", "does", "the" must not count as
    # matches (the document-level search above keeps "simple", for names in any language).
    search = models.GeneratedField(
        expression=SearchVector("text", config="english"), output_field=SearchVectorField(), db_persist=True
    )

    class Meta:
        ordering = ["document", "index"]
        constraints = [models.UniqueConstraint(fields=["document", "index"], name="documents_one_passage_per_index")]
        indexes = [
            HnswIndex(
                name="documents_passage_embedding",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(fields=["search"], name="documents_passage_search"),
        ]

    def __str__(self) -> str:
        return f"passage {self.index} of {self.document}"
