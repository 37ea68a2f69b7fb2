"""Reads of chat, for views, the websocket consumer, the generation worker and review.

Nothing here writes. Every lookup that starts from a request is scoped to its owner:
another user's conversation or message is simply not found. The one exception is an
open share link (``share_get``), which its token alone opens, as its owner intended.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Count, OuterRef, Q, QuerySet
from django.db.models.functions import JSONObject, Lower
from django.http import Http404
from django.utils import timezone

from inference.prompts import system_with_documents
from webapp.accounts.models import User
from webapp.chat.models import AnswerGrounding, Conversation, Message, Project, SharedConversation, conversation_name

# The most queued answers whose place the worker publishes while it is full.
QUEUE_POSITIONS_PUBLISHED = 500
# The most conversations the sidebar lists under Pinned, in each project (the rest are on
# the project's page), and by date (all the date groups together; the rest are a search
# away): the latest of each, so that a sidebar of 50 projects stays a few hundred links.
SIDEBAR_PINNED_LIMIT = 50
SIDEBAR_PROJECT_LIMIT = 10
SIDEBAR_DATED_LIMIT = 100


@dataclass(frozen=True)
class ThreadEntry:
    """One message on the branch being shown, with its place among its versions."""

    message: Message
    version: int  # 1-based
    versions: int
    previous_id: int | None
    next_id: int | None


# ---- lookups, always scoped to the owner ----------------------------------------------


def conversations_for(*, user: User, archived: bool = False) -> QuerySet[Conversation]:
    """The user's chat conversations, most recently written first (searching is ``search.py``'s)."""
    return Conversation.objects.filter(owner=user, archived=archived, origin=Conversation.Origin.CHAT).order_by(
        "-updated_at"
    )


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


def projects_for(*, user: User) -> QuerySet[Project]:
    """The user's projects, by name."""
    return Project.objects.filter(owner=user)


def projects_with_counts(*, user: User) -> QuerySet[Project]:
    """The user's projects by name, each with its ``conversation_count`` (archived ones included)."""
    # ordered here: Meta.ordering does not apply to a query that counts
    return projects_for(user=user).annotate(conversation_count=Count("conversations")).order_by(Lower("name"), "pk")


def project_conversations(*, project: Project) -> QuerySet[Conversation]:
    """The project's conversations, archived ones too, latest first."""
    return project.conversations.order_by("-updated_at", "-pk")


def project_get(*, user: User, project_id: Any) -> Project:
    try:
        return Project.objects.get(pk=int(project_id), owner=user)
    except (Project.DoesNotExist, TypeError, ValueError):
        raise Http404("No such project.") from None


# ---- the sidebar ------------------------------------------------------------------------


@dataclass(frozen=True)
class SidebarEntry:
    """A conversation as the sidebar lists it: only what its link needs."""

    pk: int
    title: str

    def __str__(self) -> str:
        return conversation_name(pk=self.pk, title=self.title)


@dataclass
class SidebarGroup:
    """One heading of the sidebar and the conversations under it, latest first."""

    kind: str  # "pinned", "project" or "date"
    label: str
    project: Project | None = None
    conversations: list[SidebarEntry] = field(default_factory=list)
    more: bool = False  # a project holds more than the sidebar lists


def sidebar_groups(*, user: User, today: date | None = None) -> list[SidebarGroup]:
    """Pinned, then each of the user's projects by name (empty ones too), then the other
    conversations by last activity: Today, Yesterday, Previous 7 days, Older, days as the
    server's time zone counts them. Archived conversations are left out; a pinned one is
    listed under Pinned only.

    Three queries whatever the number of projects and conversations: the projects, each with
    its latest conversations from a subquery (one more than it lists, to tell whether there
    are more), the pinned, and the latest of the rest; each walks an index (``chat_conv_sidebar``,
    ``chat_conv_pinned``, ``chat_conv_owner_recent``) and stops at its limit, so a user's
    older conversations are never read (``python -m bench.sidebar``).
    """
    listed = Conversation.objects.filter(owner=user, archived=False, origin=Conversation.Origin.CHAT)
    unpinned = listed.filter(pinned_at__isnull=True).order_by("-updated_at", "-pk")
    latest_in_project = unpinned.filter(project=OuterRef("pk")).values(entry=JSONObject(pk="pk", title="title"))
    projects = projects_for(user=user).annotate(latest=ArraySubquery(latest_in_project[: SIDEBAR_PROJECT_LIMIT + 1]))
    groups = []
    pinned = listed.filter(pinned_at__isnull=False).order_by("-pinned_at", "-pk").values_list("pk", "title")
    pinned_entries = [SidebarEntry(pk=pk, title=title) for pk, title in pinned[:SIDEBAR_PINNED_LIMIT]]
    if pinned_entries:
        groups.append(SidebarGroup(kind="pinned", label="Pinned", conversations=pinned_entries))
    for project in projects:
        entries = [SidebarEntry(pk=entry["pk"], title=entry["title"]) for entry in project.latest]
        groups.append(
            SidebarGroup(
                kind="project",
                label=project.name,
                project=project,
                conversations=entries[:SIDEBAR_PROJECT_LIMIT],
                more=len(entries) > SIDEBAR_PROJECT_LIMIT,
            )
        )
    days = DayStarts.of(today or timezone.localdate())
    by_day = {label: SidebarGroup(kind="date", label=label) for label in DayStarts.LABELS}
    loose = unpinned.filter(project__isnull=True).values_list("pk", "title", "updated_at")
    for pk, title, updated_at in loose[:SIDEBAR_DATED_LIMIT]:
        by_day[days.label(updated_at)].conversations.append(SidebarEntry(pk=pk, title=title))
    return groups + [day for day in by_day.values() if day.conversations]


@dataclass(frozen=True)
class DayStarts:
    """When today, yesterday and the previous 7 days began, in the current time zone:
    compared with each conversation's time, rather than converting each to a date."""

    LABELS = ("Today", "Yesterday", "Previous 7 days", "Older")
    today: datetime
    yesterday: datetime
    week: datetime

    @classmethod
    def of(cls, today: date) -> DayStarts:
        def start(day: date) -> datetime:
            return timezone.make_aware(datetime.combine(day, time.min))

        return cls(
            today=start(today), yesterday=start(today - timedelta(days=1)), week=start(today - timedelta(days=7))
        )

    def label(self, moment: datetime) -> str:
        if moment >= self.today:
            return "Today"
        if moment >= self.yesterday:
            return "Yesterday"
        if moment >= self.week:
            return "Previous 7 days"
        return "Older"


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


def branch_holds(*, conversation: Conversation, message_id: int) -> bool:
    """Whether the message is on the branch being shown (``thread`` lists it)."""
    return any(entry.message.pk == message_id for entry in thread(conversation=conversation))


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


# ---- titles ----------------------------------------------------------------------------------


def question_to_title(*, answer: Message) -> str | None:
    """The question to title the conversation from, when ``answer`` is its first complete
    answer and its title is still the fallback; else None. API traffic is never titled:
    no page shows it."""
    untitled = Conversation.objects.filter(
        pk=answer.conversation_id, title_source=Conversation.TitleSource.FALLBACK, origin=Conversation.Origin.CHAT
    ).exists()
    if not untitled or answer.parent_id is None:
        return None
    earlier = Message.objects.filter(
        conversation_id=answer.conversation_id, role=Message.Role.ASSISTANT, status=Message.Status.COMPLETE
    ).exclude(pk=answer.pk)
    if earlier.exists():
        return None
    return Message.objects.filter(pk=answer.parent_id).values_list("content", flat=True).first()


def documents_context(*, answer_ids: list[int]) -> dict[int, str]:
    """What each of these answers was given of its conversation's documents (``webapp.chat.documents``)."""
    return dict(AnswerGrounding.objects.filter(message_id__in=answer_ids).values_list("message_id", "context"))


# ---- answers in flight, and the queue as users see it ------------------------------------


def queued_for(*, model: str) -> Q:
    """Queued answers asked of ``model`` (a registry name); those queued before answers
    recorded their model are the default model's."""
    asked = Q(settings__model=model)
    if model == settings.PARLEY_INFERENCE.models.default:
        asked |= ~Q(settings__has_key="model")
    return Q(status=Message.Status.QUEUED, role=Message.Role.ASSISTANT) & asked


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


def queued_per_model() -> dict[str, int]:
    """How many answers wait for each model (those from before answers recorded their
    model count for the default)."""
    default = settings.PARLEY_INFERENCE.models.default
    counts: dict[str, int] = {}
    waiting = Message.objects.filter(status=Message.Status.QUEUED, role=Message.Role.ASSISTANT)
    for row in waiting.values("settings__model").annotate(count=Count("pk")):
        model = row["settings__model"] or default
        counts[model] = counts.get(model, 0) + row["count"]
    return counts


def queue_position(*, answer: Message) -> int:
    """1-based place of a queued answer among the answers queued for its model; 0 when not queued."""
    if answer.status != Message.Status.QUEUED:
        return 0
    return (
        Message.objects.filter(queued_for(model=answer.asked_model))
        .filter(Q(created_at__lt=answer.created_at) | Q(created_at=answer.created_at, pk__lt=answer.pk))
        .count()
        + 1
    )


def queue_positions(*, model: str, limit: int = QUEUE_POSITIONS_PUBLISHED) -> list[tuple[int, int, int]]:
    """(answer id, conversation id, 1-based place) of the oldest ``limit`` answers queued for ``model``."""
    waiting = Message.objects.filter(queued_for(model=model)).order_by("created_at", "pk")
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
