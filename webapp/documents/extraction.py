"""Text out of uploaded bytes, with the well-kept library for each kind.

Every failure becomes an ExtractionError whose message can be shown as it is.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass

from charset_normalizer import from_bytes

from inference.passages import markdown_headings

# A DOCX is a zip; these bound what opening one may unpack.
DOCX_MAX_UNPACKED = 200 * 1024 * 1024
DOCX_MAX_RATIO = 100
DOCX_MAX_MEMBERS = 5000
WORDS_PER_PAGE = 500
WESTERN_CHAOS_MARGIN = 0.2  # for kinds without pages, the count a reader would expect


class ExtractionError(Exception):
    pass


@dataclass(frozen=True)
class Extracted:
    text: str
    pages: int
    words: int
    # Where each page begins in ``text`` (page 1 first), for kinds that have pages; the
    # page count of the others is an estimate from their words, and their passages have none.
    page_starts: tuple[int, ...] = ()
    # (offset in ``text``, title) of each heading, for kinds that mark them.
    headings: tuple[tuple[int, str], ...] = ()


def extract(kind: str, data: bytes) -> Extracted:
    page_starts: tuple[int, ...] = ()
    if kind == "pdf":
        text, page_starts = _pdf(data)
    elif kind == "docx":
        text = _tidy(_docx(data))
    elif kind == "html":
        text = _tidy(_html(data))
    else:
        text = _tidy(decode_text(data))
    if not text.strip():
        raise ExtractionError("The file has no text in it.")
    words = len(text.split())
    headings = tuple(markdown_headings(text)) if kind == "markdown" else ()
    return Extracted(
        text=text,
        pages=len(page_starts) or max(1, -(-words // WORDS_PER_PAGE)),
        words=words,
        page_starts=page_starts,
        headings=headings,
    )


def joined_pages(pages: list[str]) -> tuple[str, tuple[int, ...]]:
    """The pages' tidied text joined by blank lines, and the offset where each page begins
    (an empty page begins where the next one does)."""
    text = ""
    starts = []
    for page in pages:
        page = _tidy(page)
        if text and page:
            text += "\n\n"
        starts.append(len(text))
        text += page
    return text, tuple(starts)


def decode_text(data: bytes) -> str:
    """Text in whatever encoding it came in (UTF-8, UTF-16, Latin-1, Shift JIS, …)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise ExtractionError("The text's encoding could not be recognised; save it as UTF-8 and upload it again.")
    # Short Western texts decode almost as cleanly in several single-byte code pages;
    # among near-equals, Windows-1252 (what browsers assume for Latin-1) is by far the likeliest.
    western = next((m for m in matches if m.encoding == "cp1252"), None)
    if western is not None and western.chaos <= best.chaos + WESTERN_CHAOS_MARGIN:
        return str(western)
    return str(best)


def _pdf(data: bytes) -> tuple[str, tuple[int, ...]]:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("The PDF is protected by a password; upload a copy without one.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except FileNotDecryptedError:
        raise ExtractionError("The PDF is protected by a password; upload a copy without one.") from None
    except LimitReachedError as error:
        raise ExtractionError(
            f"The PDF unpacks to more than a reader allows or refers to itself in a loop ({error}); it was not read."
        ) from None
    except RecursionError:
        raise ExtractionError("The PDF nests its contents too deeply to be read; it was not read.") from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, zlib.error) as error:
        raise ExtractionError(f"The PDF is damaged and could not be read ({error}).") from None
    if not any(page.strip() for page in pages):
        raise ExtractionError(
            f"The PDF has {len(pages)} page{'s' if len(pages) != 1 else ''} but no extractable text: "
            "it is probably scanned images. Run it through OCR first, then upload the result."
        )
    return joined_pages(pages)


def _docx(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            unpacked = sum(member.file_size for member in members)
            packed = max(1, sum(member.compress_size for member in members))
    except zipfile.BadZipFile:
        raise ExtractionError("The Word document is damaged and could not be opened.") from None
    if len(members) > DOCX_MAX_MEMBERS or unpacked > DOCX_MAX_UNPACKED or unpacked / packed > DOCX_MAX_RATIO:
        raise ExtractionError("The Word document unpacks to far more than its size (a zip bomb); it was not opened.")
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from lxml.etree import LxmlError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, LxmlError, zipfile.BadZipFile, zlib.error, EOFError) as error:
        # LxmlError: a part whose XML is broken; BadZipFile: a member that fails its CRC.
        raise ExtractionError(f"The Word document is damaged and could not be opened ({error}).") from None
    parts = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append("\t".join(cell.text for cell in row.cells))
    return "\n".join(parts)


def _html(data: bytes) -> str:
    from inscriptis import get_text

    return get_text(decode_text(data))


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return re.sub(r"\n{3,}", "\n\n", text).strip()
