"""How much of their storage quota a user's documents take, and the refusal of an upload
that would pass it.

What counts is what Parley keeps: each original's bytes and its extracted text's bytes,
and the number of documents. The check runs with the owner's row locked
(``owner_locked``), so two uploads at once, from two tabs, are counted one after the
other and cannot both slip under the quota.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import BigIntegerField, Count, F, Func, Sum
from django.db.models.functions import Coalesce
from django.template.defaultfilters import filesizeformat

from webapp.documents.models import Document


@dataclass(frozen=True)
class StorageUsage:
    stored_bytes: int
    documents: int

    @property
    def quota_bytes(self) -> int:
        return int(settings.PARLEY_QUOTA_STORAGE_BYTES)

    @property
    def quota_documents(self) -> int:
        return int(settings.PARLEY_QUOTA_DOCUMENTS)

    @property
    def text(self) -> str:
        """As the documents page says it: "120.0 MB of 500.0 MB, 14 of 1,000 documents"."""
        return (
            f"{filesizeformat(self.stored_bytes)} of {filesizeformat(self.quota_bytes)}, "
            f"{self.documents:,} of {self.quota_documents:,} documents"
        )


def owner_lock(*, owner_id: int) -> None:
    """Hold the owner's row until the transaction ends (FOR NO KEY UPDATE: rows that only
    point at the user, a new message or document, are not held up)."""
    get_user_model().objects.select_for_update(no_key=True).only("pk").get(pk=owner_id)


def storage_usage(*, owner_id: int) -> StorageUsage:
    text_bytes = Func(F("text"), function="OCTET_LENGTH", output_field=BigIntegerField())
    totals = Document.objects.filter(owner_id=owner_id).aggregate(
        stored=Coalesce(Sum(F("size") + text_bytes, output_field=BigIntegerField()), 0), documents=Count("pk")
    )
    return StorageUsage(stored_bytes=int(totals["stored"]), documents=int(totals["documents"]))


def storage_refusal(*, usage: StorageUsage, adding_bytes: int, adding_documents: int) -> str | None:
    """Why adding these would pass a quota, naming the quota and the usage; None when they fit."""
    if usage.documents + adding_documents > usage.quota_documents:
        return (
            f"This upload would pass your quota of {usage.quota_documents:,} documents: you have "
            f"{usage.documents:,} and it adds {adding_documents:,}. Delete some documents first, or upload fewer."
        )
    if usage.stored_bytes + adding_bytes > usage.quota_bytes:
        return (
            f"This upload would pass your storage quota of {filesizeformat(usage.quota_bytes)}: your documents "
            f"take {filesizeformat(usage.stored_bytes)} and it adds {filesizeformat(adding_bytes)}. "
            "Delete some documents first, or upload less."
        )
    return None
