from __future__ import annotations

from django.contrib import admin

from webapp.chat.models import Conversation, Feedback, Message, Project, SharedConversation


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "project", "model", "archived", "pinned_at", "created_at", "updated_at"]
    list_filter = ["archived", "model", "created_at"]
    search_fields = ["title", "owner__email"]
    list_select_related = ["owner", "project"]
    raw_id_fields = ["owner", "current_leaf", "project"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created_at", "updated_at"]
    search_fields = ["name", "owner__email"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["pk", "conversation", "role", "status", "model_name", "completion_tokens", "created_at"]
    list_filter = ["role", "status", "model_name"]
    search_fields = ["content", "conversation__owner__email"]
    list_select_related = ["conversation"]
    raw_id_fields = ["conversation", "parent"]
    # status is the answer lifecycle's (webapp/chat/answers.py): an edit here would leave
    # a worker writing an answer marked finished, or an answer marked generating forever
    readonly_fields = [
        "status",
        "content",
        "settings",
        "prompt_tokens",
        "completion_tokens",
        "time_to_first_token_ms",
        "tokens_per_second",
        "seq",
        "worker_key",
    ]


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["message", "user", "rating", "created_at"]
    list_filter = ["rating"]
    search_fields = ["comment", "user__email"]
    list_select_related = ["message", "user"]
    raw_id_fields = ["message", "user"]


@admin.register(SharedConversation)
class SharedConversationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "created_at", "revoked_at"]
    list_filter = ["revoked_at", "created_at"]
    search_fields = ["title", "owner__email"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner", "conversation"]
    # a snapshot is what its owner shared: it is revoked, never rewritten
    readonly_fields = ["token", "title", "messages", "created_at"]
