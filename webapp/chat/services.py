"""What a user does in chat: send, regenerate, edit, stop, switch branch, rename, archive,
delete, change settings, give feedback, share a snapshot and revoke it, import conversations,
keep projects and move conversations into them, pin conversations; and the title the model
gives a conversation, which never replaces the user's.

Views and the websocket consumer validate the input and look the objects up scoped to
the user (``selectors``); these functions check what only the database can tell (the
in-flight limit, the daily token budget), write in one transaction, and leave an answer's state changes to
``answers``. A refusal is a ``ChatError`` whose message is shown to the user as it is.
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from webapp.accounts.models import User
from webapp.accounts.usage import budget_refusal
from webapp.chat import documents, events, selectors
from webapp.chat.answers import Send, answer_enqueue, answer_interrupt, answers_import
from webapp.chat.imports import ImportPlan, ImportRefused
from webapp.chat.models import PROJECT_NAME_MAX_LENGTH, Conversation, Feedback, Message, Project, SharedConversation
from webapp.chat.notify import notify_worker
from webapp.core.events import publish
from webapp.core.names import tidied_name
from webapp.documents import quotas
from webapp.documents.models import Collection, Document
from webapp.review import services as review

TITLE_LENGTH = 60
TITLE_MAX_LENGTH = 200
# 32 random bytes: a share's URL is its only secret, so it cannot be guessed or enumerated.
SHARE_TOKEN_BYTES = 32


class ChatError(Exception):
    """A request chat refuses; the message is shown to the user as it is."""


class InFlightLimitError(ChatError):
    """The user already has as many answers being written as they may: one must end first."""


class BudgetExceededError(ChatError):
    """The user has spent today's tokens (``PARLEY_USER_DAILY_TOKENS``): nothing more today."""


# ---- sending, regenerating, editing -------------------------------------------------------


def title_from(*, content: str) -> str:
    words = re.sub(r"\s+", " ", content).strip()
    return words if len(words) <= TITLE_LENGTH else words[: TITLE_LENGTH - 1].rstrip() + "…"


def check_content(*, content: str) -> str:
    limit = settings.PARLEY_CHAT_MAX_MESSAGE_CHARS
    if not content.strip():
        raise ChatError("Write a message first.")
    if len(content) > limit:
        raise ChatError(f"That message is {len(content):,} characters long; the limit is {limit:,}.")
    return content


def conversation_start(
    *,
    owner: User,
    content: str,
    project: Project | None = None,
    document_ids: Iterable[int] = (),
    collection_ids: Iterable[int] = (),
) -> tuple[Conversation, Message]:
    """A new conversation with its first message, in ``project`` (the owner's own) when
    given and starting with what it holds (``conversation_inheritance``), and asking about
    the owner's documents ``document_ids`` and collections ``collection_ids`` besides
    (chosen in the composer; another's is refused); the answer is queued."""
    check_content(content=content)
    inheritance = conversation_inheritance(project=project)
    with transaction.atomic():
        _lock_user_and_check(user_id=owner.pk)
        chosen_documents = _owned_documents(owner_id=owner.pk, document_ids=document_ids)
        chosen_collections = _owned_collections(owner_id=owner.pk, collection_ids=collection_ids)
        conversation = Conversation.objects.create(owner=owner, title=title_from(content=content), **inheritance.fields)
        documents.documents_attach(
            conversation=conversation, document_ids=[*inheritance.document_ids, *chosen_documents]
        )
        documents.collections_attach(
            conversation=conversation, collection_ids=[*inheritance.collection_ids, *chosen_collections]
        )
        question = Message.objects.create(conversation=conversation, role=Message.Role.USER, content=content)
        answer = answer_enqueue(conversation=conversation, question_id=question.pk)
    return conversation, answer


@dataclass(frozen=True)
class Turn:
    """One message of a conversation handed over whole (an API request's ``messages``)."""

    role: str  # Message.Role: user or assistant
    content: str


def conversation_start_from_turns(
    *,
    owner: User,
    origin: str,
    system_prompt: str,
    turns: list[Turn],
    temperature: float,
    top_p: float,
    max_tokens: int,
    model: str = "",
    stop: tuple[str, ...] = (),
) -> tuple[Conversation, Message]:
    """A new conversation holding ``turns`` (the last a question), with its answer queued
    under the same in-flight limit as a send. The turns are stored as messages that ended
    long ago, so the model sees them as it would a conversation's own history."""
    if not turns or turns[-1].role != Message.Role.USER:
        raise ChatError("The last message must be the user's.")
    with transaction.atomic():
        _lock_user_and_check(user_id=owner.pk)
        conversation = Conversation.objects.create(
            owner=owner,
            origin=origin,
            title=title_from(content=turns[-1].content),
            system_prompt=system_prompt,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            model=model,
        )
        parent_id: int | None = None
        for turn in turns:
            parent_id = Message.objects.create(
                conversation=conversation, parent_id=parent_id, role=turn.role, content=turn.content
            ).pk
        assert parent_id is not None
        answer = answer_enqueue(conversation=conversation, question_id=parent_id, stop=stop)
    return conversation, answer


def message_send(*, conversation: Conversation, content: str) -> Message:
    """Add a user message at the end of the shown branch and queue its answer."""
    check_content(content=content)
    with transaction.atomic():
        conversation = _lock_conversation(conversation)
        question = Message.objects.create(
            conversation=conversation, parent_id=conversation.current_leaf_id, role=Message.Role.USER, content=content
        )
        if not conversation.title:
            conversation.title = title_from(content=content)
            conversation.save(update_fields=["title", "updated_at"])
        answer = answer_enqueue(conversation=conversation, question_id=question.pk)
        answer.parent = question
        return answer


def message_regenerate(*, answer: Message) -> Message:
    """A new version of an answer, next to the old one."""
    if answer.role != Message.Role.ASSISTANT or answer.parent_id is None:
        raise ChatError("Only an answer can be regenerated.")
    with transaction.atomic():
        conversation = _lock_conversation(answer.conversation)
        return answer_enqueue(conversation=conversation, question_id=answer.parent_id)


def message_edit(*, question: Message, content: str) -> Message:
    """A new version of a user message (a new branch) and its answer."""
    if question.role != Message.Role.USER:
        raise ChatError("Only your own messages can be edited.")
    check_content(content=content)
    with transaction.atomic():
        conversation = _lock_conversation(question.conversation)
        edited = Message.objects.create(
            conversation=conversation, parent=question.parent, role=Message.Role.USER, content=content
        )
        return answer_enqueue(conversation=conversation, question_id=edited.pk)


def _lock_conversation(conversation: Conversation) -> Conversation:
    """Lock the owner, then the conversation, and refuse when an answer is already on its
    way or when the conversation's model is no longer offered."""
    _lock_user_and_check(user_id=conversation.owner_id, conversation_id=conversation.pk)
    locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if settings.PARLEY_INFERENCE.models.resolve(locked.model) is None:
        # refused rather than answered by another model than the one the user chose
        raise ChatError(
            f"This conversation's model, “{locked.model}”, is no longer offered here. "
            "Choose another in the conversation's settings to go on."
        )
    return locked


def _lock_user_and_check(*, user_id: int, conversation_id: int | None = None) -> None:
    # Locking the user row serialises one user's sends, so the in-flight limit holds
    # even when two tabs send at the same moment.
    User.objects.select_for_update().only("pk").get(pk=user_id)
    refusal = budget_refusal(user_id=user_id)
    if refusal is not None:
        raise BudgetExceededError(refusal)
    limit = settings.PARLEY_CHAT_MAX_IN_FLIGHT_PER_USER
    busy = selectors.user_busy_conversations(user_id=user_id)
    if len(busy) >= limit:
        raise InFlightLimitError(
            f"You already have {len(busy)} answers being written (the limit is {limit}). Wait for one to finish."
        )
    if conversation_id in busy:
        raise ChatError("An answer is still being written in this conversation. Wait for it or press Stop.")


def message_stop(*, answer: Message) -> bool:
    """Ask for an answer to stop; returns False when it had already finished."""
    if answer.role != Message.Role.ASSISTANT:
        raise ChatError("Only an answer can be stopped.")
    return answer_interrupt(answer=answer)


def branch_switch(*, message: Message) -> None:
    """Show the version ``message`` and, below it, its most recent continuation."""
    conversation = message.conversation
    leaf = selectors.latest_leaf(start=message, messages=conversation.messages.all())
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=leaf)
    conversation.current_leaf = leaf


# ---- conversation management ------------------------------------------------------------


def conversation_rename(*, conversation: Conversation, title: str) -> None:
    """The user's own title, which a title the model writes afterwards never replaces."""
    title = re.sub(r"\s+", " ", title).strip()
    if not title:
        raise ChatError("A title cannot be empty.")
    if len(title) > TITLE_MAX_LENGTH:
        raise ChatError(f"A title can be at most {TITLE_MAX_LENGTH} characters long.")
    conversation.title = title
    conversation.title_source = Conversation.TitleSource.USER
    conversation.save(update_fields=["title", "title_source", "updated_at"])


def conversation_title_by_model(*, conversation_id: int, title: str, send: Send = publish) -> bool:
    """The model's title for a conversation whose title is still the fallback; False (and
    nothing changed) when the user renamed it meanwhile, or it was deleted. The pages
    showing it are told when it commits."""
    with transaction.atomic():
        titled = bool(
            Conversation.objects.filter(pk=conversation_id, title_source=Conversation.TitleSource.FALLBACK).update(
                title=title[:TITLE_MAX_LENGTH], title_source=Conversation.TitleSource.MODEL
            )
        )
        if titled:
            group = events.conversation_group(conversation_id=conversation_id)
            frame = events.titled(title=title[:TITLE_MAX_LENGTH])
            transaction.on_commit(lambda: send(group, frame))
    return titled


def conversation_set_archived(*, conversation: Conversation, archived: bool) -> None:
    conversation.archived = archived
    conversation.save(update_fields=["archived", "updated_at"])


def conversation_delete(*, conversation: Conversation) -> None:
    with transaction.atomic():
        for message_id in selectors.generating_ids(conversation=conversation):
            notify_worker(payload=f"stop:{message_id}")  # its worker stops writing to a deleted row
        conversation.delete()


def conversation_update_settings(
    *,
    conversation: Conversation,
    model: str,
    system_prompt: str,
    temperature: float,
    top_p: float,
    max_tokens: int,
) -> None:
    """The settings the next answer is queued with (validated by the caller's form);
    answers already queued keep the ones they were queued with. ``model`` is a name in the
    registry, or "" for the installation's default."""
    _check_model(model)
    conversation.model = model
    conversation.system_prompt = system_prompt
    conversation.temperature = temperature
    conversation.top_p = top_p
    conversation.max_tokens = max_tokens
    conversation.save(update_fields=["model", "system_prompt", "temperature", "top_p", "max_tokens", "updated_at"])


def feedback_set(*, answer: Message, user: User, rating: int, comment: str) -> Feedback:
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


# ---- projects and pins --------------------------------------------------------------------


@dataclass(frozen=True)
class Inheritance:
    """What a new conversation made in a project starts with."""

    fields: dict[str, Any]  # the conversation's own: its project, system prompt and model
    document_ids: tuple[int, ...]  # the owner's documents it asks about
    collection_ids: tuple[int, ...] = ()  # and the owner's collections
    # what the project holds that the conversation cannot take, and what it gets instead
    notices: tuple[str, ...] = ()


def conversation_inheritance(*, project: Project | None) -> Inheritance:
    """What a new conversation made in ``project`` starts with, and its place in it.

    The one home of what a project hands down. Copied when the conversation is made, so a
    later change to the project leaves its existing conversations as they are. What the
    project holds may have changed under it since it was set, and never stops a chat:
    a model the registry no longer offers gives way to the installation's default (and
    ``notices`` says so); a deleted document or collection has already left the project; a
    document or collection that is not the owner's is never handed down (only the owner's
    are attached anywhere).
    """
    if project is None:
        return Inheritance(fields={}, document_ids=())
    registry = settings.PARLEY_INFERENCE.models
    model, notices = project.model, []
    if model and registry.get(model) is None:
        notices.append(
            f"The project's model “{model}” is no longer offered here, "
            f"so this chat uses the default model ({registry.default})."
        )
        model = ""
    document_ids = tuple(
        project.documents.filter(owner_id=project.owner_id).order_by("pk").values_list("pk", flat=True)
    )
    collection_ids = tuple(
        project.collections.filter(owner_id=project.owner_id).order_by("pk").values_list("pk", flat=True)
    )
    return Inheritance(
        fields={"project": project, "system_prompt": project.system_prompt, "model": model},
        document_ids=document_ids,
        collection_ids=collection_ids,
        notices=tuple(notices),
    )


def project_name(*, name: str) -> str:
    """``name`` with its spaces tidied, or a ``ChatError`` saying why it cannot be one."""
    return tidied_name(name, noun="project", max_length=PROJECT_NAME_MAX_LENGTH, error=ChatError)


def _check_name_free(*, owner_id: int, name: str, project_id: int | None = None) -> None:
    taken = Project.objects.filter(owner_id=owner_id, name__iexact=name)
    if project_id is not None:
        taken = taken.exclude(pk=project_id)
    if taken.exists():
        raise ChatError(f"You already have a project named “{name}”.")


def _check_model(model: str) -> None:
    if model and settings.PARLEY_INFERENCE.models.get(model) is None:
        raise ChatError(f"There is no model {model!r} here.")


def _owned_documents(*, owner_id: int, document_ids: Iterable[int]) -> list[int]:
    """Those of ``document_ids`` that are the owner's; another's are refused."""
    wanted = set(document_ids)
    owned = list(Document.objects.filter(owner_id=owner_id, pk__in=wanted).values_list("pk", flat=True))
    if len(owned) != len(wanted):
        raise ChatError("Choose among your own documents.")
    return owned


def _owned_collections(*, owner_id: int, collection_ids: Iterable[int]) -> list[int]:
    """Those of ``collection_ids`` that are the owner's; another's are refused."""
    wanted = set(collection_ids)
    owned = list(Collection.objects.filter(owner_id=owner_id, pk__in=wanted).values_list("pk", flat=True))
    if len(owned) != len(wanted):
        raise ChatError("Choose among your own collections.")
    return owned


def project_create(
    *,
    owner: User,
    name: str,
    system_prompt: str = "",
    model: str = "",
    document_ids: Iterable[int] = (),
    collection_ids: Iterable[int] = (),
) -> Project:
    """A project; new chats in it start with ``system_prompt``, ``model`` (a name in the
    registry, "" for the installation's default) and the owner's documents ``document_ids``
    and collections ``collection_ids``."""
    name = project_name(name=name)
    _check_model(model)
    try:
        with transaction.atomic():
            _check_name_free(owner_id=owner.pk, name=name)
            owned = _owned_documents(owner_id=owner.pk, document_ids=document_ids)
            owned_collections = _owned_collections(owner_id=owner.pk, collection_ids=collection_ids)
            project = Project.objects.create(owner=owner, name=name, system_prompt=system_prompt, model=model)
            project.documents.set(owned)
            project.collections.set(owned_collections)
            return project
    except IntegrityError:
        # the same name made at the same moment in another tab: the constraint decided
        raise ChatError(f"You already have a project named “{name}”.") from None


def project_update(
    *,
    project: Project,
    name: str,
    system_prompt: str,
    model: str = "",
    document_ids: Iterable[int] = (),
    collection_ids: Iterable[int] = (),
) -> None:
    """Rename the project and set what new conversations in it start with; its
    conversations so far keep their own system prompts, models and documents."""
    name = project_name(name=name)
    _check_model(model)
    try:
        with transaction.atomic():
            _check_name_free(owner_id=project.owner_id, name=name, project_id=project.pk)
            owned = _owned_documents(owner_id=project.owner_id, document_ids=document_ids)
            owned_collections = _owned_collections(owner_id=project.owner_id, collection_ids=collection_ids)
            Project.objects.filter(pk=project.pk).update(
                name=name, system_prompt=system_prompt, model=model, updated_at=timezone.now()
            )
            project.documents.set(owned)
            project.collections.set(owned_collections)
    except IntegrityError:
        raise ChatError(f"You already have a project named “{name}”.") from None
    project.name, project.system_prompt, project.model = name, system_prompt, model


def project_delete(*, project: Project, move_to: Project | None = None) -> int:
    """Delete the project; its conversations leave it, or go into ``move_to`` (another of
    the owner's projects). Returns how many conversations it held. Nothing is deleted but
    the project itself, and the move and the deletion are one transaction."""
    if move_to is not None and (move_to.pk == project.pk or move_to.owner_id != project.owner_id):
        raise ChatError("Choose another of your projects to move its conversations into.")
    with transaction.atomic():
        moved = Conversation.objects.filter(project=project).update(project=move_to)
        Project.objects.filter(pk=project.pk).delete()
    return moved


def conversation_move(*, conversation: Conversation, project: Project | None) -> None:
    """Put the conversation into ``project`` (None: out of any). Its last activity stays as
    it was: moving is not writing in it."""
    if project is not None and project.owner_id != conversation.owner_id:
        raise ChatError("A conversation can go only into its owner's projects.")
    Conversation.objects.filter(pk=conversation.pk).update(project=project)
    conversation.project = project


def conversation_set_pinned(*, conversation: Conversation, pinned: bool) -> None:
    """Pin the conversation to the top of the sidebar, or unpin it. Pinning one already
    pinned keeps its place; its last activity stays as it was."""
    conversations = Conversation.objects.filter(pk=conversation.pk)
    if pinned:
        conversations.filter(pinned_at__isnull=True).update(pinned_at=timezone.now())
    else:
        conversations.update(pinned_at=None)
    conversation.pinned_at = conversations.values_list("pinned_at", flat=True).first()


# ---- share links ------------------------------------------------------------------------


def conversation_share(*, conversation: Conversation) -> SharedConversation:
    """A read-only copy of the branch shown now, for its owner to hand out.

    The messages are copied, not referenced: what is written, edited or deleted in the
    conversation afterwards never shows through the link.
    """
    with transaction.atomic():
        entries = selectors.thread(conversation=conversation)
        return SharedConversation.objects.create(
            owner_id=conversation.owner_id,
            conversation=conversation,
            token=secrets.token_urlsafe(SHARE_TOKEN_BYTES),
            title=conversation.title,
            messages=[
                {
                    "role": entry.message.role,
                    "content": entry.message.content,
                    "status": entry.message.status,
                    "model_name": entry.message.model_name,
                    "created": entry.message.created_at.isoformat(),
                }
                for entry in entries
            ],
        )


def share_revoke(*, share: SharedConversation) -> bool:
    """End a share link for good; False when it had already been revoked."""
    with transaction.atomic():
        revoked = SharedConversation.objects.filter(pk=share.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    return revoked == 1


# ---- importing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    source: str
    conversations: list[Conversation]
    messages: int
    skipped: Counter[str]


def conversations_import(*, owner: User, plan: ImportPlan) -> ImportResult:
    """Every conversation of a file read and checked by ``imports.read_import``, for
    ``owner``, in one transaction: all of them or, should anything fail, none.

    Conversations keep the times they were started and last written at, so they take
    their place in the history instead of all coming first. Each goes into the owner's
    project of the name it was exported with (made if there is none), and stays pinned.

    Their text counts toward the owner's storage quota: an import that would pass it is
    ``ImportRefused`` with the quota and the usage, and nothing is imported.
    """
    now = timezone.now()
    with transaction.atomic():
        # Held to the end: an upload or import of this user's meanwhile waits, then counts this one.
        quotas.owner_lock(owner_id=owner.pk)
        refusal = quotas.storage_refusal(
            usage=quotas.storage_usage(owner_id=owner.pk),
            adding_bytes=plan.text_bytes,
            adding_documents=0,
            adding="import",
        )
        if refusal is not None:
            raise ImportRefused(refusal)
        projects = _projects_named(owner=owner, names={planned.project for planned in plan.conversations})
        conversations = Conversation.objects.bulk_create(
            [
                Conversation(
                    owner=owner,
                    title=planned.title,
                    # a title the file brings was chosen there; the model's never replaces it
                    title_source=Conversation.TitleSource.USER if planned.title else Conversation.TitleSource.FALLBACK,
                    system_prompt=planned.system_prompt,
                    temperature=planned.temperature,
                    top_p=planned.top_p,
                    max_tokens=planned.max_tokens,
                    project=projects.get(planned.project.lower()),
                    pinned_at=_not_after(planned.pinned_at, now),
                )
                for planned in plan.conversations
            ],
            batch_size=500,
        )
        ids = answers_import(conversation_ids=[c.pk for c in conversations], messages=plan.messages)
        for conversation, planned in zip(conversations, plan.conversations, strict=True):
            conversation.current_leaf_id = None if planned.current_leaf is None else ids[planned.current_leaf]
            # a time in the future would keep a conversation at the top of the list for good
            conversation.created_at = min(planned.created or now, now)
            conversation.updated_at = min(planned.updated or planned.created or now, now)
        Conversation.objects.bulk_update(conversations, ["current_leaf", "created_at", "updated_at"], batch_size=500)
    return ImportResult(
        source=plan.source, conversations=conversations, messages=len(plan.messages), skipped=plan.skipped
    )


def _projects_named(*, owner: User, names: set[str]) -> dict[str, Project]:
    """The owner's projects of these names (any case), by lower-cased name; those missing made."""
    wanted = {name.lower(): name for name in names if name}
    if not wanted:
        return {}
    # ON CONFLICT DO NOTHING: a project of the name made meanwhile in another tab is used, not an error
    Project.objects.bulk_create([Project(owner=owner, name=name) for name in wanted.values()], ignore_conflicts=True)
    projects = Project.objects.filter(owner=owner).annotate(lower_name=Lower("name")).filter(lower_name__in=wanted)
    return {project.name.lower(): project for project in projects}


def _not_after(moment: datetime | None, latest: datetime) -> datetime | None:
    return None if moment is None else min(moment, latest)
