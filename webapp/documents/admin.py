from __future__ import annotations

from django.contrib import admin

from webapp.documents.models import Document, Job, SentimentBatch, SentimentItem, Summary


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


@admin.register(Summary)
class SummaryAdmin(admin.ModelAdmin):
    list_display = ["pk", "document", "length", "form", "model_name", "created_at"]
    list_filter = ["length", "form", "model_name"]
    search_fields = ["document__name", "document__owner__email"]
    list_select_related = ["document", "job"]
    readonly_fields = ["document", "job", "length", "form", "text", "key_sentences", "model_name"]


@admin.register(SentimentBatch)
class SentimentBatchAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "source", "text_column", "model_name", "created_at"]
    list_filter = ["source"]
    search_fields = ["name", "owner__email"]
    list_select_related = ["owner", "job"]
    exclude = ["raw"]
    readonly_fields = ["owner", "name", "source", "columns", "text_column", "job", "model_name"]


@admin.register(SentimentItem)
class SentimentItemAdmin(admin.ModelAdmin):
    list_display = ["pk", "batch", "row", "label", "score", "needs_review"]
    list_filter = ["label", "needs_review"]
    search_fields = ["text", "batch__name"]
    list_select_related = ["batch"]
    readonly_fields = ["batch", "row", "text", "extra", "label", "score", "probabilities"]
