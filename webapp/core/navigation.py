"""The top bar's entries, shown on every page through a context processor.

Core knows no feature app: each app's ``AppConfig`` declares its entries with a
``nav_entries()`` method, and the bar shows them in ``order``, each to the users its
``shown_to`` lets through (every signed-in user when it has none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypedDict

from django.apps import apps
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import SimpleLazyObject


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    description: str
    order: int
    # None: every signed-in user; else called with the user, once per page that shows the bar
    shown_to: Callable[[Any], bool] | None = None


class NavItem(TypedDict):
    label: str
    url: str
    description: str
    active: bool


def nav_items(request: HttpRequest) -> dict[str, object]:
    # Worked out once, when a template first shows the bar: partials never do, and would
    # otherwise pay for the reviewer lookup on every send.
    return {"nav_items": SimpleLazyObject(lambda: _items(request))}


@cache
def _entries() -> tuple[NavEntry, ...]:
    """Every installed app's entries; the set of apps is fixed once Django has started."""
    declared = [
        entry
        for config in apps.get_app_configs()
        if callable(declares := getattr(config, "nav_entries", None))
        for entry in declares()
    ]
    return tuple(sorted(declared, key=lambda entry: entry.order))


def _items(request: HttpRequest) -> list[NavItem]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    items: list[NavItem] = []
    for entry in _entries():
        if entry.shown_to is not None and not entry.shown_to(user):
            continue
        url = reverse(entry.url_name)
        items.append(
            {"label": entry.label, "url": url, "description": entry.description, "active": request.path.startswith(url)}
        )
    return items
