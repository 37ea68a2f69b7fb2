"""Conversations and their messages.

Messages form a tree: a user message's parent is the answer before it, an answer's
parent is the user message it answers. Editing a user message or regenerating an answer
adds a sibling, so earlier versions stay; ``Conversation.current_leaf`` is the end of the
branch the owner is looking at.

An answer's ``status`` changes only through ``webapp/chat/answers.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models


class Conversation(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    system_prompt = models.TextField(blank=True)
    temperature = models.FloatField(default=0.7)
    top_p = models.FloatField(default=0.95)
    max_tokens = models.PositiveIntegerField(default=512)
    current_leaf = models.ForeignKey("Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["owner", "archived", "-updated_at"], name="chat_conv_owner_recent"),
            GinIndex(SearchVector("title", config="simple"), name="chat_conv_title_search"),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        QUEUED = "queued"
        GENERATING = "generating"
        COMPLETE = "complete"
        INTERRUPTED = "interrupted"
        FAILED = "failed"

    IN_FLIGHT = (Status.QUEUED, Status.GENERATING)

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    # The number of the last streamed delta that ``content`` includes; sockets replay
    # the saved text and then forward only later deltas.
    seq = models.PositiveIntegerField(default=0)
    model_name = models.CharField(max_length=200, blank=True)
    settings = models.JSONField(default=dict, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    time_to_first_token_ms = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)
    trimmed_messages = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    stop_requested = models.BooleanField(default=False)
    # The advisory-lock key of the generation worker holding this message; the reaper
    # interrupts messages whose worker no longer holds its lock (it died).
    worker_key = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="chat_msg_status_created"),
            GinIndex(SearchVector("content", config="simple"), name="chat_msg_content_search"),
        ]

    def __str__(self) -> str:
        return f"{self.role} message {self.pk}"

    @property
    def in_flight(self) -> bool:
        return self.status in self.IN_FLIGHT

    @property
    def feedback_or_none(self) -> Feedback | None:
        try:
            return self.feedback
        except Feedback.DoesNotExist:
            return None

    @property
    def grounding_or_none(self) -> AnswerGrounding | None:
        try:
            return self.grounding
        except AnswerGrounding.DoesNotExist:
            return None


class Feedback(models.Model):
    """A user's thumbs up or down, with an optional comment, on one answer."""

    class Rating(models.IntegerChoices):
        UP = 1, "thumbs up"
        DOWN = -1, "thumbs down"

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_feedback")
    rating = models.SmallIntegerField(choices=Rating.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.get_rating_display()} on message {self.message_id}"


class SharedConversation(models.Model):
    """A read-only copy of a conversation's shown branch, as it was when shared, behind an
    unguessable token. Later messages, edits or a deletion of the conversation never
    change it; only its owner's revocation ends it."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shared_conversations")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="shares"
    )
    token = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=200, blank=True)
    # [{"role", "content", "status", "model_name", "created"}, …], the branch in order
    messages = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["owner", "revoked_at", "-created_at"], name="chat_share_owner_recent")]

    def __str__(self) -> str:
        return self.title or f"Shared conversation {self.pk}"


class ConversationDocument(models.Model):
    """A document of the owner's that a conversation asks about; goes with either."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="attachments")
    document = models.ForeignKey("documents.Document", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "document"], name="chat_one_attachment_per_document")
        ]

    def __str__(self) -> str:
        return f"document {self.document_id} of conversation {self.conversation_id}"


class AnswerGrounding(models.Model):
    """What an answer was given from its conversation's documents, fixed when it started:
    the block of the system prompt the model saw, and the passages shown as its sources
    (copied, so an answer keeps its sources as they were)."""

    class Mode(models.TextChoices):
        WHOLE = "whole", "the whole documents"
        PASSAGES = "passages", "the passages found"
        UNSUPPORTED = "unsupported", "no passage answers the question"
        UNREAD = "unread", "no attached document is read yet"

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="grounding")
    mode = models.CharField(max_length=16, choices=Mode.choices)
    # [{"number", "passage_id", "document_id", "document_name", "page", "heading", "text", "similarity"}, …]
    sources = models.JSONField(default=list, blank=True)
    # Names of attached documents still being read, which the answer could not use.
    unread = models.JSONField(default=list, blank=True)
    context = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.mode} grounding of message {self.message_id}"
