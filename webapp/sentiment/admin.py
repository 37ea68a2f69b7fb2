from __future__ import annotations

from django.contrib import admin

from webapp.sentiment.models import SentimentBatch, SentimentItem


@admin.register(SentimentBatch)
class SentimentBatchAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "source", "text_column", "model_name", "created_at"]
    list_filter = ["source"]
    search_fields = ["name", "owner__email"]
    list_select_related = ["owner", "job"]
    exclude = ["raw"]
    readonly_fields = ["owner", "name", "source", "columns", "text_column", "job", "model_name", "labels"]


@admin.register(SentimentItem)
class SentimentItemAdmin(admin.ModelAdmin):
    list_display = ["pk", "batch", "row", "label", "score", "needs_review"]
    list_filter = ["label", "needs_review"]
    search_fields = ["text", "batch__name"]
    list_select_related = ["batch"]
    readonly_fields = ["batch", "row", "text", "extra", "label", "score", "probabilities"]
