"""Test documents, generated here: PDFs with and without text, Word files, odd encodings."""

from __future__ import annotations

import io
import zipfile
from typing import Any


def make_pdf(pages: list[str], password: str | None = None) -> bytes:
    """A PDF whose pages carry the given text (an empty string makes a page without text)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    font_ref = writer._add_object(font)
    for text in pages:
        page = writer.add_blank_page(width=612, height=792)
        stream = DecodedStreamObject()
        if text:
            escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            stream.set_data(f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font_ref})}
        )
    if password:
        writer.encrypt(password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_docx(paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_docx_bomb() -> bytes:
    """A zip that looks like a Word document and unpacks to a thousand times its size."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (30 * 1024 * 1024))
    return buffer.getvalue()


def render_text_image(lines: list[str], *, width: int = 1000, size: int = 32) -> Any:
    """A white image with ``lines`` written on it in black, as a scanner would see a page."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (width, 60 + len(lines) * (size + 24)), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=size)
    for number, line in enumerate(lines):
        draw.text((40, 30 + number * (size + 24)), line, fill="black", font=font)
    return image


def make_scanned_pdf(pages: list[list[str]]) -> bytes:
    """A PDF of page images only (no text layer), each page the lines given; an empty list
    makes a blank page image."""
    images = [render_text_image(lines) if lines else render_text_image([""]) for lines in pages]
    buffer = io.BytesIO()
    images[0].save(buffer, "PDF", save_all=True, append_images=images[1:], resolution=150)
    return buffer.getvalue()


def make_png(lines: list[str]) -> bytes:
    buffer = io.BytesIO()
    render_text_image(lines).save(buffer, "PNG")
    return buffer.getvalue()
