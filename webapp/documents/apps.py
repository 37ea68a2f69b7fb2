from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.models.signals import pre_migrate

from webapp.core.navigation import NavEntry


class DocumentsConfig(AppConfig):
    name = "webapp.documents"
    label = "documents"
    verbose_name = "Documents"

    def ready(self) -> None:
        from webapp.documents.reading import document_reading_cancelled, document_reading_failed
        from webapp.jobs.models import Job
        from webapp.jobs.services import on_cancel, on_failure

        # A document whose reading failed or was cancelled says so, in the transaction
        # that fails or cancels the job.
        on_failure(Job.Kind.EXTRACT, document_reading_failed)
        on_cancel(Job.Kind.EXTRACT, document_reading_cancelled)
        pre_migrate.connect(require_vector_extension, sender=self)

    def nav_entries(self) -> list[NavEntry]:
        return [
            NavEntry("Documents", "documents:index", "Upload documents; read, search and summarize them.", order=20)
        ]


def require_vector_extension(*, using: str, **_: Any) -> None:
    """Before ``migrate`` changes anything: a server without pgvector stops it with the fix
    named, rather than after the other apps' tables are made, at the passages' migration."""
    from webapp.vector_extension import vector_extension_problem

    with connections[using].cursor() as cursor:
        problem = vector_extension_problem(cursor)
    if problem:
        raise ImproperlyConfigured(problem)
