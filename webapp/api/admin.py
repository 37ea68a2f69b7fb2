from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from webapp.api.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Read-only but for revoking: a key's secret exists only in its owner's hands."""

    list_display = ("name", "owner", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "owner__email", "prefix")
    readonly_fields = ("owner", "name", "prefix", "digest", "created_at", "last_used_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
