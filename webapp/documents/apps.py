from django.apps import AppConfig

from webapp.core.navigation import NavEntry


class DocumentsConfig(AppConfig):
    name = "webapp.documents"
    label = "documents"
    verbose_name = "Documents"

    def nav_entries(self) -> list[NavEntry]:
        return [
            NavEntry("Documents", "documents:index", "Upload documents; read, search and summarize them.", order=20),
            NavEntry("Sentiment", "sentiment:index", "Classify many texts at once and export the labels.", order=30),
        ]
