"""API keys: made, revoked, and checked on each ``/v1`` request.

A key is shown once, when it is made; only its SHA-256 is kept (``models.ApiKey``). A
request's key is found by that digest, and only an unrevoked key of an active user opens
anything. ``last_used_at`` is written at most once a minute per key, so a busy script does
not turn every request into a write.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from webapp.accounts.models import User
from webapp.api.models import ApiKey

KEY_PREFIX = "prl-"
KEY_BYTES = 32
SHOWN_PREFIX_LENGTH = 12  # "prl-" and 8 characters of the secret: enough to tell keys apart
MAX_OPEN_KEYS = 20
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiKeyError(Exception):
    """A key that cannot be made; the message is shown to the user as it is."""


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str  # the whole key: shown once, never stored


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, owner: User, name: str) -> NewKey:
    name = " ".join(name.split())
    if not name:
        raise ApiKeyError("Give the key a name, such as the tool that will use it.")
    if len(name) > 100:
        raise ApiKeyError("A key's name can be at most 100 characters long.")
    with transaction.atomic():
        User.objects.select_for_update().only("pk").get(pk=owner.pk)  # two tabs: counted one after the other
        if ApiKey.objects.filter(owner=owner, revoked_at__isnull=True).count() >= MAX_OPEN_KEYS:
            raise ApiKeyError(f"You have {MAX_OPEN_KEYS} keys already; revoke one you no longer use first.")
        secret = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
        key = ApiKey.objects.create(
            owner=owner, name=name, prefix=secret[:SHOWN_PREFIX_LENGTH], digest=digest_of(secret)
        )
    return NewKey(key=key, secret=secret)


def api_key_revoke(*, key: ApiKey) -> bool:
    """False when it had been revoked already."""
    return bool(ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()))


def api_key_user(*, secret: str) -> User | None:
    """The owner of this unrevoked key, when they may still sign in; None otherwise."""
    if not secret.startswith(KEY_PREFIX):
        return None
    key = (
        ApiKey.objects.select_related("owner")
        .filter(digest=digest_of(secret), revoked_at__isnull=True, owner__is_active=True)
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key.owner
