"""An upload handler that stops reading a file as soon as it passes the size limit, so an
oversized file is never buffered in memory or written whole to disk."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler


class SizeLimitedUploadHandler(TemporaryFileUploadHandler):
    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > settings.PARLEY_UPLOAD_MAX_BYTES:
            skipped: list[str] = getattr(self.request, "oversized_uploads", [])
            skipped.append(self.file_name or "")
            self.request.oversized_uploads = skipped  # type: ignore[union-attr]
            raise SkipFile
        return super().receive_data_chunk(raw_data, start)
