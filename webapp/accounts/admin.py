from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest

from webapp.accounts.models import Invitation, TokenUsage, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("email", "is_staff", "is_active", "date_joined", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email",)
    ordering = ("-date_joined",)
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    readonly_fields = ("last_login", "date_joined")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "link", "created_by", "expires_at", "used_at", "used_by")
    list_filter = ("used_at", "expires_at")
    search_fields = ("email", "used_by__email")
    fields = ("email", "expires_at", "link", "created_by", "used_at", "used_by")
    readonly_fields = ("link", "created_by", "used_at", "used_by")

    @admin.display(description="link")
    def link(self, invitation: Invitation) -> str:
        return invitation.path if invitation.pk else "made when saved"

    def save_model(self, request: HttpRequest, invitation: Invitation, form: Any, change: bool) -> None:
        if not change:
            invitation.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, invitation, form, change)


@admin.register(TokenUsage)
class TokenUsageAdmin(admin.ModelAdmin):
    """Read only: the rows are the ledger the workers keep (``webapp/accounts/usage.py``)."""

    list_display = ("day", "user", "model", "prompt_tokens", "completion_tokens", "answers")
    list_filter = ("day", "model")
    search_fields = ("user__email", "model")
    date_hierarchy = "day"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TokenUsage | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TokenUsage | None = None) -> bool:
        return False
