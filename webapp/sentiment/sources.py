"""Sentiment batches from their sources: a CSV's chosen column, or one item a line.

Counting and parsing agree on what a row is, because counting parses: a line ends at
``\n``, ``\r\n`` or a lone ``\r`` (old Mac exports), and nowhere else; U+2028, U+2029,
form feeds and the other characters ``str.splitlines`` also breaks at are text, inside
a line or a cell. A CSV's row is a record, which may span lines inside quotes; blank
lines make no row. Every problem with a source is a RejectedUpload whose message can be
shown as it is.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from webapp.documents.extraction import ExtractionError, decode_text
from webapp.documents.intake import RejectedUpload

PREVIEW_ROWS = 5
EXTRA_KEY = "_extra"  # where values beyond the header go, in a ragged row
LINE_END = re.compile(r"\r\n|\r|\n")


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
    reader = csv.reader(_csv_text(_decoded(data[: 256 * 1024])))
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


def _csv_text(text: str) -> io.StringIO:
    # newline="": the csv module finds the records' ends itself (\n, \r\n or \r, never
    # inside quotes); the default would end a line only at \n and refuse a lone \r.
    return io.StringIO(text, newline="")


def count_rows(data: bytes, *, csv_file: bool, limit: int) -> int:
    """The rows parsing makes of the source (a CSV's records after its header, a text's
    non-blank lines), counted up to ``limit + 1``: more than that is all a caller needs."""
    if not csv_file:
        return sum(1 for _ in islice(line_rows(data), limit + 1))
    reader = csv.reader(_csv_text(_decoded(data)))
    try:
        next(reader, None)  # the header
        # A blank line is no row: csv.DictReader, which csv_rows reads with, skips it too.
        return sum(1 for _ in islice((record for record in reader if record), limit + 1))
    except csv.Error as error:
        raise RejectedUpload(f"The CSV could not be read past row {reader.line_num}: {error}.") from None


def csv_rows(data: bytes, text_column: str) -> Iterator[Row]:
    reader = csv.DictReader(_csv_text(_decoded(data)), restkey=EXTRA_KEY, restval="")
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
    for line in LINE_END.split(_decoded(data)):
        if line.strip():
            number += 1
            yield Row(number, line.strip(), {})
