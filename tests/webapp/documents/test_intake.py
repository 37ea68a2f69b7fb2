"""What an upload is, from its bytes; and names that are safe to show."""

from __future__ import annotations

import pytest

from tests.webapp.documents.files import make_docx, make_pdf
from webapp.documents.intake import RejectedUpload, detect_kind, display_name


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\notes.md", "notes.md"),
        ("evil\x00.pdf", "evil.pdf"),
        ("invoice\u202egnp.exe.txt", "invoicegnp.exe.txt"),  # a right-to-left override, dropped
        ("  spaced   out  .txt", "spaced out .txt"),
        ("", "untitled"),
        ("../", "untitled"),
    ],
)
def test_display_names_lose_folders_and_hidden_characters(raw: str, shown: str) -> None:
    assert display_name(raw) == shown


def test_a_very_long_name_is_shortened_keeping_its_extension() -> None:
    name = display_name("a" * 10_000 + ".pdf")
    assert len(name) <= 200
    assert name.endswith("….pdf")


def test_kinds_that_match_their_names() -> None:
    assert detect_kind("a.pdf", make_pdf(["Hello"])) == "pdf"
    assert detect_kind("a.docx", make_docx(["Hello"])) == "docx"
    assert detect_kind("a.html", b"<!DOCTYPE html><html><body>Hi</body></html>") == "html"
    assert detect_kind("a.txt", "Grüße aus Köln".encode("utf-16")) == "text"
    assert detect_kind("a.md", b"# Title\n\nText") == "markdown"
    assert detect_kind("a.csv", b"text,label\nhello,1\n") == "csv"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "The file is empty."),
        ("page.pdf", b"<!DOCTYPE html><html><body>not a pdf</body></html>", "the content is an HTML page"),
        ("drawing.pdf", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "an SVG image"),
        ("notes.txt", b"%PDF-1.4 pretending", "the content is a PDF"),
        ("program.exe", b"MZ\x90\x00", "not supported"),
        ("photo.txt", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "a PNG or JPEG image"),
        ("archive.docx", b"PK\x03\x04" + b"\x00" * 64, "zip"),
    ],
)
def test_content_that_does_not_match_is_refused(name: str, data: bytes, message: str) -> None:
    with pytest.raises(RejectedUpload, match=message):
        detect_kind(name, data)
