"""How much of their storage quota a user's documents and conversations take, and the
refusal of an upload or an import that would pass it.

What counts is what Parley keeps: each original's bytes and its extracted text's bytes,
the number of documents, and the text of every conversation (each message's and each
system prompt's UTF-8 bytes, as PostgreSQL's ``OCTET_LENGTH`` counts them). The check
runs with the owner's row locked (``owner_lock``), so two uploads or imports at once,
from two tabs, are counted one after the other and cannot both slip under the quota.

Uploads and imports are refused past the quota because they add megabytes at once. A
message sent in a conversation, and the answer to it, is never refused for storage: it
adds a few kilobytes, bounded by the send rate, and cutting a conversation off mid-way
would lose more than it saves. So chatting can take a user past the quota, after which
their next upload or import is refused until they delete something.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import BigIntegerField, Count, F, Func, Sum
from django.db.models.functions import Coalesce
from django.template.defaultfilters import filesizeformat

from webapp.chat.models import Conversation, Message
from webapp.documents.models import Document


@dataclass(frozen=True)
class StorageUsage:
    document_bytes: int
    conversation_bytes: int
    documents: int

    @property
    def stored_bytes(self) -> int:
        return self.document_bytes + self.conversation_bytes

    @property
    def quota_bytes(self) -> int:
        return int(settings.PARLEY_QUOTA_STORAGE_BYTES)

    @property
    def quota_documents(self) -> int:
        return int(settings.PARLEY_QUOTA_DOCUMENTS)

    @property
    def text(self) -> str:
        """As the pages say it: "120.0 MB of 500.0 MB (documents 100.0 MB, conversations
        20.0 MB), 14 of 1,000 documents"."""
        return (
            f"{filesizeformat(self.stored_bytes)} of {filesizeformat(self.quota_bytes)} "
            f"(documents {filesizeformat(self.document_bytes)}, "
            f"conversations {filesizeformat(self.conversation_bytes)}), "
            f"{self.documents:,} of {self.quota_documents:,} documents"
        )


def owner_lock(*, owner_id: int) -> None:
    """Hold the owner's row until the transaction ends (FOR NO KEY UPDATE: rows that only
    point at the user, a new message or document, are not held up)."""
    get_user_model().objects.select_for_update(no_key=True).only("pk").get(pk=owner_id)


def _octets(field: str) -> Sum:
    """The sum of ``field``'s UTF-8 bytes; ``OCTET_LENGTH`` reads a long text's stored size
    without unpacking it, so a large history is counted without reading its text."""
    length = Func(F(field), function="OCTET_LENGTH", output_field=BigIntegerField())
    return Sum(length, output_field=BigIntegerField())


def storage_usage(*, owner_id: int) -> StorageUsage:
    text_bytes = Func(F("text"), function="OCTET_LENGTH", output_field=BigIntegerField())
    totals = Document.objects.filter(owner_id=owner_id).aggregate(
        stored=Coalesce(Sum(F("size") + text_bytes, output_field=BigIntegerField()), 0), documents=Count("pk")
    )
    messages = Message.objects.filter(conversation__owner_id=owner_id).aggregate(bytes=Coalesce(_octets("content"), 0))
    prompts = Conversation.objects.filter(owner_id=owner_id).aggregate(bytes=Coalesce(_octets("system_prompt"), 0))
    return StorageUsage(
        document_bytes=int(totals["stored"]),
        conversation_bytes=int(messages["bytes"]) + int(prompts["bytes"]),
        documents=int(totals["documents"]),
    )


def storage_refusal(*, usage: StorageUsage, adding_bytes: int, adding_documents: int, adding: str) -> str | None:
    """Why adding these would pass a quota, naming the quota and the usage; None when they
    fit. ``adding`` names what is added, as the refusal says it: "upload" or "import"."""
    if usage.documents + adding_documents > usage.quota_documents:
        return (
            f"This {adding} would pass your quota of {usage.quota_documents:,} documents: you have "
            f"{usage.documents:,} and it adds {adding_documents:,}. Delete some documents first, or upload fewer."
        )
    if usage.stored_bytes + adding_bytes > usage.quota_bytes:
        return (
            f"This {adding} would pass your storage quota of {filesizeformat(usage.quota_bytes)}: your documents "
            f"and conversations take {filesizeformat(usage.stored_bytes)} and it adds {filesizeformat(adding_bytes)}. "
            f"Delete some documents or conversations first, or {adding} less."
        )
    return None
