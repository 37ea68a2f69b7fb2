"""Writes to accounts."""

from __future__ import annotations

import secrets

from django.db import transaction

from webapp.accounts.models import User


@transaction.atomic
def user_create(*, email: str, password: str) -> User:
    return User.objects.create_user(email=email, password=password)


@transaction.atomic
def admin_ensure(*, email: str, password: str | None) -> tuple[User | None, str | None]:
    """Create the first admin if there is none.

    Returns the new admin and, when no password was given, the one-time password made
    for it; ``(None, None)`` when an admin already exists.
    """
    if User.objects.filter(is_superuser=True).exists():
        return None, None
    generated = None
    if not password:
        generated = secrets.token_urlsafe(12)
        password = generated
    return User.objects.create_superuser(email=email, password=password), generated
