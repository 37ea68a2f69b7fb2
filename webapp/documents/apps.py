from __future__ import annotations

from django.apps import AppConfig

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

    def nav_entries(self) -> list[NavEntry]:
        return [
            NavEntry("Documents", "documents:index", "Upload documents; read, search and summarize them.", order=20)
        ]
