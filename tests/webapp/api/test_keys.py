"""The API keys page: a key is made and shown once, kept only as a digest, listed with its
prefix and last use, and revoked; nobody reaches another user's keys."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import pytest
from django.test import Client

from webapp.accounts.models import User
from webapp.api.models import ApiKey
from webapp.api.services import MAX_OPEN_KEYS, api_key_create, api_key_user

pytestmark = pytest.mark.django_db


def made_secret(page: str) -> str:
    found = re.search(r'id="new-key-value" value="(prl-[^"]+)"', page) or re.search(
        r'value="(prl-[^"]+)"[^>]*id="new-key-value"', page
    )
    assert found, "the new key is on the page"
    return found.group(1)


def test_it_makes_a_key_and_shows_it_this_once(logged_in_client: Client, user: User) -> None:
    page = logged_in_client.post("/accounts/api-keys/", {"name": "my editor"}).content.decode()
    secret = made_secret(page)
    key = ApiKey.objects.get(owner=user)
    assert key.name == "my editor"
    assert key.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(list(ApiKey.objects.values()))  # only its digest and prefix are kept
    assert secret.startswith(key.prefix)
    later = logged_in_client.get("/accounts/api-keys/").content.decode()
    assert secret not in later
    assert f"{key.prefix}…" in later
    assert "never" in later  # not used yet
    assert api_key_user(secret=secret) == user


def test_a_key_records_when_it_was_last_used(user: User) -> None:
    made = api_key_create(owner=user, name="script")
    assert made.key.last_used_at is None
    api_key_user(secret=made.secret)
    made.key.refresh_from_db()
    assert made.key.last_used_at is not None


def test_a_nameless_key_is_refused_and_nothing_is_made(logged_in_client: Client, user: User) -> None:
    response = logged_in_client.post("/accounts/api-keys/", {"name": "   "}, follow=True)
    assert "Give the key a name" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_too_many_open_keys_are_refused(logged_in_client: Client, user: User) -> None:
    for number in range(MAX_OPEN_KEYS):
        api_key_create(owner=user, name=f"key {number}")
    response = logged_in_client.post("/accounts/api-keys/", {"name": "one more"}, follow=True)
    assert "revoke one you no longer use" in response.content.decode()
    assert ApiKey.objects.filter(owner=user).count() == MAX_OPEN_KEYS


def test_revoking_a_key_stops_it_at_once_and_keeps_it_listed(logged_in_client: Client, user: User) -> None:
    made = api_key_create(owner=user, name="old script")
    response = logged_in_client.post(f"/accounts/api-keys/{made.key.pk}/revoke", follow=True)
    assert "is revoked" in response.content.decode()
    assert api_key_user(secret=made.secret) is None
    page = logged_in_client.get("/accounts/api-keys/").content.decode()
    assert "old script" in page
    assert "revoked" in page
    assert f"/accounts/api-keys/{made.key.pk}/revoke" not in page  # no second Revoke


def test_another_users_key_can_be_neither_seen_nor_revoked(
    logged_in_client: Client, make_user: Callable[..., User]
) -> None:
    other = api_key_create(owner=make_user(), name="bob's laptop")
    assert "bob's laptop" not in logged_in_client.get("/accounts/api-keys/").content.decode()
    assert logged_in_client.post(f"/accounts/api-keys/{other.key.pk}/revoke").status_code == 404
    assert api_key_user(secret=other.secret) is not None


def test_a_deactivated_users_key_opens_nothing(user: User) -> None:
    made = api_key_create(owner=user, name="script")
    user.is_active = False
    user.save()
    assert api_key_user(secret=made.secret) is None


def test_the_page_is_behind_the_login() -> None:
    response = Client().get("/accounts/api-keys/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
