"""A batch's results as CSV or JSONL lines, streamed: a large batch never sits in memory.

The items are read in chunks and the view hands the lines to ``StreamingHttpResponse``
as an async iterator (``export_body``), which Django's ASGI handler sends as they come
instead of reading them whole first; the batch's uploaded bytes are never read.

Both carry each label's probability under the batch's label names, in the batch's order.

A CSV is opened in spreadsheets, which run a cell that starts with ``=``, ``+``, ``-`` or
``@`` (or a tab or carriage return before one) as a formula: every such cell, header
names included, is written with a single quote before it, as OWASP's CSV-injection rule
says, so the spreadsheet shows it as text. JSONL is read by programs and keeps every
text exactly.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator

from django.http import Http404

from webapp.accounts.models import User
from webapp.core.streaming import streamed_body
from webapp.sentiment.models import SentimentBatch, SentimentItem
from webapp.sentiment.sources import EXTRA_KEY

FORMATS = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
CHUNK_SIZE = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_batch_get(user: User, batch_id: object) -> SentimentBatch:
    """The user's batch, without its upload (``raw``, up to the upload limit), which no export needs."""
    try:
        return SentimentBatch.objects.defer("raw").get(pk=int(str(batch_id)), owner=user)
    except (SentimentBatch.DoesNotExist, ValueError):
        raise Http404("No such batch.") from None


def export_body(batch: SentimentBatch, fmt: str) -> AsyncIterator[str]:
    """The export as a response body that streams under ASGI as well as under WSGI."""
    return streamed_body(export_lines(batch, fmt))


def export_lines(batch: SentimentBatch, fmt: str) -> Iterator[str]:
    items = batch.items.order_by("row").iterator(chunk_size=CHUNK_SIZE)
    return _csv_lines(batch, items) if fmt == "csv" else _jsonl_lines(batch, items)


def export_filename(batch: SentimentBatch, fmt: str) -> str:
    stem = batch.name.rsplit(".", 1)[0] or "batch"
    return f"{_ascii(stem)}-sentiment.{fmt}"


def _extra_columns(batch: SentimentBatch) -> list[str]:
    return [c for c in batch.columns if c != batch.text_column]


def _csv_lines(batch: SentimentBatch, items: Iterator[SentimentItem]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    extra = _extra_columns(batch)
    text_name = batch.text_column or "text"
    probabilities = [f"{label}_probability" for label in batch.labels]
    header = ["row", *extra, text_name, "label", "confidence", *probabilities, "needs_review", "ragged_values"]
    writer.writerow([_inert(name) for name in header])
    for item in items:
        values = [item.extra.get(column, "") for column in extra]
        shares = [_number(item.probabilities.get(label)) for label in batch.labels]
        ragged = item.extra.get(EXTRA_KEY, "")
        row = [item.row, *values, item.text, item.label, _number(item.score), *shares, item.needs_review, ragged or ""]
        writer.writerow([_inert(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _jsonl_lines(batch: SentimentBatch, items: Iterator[SentimentItem]) -> Iterator[str]:
    for item in items:
        record = {
            "row": item.row,
            "text": item.text,
            "label": item.label,
            "confidence": item.score,
            "probabilities": {label: item.probabilities[label] for label in batch.labels if label in item.probabilities}
            or item.probabilities,
            "needs_review": item.needs_review,
            "columns": item.extra,
        }
        yield json.dumps(record, ensure_ascii=False) + "\n"


def _inert(value: object) -> object:
    """The cell as a spreadsheet shows it as text: a quote before a formula's first character."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _ascii(name: str) -> str:
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in name)[:80] or "batch"
