"""Everything chat does, for views, the websocket consumer and the generation worker.

Every lookup that starts from a request is scoped to its owner: another user's
conversation or message is simply not found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from webapp.accounts.models import User
from webapp.chat.models import Conversation, Feedback, Message
from webapp.core.events import publish
from webapp.review import services as review

NOTIFY_CHANNEL = "parley_chat"
TITLE_LENGTH = 60


class ChatError(Exception):
    """A request chat refuses; the message is shown to the user as it is."""


@dataclass(frozen=True)
class ThreadEntry:
    """One message on the branch being shown, with its place among its versions."""

    message: Message
    version: int  # 1-based
    versions: int
    previous_id: int | None
    next_id: int | None


# ---- lookups, always scoped to the owner ----------------------------------------------


def conversations_for(user: User, *, query: str = "", archived: bool = False) -> QuerySet[Conversation]:
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


def conversation_get(user: User, conversation_id: Any) -> Conversation:
    try:
        return Conversation.objects.get(pk=int(conversation_id), owner=user)
    except (Conversation.DoesNotExist, TypeError, ValueError):
        raise Http404("No such conversation.") from None


def message_get(user: User, message_id: Any, *, conversation: Conversation | None = None) -> Message:
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


def thread(conversation: Conversation) -> list[ThreadEntry]:
    """The messages from the first one to ``current_leaf``, each with its versions."""
    # feedback joined in: the thread shows each answer's thumbs (one query, not one per answer)
    messages = list(conversation.messages.select_related("feedback").order_by("created_at", "pk"))
    by_id = {m.pk: m for m in messages}
    siblings: dict[tuple[int | None, str], list[Message]] = {}
    for message in messages:
        siblings.setdefault((message.parent_id, message.role), []).append(message)
    leaf = by_id.get(conversation.current_leaf_id) if conversation.current_leaf_id else None
    if leaf is None and messages:
        leaf = _latest_leaf(messages[0], messages)
    path: list[Message] = []
    while leaf is not None:
        path.append(leaf)
        leaf = by_id.get(leaf.parent_id) if leaf.parent_id else None
    return [_entry(message, siblings[(message.parent_id, message.role)]) for message in reversed(path)]


def thread_entries(conversation: Conversation, messages: list[Message]) -> list[ThreadEntry]:
    """Just these messages of the shown branch, as ``thread`` would give them, from one
    query for their versions rather than the whole conversation."""
    versions_of = Q()
    for message in messages:
        parent = Q(parent_id=message.parent_id) if message.parent_id else Q(parent__isnull=True)
        versions_of |= parent & Q(role=message.role)
    siblings: dict[tuple[int | None, str], list[Message]] = {}
    by_id: dict[int, Message] = {}
    for version in conversation.messages.select_related("feedback").filter(versions_of).order_by("created_at", "pk"):
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


def _latest_leaf(start: Message, messages: Iterable[Message]) -> Message:
    children: dict[int, list[Message]] = {}
    for message in messages:
        if message.parent_id is not None:
            children.setdefault(message.parent_id, []).append(message)
    node = start
    while node.pk in children:
        node = max(children[node.pk], key=lambda m: (m.created_at, m.pk))
    return node


def branch_switch(message: Message) -> None:
    """Show the version ``message`` and, below it, its most recent continuation."""
    conversation = message.conversation
    leaf = _latest_leaf(message, conversation.messages.all())
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=leaf)
    conversation.current_leaf = leaf


def context_for(answer: Message) -> list[dict[str, str]]:
    """The chat messages a model sees for ``answer``: the system prompt and the branch above it."""
    return contexts_for([answer])[answer.pk]


def contexts_for(answers: list[Message]) -> dict[int, list[dict[str, str]]]:
    """``context_for`` of several answers (their conversations loaded), from one query."""
    conversations = {answer.conversation_id: answer.conversation for answer in answers}
    by_id = {
        m.pk: m
        for m in Message.objects.filter(conversation_id__in=conversations).only(
            "pk", "parent_id", "role", "content", "status"
        )
    }
    contexts = {}
    for answer in answers:
        system_prompt = conversations[answer.conversation_id].system_prompt
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


# ---- sending, regenerating, editing -------------------------------------------------------


def title_from(content: str) -> str:
    words = re.sub(r"\s+", " ", content).strip()
    return words if len(words) <= TITLE_LENGTH else words[: TITLE_LENGTH - 1].rstrip() + "…"


def check_content(content: str) -> str:
    limit = settings.PARLEY_CHAT_MAX_MESSAGE_CHARS
    if not content.strip():
        raise ChatError("Write a message first.")
    if len(content) > limit:
        raise ChatError(f"That message is {len(content):,} characters long; the limit is {limit:,}.")
    return content


def conversation_start(user: User, content: str) -> tuple[Conversation, Message]:
    """A new conversation with its first message; the answer is queued."""
    check_content(content)
    with transaction.atomic():
        _lock_user_and_check(user.pk)
        conversation = Conversation.objects.create(owner=user, title=title_from(content))
        question = Message.objects.create(conversation=conversation, role=Message.Role.USER, content=content)
        answer = _enqueue_answer(conversation, question.pk)
    return conversation, answer


def message_send(conversation: Conversation, content: str) -> Message:
    """Add a user message at the end of the shown branch and queue its answer."""
    check_content(content)
    with transaction.atomic():
        conversation = _lock_conversation(conversation)
        question = Message.objects.create(
            conversation=conversation, parent_id=conversation.current_leaf_id, role=Message.Role.USER, content=content
        )
        if not conversation.title:
            conversation.title = title_from(content)
            conversation.save(update_fields=["title", "updated_at"])
        answer = _enqueue_answer(conversation, question.pk)
        answer.parent = question
        return answer


def message_regenerate(answer: Message) -> Message:
    """A new version of an answer, next to the old one."""
    if answer.role != Message.Role.ASSISTANT or answer.parent_id is None:
        raise ChatError("Only an answer can be regenerated.")
    with transaction.atomic():
        conversation = _lock_conversation(answer.conversation)
        return _enqueue_answer(conversation, answer.parent_id)


def message_edit(question: Message, content: str) -> Message:
    """A new version of a user message (a new branch) and its answer."""
    if question.role != Message.Role.USER:
        raise ChatError("Only your own messages can be edited.")
    check_content(content)
    with transaction.atomic():
        conversation = _lock_conversation(question.conversation)
        edited = Message.objects.create(
            conversation=conversation, parent=question.parent, role=Message.Role.USER, content=content
        )
        return _enqueue_answer(conversation, edited.pk)


def _lock_conversation(conversation: Conversation) -> Conversation:
    """Lock the owner, then the conversation, and refuse when an answer is already on its way."""
    _lock_user_and_check(conversation.owner_id, conversation.pk)
    return Conversation.objects.select_for_update().get(pk=conversation.pk)


def _lock_user_and_check(user_id: int, conversation_id: int | None = None) -> None:
    # Locking the user row serialises one user's sends, so the in-flight limit holds
    # even when two tabs send at the same moment.
    User.objects.select_for_update().only("pk").get(pk=user_id)
    limit = settings.PARLEY_CHAT_MAX_IN_FLIGHT_PER_USER
    busy = list(
        Message.objects.filter(conversation__owner_id=user_id, status__in=Message.IN_FLIGHT).values_list(
            "conversation_id", flat=True
        )
    )
    if len(busy) >= limit:
        raise ChatError(
            f"You already have {len(busy)} answers being written (the limit is {limit}). Wait for one to finish."
        )
    if conversation_id in busy:
        raise ChatError("An answer is still being written in this conversation. Wait for it or press Stop.")


def _enqueue_answer(conversation: Conversation, question_id: int) -> Message:
    answer = Message.objects.create(
        conversation=conversation,
        parent_id=question_id,
        role=Message.Role.ASSISTANT,
        status=Message.Status.QUEUED,
        settings=generation_settings(conversation),
    )
    conversation.current_leaf = answer
    conversation.save(update_fields=["current_leaf", "updated_at"])
    notify_worker(f"queued:{answer.pk}")
    transaction.on_commit(lambda: publish(conversation.group_name, {"type": "chat.created", "message": answer.pk}))
    return answer


def generation_settings(conversation: Conversation) -> dict[str, Any]:
    return {
        "temperature": conversation.temperature,
        "top_p": conversation.top_p,
        "max_tokens": conversation.max_tokens,
        "system_prompt": conversation.system_prompt,
    }


def message_stop(answer: Message) -> bool:
    """Ask for an answer to stop; returns False when it had already finished."""
    if answer.role != Message.Role.ASSISTANT:
        raise ChatError("Only an answer can be stopped.")
    with transaction.atomic():
        # Not yet claimed by a worker: it stops here, empty.
        if Message.objects.filter(pk=answer.pk, status=Message.Status.QUEUED).update(
            status=Message.Status.INTERRUPTED, stop_requested=True
        ):
            transaction.on_commit(
                lambda: publish(
                    answer.conversation.group_name,
                    {"type": "chat.status", "message": answer.pk, "status": "interrupted", "content": "", "seq": 0},
                )
            )
            return True
        if Message.objects.filter(pk=answer.pk, status=Message.Status.GENERATING).update(stop_requested=True):
            notify_worker(f"stop:{answer.pk}")  # delivered at commit; the worker also polls stop_requested
            return True
    return False


# ---- conversation management ------------------------------------------------------------


def conversation_rename(conversation: Conversation, title: str) -> None:
    title = re.sub(r"\s+", " ", title).strip()
    if not title:
        raise ChatError("A title cannot be empty.")
    if len(title) > 200:
        raise ChatError("A title can be at most 200 characters long.")
    conversation.title = title
    conversation.save(update_fields=["title", "updated_at"])


def conversation_set_archived(conversation: Conversation, archived: bool) -> None:
    conversation.archived = archived
    conversation.save(update_fields=["archived", "updated_at"])


def conversation_delete(conversation: Conversation) -> None:
    with transaction.atomic():
        ids = list(conversation.messages.filter(status=Message.Status.GENERATING).values_list("pk", flat=True))
        for message_id in ids:
            notify_worker(f"stop:{message_id}")
        conversation.delete()


def conversation_update_settings(conversation: Conversation, **values: Any) -> None:
    for field, value in values.items():
        setattr(conversation, field, value)
    conversation.save(update_fields=[*values, "updated_at"])


def feedback_set(answer: Message, user: User, rating: int, comment: str) -> Feedback:
    if answer.role != Message.Role.ASSISTANT:
        raise ChatError("Feedback is for answers.")
    if rating not in (Feedback.Rating.UP, Feedback.Rating.DOWN):
        raise ChatError("Pick thumbs up or thumbs down.")
    if len(comment) > 2000:
        raise ChatError("A comment can be at most 2,000 characters long.")
    with transaction.atomic():
        feedback, _ = Feedback.objects.update_or_create(
            message=answer, defaults={"user": user, "rating": rating, "comment": comment.strip()}
        )
        review.feedback_sync(message_id=answer.pk)  # the review queue sorts by it
    return feedback


# ---- the queue as users see it ------------------------------------------------------------


def queue_position(answer: Message) -> int:
    """1-based place of a queued answer among all queued answers; 0 when not queued."""
    if answer.status != Message.Status.QUEUED:
        return 0
    return (
        Message.objects.filter(status=Message.Status.QUEUED, role=Message.Role.ASSISTANT)
        .filter(Q(created_at__lt=answer.created_at) | Q(created_at=answer.created_at, pk__lt=answer.pk))
        .count()
        + 1
    )


# ---- signals to other processes -------------------------------------------------------------


def notify_worker(payload: str) -> None:
    """Wake the generation workers. Postgres delivers it when the transaction commits."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, payload])


def worker_notifications() -> psycopg.Connection[Any]:
    """A connection of its own (not Django's, which a request or a transaction may hold),
    in autocommit, listening to what ``notify_worker`` sends."""
    # Django's own cursor class and adapters are not wanted on this raw connection.
    params = {
        key: value
        for key, value in connection.get_connection_params().items()
        if key not in ("cursor_factory", "context", "prepare_threshold")
    }
    listener = psycopg.connect(**params, autocommit=True)
    listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
    return listener


def session_group(session_key: str) -> str:
    return f"chat.session.{session_key}"
