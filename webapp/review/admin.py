"""Admin for review items and verdicts. Outputs are untrusted model text: they are shown
read-only through ``format_html``, which escapes them."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from webapp.review.models import ReviewItem, Verdict


class VerdictInline(admin.TabularInline):
    model = Verdict
    extra = 0
    can_delete = False
    fields = readonly_fields = ("created_at", "reviewer", "decision", "rating", "tags", "comment", "correction",
                                "corrected_label")  # fmt: skip

    def has_add_permission(self, request: HttpRequest, obj: ReviewItem | None = None) -> bool:
        return False


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    list_display = ["__str__", "output_start", "model_name", "owner", "tier", "user_rating", "decision",
                    "rating", "reviewed_at", "claimed_by"]  # fmt: skip
    list_filter = ["kind", "decision", "tier", "user_rating", "model_name", "corrected"]
    search_fields = ["owner__email", "model_name", "tags"]
    list_select_related = ["owner", "claimed_by", "message", "summary", "sentiment_item"]
    date_hierarchy = "produced_at"
    fields = readonly_fields = ("kind", "owner", "model_name", "produced_at", "output", "user_rating", "confidence",
                                "tier", "decision", "rating", "tags", "corrected", "reviewed_at", "version",
                                "claimed_by", "claimed_until")  # fmt: skip
    inlines = [VerdictInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # items are made when outputs are produced

    @admin.display(description="output")
    def output_start(self, item: ReviewItem) -> str:
        return Truncator(item.output_text).chars(120)  # the admin escapes it

    @admin.display(description="output")
    def output(self, item: ReviewItem) -> SafeString:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', item.output_text)


@admin.register(Verdict)
class VerdictAdmin(admin.ModelAdmin):
    list_display = ["__str__", "reviewer", "decision", "rating", "created_at"]
    list_filter = ["decision", "rating", "item__kind"]
    search_fields = ["comment", "correction", "reviewer__email", "tags"]
    list_select_related = ["item", "reviewer"]
    fields = readonly_fields = ("item", "reviewer", "decision", "rating", "tags", "comment", "correction_shown",
                                "corrected_label", "created_at")  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # verdicts are given in the review queue, which keeps the item in step

    @admin.display(description="correction")
    def correction_shown(self, verdict: Verdict) -> SafeString:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', verdict.correction)
