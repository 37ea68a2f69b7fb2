"""Everything a user owns as one zip, written as it is sent.

::

    conversations/<title>-<id>.json   Parley's own format (every version), as the conversation menu exports it
    conversations/<title>-<id>.md     the branch shown, for reading
    documents/<id>-<name>/<name>.<ext>  each document's original file, as uploaded
    documents/<id>-<name>/text.txt    the text read from it
    sentiment/<id>-<name>.csv         each sentiment batch's results, as its page exports them

The zip is written to a small buffer that is emptied each time it holds ``FLUSH_BYTES``
(and after each file), so the archive is never whole in memory, nor is a document's
original: it is read in slices (``selectors.document_original``) when its turn comes.
``zipfile`` writes to a stream it cannot seek in by putting each file's sizes after its
data, which every unzip tool reads.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Generator, Iterable, Iterator

from django.utils.text import slugify

from webapp.accounts.models import User
from webapp.chat import exports as chat_exports
from webapp.exports import selectors
from webapp.sentiment import exports as sentiment_exports

FLUSH_BYTES = 256 * 1024
FILE_CHUNK_BYTES = 64 * 1024


class _Buffer(io.RawIOBase):
    """Where the zip is written; what was written is taken out with ``take``."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return data


def safe_name(name: str, fallback: str) -> str:
    """Letters, digits, hyphens and one extension: no slash, dot-dot or odd character of a
    user's name reaches a path in the zip."""
    name = re.split(r"[\\/]", name)[-1]  # the file's own name, never a folder above it
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    stem = slugify(stem, allow_unicode=True)[:80].strip("-_") or fallback
    extension = re.sub(r"[^A-Za-z0-9]", "", extension)[:10]
    return f"{stem}.{extension}" if extension else stem


def _pieces(slices: Iterable[bytes]) -> Iterator[bytes]:
    for data in slices:
        view = memoryview(data)
        for start in range(0, len(data), FILE_CHUNK_BYTES):
            yield bytes(view[start : start + FILE_CHUNK_BYTES])


def _document_entries(*, user: User, document_id: int, document_name: str) -> Iterator[tuple[str, Iterable[bytes]]]:
    """One document's original, read in slices as the zip takes it, and its text. A
    generator of its own, so that its text is let go before the next document's is read."""
    text = selectors.document_text(user=user, document_id=document_id)
    if text is None:
        return  # deleted while the archive was being written
    file_name = safe_name(document_name, "original")
    folder = f"documents/{document_id}-{file_name.partition('.')[0]}"
    yield f"{folder}/{file_name}", _pieces(selectors.document_original(user=user, document_id=document_id))
    yield f"{folder}/text.txt", [text.encode()]


def _entries(user: User) -> Iterator[tuple[str, Iterable[bytes]]]:
    """(path in the zip, its bytes in pieces), read as each comes up."""
    for conversation in selectors.conversations_of(user=user):
        for extension in ("json", "md"):
            name = chat_exports.export_filename(conversation=conversation, extension=extension)
            if extension == "json":
                body = chat_exports.conversation_json(conversation=conversation)
            else:
                body = chat_exports.conversation_markdown(conversation=conversation)
            yield f"conversations/{name}", [body.encode()]
    for document_id, document_name in selectors.documents_of(user=user):
        yield from _document_entries(user=user, document_id=document_id, document_name=document_name)
    for batch in selectors.sentiment_batches_of(user=user):
        lines = sentiment_exports.export_lines(batch, "csv")
        stem = safe_name(batch.name, "batch").partition(".")[0]
        yield f"sentiment/{batch.pk}-{stem}.csv", (line.encode() for line in lines)


def user_archive(*, user: User) -> Generator[bytes, None, None]:
    """The zip of everything ``user`` owns, in pieces of about ``FLUSH_BYTES``."""
    buffer = _Buffer()
    with zipfile.ZipFile(buffer, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, pieces in _entries(user):
            with archive.open(name, mode="w") as entry:
                for piece in pieces:
                    entry.write(piece)
                    if buffer.size >= FLUSH_BYTES:
                        yield buffer.take()
            if buffer.size:
                yield buffer.take()
    yield buffer.take()
