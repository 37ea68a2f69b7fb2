"""Sentiment batches from their sources: a CSV's chosen column, or one item a line.

Every problem with a source is a RejectedUpload whose message can be shown as it is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from webapp.documents.extraction import ExtractionError, decode_text
from webapp.documents.intake import RejectedUpload

PREVIEW_ROWS = 5
EXTRA_KEY = "_extra"  # where values beyond the header go, in a ragged row


@dataclass(frozen=True)
class Row:
    number: int  # 1-based, in the order of the source
    text: str
    extra: dict[str, object]


def _decoded(data: bytes) -> str:
    try:
        return decode_text(data)
    except ExtractionError as error:
        raise RejectedUpload(str(error)) from None


def csv_preview(data: bytes) -> tuple[list[str], list[list[str]]]:
    """The header and the first rows, for picking the text column."""
    if not data.strip():
        raise RejectedUpload("The file is empty.")
    reader = csv.reader(io.StringIO(_decoded(data[: 256 * 1024])))
    try:
        header = next(reader, [])
        rows = [row for _, row in zip(range(PREVIEW_ROWS), reader, strict=False)]
    except csv.Error as error:
        raise RejectedUpload(f"The CSV could not be read: {error}.") from None
    header = [name.strip() for name in header]
    if not any(header):
        raise RejectedUpload("The CSV has no header row; its first line must name the columns.")
    if len(set(header)) != len(header):
        raise RejectedUpload("Two columns of the CSV have the same name; give each column its own name.")
    return header, rows


def count_rows(data: bytes) -> int:
    """Lines in the file, which is the row count unless fields span lines (an upper bound then)."""
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def csv_rows(data: bytes, text_column: str) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(_decoded(data)), restkey=EXTRA_KEY, restval="")
    if reader.fieldnames is None or text_column not in [name.strip() for name in reader.fieldnames]:
        raise RejectedUpload(f"The CSV has no column named “{text_column}”.")
    original = next(name for name in reader.fieldnames if name.strip() == text_column)
    try:
        for number, record in enumerate(reader, start=1):
            text = record.pop(original) or ""
            yield Row(number, text, {key.strip(): value for key, value in record.items()})
    except csv.Error as error:
        raise RejectedUpload(f"The CSV could not be read past row {reader.line_num}: {error}.") from None


def line_rows(data: bytes) -> Iterator[Row]:
    number = 0
    for line in _decoded(data).splitlines():
        if line.strip():
            number += 1
            yield Row(number, line.strip(), {})
