"""Filters every app's templates use: model output as sanitized HTML, and lookups."""

from __future__ import annotations

from functools import lru_cache

from django import template
from django.utils.safestring import SafeString, mark_safe

from webapp.core.rendering import render_markdown

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    """Sanitized HTML of model output (see webapp.core.rendering)."""
    return mark_safe(_rendered(text))


@lru_cache(maxsize=512)
def _rendered(text: str) -> str:
    """Pages and partials show the same finished messages again and again (every send
    re-renders the thread), and rendering a long one takes milliseconds. The
    growing text of a streaming answer is rendered by the websocket consumer, not here."""
    return render_markdown(text)


@register.filter
def get_item(mapping: dict[str, object], key: str) -> object:
    """A dictionary's value by a key held in a variable (for CSV columns)."""
    return mapping.get(key, "") if isinstance(mapping, dict) else ""


@register.filter
def thousands(number: int) -> str:
    """12345 as "12,345", the way the pages write counts."""
    return f"{number:,}"
