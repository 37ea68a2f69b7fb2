"""Text out of uploaded bytes, with the well-kept library for each kind; PDF pages without
a text layer, and images, are read by OCR (``inference.ocr``).

Every failure becomes an ExtractionError whose message can be shown as it is.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    # The pages (1-based) whose text was read from their images by OCR.
    ocr_pages: tuple[int, ...] = ()


# Reads the text of one page image (``inference.ocr.PageReader.read``).
ReadImage = Callable[[Any], str]
# Told (pages read by OCR so far, pages to read) before the first and after each one.
OcrProgress = Callable[[int, int], None]


def extract(
    kind: str, data: bytes, *, read_image: ReadImage | None = None, on_ocr_page: OcrProgress | None = None
) -> Extracted:
    """The text of a file of ``kind``; pages without a text layer, and images, are read by
    ``read_image`` (a PDF page without text is empty when none is given)."""
    page_starts: tuple[int, ...] = ()
    ocr_pages: tuple[int, ...] = ()
    heading_titles: list[str] = []
    if kind == "pdf":
        text, page_starts, ocr_pages = _pdf(data, read_image, on_ocr_page)
    elif kind == "image":
        text, page_starts, ocr_pages = _tidy(_image(data, read_image, on_ocr_page)), (0,), (1,)
    elif kind == "docx":
        raw, heading_titles = _docx(data)
        text = _tidy(raw)
    elif kind == "html":
        text = _tidy(_html(data))
    else:
        text = _tidy(decode_text(data))
    if not text.strip():
        raise ExtractionError("The file has no text in it.")
    words = len(text.split())
    headings = tuple(markdown_headings(text)) if kind == "markdown" else _located(text, heading_titles)
    return Extracted(
        text=text,
        pages=len(page_starts) or max(1, -(-words // WORDS_PER_PAGE)),
        words=words,
        page_starts=page_starts,
        headings=headings,
        ocr_pages=ocr_pages,
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


def _pdf(
    data: bytes, read_image: ReadImage | None, on_ocr_page: OcrProgress | None
) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PyPdfError

    ocr_pages: list[int] = []
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("The PDF is protected by a password; upload a copy without one.")
        pages = [page.extract_text() or "" for page in reader.pages]
        scanned = [number for number, text in enumerate(pages) if not text.strip() and reader.pages[number].images]
        if read_image is not None and scanned:
            for done, number in enumerate(scanned):
                if on_ocr_page is not None:
                    on_ocr_page(done, len(scanned))
                pages[number] = "\n".join(_read(read_image, image.image) for image in reader.pages[number].images)
                if pages[number].strip():
                    ocr_pages.append(number + 1)
            if on_ocr_page is not None:
                on_ocr_page(len(scanned), len(scanned))
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
        count = f"{len(pages)} page{'s' if len(pages) != 1 else ''}"
        if read_image is not None and scanned:
            raise ExtractionError(
                f"The PDF has {count} of images, but OCR found no text on any of them: they may be blank, "
                "too blurred or too small to read. Scan them again at 300 dpi, then upload the result."
            )
        what = "its pages are images, and OCR is not available here" if scanned else "and no images to read by OCR"
        raise ExtractionError(f"The PDF has {count} but no extractable text: {what}.")
    text, starts = joined_pages(pages)
    return text, starts, tuple(ocr_pages)


def _read(read_image: ReadImage, image: Any) -> str:
    return read_image(image) if image is not None else ""


def _image(data: bytes, read_image: ReadImage | None, on_ocr_page: OcrProgress | None) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = opened.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ExtractionError(
            f"The image is damaged or not an image at all, so it could not be read ({error})."
        ) from None
    if read_image is None:
        raise ExtractionError("Images are read by OCR, which this worker does not have.")
    if on_ocr_page is not None:
        on_ocr_page(0, 1)
    text = read_image(image)
    if on_ocr_page is not None:
        on_ocr_page(1, 1)
    if not text.strip():
        raise ExtractionError("OCR found no text in the image: it may be blank, too blurred or too small to read.")
    return text


def _located(text: str, titles: list[str]) -> tuple[tuple[int, str], ...]:
    """(offset, title) of each title in ``text``, found in order (the offsets are those of
    the tidied text, which the reader's own differ from)."""
    found: list[tuple[int, str]] = []
    cursor = 0
    for title in titles:
        offset = text.find(title, cursor)
        if offset >= 0:
            found.append((offset, title))
            cursor = offset + len(title)
    return tuple(found)


def _is_heading(paragraph: Any) -> bool:
    """A paragraph in one of Word's heading styles (Title, Heading 1-9, or one based on them)."""
    style = paragraph.style
    while style is not None:
        if style.name == "Title" or style.name.startswith("Heading"):
            return True
        style = style.base_style
    return False


def _docx(data: bytes) -> tuple[str, list[str]]:
    """The text of a Word document (paragraphs, then tables), and its headings' titles in order."""
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
    headings = [
        paragraph.text.strip() for paragraph in document.paragraphs if paragraph.text.strip() and _is_heading(paragraph)
    ]
    for table in document.tables:
        for row in table.rows:
            parts.append("\t".join(cell.text for cell in row.cells))
    return "\n".join(parts), headings


def _html(data: bytes) -> str:
    from inscriptis import get_text

    return get_text(decode_text(data))


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return re.sub(r"\n{3,}", "\n\n", text).strip()
