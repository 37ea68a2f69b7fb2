"""Uploading and finding documents, with bad files and other users' ids."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.postgres.search import SearchVector
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Value
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from tests.webapp.documents.files import make_docx, make_pdf
from webapp.accounts.models import User
from webapp.documents.models import Document
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


def upload(client: Client, *files: tuple[str, bytes]) -> str:
    response = client.post(
        reverse("documents:upload"), {"files": [SimpleUploadedFile(name, data) for name, data in files]}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


def stored(owner: User, name: str, **fields: Any) -> Document:
    data = name.encode()
    digest = hashlib.sha256(data).hexdigest()
    return Document.objects.create(
        owner=owner, name=name, kind="text", size=len(data), sha256=digest, original=data, **fields
    )


def test_several_files_at_once_become_documents_with_a_queued_reading(logged_in_client: Client, user: User) -> None:
    pdf_bytes = make_pdf(["Otters"])
    page = upload(logged_in_client, ("a.pdf", pdf_bytes), ("b.docx", make_docx(["Beavers"])))
    assert "“a.pdf” uploaded" in page
    assert "“b.docx” uploaded" in page
    documents = Document.objects.filter(owner=user).order_by("name")
    assert [(d.name, d.kind, d.status) for d in documents] == [
        ("a.pdf", "pdf", "pending"),
        ("b.docx", "docx", "pending"),
    ]
    pdf = documents[0]
    assert bytes(pdf.original) == pdf_bytes
    assert pdf.size == len(pdf_bytes)
    assert pdf.sha256 == hashlib.sha256(pdf_bytes).hexdigest()
    assert Job.objects.filter(document=pdf, kind="extract", state="queued").exists()


def test_the_same_file_twice_points_to_the_existing_document(logged_in_client: Client, user: User) -> None:
    data = b"Meeting notes: nothing happened."
    upload(logged_in_client, ("notes.txt", data))
    page = upload(logged_in_client, ("copy of notes.txt", data))
    assert "“notes.txt” is already in your documents" in page
    assert Document.objects.filter(owner=user).count() == 1


def test_another_user_may_upload_the_same_file(client: Client, make_user: Callable[..., User]) -> None:
    data = b"Shared memo."
    for _ in range(2):
        client.force_login(make_user())
        upload(client, ("memo.txt", data))
    assert Document.objects.count() == 2


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "The file is empty."),
        ("page.pdf", b"<html><body>hi</body></html>", "the content is an HTML page"),
        ("tool.exe", b"MZ", "not supported"),
    ],
)
def test_bad_files_are_refused_with_a_reason_and_leave_nothing(
    logged_in_client: Client, name: str, data: bytes, message: str
) -> None:
    page = upload(logged_in_client, (name, data))
    assert message in page
    assert not Document.objects.exists()
    assert not Job.objects.exists()


def test_a_file_over_the_limit_is_refused_while_it_streams_in(logged_in_client: Client, settings: Settings) -> None:
    settings.PARLEY_UPLOAD_MAX_BYTES = 1024 * 1024
    page = upload(logged_in_client, ("big.txt", b"x" * 3 * 1024 * 1024), ("small.txt", b"fine"))
    assert "“big.txt”: The file is larger than the 1 MB limit." in page
    assert list(Document.objects.values_list("name", flat=True)) == ["small.txt"]


def test_too_many_files_at_once(logged_in_client: Client, settings: Settings) -> None:
    settings.PARLEY_UPLOAD_MAX_FILES = 2
    page = upload(logged_in_client, *[(f"{i}.txt", f"file {i}".encode()) for i in range(3)])
    assert "At most 2 files at a time" in page
    assert not Document.objects.exists()


def test_nothing_chosen(logged_in_client: Client) -> None:
    assert "Choose one or more files" in upload(logged_in_client)


def test_list_search_and_detail(logged_in_client: Client, user: User) -> None:
    otters = stored(user, "otters.txt", text="Sea otters hold hands.", status="ready", words=4, pages=1)
    stored(user, "tax.txt", status="ready")
    Document.objects.filter(pk=otters.pk).update(
        search=SearchVector(Value("otters.txt"), config="simple") + SearchVector("text", config="simple")
    )
    html = logged_in_client.get(reverse("documents:index")).content.decode()
    assert html.index("tax.txt") < html.index("otters.txt")  # newest first
    found = logged_in_client.get(reverse("documents:index"), {"q": "hands"}, HTTP_HX_REQUEST="true").content.decode()
    assert "otters.txt" in found
    assert "tax.txt" not in found
    detail = logged_in_client.get(reverse("documents:detail", args=[otters.pk])).content.decode()
    assert "Sea otters hold hands." in detail
    assert "4 words" in detail


def test_another_users_document_is_not_found(client: Client, make_user: Callable[..., User]) -> None:
    owner = make_user()
    document = Document.objects.create(
        owner=owner, name="mine.txt", kind="text", size=1, sha256="c" * 64, original=b"z"
    )
    client.force_login(make_user())
    for name in ("documents:detail", "documents:download"):
        assert client.get(reverse(name, args=[document.pk])).status_code == 404
    assert client.post(reverse("documents:delete", args=[document.pk])).status_code == 404
    assert Document.objects.filter(pk=document.pk).exists()


def test_download_gives_back_the_original_bytes(logged_in_client: Client, user: User) -> None:
    data = make_pdf(["Keep me"])
    upload(logged_in_client, ("../../keep\u202e.pdf", data))
    document = Document.objects.get(owner=user)
    assert document.name == "keep.pdf"
    response = logged_in_client.get(reverse("documents:download", args=[document.pk]))
    assert response.content == data
    assert "filename*=UTF-8''keep.pdf" in response["Content-Disposition"]


def test_delete(logged_in_client: Client, user: User) -> None:
    upload(logged_in_client, ("gone.txt", b"bye"))
    document = Document.objects.get(owner=user)
    logged_in_client.post(reverse("documents:delete", args=[document.pk]))
    assert not Document.objects.exists()
    assert not Job.objects.exists()
