"""The zip of everything a user owns: what it holds, whose it is, and that it streams."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import threading
import zipfile
from collections.abc import Iterator
from typing import Any, cast

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core.signals import request_finished
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import AsyncRequestFactory, Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from webapp.accounts.http import AuthedRequest
from webapp.chat.models import Conversation, Message
from webapp.core.handlers import ThreadedASGIHandler
from webapp.core.streaming import streamed_body
from webapp.documents.models import Document
from webapp.exports import views
from webapp.exports.archive import safe_name
from webapp.exports.selectors import ORIGINAL_SLICE_BYTES
from webapp.exports.views import everything
from webapp.sentiment.models import SentimentBatch, SentimentItem

URL = reverse("exports:everything")


def own_things(owner: Any, tag: str) -> dict[str, Any]:
    """A conversation with an answer, two documents and a sentiment batch, each marked by ``tag``."""
    conversation = Conversation.objects.create(owner=owner, title=f"Chat of {tag}", system_prompt="Be brief.")
    question = Message.objects.create(conversation=conversation, role="user", content=f"Question of {tag}")
    Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content=f"Answer of {tag}",
        status="complete", model_name="tiny-model",
    )  # fmt: skip
    documents = [
        Document.objects.create(
            owner=owner,
            name=name,
            kind=kind,
            size=len(data),
            sha256=f"{tag}-{name}".ljust(64, "0")[:64],
            original=data,
            text=f"Text of {name} of {tag}",
            status="ready",
        )
        for name, kind, data in [
            (f"../../{tag} notes.txt", "text", f"Notes of {tag}\n".encode()),
            (f"{tag}-report.pdf", "pdf", b"%PDF-1.4 " + tag.encode() + bytes(range(256)) * 40),
        ]
    ]
    batch = SentimentBatch.objects.create(
        owner=owner, name=f"{tag} reviews.csv", source="csv", raw=b"id,text\n", columns=["id", "text"],
        text_column="text", labels=["negative", "positive"],
    )  # fmt: skip
    SentimentItem.objects.create(
        batch=batch, row=1, text=f"Great, says {tag}", extra={"id": "7"}, label="positive", score=0.91,
        probabilities={"negative": 0.09, "positive": 0.91},
    )  # fmt: skip
    return {"conversation": conversation, "documents": documents, "batch": batch}


def get_zip(client: Client) -> StreamingHttpResponse:
    response = client.get(URL)
    assert isinstance(response, StreamingHttpResponse)
    return response


def pieces_of(response: StreamingHttpResponse) -> Iterator[bytes]:
    """The body as the test client gives it: a plain iterator, the view having been called outside ASGI."""
    return cast(Iterator[bytes], response.streaming_content)


def download(client: Client) -> zipfile.ZipFile:
    response = get_zip(client)
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(b"".join(pieces_of(response))))


@pytest.mark.django_db
def test_the_zip_holds_every_conversation_document_and_batch_and_nothing_of_anyone_else(
    logged_in_client: Client, user: Any, make_user: Any
) -> None:
    mine = own_things(user, "alice")
    own_things(make_user(), "mallory")
    archive = download(logged_in_client)
    assert archive.testzip() is None
    names = archive.namelist()
    conversation, (notes, report), batch = mine["conversation"], mine["documents"], mine["batch"]
    assert sorted(names) == sorted(
        [
            f"conversations/chat-of-alice-{conversation.pk}.json",
            f"conversations/chat-of-alice-{conversation.pk}.md",
            f"documents/{notes.pk}-alice-notes/alice-notes.txt",
            f"documents/{notes.pk}-alice-notes/text.txt",
            f"documents/{report.pk}-alice-report/alice-report.pdf",
            f"documents/{report.pk}-alice-report/text.txt",
            f"sentiment/{batch.pk}-alice-reviews.csv",
        ]
    )
    document = json.loads(archive.read(f"conversations/chat-of-alice-{conversation.pk}.json"))
    assert document["format"] == "parley.conversation"
    assert [m["content"] for m in document["messages"]] == ["Question of alice", "Answer of alice"]
    markdown = archive.read(f"conversations/chat-of-alice-{conversation.pk}.md").decode()
    assert "## Assistant (tiny-model)\n\nAnswer of alice" in markdown
    assert archive.read(f"documents/{report.pk}-alice-report/alice-report.pdf") == bytes(report.original)
    assert (
        archive.read(f"documents/{notes.pk}-alice-notes/text.txt").decode() == "Text of ../../alice notes.txt of alice"
    )
    rows = list(csv.reader(io.StringIO(archive.read(f"sentiment/{batch.pk}-alice-reviews.csv").decode())))
    assert rows[0][:5] == ["row", "id", "text", "label", "confidence"]
    assert rows[1][:5] == ["1", "7", "Great, says alice", "positive", "0.9100"]
    assert not any("mallory" in name for name in names)
    assert not any(b"mallory" in archive.read(name) for name in names)


@pytest.mark.django_db
def test_the_zip_streams_and_reads_each_original_on_its_own(logged_in_client: Client, user: Any) -> None:
    mine = own_things(user, "alice")
    response = get_zip(logged_in_client)
    assert response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="parley-')
    with CaptureQueriesContext(connection) as queries:
        pieces = pieces_of(response)
        first = next(pieces)
        # the first conversation's files are out before any document has been read
        assert first.startswith(b"PK\x03\x04")
        assert not [q for q in queries.captured_queries if "documents_document" in q["sql"]]
        rest = b"".join(pieces)
    assert zipfile.ZipFile(io.BytesIO(first + rest)).testzip() is None
    reading_originals = [q["sql"] for q in queries.captured_queries if '"original"' in q["sql"]]
    assert len(reading_originals) == len(mine["documents"])
    read_ids = sorted(int(re.search(r'd\."id" = (\d+)', sql).group(1)) for sql in reading_originals)  # type: ignore[union-attr]
    assert read_ids == sorted(document.pk for document in mine["documents"])
    assert not any('"raw"' in q["sql"] for q in queries.captured_queries)  # a batch's upload stays out


@pytest.mark.django_db
def test_an_original_larger_than_a_slice_comes_out_whole_even_when_deleted_while_it_is_read(
    logged_in_client: Client, user: Any
) -> None:
    original = os.urandom(ORIGINAL_SLICE_BYTES * 2 + 12345)  # as a photo is: it does not shrink
    photo = Document.objects.create(
        owner=user, name="photo.jpg", kind="image", size=len(original), sha256="b" * 64, original=original,
        text="A harbour at dusk.", status="ready",
    )  # fmt: skip
    response = get_zip(logged_in_client)
    pieces = pieces_of(response)
    received = b""
    while b"photo.jpg" not in received:  # the photo's entry has begun: its first slice is out
        received += next(pieces)
    # deleted while its slices are being read, it still comes out whole: the slices are read
    # from the snapshot their query opened with
    Document.objects.filter(pk=photo.pk).delete()
    archive = zipfile.ZipFile(io.BytesIO(received + b"".join(pieces)))
    assert archive.read(f"documents/{photo.pk}-photo/photo.jpg") == original
    assert archive.read(f"documents/{photo.pk}-photo/text.txt") == b"A harbour at dusk."


@pytest.mark.django_db
def test_an_empty_account_gets_an_empty_zip(logged_in_client: Client) -> None:
    assert download(logged_in_client).namelist() == []


@pytest.mark.django_db
def test_the_zip_needs_a_login_and_the_chat_sidebar_links_to_it(logged_in_client: Client) -> None:
    response = Client().get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert f'href="{URL}"' in logged_in_client.get(reverse("chat:index")).content.decode()


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\evil.exe", "evil.exe"),
        ("report.final.PDF", "reportfinal.PDF"),
        ("...", "x"),
        ("café.txt", "café.txt"),
    ],
)
def test_names_in_the_zip_are_safe(name: str, safe: str) -> None:
    assert safe_name(name, "x") == safe


async def test_pieces_are_produced_only_when_asked_for_and_closed_when_the_client_goes() -> None:
    produced: list[Any] = []

    def pieces() -> Iterator[bytes]:
        try:
            for number in range(3):
                produced.append(number)
                yield bytes([number])
        finally:
            produced.append("closed")

    stream = streamed_body(pieces(), pull_size=1)  # as the zip is sent
    assert await anext(stream) == b"\x00"
    assert produced == [0]
    await stream.aclose()  # type: ignore[attr-defined]
    assert produced == [0, "closed"]


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_zip_is_sent_piece_by_piece(user: Any) -> None:
    await sync_to_async(own_things)(user, "alice")
    request = AsyncRequestFactory().get(URL)
    request.user = user
    try:
        response = await sync_to_async(everything)(cast(AuthedRequest, request))
        assert response.is_async  # Django would otherwise make a list of the whole zip first
        body = b"".join([piece async for piece in response])
    finally:
        await sync_to_async(lambda: connection.close())()  # the thread's own connection
    assert len(zipfile.ZipFile(io.BytesIO(body)).namelist()) == 7


@pytest.mark.django_db(transaction=True)
async def test_through_parleys_asgi_handler_the_first_bytes_go_out_before_the_rest_is_written(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_sent = threading.Event()

    def archive(**kwargs: Any) -> Iterator[bytes]:
        yield b"the first piece"
        # not written until the first piece has reached the client
        assert first_sent.wait(timeout=10), "the first piece was held back until the whole was written"
        yield b"the rest"

    monkeypatch.setattr(views, "user_archive", archive)
    client = Client()
    await sync_to_async(client.force_login)(user)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": URL, "raw_path": URL.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())],
        "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }  # fmt: skip
    communicator = ApplicationCommunicator(ThreadedASGIHandler(), scope)
    # the request's own thread keeps its connection open otherwise, and the test database cannot be dropped
    request_finished.connect(close_connection, dispatch_uid="close-the-request-threads-connection")
    try:
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(timeout=10)
        assert (start["type"], start["status"]) == ("http.response.start", 200)
        assert (await communicator.receive_output(timeout=10))["body"] == b"the first piece"
        first_sent.set()
        assert (await communicator.receive_output(timeout=10))["body"] == b"the rest"
        await communicator.wait(timeout=10)
    finally:
        first_sent.set()
        request_finished.disconnect(dispatch_uid="close-the-request-threads-connection")
        await sync_to_async(lambda: connection.close())()


def close_connection(**kwargs: Any) -> None:
    connection.close()
