from __future__ import annotations

from django.contrib import admin

from webapp.documents.models import Document, Job


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "kind", "size", "pages", "words", "status", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["name", "owner__email"]
    list_select_related = ["owner"]
    exclude = ["original", "search"]
    readonly_fields = ["owner", "name", "kind", "size", "sha256", "text", "pages", "words", "status", "error"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "owner", "document", "state", "done", "total", "attempts", "created_at"]
    list_filter = ["kind", "state"]
    search_fields = ["owner__email", "document__name"]
    list_select_related = ["owner", "document"]
    readonly_fields = ["owner", "kind", "document", "done", "total", "attempts", "error", "started_at", "finished_at"]
