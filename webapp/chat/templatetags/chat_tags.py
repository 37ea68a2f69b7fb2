"""Tags only the chat's templates use; the shared filters are in core_tags."""

from __future__ import annotations

from django import template

from webapp.chat import liveness, selectors
from webapp.chat.models import Message

register = template.Library()


NO_WORKER = "(no generation worker is running for {model}: it starts as soon as one does)"


@register.simple_tag
def queue_note(message: Message) -> str:
    """What a waiting answer says of its wait: its place, or that no worker of the model it
    was asked of is running (another model's workers would never take it)."""
    model = message.asked_model
    if not liveness.workers_alive(model=model):
        return NO_WORKER.format(model=model)
    position = selectors.queue_position(answer=message)
    return f"(number {position} in the queue)" if position > 1 else ""
