from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "webapp.documents"
    label = "documents"
    verbose_name = "Documents"
