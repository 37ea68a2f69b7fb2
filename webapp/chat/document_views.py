"""Attaching documents and collections to a conversation, and starting one about a document."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from webapp.accounts.http import AuthedRequest
from webapp.chat import documents, selectors
from webapp.documents.selectors import document_get


@require_POST
def attach(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    """The documents and collections ticked; only the owner's are attached."""
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    chosen = [int(value) for value in request.POST.getlist("documents") if value.isdigit()]
    chosen_collections = [int(value) for value in request.POST.getlist("collections") if value.isdigit()]
    if not chosen and not chosen_collections:
        messages.error(request, "Choose one or more of your documents or collections to attach.")
    elif not (
        documents.documents_attach(conversation=conversation, document_ids=chosen)
        + documents.collections_attach(conversation=conversation, collection_ids=chosen_collections)
    ):
        messages.info(request, "Those were already attached.")
    return redirect("chat:conversation", conversation.pk)


@require_POST
def detach_collection(request: AuthedRequest, conversation_id: int, collection_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    documents.collection_detach(conversation=conversation, collection_id=collection_id)
    return redirect("chat:conversation", conversation.pk)


@require_POST
def detach(request: AuthedRequest, conversation_id: int, document_id: int) -> HttpResponse:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    documents.document_detach(conversation=conversation, document_id=document_id)
    return redirect("chat:conversation", conversation.pk)


@require_POST
def about(request: AuthedRequest, document_id: int) -> HttpResponse:
    """ "Ask about this document": a new conversation with the document attached."""
    document = document_get(request.user, document_id)
    conversation = documents.conversation_about(owner=request.user, document=document)
    return redirect("chat:conversation", conversation.pk)
