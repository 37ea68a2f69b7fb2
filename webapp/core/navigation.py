"""The top bar's entries, shown on every page through a context processor."""

from __future__ import annotations

from typing import TypedDict

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from webapp.review.services import can_review


class NavItem(TypedDict):
    label: str
    url: str
    description: str
    active: bool


# (label, url name, description, reviewers only)
_ENTRIES: list[tuple[str, str, str, bool]] = [
    ("Chat", "chat:index", "Talk with the model running on this server.", False),
    ("Documents", "documents:index", "Upload documents; read, search and summarize them.", False),
    ("Sentiment", "sentiment:index", "Classify many texts at once and export the labels.", False),
    ("Review", "review:queue", "Judge and correct model outputs; export them as datasets.", True),
]


def nav_items(request: HttpRequest) -> dict[str, object]:
    # Worked out once, when a template first shows the bar: partials never do, and would
    # otherwise pay for the reviewer lookup on every send.
    return {"nav_items": SimpleLazyObject(lambda: _items(request))}


def _items(request: HttpRequest) -> list[NavItem]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    items: list[NavItem] = []
    reviewer = can_review(user)
    for label, url_name, description, reviewers_only in _ENTRIES:
        if reviewers_only and not reviewer:
            continue
        url = reverse(url_name)
        items.append({"label": label, "url": url, "description": description, "active": request.path.startswith(url)})
    return items
