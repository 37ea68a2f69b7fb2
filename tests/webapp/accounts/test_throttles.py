"""Floods of log-ins, password resets and password changes are refused with a clear 429."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def log_in(address: str, email: str, password: str) -> Any:
    return Client(REMOTE_ADDR=address).post(reverse("login"), {"username": email, "password": password})


def test_wrong_passwords_from_many_addresses_lock_the_account(user: Any, settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 5
    for number in range(1, 6):
        log_in(f"10.2.0.{number}", "alice@example.com", "wrong")
    # a sixth address, with the right password: still refused while the account is locked
    response = log_in("10.2.0.6", "alice@example.com", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.content.decode()
    assert "_auth_user_id" not in response.wsgi_request.session
    # another account is not held back
    assert log_in("10.2.0.6", "bob@example.com", "wrong").status_code == 200


def test_wrong_passwords_for_many_accounts_from_one_address_are_refused(make_user: Any, settings: Any) -> None:
    settings.PARLEY_LOGIN_IP_FAILURE_LIMIT = 20
    for number in range(20):
        assert log_in("10.3.0.1", f"victim{number}@example.com", "Winter2026!").status_code == 200
    bob = make_user("bob@example.com")
    refused = log_in("10.3.0.1", bob.email, PASSWORD)
    assert refused.status_code == 429
    assert "Too many failed log-ins from your address" in refused.content.decode()
    assert "_auth_user_id" not in refused.wsgi_request.session
    # from anywhere else the same account logs in
    assert log_in("10.3.0.2", bob.email, PASSWORD).status_code == 302


def test_a_flood_of_password_resets_is_refused(user: Any, settings: Any) -> None:
    settings.PARLEY_PASSWORD_RESET_RATE = "3/h"
    settings.PARLEY_MAIL_CONFIGURED = True
    client = Client(REMOTE_ADDR="10.4.0.1")
    for _ in range(3):
        assert client.post(reverse("password_reset"), {"email": "alice@example.com"}).status_code == 302
    refused = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert refused.status_code == 429
    assert "Too many password resets" in refused.content.decode()
    # nor can other addresses keep filling the same inbox
    elsewhere = Client(REMOTE_ADDR="10.4.0.2").post(reverse("password_reset"), {"email": "alice@example.com"})
    assert elsewhere.status_code == 429
    assert len(mail.outbox) == 3


def test_a_flood_of_password_changes_is_refused(logged_in_client: Client, user: Any, settings: Any) -> None:
    settings.PARLEY_PASSWORD_CHANGE_RATE = "3/h"
    new = "another-Long-passw0rd"
    for guess in range(3):
        response = logged_in_client.post(
            reverse("password_change"), {"old_password": f"guess{guess}", "new_password1": new, "new_password2": new}
        )
        assert response.status_code == 200
    refused = logged_in_client.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert refused.status_code == 429
    assert "Too many password changes" in refused.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PARLEY_LOGIN_IP_FAILURE_LIMIT", "many", "PARLEY_LOGIN_IP_FAILURE_LIMIT='many' is not an integer"),
        ("PARLEY_PASSWORD_RESET_RATE", "5 per hour", "PARLEY_PASSWORD_RESET_RATE='5 per hour' is not a rate"),
        ("PARLEY_PASSWORD_CHANGE_RATE", "0/h", "PARLEY_PASSWORD_CHANGE_RATE='0/h' is not a rate"),
    ],
)
def test_a_bad_throttle_setting_stops_the_process_naming_it(tmp_path: Any, name: str, value: str, message: str) -> None:
    from tests.webapp.accounts.test_signup import signup_policy

    assert message in signup_policy(tmp_path, **{name: value})
