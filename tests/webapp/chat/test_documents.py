"""Asking a conversation's documents: what the model is given, the sources under the
answer, the document page at the passage, and what happens to documents being read or
deleted. A real generation worker (tiny model), real passages and the real embedding model."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.waiting import wait_for
from tests.webapp.chat.conftest import settled
from tests.webapp.documents.corpus import long_pages, read_document
from tests.webapp.documents.files import make_pdf
from tests.webapp.responses import streamed
from webapp.accounts.models import User
from webapp.chat import services
from webapp.chat.models import AnswerGrounding, Conversation, ConversationCollection, ConversationDocument, Message
from webapp.chat.selectors import context_for
from webapp.chat.worker import GenerationWorker
from webapp.documents.models import Collection, Document
from webapp.documents.services import collection_create
from webapp.review.models import ReviewItem

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = "Who repainted the lighthouse on Gull Rock?"


@pytest.fixture
def minutes(user: User) -> Document:
    return read_document(user, "minutes.pdf", "pdf", make_pdf(long_pages()))


def ask(user: User, question: str, *documents: Document) -> tuple[Conversation, Message]:
    """A conversation of ``user`` about ``documents``, with ``question`` sent and its answer queued."""
    conversation = Conversation.objects.create(owner=user, max_tokens=60, temperature=0)
    for document in documents:
        ConversationDocument.objects.create(conversation=conversation, document=document)
    return conversation, services.message_send(conversation=conversation, content=question)


def answered(start_worker: Callable[..., GenerationWorker], answer: Message) -> Message:
    start_worker()
    done = wait_for(lambda: settled(answer), timeout=60, what="the answer")
    assert done.status == Message.Status.COMPLETE, done.error
    return done


def test_a_planted_fact_is_given_to_the_model_and_cited_with_its_page(
    start_worker: Callable[..., GenerationWorker],
    user: User,
    minutes: Document,
    logged_in_client: Client,
) -> None:
    conversation, answer = ask(user, QUESTION, minutes)
    answer = answered(start_worker, answer)
    grounding = AnswerGrounding.objects.get(message=answer)
    assert grounding.mode == "passages"  # twelve pages do not fit the tiny model's window whole
    first = grounding.sources[0]
    assert (first["document_name"], first["page"]) == ("minutes.pdf", 7)
    assert "Bartholomew Quince" in first["text"]
    system = context_for(answer=answer)[0]
    assert system["role"] == "system"
    assert "[1] minutes.pdf, page 7" in system["content"]
    assert "Bartholomew Quince" in system["content"]
    # reviewers see what the model was given
    item = ReviewItem.objects.get(message=answer)
    assert "Bartholomew Quince" in item.prompt[0]["content"]
    # the page shows the source, and its link opens the document at the passage, marked
    shown = logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert "Answered from the" in shown
    link = f"{reverse('documents:detail', args=[minutes.pk])}?passage={first['passage_id']}"
    assert f'href="{link}#passage-{first["passage_id"]}"' in shown
    assert "[1] minutes.pdf, page 7" in shown
    opened = logged_in_client.get(link).content.decode()
    marked = opened.split(f'<mark id="passage-{first["passage_id"]}" class="passage">')[1].split("</mark>")[0]
    assert "Bartholomew Quince" in marked
    assert "Text, page 7" in opened


def test_documents_that_fit_the_window_are_given_whole(
    start_worker: Callable[..., GenerationWorker], user: User, logged_in_client: Client
) -> None:
    note = read_document(user, "note.txt", "text", b"The spare key to the shed hangs behind the blue door.")
    conversation, answer = ask(user, "Where is the spare key to the shed?", note)
    answer = answered(start_worker, answer)
    grounding = AnswerGrounding.objects.get(message=answer)
    assert grounding.mode == "whole"
    assert "The spare key to the shed hangs behind the blue door." in context_for(answer=answer)[0]["content"]
    assert grounding.sources[0]["document_name"] == "note.txt"
    shown = logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert "Answered from the whole of the attached documents." in shown


def test_a_question_the_documents_do_not_answer_says_so_and_cites_nothing(
    start_worker: Callable[..., GenerationWorker], user: User, minutes: Document, logged_in_client: Client
) -> None:
    conversation, answer = ask(user, "What is the boiling point of mercury?", minutes)
    answer = answered(start_worker, answer)
    grounding = AnswerGrounding.objects.get(message=answer)
    assert (grounding.mode, grounding.sources) == ("unsupported", [])
    assert "nothing in them matches this question" in context_for(answer=answer)[0]["content"]
    shown = logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert "No source found" in shown
    assert "?passage=" not in shown


def test_a_document_still_being_read_is_left_out_and_the_page_says_so(
    start_worker: Callable[..., GenerationWorker],
    user: User,
    minutes: Document,
    logged_in_client: Client,
) -> None:
    waiting = Document.objects.create(owner=user, name="late.pdf", kind="pdf", size=1, sha256="e" * 64, original=b"x")
    conversation, answer = ask(user, QUESTION, minutes, waiting)
    answer = answered(start_worker, answer)
    grounding = AnswerGrounding.objects.get(message=answer)
    assert (grounding.mode, grounding.unread) == ("passages", ["late.pdf"])
    shown = logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert "Not used, still being read: late.pdf." in shown

    _, second = ask(user, QUESTION, waiting)
    wait_for(lambda: settled(second), timeout=60, what="the second answer")
    grounding = AnswerGrounding.objects.get(message=second)
    assert grounding.mode == "unread"
    assert "still being read" in context_for(answer=second)[0]["content"]


def test_a_deleted_document_leaves_the_conversation_and_earlier_sources_stay(
    start_worker: Callable[..., GenerationWorker], user: User, minutes: Document, logged_in_client: Client
) -> None:
    conversation, answer = ask(user, QUESTION, minutes)
    answer = answered(start_worker, answer)
    logged_in_client.post(reverse("documents:delete", args=[minutes.pk]))
    assert not ConversationDocument.objects.filter(conversation=conversation).exists()
    assert AnswerGrounding.objects.get(message=answer).sources[0]["document_name"] == "minutes.pdf"
    later = logged_in_client.post(reverse("chat:send", args=[conversation.pk]), {"content": QUESTION})
    assert later.status_code in (200, 302)
    next_answer = Message.objects.filter(conversation=conversation, role="assistant").latest("created_at")
    wait_for(lambda: settled(next_answer), timeout=60, what="the answer after the deletion")
    assert not AnswerGrounding.objects.filter(message=next_answer).exists()  # asked of no document now
    assert "Bartholomew" not in str(context_for(answer=next_answer))


def test_documents_are_attached_only_by_their_owner(
    logged_in_client: Client, user: User, make_user: Callable[..., User], minutes: Document
) -> None:
    other = make_user()
    theirs = Document.objects.create(
        owner=other, name="theirs.txt", kind="text", size=1, sha256="f" * 64, original=b"x"
    )
    conversation = Conversation.objects.create(owner=user)
    logged_in_client.post(reverse("chat:attach", args=[conversation.pk]), {"documents": [theirs.pk, minutes.pk]})
    assert list(
        ConversationDocument.objects.filter(conversation=conversation).values_list("document_id", flat=True)
    ) == [minutes.pk]
    assert logged_in_client.post(reverse("chat:about", args=[theirs.pk])).status_code == 404
    their_conversation = Conversation.objects.create(owner=other)
    assert (
        logged_in_client.post(
            reverse("chat:attach", args=[their_conversation.pk]), {"documents": [minutes.pk]}
        ).status_code
        == 404
    )
    logged_in_client.post(reverse("chat:detach", args=[conversation.pk, minutes.pk]))
    assert not ConversationDocument.objects.filter(conversation=conversation).exists()


def test_attaching_what_is_attached_already_says_so_and_adds_nothing(logged_in_client: Client, user: User) -> None:
    notes = Document.objects.create(owner=user, name="notes.txt", kind="text", size=1, sha256="e" * 64, original=b"x")
    shelf = collection_create(owner=user, name="Shelf", document_ids=[notes.pk])
    conversation = Conversation.objects.create(owner=user)
    url = reverse("chat:attach", args=[conversation.pk])
    chosen = {"documents": [notes.pk], "collections": [shelf.pk]}
    first = logged_in_client.post(url, chosen, follow=True).content.decode()
    assert "Those were already attached." not in first
    again = logged_in_client.post(url, chosen, follow=True).content.decode()
    assert "Those were already attached." in again
    assert ConversationDocument.objects.filter(conversation=conversation).count() == 1
    assert ConversationCollection.objects.filter(conversation=conversation).count() == 1
    # one new beside one already there is an attachment, not a refusal
    more = Document.objects.create(owner=user, name="more.txt", kind="text", size=1, sha256="d" * 64, original=b"y")
    mixed = logged_in_client.post(url, {"documents": [notes.pk, more.pk]}, follow=True).content.decode()
    assert "Those were already attached." not in mixed
    attached = ConversationDocument.objects.filter(conversation=conversation).values_list("document_id", flat=True)
    assert set(attached) == {notes.pk, more.pk}


def test_ask_about_this_document_starts_a_conversation_with_it(
    logged_in_client: Client, user: User, minutes: Document
) -> None:
    page = logged_in_client.get(reverse("documents:detail", args=[minutes.pk])).content.decode()
    assert "Ask about this document" in page
    response = logged_in_client.post(reverse("chat:about", args=[minutes.pk]))
    conversation = Conversation.objects.get(owner=user)
    assert response["Location"] == reverse("chat:conversation", args=[conversation.pk])
    assert conversation.title == "About minutes.pdf"
    shown = logged_in_client.get(response["Location"]).content.decode()
    assert "Documents (1)" in shown
    assert "minutes.pdf" in shown


# ---- collections ------------------------------------------------------------------------------


def ask_collection(user: User, question: str, collection: Collection) -> tuple[Conversation, Message]:
    conversation = Conversation.objects.create(owner=user, max_tokens=60, temperature=0)
    ConversationCollection.objects.create(conversation=conversation, collection=collection)
    return conversation, services.message_send(conversation=conversation, content=question)


def test_a_collection_is_answered_from_the_documents_it_holds_when_each_question_is_asked(
    start_worker: Callable[..., GenerationWorker], user: User, minutes: Document, logged_in_client: Client
) -> None:
    note = read_document(user, "note.txt", "text", b"The spare key to the shed hangs behind the blue door.")
    collection = collection_create(owner=user, name="Household", document_ids=[note.pk])
    conversation, first = ask_collection(user, "Where is the spare key to the shed?", collection)
    first = answered(start_worker, first)
    assert [s["document_name"] for s in AnswerGrounding.objects.get(message=first).sources] == ["note.txt"]

    # the collection changes: the next question is answered from what it holds now
    logged_in_client.post(
        reverse("documents:collection", args=[collection.pk]), {"name": "Household", "documents": [minutes.pk]}
    )
    second = services.message_send(conversation=conversation, content=QUESTION)
    second = wait_for(lambda: settled(second), timeout=60, what="the second answer")
    grounding = AnswerGrounding.objects.get(message=second)
    assert grounding.mode == "passages"
    assert (grounding.sources[0]["document_name"], grounding.sources[0]["page"]) == ("minutes.pdf", 7)
    assert "spare key" not in grounding.context
    # the first answer keeps its sources as they were
    assert AnswerGrounding.objects.get(message=first).sources[0]["document_name"] == "note.txt"


def test_another_users_collection_is_never_retrieved_even_with_the_same_text(
    start_worker: Callable[..., GenerationWorker], user: User, make_user: Callable[..., User], minutes: Document
) -> None:
    other = make_user()
    theirs = read_document(other, "their minutes.pdf", "pdf", make_pdf(long_pages()))
    their_collection = collection_create(owner=other, name="Theirs", document_ids=[theirs.pk])
    mine = collection_create(owner=user, name="Mine", document_ids=[minutes.pk])
    conversation, answer = ask_collection(user, QUESTION, mine)
    # a row pointing at another's collection (the admin, a bug): it must add nothing
    ConversationCollection.objects.create(conversation=conversation, collection=their_collection)
    answer = answered(start_worker, answer)
    grounding = AnswerGrounding.objects.get(message=answer)
    assert {s["document_name"] for s in grounding.sources} == {"minutes.pdf"}
    assert "their minutes.pdf" not in grounding.context

    _, only_theirs = ask_collection(user, QUESTION, their_collection)
    wait_for(lambda: settled(only_theirs), timeout=60, what="the answer asked of another's collection")
    assert not AnswerGrounding.objects.filter(message=only_theirs).exists()
    assert "Bartholomew" not in str(context_for(answer=only_theirs))


# ---- the review queue's datasets ----------------------------------------------------------------


def test_the_sft_and_preference_exports_carry_the_passages_the_model_was_given(
    start_worker: Callable[..., GenerationWorker], user: User, minutes: Document, make_user: Callable[..., User]
) -> None:
    _, grounded = ask(user, QUESTION, minutes)
    plain_conversation = Conversation.objects.create(owner=user, max_tokens=20, temperature=0)
    plain = services.message_send(conversation=plain_conversation, content="Say hello.")
    start_worker()
    for answer in (grounded, plain):
        assert wait_for(partial(settled, answer), timeout=60, what="the answer").status == Message.Status.COMPLETE
    given = context_for(answer=grounded)  # what the worker gave the model
    reviewer = make_user("reviewer@example.com", is_staff=True)
    client = Client()
    client.force_login(reviewer)
    for answer, correction in ((grounded, "Bartholomew Quince repainted it."), (plain, "Hello!")):
        item = ReviewItem.objects.get(message=answer)
        client.get(reverse("review:item", args=[item.pk]))
        item.refresh_from_db()
        verdict = {"version": item.version, "decision": "needs_fix", "correction": correction}
        assert client.post(reverse("review:verdict", args=[item.pk]), verdict).status_code == 302

    def exported(dataset: str) -> dict[int | None, dict[str, Any]]:
        response = client.get(f"{reverse('review:export')}?dataset={dataset}")
        assert response.status_code == 200
        lines = [json.loads(line) for line in b"".join(streamed(response)).decode().splitlines()]
        items = dict(ReviewItem.objects.values_list("pk", "message_id"))
        return {items[line["provenance"]["item"]]: line for line in lines}

    sft, preference = exported("sft"), exported("preference")
    for lines in (sft, preference):
        line = lines[grounded.pk]
        assert line["prompt"] == given
        system = line["prompt"][0]
        assert system["role"] == "system"
        assert "[1] minutes.pdf, page 7" in system["content"]
        assert "Bartholomew Quince" in system["content"]
        assert line["provenance"]["documents"]["mode"] == "passages"
        assert line["provenance"]["documents"]["sources"][0]["document_name"] == "minutes.pdf"
        assert line["provenance"]["documents"]["sources"][0]["page"] == 7
        # an answer asked of no document has no documents in its prompt or provenance
        assert lines[plain.pk]["prompt"] == [{"role": "user", "content": "Say hello."}]
        assert "documents" not in lines[plain.pk]["provenance"]
    assert sft[grounded.pk]["messages"] == [
        *given,
        {"role": "assistant", "content": "Bartholomew Quince repainted it."},
    ]
    assert preference[grounded.pk]["chosen"] == "Bartholomew Quince repainted it."
    assert preference[grounded.pk]["rejected"] == Message.objects.get(pk=grounded.pk).content
