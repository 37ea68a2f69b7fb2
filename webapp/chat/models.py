"""Conversations and their messages, and the projects that group a user's conversations.

Messages form a tree: a user message's parent is the answer before it, an answer's
parent is the user message it answers. Editing a user message or regenerating an answer
adds a sibling, so earlier versions stay; ``Conversation.current_leaf`` is the end of the
branch the owner is looking at.

An answer's ``status`` changes only through ``webapp/chat/answers.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import QuerySet
from django.db.models.functions import Lower

PROJECT_NAME_MAX_LENGTH = 100


class Project(models.Model):
    """A folder of one user's conversations, holding what new conversations in it start with
    (``services.conversation_inheritance``): a system prompt, a model and documents to ask
    about. Its name is unique per owner, whatever the case."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_projects")
    name = models.CharField(max_length=PROJECT_NAME_MAX_LENGTH)
    system_prompt = models.TextField(blank=True)
    # a name in the model registry, as Conversation.model; "" leaves new chats on the
    # installation's default. The database's default keeps inserts of older code working.
    model = models.CharField(max_length=100, blank=True, default="", db_default="")
    # the owner's documents new chats in it are attached to; a deleted document leaves the
    # project with it (the through rows cascade)
    documents = models.ManyToManyField("documents.Document", blank=True, related_name="+")
    # the owner's collections new chats in it are attached to, as its documents are
    collections = models.ManyToManyField("documents.Collection", blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = [Lower("name"), "pk"]
        constraints = [models.UniqueConstraint("owner", Lower("name"), name="chat_project_owner_name_unique")]

    def __str__(self) -> str:
        return self.name


class Conversation(models.Model):
    class Origin(models.TextChoices):
        CHAT = "chat", "chat page"
        API = "api", "API request"

    class TitleSource(models.TextChoices):
        """Who wrote the title. Only a fallback title (the first words of the first message)
        is replaced by the model's; the model's and the user's are never overwritten by it."""

        FALLBACK = "fallback"
        MODEL = "model"
        USER = "user"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    # the database's own default lets code that predates the column insert conversations
    title_source = models.CharField(
        max_length=16, choices=TitleSource.choices, default=TitleSource.FALLBACK, db_default=TitleSource.FALLBACK
    )
    system_prompt = models.TextField(blank=True)
    temperature = models.FloatField(default=0.7)
    top_p = models.FloatField(default=0.95)
    max_tokens = models.PositiveIntegerField(default=512)
    # the chat model's name in the registry (settings.PARLEY_INFERENCE.models); "" follows
    # the installation's default, whichever it is when an answer is queued. The database's
    # own default lets code that predates the column (a migration's model of then, a
    # process still running the previous release) insert conversations.
    model = models.CharField(max_length=100, blank=True, default="", db_default="")
    current_leaf = models.ForeignKey("Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    archived = models.BooleanField(default=False)
    # Deleting a project never deletes its conversations (``services.project_delete``
    # moves or releases them first; SET_NULL is the backstop).
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations")
    # When it was pinned: pinned conversations lead the sidebar, the latest pinned first.
    pinned_at = models.DateTimeField(null=True, blank=True)
    # Where it was started: a request to /v1 (webapp/api) is kept as a conversation of its
    # own, so it is generated, limited, reviewed and exported like a chat, but the chat
    # sidebar lists only the chat page's.
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.CHAT, db_default=Origin.CHAT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["owner", "archived", "-updated_at"], name="chat_conv_owner_recent"),
            # the sidebar: each project's conversations (and those in none), latest first
            models.Index(fields=["owner", "archived", "project", "-updated_at"], name="chat_conv_sidebar"),
            models.Index(
                fields=["owner", "-pinned_at"], condition=models.Q(pinned_at__isnull=False), name="chat_conv_pinned"
            ),
            GinIndex(SearchVector("title", config="simple"), name="chat_conv_title_search"),
        ]

    def __str__(self) -> str:
        return conversation_name(pk=self.pk, title=self.title)


def conversation_name(*, pk: int | None, title: str) -> str:
    """What a conversation is called on the page: its title, or its number until it has one."""
    return title or f"Conversation {pk}"


class MessageManager(models.Manager["Message"]):
    def get_queryset(self) -> QuerySet[Message]:
        # the search document is for the search's WHERE clause; no page or worker reads it
        return super().get_queryset().defer("search_document")


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
    # The words of ``content``, kept by Postgres as the text changes (webapp/chat/search.py).
    # Stored rather than an index on the expression: a search for a common word checks
    # the rows it walks against this, where the expression parsed every message's text
    # again, seconds for a long history (``python -m bench.search``).
    search_document = models.GeneratedField(
        expression=SearchVector("content", config="simple"), output_field=SearchVectorField(), db_persist=True
    )

    objects = MessageManager()

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="chat_msg_status_created"),
            GinIndex(fields=["search_document"], name="chat_msg_search_document"),
            # newest first: a search for a common word walks this and stops at a page
            models.Index(fields=["-created_at", "-id"], name="chat_msg_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.role} message {self.pk}"

    @property
    def in_flight(self) -> bool:
        return self.status in self.IN_FLIGHT

    @property
    def asked_model(self) -> str:
        """The registry's name of the model this answer was asked of (answers queued before
        the registry recorded none: the installation's default)."""
        return str(self.settings.get("model") or settings.PARLEY_INFERENCE.models.default)

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


class ConversationCollection(models.Model):
    """A collection of the owner's that a conversation asks about: each question is
    answered from the documents the collection holds when it is asked."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="collection_attachments")
    collection = models.ForeignKey("documents.Collection", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "collection"], name="chat_one_attachment_per_collection")
        ]

    def __str__(self) -> str:
        return f"collection {self.collection_id} of conversation {self.conversation_id}"


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
