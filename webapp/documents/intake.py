"""What an upload is, decided from its bytes, and a display name safe to show.

Runs in the request, on the first bytes only; reading the whole text is the worker's job.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from pathlib import PurePosixPath, PureWindowsPath

import filetype
from charset_normalizer import from_bytes

from webapp.documents.models import Document

NAME_LENGTH = 200
# The extensions a user may upload, and the kind each one promises.
EXTENSIONS = {
    ".txt": Document.Kind.TEXT,
    ".md": Document.Kind.MARKDOWN,
    ".markdown": Document.Kind.MARKDOWN,
    ".html": Document.Kind.HTML,
    ".htm": Document.Kind.HTML,
    ".pdf": Document.Kind.PDF,
    ".docx": Document.Kind.DOCX,
    ".csv": Document.Kind.CSV,
    ".png": Document.Kind.IMAGE,
    ".jpg": Document.Kind.IMAGE,
    ".jpeg": Document.Kind.IMAGE,
}
# The images Parley reads by OCR, by the extension ``filetype`` finds in their bytes.
IMAGE_CONTENT = {"png", "jpg"}
TEXT_KINDS = {Document.Kind.TEXT, Document.Kind.MARKDOWN, Document.Kind.CSV}
_HTML_START = re.compile(rb"^\s*(<!doctype\s+html|<html|<head|<body)", re.IGNORECASE)
_SVG_START = re.compile(rb"^\s*(<\?xml[^>]*>\s*)?(<!doctype\s+svg|<svg)", re.IGNORECASE)


class RejectedUpload(Exception):
    """A file Parley will not take; the message says why, for the person who sent it."""


def display_name(raw: str) -> str:
    """The file's own name, without folders, control or direction characters, and not too long."""
    name = PureWindowsPath(PurePosixPath(raw.replace("\x00", "")).name).name
    # Cc: control characters; Cf: formatting ones, among them the right-to-left overrides
    # that can make "cod.exe" look like "exe.doc".
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch) not in ("Cc", "Cf"))
    name = re.sub(r"\s+", " ", name).strip(" .")
    if len(name) > NAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        extension = extension if dot and len(extension) <= 10 else ""
        name = stem[: NAME_LENGTH - len(extension) - 2].rstrip() + "…" + (f".{extension}" if extension else "")
    return name or "untitled"


def detect_kind(name: str, data: bytes) -> str:
    """The document kind that both the name and the content agree on, or RejectedUpload."""
    if not data:
        raise RejectedUpload("The file is empty.")
    extension = PurePosixPath(name.lower()).suffix
    promised = EXTENSIONS.get(extension)
    if promised is None:
        allowed = ", ".join(sorted({e for e in EXTENSIONS if e not in (".markdown", ".htm", ".jpeg")}))
        raise RejectedUpload(f"Files of this type ({extension or 'no extension'}) are not supported; use {allowed}.")
    found = _content_kind(data)
    if found == promised or (found == Document.Kind.TEXT and promised in TEXT_KINDS):
        return promised
    what = {
        "svg": "an SVG image",
        Document.Kind.HTML: "an HTML page",
        Document.Kind.PDF: "a PDF",
        Document.Kind.DOCX: "a Word document",
        Document.Kind.TEXT: "plain text",
        Document.Kind.IMAGE: "a PNG or JPEG image",
    }.get(found, f"a {found} file")
    raise RejectedUpload(f"The name says {extension} but the content is {what}; rename it or upload the real file.")


def _content_kind(data: bytes) -> str:
    head = data[:8192]
    if head.startswith(b"%PDF-"):
        return Document.Kind.PDF
    guess = filetype.guess(head)
    if guess is not None and guess.extension == "docx":
        return Document.Kind.DOCX
    if head.startswith(b"PK\x03\x04"):
        return Document.Kind.DOCX if _is_docx(data) else "zip"
    if guess is not None:
        return Document.Kind.IMAGE if guess.extension in IMAGE_CONTENT else str(guess.extension)
    if _SVG_START.match(head.lstrip(b"\xef\xbb\xbf")):
        return "svg"
    if _HTML_START.match(head.lstrip(b"\xef\xbb\xbf")):
        return Document.Kind.HTML
    if b"\x00" in head and not _decodes(head):
        return "binary"
    return Document.Kind.TEXT


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _decodes(head: bytes) -> bool:
    """UTF-16 and other wide encodings have NUL bytes but are text all the same."""
    return from_bytes(head).best() is not None
