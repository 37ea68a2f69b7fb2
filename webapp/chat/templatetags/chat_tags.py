from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from webapp.chat import services
from webapp.chat.models import Message
from webapp.chat.rendering import render_markdown

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    """Sanitized HTML of model output (see webapp.chat.rendering)."""
    return mark_safe(render_markdown(text))


@register.simple_tag
def queue_note(message: Message) -> str:
    position = services.queue_position(message)
    return f"(number {position} in the queue)" if position > 1 else ""


@register.filter
def get_item(mapping: dict[str, object], key: str) -> object:
    """A dictionary's value by a key held in a variable (for CSV columns)."""
    return mapping.get(key, "") if isinstance(mapping, dict) else ""
