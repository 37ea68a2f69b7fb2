"""Tags only the chat's templates use; the shared filters are in core_tags."""

from __future__ import annotations

from django import template

from webapp.chat import liveness, selectors
from webapp.chat.models import Message

register = template.Library()


NO_WORKER = "(no generation worker is running: it starts as soon as one does)"


@register.simple_tag
def queue_note(message: Message) -> str:
    """What a waiting answer says of its wait: its place, or that nothing would take it."""
    if not liveness.workers_alive():
        return NO_WORKER
    position = selectors.queue_position(answer=message)
    return f"(number {position} in the queue)" if position > 1 else ""
