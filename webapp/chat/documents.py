"""Asking a conversation's documents: which are attached, and what an answer is given.

A user attaches their own documents and collections to a conversation (from the composer
of a new chat, from its Documents panel, or with "Ask about this document" on a document's
page; a project's defaults too). A collection stands for the documents it holds when each
question is asked. When the generation worker starts an
answer in such a conversation, ``answers_ground`` fixes what the model is given and saves
it with the answer (``AnswerGrounding``), so the review queue and a reload see the same:

- the attached documents' whole text, when it fits half of the model's window left after
  the answer (mode ``whole``); else the passages that best answer the question, found by
  ``webapp.documents.retrieval`` in those documents only (mode ``passages``);
- either way, the passages that support the answer are its sources, shown under it with a
  link to each; when none is close enough, the model is told the documents do not answer
  the question and the page says no source was found (``unsupported``);
- a document still being read is left out, and the page says so; when none is read yet,
  the model is told to say they are still being read (``unread``);
- a deleted document leaves the conversation with it (the attachment goes); answers
  written before keep their sources as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TypeVar

from django.db import transaction
from django.db.models import Count, F, QuerySet

from inference import prompts
from webapp.accounts.models import User
from webapp.chat.models import AnswerGrounding, Conversation, ConversationCollection, ConversationDocument, Message
from webapp.documents.models import Collection, Document, Passage
from webapp.documents.retrieval import Found, passages_search

# Of the window left after the answer, what whole documents may take; the rest is the
# conversation's own turns.
WHOLE_SHARE = 0.5
PASSAGES_GIVEN = 5
# The tables that link a conversation to what it asks about
Link = TypeVar("Link", ConversationDocument, ConversationCollection)


@dataclass(frozen=True)
class Source:
    number: int
    passage_id: int
    document_id: int
    document_name: str
    page: int | None
    heading: str
    text: str
    similarity: float


# ---- attachments ---------------------------------------------------------------------------


def attached_documents(*, conversation: Conversation) -> list[Document]:
    return list(
        Document.objects.filter(owner_id=conversation.owner_id, pk__in=_attached_ids(conversation.pk))
        .defer("original", "text")
        .order_by("name", "pk")
    )


def owned_documents(*, owner: User, document_ids: Iterable[int]) -> list[Document]:
    """Those of the documents that are ``owner``'s, by name."""
    return list(
        Document.objects.filter(owner=owner, pk__in=list(document_ids)).defer("original", "text").order_by("name", "pk")
    )


def _attached_ids(conversation_id: int) -> list[int]:
    return _linked_ids(ConversationDocument, "document", conversation_id)


def _linked_ids(link: type[Link], field: str, conversation_id: int) -> list[int]:
    """The ids a conversation's ``link`` rows point at through their ``field``."""
    return list(link._default_manager.filter(conversation_id=conversation_id).values_list(f"{field}_id", flat=True))


def _attach(
    *,
    conversation: Conversation,
    ids: Iterable[int],
    owned: QuerySet[Document] | QuerySet[Collection],
    link: type[Link],
    field: str,
) -> int:
    """Link the conversation, through ``link`` rows' ``field``, to those of ``ids`` that are
    among ``owned`` (the owner's documents or collections) and not linked yet; returns how
    many were new."""
    new = set(owned.filter(pk__in=list(ids)).values_list("pk", flat=True))
    new.difference_update(_linked_ids(link, field, conversation.pk))
    # the same one attached meanwhile in another tab is left to the unique constraint
    link._default_manager.bulk_create(
        [link(conversation=conversation, **{f"{field}_id": pk}) for pk in sorted(new)], ignore_conflicts=True
    )
    return len(new)


def attachable_documents(*, conversation: Conversation | None, owner: User) -> list[Document]:
    """The owner's documents not attached to ``conversation`` yet (all, for a new chat) and
    not failed, newest first."""
    candidates = Document.objects.filter(owner=owner).exclude(status=Document.Status.FAILED)
    if conversation is not None:
        candidates = candidates.exclude(pk__in=_attached_ids(conversation.pk))
    return list(candidates.defer("original", "text")[:200])


def attached_collections(*, conversation: Conversation) -> list[Collection]:
    return list(
        Collection.objects.filter(owner_id=conversation.owner_id, pk__in=_attached_collection_ids(conversation.pk))
        .annotate(document_count=Count("documents"))
        .order_by("name", "pk")
    )


def _attached_collection_ids(conversation_id: int) -> list[int]:
    return _linked_ids(ConversationCollection, "collection", conversation_id)


def attachable_collections(*, conversation: Conversation | None, owner: User) -> list[Collection]:
    """The owner's collections not attached to ``conversation`` yet (all, for a new chat)."""
    collections = Collection.objects.filter(owner=owner).annotate(document_count=Count("documents"))
    if conversation is not None:
        collections = collections.exclude(pk__in=_attached_collection_ids(conversation.pk))
    return list(collections[:200])


def collections_attach(*, conversation: Conversation, collection_ids: Iterable[int]) -> int:
    """Attach those of the collections that are the conversation owner's; returns how many were new."""
    owned = Collection.objects.filter(owner_id=conversation.owner_id)
    return _attach(
        conversation=conversation, ids=collection_ids, owned=owned, link=ConversationCollection, field="collection"
    )


def collection_detach(*, conversation: Conversation, collection_id: int) -> bool:
    return bool(
        ConversationCollection.objects.filter(conversation=conversation, collection_id=collection_id).delete()[0]
    )


def owned_collections(*, owner: User, collection_ids: Iterable[int]) -> list[Collection]:
    """Those of the collections that are ``owner``'s, by name."""
    return list(Collection.objects.filter(owner=owner, pk__in=list(collection_ids)).order_by("name", "pk"))


def documents_attach(*, conversation: Conversation, document_ids: Iterable[int]) -> int:
    """Attach those of the documents that are the conversation owner's; returns how many were new."""
    owned = Document.objects.filter(owner_id=conversation.owner_id)
    return _attach(
        conversation=conversation, ids=document_ids, owned=owned, link=ConversationDocument, field="document"
    )


def document_detach(*, conversation: Conversation, document_id: int) -> bool:
    return bool(ConversationDocument.objects.filter(conversation=conversation, document_id=document_id).delete()[0])


def conversation_about(*, owner: User, document: Document) -> Conversation:
    """A new conversation of the document's owner, asking about it."""
    with transaction.atomic():
        conversation = Conversation.objects.create(owner=owner, title=f"About {document.name}"[:200])
        documents_attach(conversation=conversation, document_ids=[document.pk])
    return conversation


# ---- what an answer is given -----------------------------------------------------------------


def answers_ground(*, answers: list[Message], window_tokens: int, count_tokens: Callable[[str], int]) -> None:
    """Fix and save what each answer of a conversation with documents is given (its
    conversation loaded); answers that already have it keep it."""
    conversation_ids = {answer.conversation_id for answer in answers}
    attachments: dict[int, set[int]] = {}
    for conversation_id, document_id in ConversationDocument.objects.filter(
        conversation_id__in=conversation_ids
    ).values_list("conversation_id", "document_id"):
        attachments.setdefault(conversation_id, set()).add(document_id)
    # a collection stands for the documents it holds now, as this question is answered;
    # one of another owner's never counts (answer_grounding also reads only the owner's)
    for conversation_id, document_id in (
        ConversationCollection.objects.filter(
            conversation_id__in=conversation_ids,
            collection__owner_id=F("conversation__owner_id"),
            collection__documents__isnull=False,
        )
        .values_list("conversation_id", "collection__documents")
        .distinct()
    ):
        attachments.setdefault(conversation_id, set()).add(document_id)
    if not attachments:
        return  # nothing attached, the common case: no more queries before the answer starts
    grounded = set(
        AnswerGrounding.objects.filter(message_id__in=[a.pk for a in answers]).values_list("message_id", flat=True)
    )
    questions = dict(
        Message.objects.filter(pk__in=[a.parent_id for a in answers if a.parent_id]).values_list("pk", "content")
    )
    for answer in answers:
        if answer.pk in grounded or answer.conversation_id not in attachments or answer.parent_id not in questions:
            continue
        budget = int((window_tokens - int(answer.settings.get("max_tokens", 512))) * WHOLE_SHARE)
        grounding = answer_grounding(
            owner=answer.conversation.owner,
            document_ids=sorted(attachments[answer.conversation_id]),
            question=questions[answer.parent_id],
            budget_tokens=budget,
            count_tokens=count_tokens,
        )
        grounding.message = answer
        AnswerGrounding.objects.bulk_create([grounding], ignore_conflicts=True)


def answer_grounding(
    *,
    owner: User,
    document_ids: list[int],
    question: str,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
) -> AnswerGrounding:
    """What an answer to ``question`` is given from these documents of ``owner`` (not saved)."""
    documents = list(
        Document.objects.filter(owner=owner, pk__in=document_ids)
        .exclude(status=Document.Status.FAILED)
        .only("pk", "name", "status", "words")
        .order_by("name", "pk")
    )
    read = [d for d in documents if d.status == Document.Status.READY]
    unread = [d.name for d in documents if d.status == Document.Status.PENDING]
    if not read:
        return AnswerGrounding(
            mode=AnswerGrounding.Mode.UNREAD, unread=unread, context=prompts.unread_block(unread) if unread else ""
        )
    found = [f for f in passages_search(user=owner, document_ids=[d.pk for d in read], question=question) if f.supports]
    sources = _sources(found[:PASSAGES_GIVEN])
    whole = _whole_texts(read, budget_tokens, count_tokens)
    if whole is not None:
        mode, context = AnswerGrounding.Mode.WHOLE, prompts.whole_documents_block(whole)
    elif sources:
        mode = AnswerGrounding.Mode.PASSAGES
        context = prompts.passages_block([(s.document_name, s.page, s.heading, s.text) for s in sources])
    else:
        mode, context = AnswerGrounding.Mode.UNSUPPORTED, prompts.unsupported_block([d.name for d in read])
    return AnswerGrounding(mode=mode, sources=[asdict(s) for s in sources], unread=unread, context=context)


def _whole_texts(
    documents: list[Document], budget_tokens: int, count_tokens: Callable[[str], int]
) -> list[tuple[str, str]] | None:
    """(name, text) of every document when together they fit ``budget_tokens``; else None."""
    if sum(d.words or 0 for d in documents) > budget_tokens:  # at least a token a word: cannot fit
        return None
    texts = dict(Document.objects.filter(pk__in=[d.pk for d in documents]).values_list("pk", "text"))
    whole = [(d.name, texts[d.pk]) for d in documents]
    return whole if sum(count_tokens(text) for _, text in whole) <= budget_tokens else None


def _sources(found: list[Found]) -> list[Source]:
    passages = (
        Passage.objects.select_related("document")
        .only("pk", "page", "heading", "text", "document__id", "document__name")
        .in_bulk([f.passage_id for f in found])
    )
    return [
        Source(
            number=number,
            passage_id=f.passage_id,
            document_id=f.document_id,
            document_name=passages[f.passage_id].document.name,
            page=passages[f.passage_id].page,
            heading=passages[f.passage_id].heading,
            text=passages[f.passage_id].text,
            similarity=round(f.similarity, 4),
        )
        for number, f in enumerate((f for f in found if f.passage_id in passages), start=1)
    ]


def groundings_of(*, message_ids: list[int]) -> dict[int, AnswerGrounding]:
    return {g.message_id: g for g in AnswerGrounding.objects.filter(message_id__in=message_ids)}
