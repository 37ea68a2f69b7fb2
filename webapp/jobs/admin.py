from __future__ import annotations

from django.contrib import admin

from webapp.jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "owner", "document", "state", "done", "total", "attempts", "created_at"]
    list_filter = ["kind", "state"]
    search_fields = ["owner__email", "document__name"]
    list_select_related = ["owner", "document"]
    readonly_fields = ["owner", "kind", "document", "done", "total", "attempts", "error", "started_at", "finished_at"]
