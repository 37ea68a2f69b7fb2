"""Tags only the chat's templates use; the shared filters are in core_tags."""

from __future__ import annotations

from django import template

from webapp.chat import selectors
from webapp.chat.models import Message

register = template.Library()


@register.simple_tag
def queue_note(message: Message) -> str:
    position = selectors.queue_position(answer=message)
    return f"(number {position} in the queue)" if position > 1 else ""
