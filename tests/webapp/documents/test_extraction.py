"""Text out of every supported kind, and a plain reason when there is none."""

from __future__ import annotations

import pytest

from tests.webapp.documents.files import make_docx, make_docx_bomb, make_pdf
from webapp.documents.extraction import ExtractionError, extract


def test_pdf_text_and_pages() -> None:
    result = extract("pdf", make_pdf(["First page about otters.", "Second page about beavers."]))
    assert "otters" in result.text
    assert "beavers" in result.text
    assert result.pages == 2
    assert result.words == 8


def test_docx_paragraphs() -> None:
    result = extract("docx", make_docx(["Minutes of the meeting.", "Action: buy more coffee."]))
    assert result.text == "Minutes of the meeting.\nAction: buy more coffee."
    assert result.words == 8


def test_html_becomes_readable_text() -> None:
    html = b"<html><head><style>p{}</style><script>alert(1)</script></head>"
    html += b"<body><h1>Title</h1><p>Body text.</p></body></html>"
    result = extract("html", html)
    assert "Title" in result.text
    assert "Body text." in result.text
    assert "alert" not in result.text


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "cp1252", "shift_jis"])
def test_text_in_unusual_encodings(encoding: str) -> None:
    text = "日本語のテキストです。今日は晴れ。" if encoding == "shift_jis" else "Café crème, naïve façade — déjà vu."
    assert extract("text", (text * 20).encode(encoding)).text.startswith(text)


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("pdf", make_pdf(["Secret plans"], password="hunter2"), "protected by a password"),
        ("pdf", make_pdf(["", ""]), "2 pages but no extractable text"),
        ("pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage", "damaged"),
        ("docx", make_docx_bomb(), "zip bomb"),
        ("docx", b"PK\x03\x04 not really a zip", "damaged"),
        ("text", b"   \n\n  ", "no text"),
    ],
)
def test_files_without_usable_text_say_why(kind: str, data: bytes, message: str) -> None:
    with pytest.raises(ExtractionError, match=message):
        extract(kind, data)
