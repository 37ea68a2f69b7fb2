from __future__ import annotations

from django.contrib import admin

from webapp.documents.models import Collection, Document, Summary


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "kind", "size", "pages", "words", "status", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["name", "owner__email"]
    list_select_related = ["owner"]
    exclude = ["original", "search"]
    readonly_fields = ["owner", "name", "kind", "size", "sha256", "text", "pages", "words", "status", "error"]


@admin.register(Summary)
class SummaryAdmin(admin.ModelAdmin):
    list_display = ["pk", "document", "length", "form", "model_name", "created_at"]
    list_filter = ["length", "form", "model_name"]
    search_fields = ["document__name", "document__owner__email"]
    list_select_related = ["document", "job"]
    readonly_fields = ["document", "job", "length", "form", "text", "key_sentences", "model_name"]


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created_at"]
    search_fields = ["name", "owner__email"]
    list_select_related = ["owner"]
    readonly_fields = ["owner", "documents"]
