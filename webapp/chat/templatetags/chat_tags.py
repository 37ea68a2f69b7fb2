from __future__ import annotations

from functools import lru_cache

from django import template
from django.utils.safestring import SafeString, mark_safe

from webapp.chat import selectors
from webapp.chat.models import Message
from webapp.chat.rendering import render_markdown

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    """Sanitized HTML of model output (see webapp.chat.rendering)."""
    return mark_safe(_rendered(text))


@lru_cache(maxsize=512)
def _rendered(text: str) -> str:
    """Pages and partials show the same finished messages again and again (every send
    re-renders the thread); rendering one of 2,000 characters takes about 7 ms. The
    growing text of a streaming answer is rendered by the websocket consumer, not here."""
    return render_markdown(text)


@register.simple_tag
def queue_note(message: Message) -> str:
    position = selectors.queue_position(answer=message)
    return f"(number {position} in the queue)" if position > 1 else ""


@register.filter
def get_item(mapping: dict[str, object], key: str) -> object:
    """A dictionary's value by a key held in a variable (for CSV columns)."""
    return mapping.get(key, "") if isinstance(mapping, dict) else ""
