"""Upgrading keeps what was there: summaries made before a summary's model was chosen count
as the installation's summary model's, and documents read by OCR before the engine was
recorded keep their pages read, naming no engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import StateApps
from django.test import Client
from django.urls import reverse

from tests.migrations import migrated_back
from webapp.accounts.models import User
from webapp.documents import services
from webapp.documents.models import Document, Summary

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("documents", "0004_ocr_pages")
AFTER = [("documents", "0005_summary_model")]


@pytest.fixture
def before_the_choice() -> Iterator[StateApps]:
    # going back also takes back chat's collections, which depend on a later documents migration
    with migrated_back(BEFORE) as apps:
        yield apps


def test_summaries_made_before_are_kept_as_the_installations_summary_models(before_the_choice: StateApps) -> None:
    apps = before_the_choice
    User = apps.get_model("accounts", "User")
    OldDocument = apps.get_model("documents", "Document")
    OldSummary = apps.get_model("documents", "Summary")
    Job = apps.get_model("jobs", "Job")
    owner = User.objects.create(username="old@example.com", email="old@example.com", password="x")
    text = "The harbour was rebuilt in 1884. " * 20
    document = OldDocument.objects.create(
        owner=owner, name="harbour.txt", kind="text", size=len(text), sha256="0" * 64, original=text.encode(),
        text=text, status="ready", words=len(text.split()), pages=1,
    )  # fmt: skip
    job = Job.objects.create(owner=owner, kind="summary", document=document, state="done")
    old = OldSummary.objects.create(document=document, job=job, length="short", form="paragraph", text="Rebuilt.")

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    kept = Summary.objects.get(pk=old.pk)
    assert (kept.model, kept.text, kept.length) == ("", "Rebuilt.", "short")
    # asked again by the installation's summary model, it is the summary already made
    again = services.summary_request(Document.objects.get(pk=document.pk), "short", "paragraph")
    assert again.pk == old.pk
    assert services.summary_request(Document.objects.get(pk=document.pk), "short", "paragraph", "").pk == old.pk


def test_documents_read_by_ocr_before_the_engine_was_recorded_keep_their_pages(
    user: User, logged_in_client: Client
) -> None:
    with migrated_back(("documents", "0006_collections")) as apps:
        scan = apps.get_model("documents", "Document").objects.create(
            owner_id=user.pk, name="old-scan.pdf", kind="pdf", size=3, sha256="1" * 64, original=b"pdf",
            text="Invoice number 4471", status="ready", words=3, pages=2, ocr_pages=[1, 2],
        )  # fmt: skip
    kept = Document.objects.get(pk=scan.pk)
    assert (kept.text, kept.ocr_pages, kept.ocr_engine) == ("Invoice number 4471", [1, 2], "")
    page = logged_in_client.get(reverse("documents:detail", args=[kept.pk])).content.decode()
    assert "Read by OCR (the pages had no text" in page
