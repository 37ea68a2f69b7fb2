"""Reads of chat, for views, the websocket consumer, the generation worker and review.

Nothing here writes. Every lookup that starts from a request is scoped to its owner:
another user's conversation or message is simply not found. The one exception is an
open share link (``share_get``), which its token alone opens, as its owner intended.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from inference.prompts import system_with_documents
from webapp.accounts.models import User
from webapp.chat.models import AnswerGrounding, Conversation, Message, SharedConversation

# The most queued answers whose place the worker publishes while it is full.
QUEUE_POSITIONS_PUBLISHED = 500


@dataclass(frozen=True)
class ThreadEntry:
    """One message on the branch being shown, with its place among its versions."""

    message: Message
    version: int  # 1-based
    versions: int
    previous_id: int | None
    next_id: int | None


# ---- lookups, always scoped to the owner ----------------------------------------------


def conversations_for(*, user: User, query: str = "", archived: bool = False) -> QuerySet[Conversation]:
    conversations = Conversation.objects.filter(owner=user, archived=archived)
    query = query.strip()
    if query:
        search = SearchQuery(query, config="simple", search_type="websearch")
        matching_messages = (
            Message.objects.filter(conversation=OuterRef("pk"))
            .annotate(document=SearchVector("content", config="simple"))
            .filter(document=search)
        )
        conversations = conversations.annotate(title_document=SearchVector("title", config="simple")).filter(
            Q(title_document=search) | Exists(matching_messages)
        )
    return conversations.order_by("-updated_at")


def conversation_get(*, user: User, conversation_id: Any) -> Conversation:
    try:
        return Conversation.objects.get(pk=int(conversation_id), owner=user)
    except (Conversation.DoesNotExist, TypeError, ValueError):
        raise Http404("No such conversation.") from None


def message_get(*, user: User, message_id: Any, conversation: Conversation | None = None) -> Message:
    """``conversation``, when given, is the user's own (from ``conversation_get``)."""
    if conversation is not None:
        messages = Message.objects.filter(conversation=conversation)
    else:
        messages = Message.objects.select_related("conversation").filter(conversation__owner=user)
    try:
        message = messages.get(pk=int(message_id))
    except (Message.DoesNotExist, TypeError, ValueError):
        raise Http404("No such message.") from None
    if conversation is not None:
        message.conversation = conversation
    return message


# ---- the branch being shown ------------------------------------------------------------


def thread(*, conversation: Conversation) -> list[ThreadEntry]:
    """The messages from the first one to ``current_leaf``, each with its versions."""
    # feedback joined in: the thread shows each answer's thumbs (one query, not one per answer)
    messages = list(conversation.messages.select_related("feedback", "grounding").order_by("created_at", "pk"))
    by_id = {m.pk: m for m in messages}
    siblings: dict[tuple[int | None, str], list[Message]] = {}
    for message in messages:
        siblings.setdefault((message.parent_id, message.role), []).append(message)
    leaf = by_id.get(conversation.current_leaf_id) if conversation.current_leaf_id else None
    if leaf is None and messages:
        leaf = latest_leaf(start=messages[0], messages=messages)
    path: list[Message] = []
    while leaf is not None:
        path.append(leaf)
        leaf = by_id.get(leaf.parent_id) if leaf.parent_id else None
    return [_entry(message, siblings[(message.parent_id, message.role)]) for message in reversed(path)]


def thread_entries(*, conversation: Conversation, messages: list[Message]) -> list[ThreadEntry]:
    """Just these messages of the shown branch, as ``thread`` would give them, from one
    query for their versions rather than the whole conversation."""
    versions_of = Q()
    for message in messages:
        parent = Q(parent_id=message.parent_id) if message.parent_id else Q(parent__isnull=True)
        versions_of |= parent & Q(role=message.role)
    siblings: dict[tuple[int | None, str], list[Message]] = {}
    by_id: dict[int, Message] = {}
    for version in (
        conversation.messages.select_related("feedback", "grounding").filter(versions_of).order_by("created_at", "pk")
    ):
        version.conversation = conversation
        siblings.setdefault((version.parent_id, version.role), []).append(version)
        by_id[version.pk] = version
    return [_entry(by_id[m.pk], siblings[(m.parent_id, m.role)]) for m in messages]


def _entry(message: Message, versions: list[Message]) -> ThreadEntry:
    index = versions.index(message)
    return ThreadEntry(
        message=message,
        version=index + 1,
        versions=len(versions),
        previous_id=versions[index - 1].pk if index > 0 else None,
        next_id=versions[index + 1].pk if index + 1 < len(versions) else None,
    )


def latest_leaf(*, start: Message, messages: Iterable[Message]) -> Message:
    """The most recent continuation of ``start`` among ``messages`` (``start`` if none)."""
    children: dict[int, list[Message]] = {}
    for message in messages:
        if message.parent_id is not None:
            children.setdefault(message.parent_id, []).append(message)
    node = start
    while node.pk in children:
        node = max(children[node.pk], key=lambda m: (m.created_at, m.pk))
    return node


# ---- what the model sees ---------------------------------------------------------------


def context_for(*, answer: Message) -> list[dict[str, str]]:
    """The chat messages a model sees for ``answer``: the system prompt and the branch above it."""
    return contexts_for(answers=[answer])[answer.pk]


def contexts_for(*, answers: list[Message]) -> dict[int, list[dict[str, str]]]:
    """``context_for`` of several answers (their conversations loaded), from one query."""
    conversations = {answer.conversation_id: answer.conversation for answer in answers}
    by_id = {
        m.pk: m
        # with what each answer was given of its conversation's documents, in the same query
        for m in Message.objects.filter(conversation_id__in=conversations)
        .select_related("grounding")
        .only("pk", "parent_id", "role", "content", "status", "grounding__context")
    }
    contexts = {}
    for answer in answers:
        grounding = by_id[answer.pk].grounding_or_none if answer.pk in by_id else None
        system_prompt = system_with_documents(
            conversations[answer.conversation_id].system_prompt, grounding.context if grounding else ""
        )
        context = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
        path: list[Message] = []
        node = by_id.get(answer.parent_id) if answer.parent_id else None
        while node is not None:
            path.append(node)
            node = by_id.get(node.parent_id) if node.parent_id else None
        for message in reversed(path):
            # a failed or empty answer says nothing to the model
            if message.role == Message.Role.ASSISTANT and (
                message.status == Message.Status.FAILED or not message.content
            ):
                continue
            context.append({"role": message.role, "content": message.content})
        contexts[answer.pk] = context
    return contexts


def documents_context(*, answer_ids: list[int]) -> dict[int, str]:
    """What each of these answers was given of its conversation's documents (``webapp.chat.documents``)."""
    return dict(AnswerGrounding.objects.filter(message_id__in=answer_ids).values_list("message_id", "context"))


# ---- answers in flight, and the queue as users see it ------------------------------------


def answers_with_conversations(*, message_ids: list[int]) -> list[Message]:
    """These answers in this order, their conversations loaded; any since deleted left out."""
    found = Message.objects.select_related("conversation").in_bulk(message_ids)
    return [found[message_id] for message_id in message_ids if message_id in found]


def user_busy_conversations(*, user_id: int) -> list[int]:
    """The conversation of each of the user's answers queued or being written (one per answer)."""
    return list(
        Message.objects.filter(conversation__owner_id=user_id, status__in=Message.IN_FLIGHT).values_list(
            "conversation_id", flat=True
        )
    )


def generating_ids(*, conversation: Conversation) -> list[int]:
    return list(conversation.messages.filter(status=Message.Status.GENERATING).values_list("pk", flat=True))


def stop_requested_ids(*, message_ids: list[int]) -> list[int]:
    """Those of these answers whose Stop was pressed."""
    return list(Message.objects.filter(pk__in=message_ids, stop_requested=True).values_list("pk", flat=True))


def queue_position(*, answer: Message) -> int:
    """1-based place of a queued answer among all queued answers; 0 when not queued."""
    if answer.status != Message.Status.QUEUED:
        return 0
    return (
        Message.objects.filter(status=Message.Status.QUEUED, role=Message.Role.ASSISTANT)
        .filter(Q(created_at__lt=answer.created_at) | Q(created_at=answer.created_at, pk__lt=answer.pk))
        .count()
        + 1
    )


def queue_positions(*, limit: int = QUEUE_POSITIONS_PUBLISHED) -> list[tuple[int, int, int]]:
    """(answer id, conversation id, 1-based place) of the oldest ``limit`` queued answers."""
    waiting = Message.objects.filter(status=Message.Status.QUEUED, role=Message.Role.ASSISTANT).order_by(
        "created_at", "pk"
    )
    return [
        (message_id, conversation_id, position)
        for position, (message_id, conversation_id) in enumerate(
            waiting.values_list("pk", "conversation_id")[:limit], start=1
        )
    ]


def in_flight_answers(*, conversation: Conversation) -> list[Message]:
    """The conversation's answers queued or being written, each with its ``position``."""
    answers = list(conversation.messages.filter(status__in=Message.IN_FLIGHT, role=Message.Role.ASSISTANT))
    for answer in answers:
        answer.position = queue_position(answer=answer)  # type: ignore[attr-defined]
    return answers


def saved_answer(*, conversation: Conversation, message_id: int) -> Message | None:
    """One message of the conversation as saved, with its ``position``; None if it went."""
    answer = conversation.messages.filter(pk=message_id).first()
    if answer is not None:
        answer.position = queue_position(answer=answer)  # type: ignore[attr-defined]
    return answer


# ---- exports -----------------------------------------------------------------------------


def conversation_messages(*, conversation: Conversation) -> list[Message]:
    """Every message of the conversation, every branch, oldest first."""
    return list(conversation.messages.order_by("created_at", "pk"))


# ---- share links ---------------------------------------------------------------------------


def shares_for(*, user: User) -> QuerySet[SharedConversation]:
    """The user's share links still open, newest first."""
    return SharedConversation.objects.filter(owner=user, revoked_at__isnull=True).order_by("-created_at", "-pk")


def share_get(*, token: str) -> SharedConversation:
    """The open share behind ``token``, for whoever holds the link.

    A revoked token and one that never existed are the same 404, so a link tells
    nothing about whether it once worked.
    """
    try:
        return SharedConversation.objects.get(token=token, revoked_at__isnull=True)
    except SharedConversation.DoesNotExist:
        raise Http404("No such shared conversation.") from None


def share_get_owned(*, user: User, token: str) -> SharedConversation:
    """One of the user's own shares, revoked or not; anyone else's is not found."""
    try:
        return SharedConversation.objects.get(token=token, owner=user)
    except SharedConversation.DoesNotExist:
        raise Http404("No such shared conversation.") from None
