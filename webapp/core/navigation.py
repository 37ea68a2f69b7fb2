"""The top bar's entries, shown on every page through a context processor."""

from __future__ import annotations

from typing import TypedDict

from django.http import HttpRequest
from django.urls import reverse


class NavItem(TypedDict):
    label: str
    url: str
    description: str
    active: bool


# (label, url name, description, staff only)
_ENTRIES: list[tuple[str, str, str, bool]] = [
    ("Chat", "chat:index", "Talk with the model running on this server.", False),
    ("Documents", "documents:index", "Upload documents; read, search and summarize them.", False),
    ("Sentiment", "sentiment:index", "Classify many texts at once and export the labels.", False),
]


def nav_items(request: HttpRequest) -> dict[str, list[NavItem]]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items: list[NavItem] = []
    for label, url_name, description, staff_only in _ENTRIES:
        if staff_only and not user.is_staff:
            continue
        url = reverse(url_name)
        items.append({"label": label, "url": url, "description": description, "active": request.path.startswith(url)})
    return {"nav_items": items}
