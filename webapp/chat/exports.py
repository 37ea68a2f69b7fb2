"""A conversation as a file: Markdown of the branch shown, or JSON of the whole tree.

The Markdown is for reading: the title, then each message of the branch the owner is
looking at, with its role and, for an answer, the model that wrote it. The JSON is
Parley's own format and loses nothing: every message of every branch with its id and
its parent's id, so the tree (each edit and each regenerated version) can be rebuilt.
Nothing here writes; the caller looks the conversation up scoped to its owner.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.utils.text import slugify

from webapp.chat import selectors
from webapp.chat.models import Conversation, Message

FORMAT_NAME = "parley.conversation"
FORMAT_VERSION = 1
CONTENT_TYPES = {"md": "text/markdown; charset=utf-8", "json": "application/json"}

# What an answer that did not end normally says in the Markdown, under its text.
_ENDINGS: dict[str, str] = {
    Message.Status.QUEUED: "(still waiting for the model when this was exported)",
    Message.Status.GENERATING: "(still being written when this was exported)",
    Message.Status.INTERRUPTED: "(stopped)",
    Message.Status.FAILED: "(failed)",
}


def export_filename(*, conversation: Conversation, extension: str) -> str:
    """Letters, digits and hyphens only: a title's quotes, slashes or dots never reach it."""
    stem = slugify(conversation.title, allow_unicode=True)[:80].strip("-_") or "conversation"
    return f"{stem}-{conversation.pk}.{extension}"


def _timestamp(moment: datetime) -> str:
    return moment.isoformat()


def conversation_markdown(*, conversation: Conversation) -> str:
    lines = [f"# {conversation}", ""]
    if conversation.system_prompt.strip():
        lines += ["System prompt:", "", *(f"> {line}" for line in conversation.system_prompt.splitlines()), ""]
    for entry in selectors.thread(conversation=conversation):
        message = entry.message
        if message.role == Message.Role.USER:
            heading = "## User"
        else:
            heading = f"## Assistant ({message.model_name})" if message.model_name else "## Assistant"
        lines += [heading, "", message.content.rstrip(), ""]
        ending = _ENDINGS.get(message.status) if message.role == Message.Role.ASSISTANT else None
        if ending:
            lines += [f"_{ending}_", ""]
    return "\n".join(lines)


def conversation_document(*, conversation: Conversation) -> dict[str, Any]:
    """The conversation and every message of its tree, as plain JSON values."""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "title": conversation.title,
        "system_prompt": conversation.system_prompt,
        "settings": {
            "temperature": conversation.temperature,
            "top_p": conversation.top_p,
            "max_tokens": conversation.max_tokens,
        },
        "created": _timestamp(conversation.created_at),
        # the project's name only: an importer puts it into its own project of that name
        "project": conversation.project.name if conversation.project else None,
        "pinned_at": _timestamp(conversation.pinned_at) if conversation.pinned_at else None,
        # the end of the branch shown, so an importer can show the same one
        "current_leaf_id": conversation.current_leaf_id,
        "messages": [
            {
                "id": message.pk,
                "parent_id": message.parent_id,
                "role": message.role,
                "content": message.content,
                "status": message.status,
                "model_name": message.model_name,
                "created": _timestamp(message.created_at),
            }
            for message in selectors.conversation_messages(conversation=conversation)
        ],
    }


def conversation_json(*, conversation: Conversation) -> str:
    return json.dumps(conversation_document(conversation=conversation), ensure_ascii=False, indent=2) + "\n"
