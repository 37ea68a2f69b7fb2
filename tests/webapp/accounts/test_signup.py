"""Sign-up under PARLEY_SIGNUP: open, by invitation, or closed; throttled; and silent about
which addresses have accounts."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PASSWORD
from webapp.accounts.models import Invitation, User
from webapp.accounts.services import SignupRefused, invitation_create, user_sign_up

pytestmark = pytest.mark.django_db


def sign_up(client: Client, email: str, invitation: str = "", **extra: Any) -> Any:
    data = {"email": email, "password1": PASSWORD, "password2": PASSWORD, **extra}
    if invitation:
        data["invitation"] = invitation
    return client.post(reverse("signup"), data, follow=True)


def main_text(response: Any) -> str:
    page = response.content.decode()
    return page[page.index("<main") : page.index("</main>")]


def test_a_taken_address_gets_the_same_page_as_a_new_one_and_its_owner_an_email(
    user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        new = sign_up(Client(REMOTE_ADDR="10.0.0.1"), "fresh@example.com")
        taken = sign_up(Client(REMOTE_ADDR="10.0.0.2"), "ALICE@example.com")
    assert new.status_code == taken.status_code == 200
    shown = [main_text(r).replace("fresh@example.com", "ADDRESS") for r in (new, taken)]
    assert shown[0] == shown[1].replace("alice@example.com", "ADDRESS")
    assert "Now log in" in shown[0]
    assert "already exists" not in shown[1]
    assert User.objects.count() == 2
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert [message.to for message in mail.outbox] == [["alice@example.com"]]


def test_sign_up_is_throttled_per_address(settings: Any) -> None:
    settings.PARLEY_SIGNUP_RATE = "5/h"
    client = Client(REMOTE_ADDR="10.0.0.9")
    for number in range(5):
        assert sign_up(client, f"person{number}@example.com").status_code == 200
    refused = sign_up(client, "one-more@example.com")
    assert refused.status_code == 429
    assert "Too many sign-ups from your address" in refused.content.decode()
    assert not User.objects.filter(email="one-more@example.com").exists()
    # another address is not held back by this one
    assert sign_up(Client(REMOTE_ADDR="10.0.0.10"), "elsewhere@example.com").status_code == 200


def test_closed_sign_up_says_so_and_creates_nothing(settings: Any) -> None:
    settings.PARLEY_SIGNUP = "closed"
    page = Client().get(reverse("signup"))
    assert "Sign-up is closed on this Parley" in page.content.decode()
    response = sign_up(Client(), "someone@example.com")
    assert response.status_code == 403
    assert "Sign-up is closed on this Parley" in response.content.decode()
    assert not User.objects.exists()


@pytest.fixture
def invite_only(settings: Any) -> None:
    settings.PARLEY_SIGNUP = "invite"


@pytest.mark.usefixtures("invite_only")
def test_without_an_invitation_sign_up_is_refused() -> None:
    response = sign_up(Client(), "someone@example.com")
    assert response.status_code == 403
    assert "by invitation" in response.content.decode()
    assert not User.objects.exists()


@pytest.mark.usefixtures("invite_only")
def test_an_invitation_signs_up_one_person_once(staff_user: Any) -> None:
    invitation = invitation_create(created_by=staff_user)
    page = Client().get(invitation.path)
    assert page.status_code == 200
    assert f'value="{invitation.token}"' in page.content.decode()
    assert sign_up(Client(), "guest@example.com", invitation.token).status_code == 200
    invitation.refresh_from_db()
    assert invitation.used_by == User.objects.get(email="guest@example.com")
    assert invitation.used_at is not None
    again = sign_up(Client(), "second@example.com", invitation.token)
    assert again.status_code == 403
    assert "already been used" in again.content.decode()
    assert not User.objects.filter(email="second@example.com").exists()


@pytest.mark.usefixtures("invite_only")
def test_an_expired_or_unknown_invitation_is_refused_with_the_reason(staff_user: Any) -> None:
    expired = invitation_create(created_by=staff_user)
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = sign_up(Client(), "late@example.com", expired.token)
    assert response.status_code == 403
    assert "This invitation has expired" in response.content.decode()
    unknown = sign_up(Client(), "guess@example.com", "not-a-real-token")
    assert "This invitation link is not valid" in unknown.content.decode()
    assert User.objects.count() == 1


@pytest.mark.usefixtures("invite_only")
def test_an_invitation_for_an_address_takes_only_that_address(staff_user: Any) -> None:
    invitation = invitation_create(created_by=staff_user, email="bob@example.com")
    other = sign_up(Client(), "eve@example.com", invitation.token)
    assert "for another e-mail address" in other.content.decode()
    assert sign_up(Client(), "Bob@example.com", invitation.token).status_code == 200
    assert list(User.objects.exclude(pk=staff_user.pk).values_list("email", flat=True)) == ["bob@example.com"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("invite_only")
def test_two_people_using_one_invitation_at_once_let_in_only_one(staff_user: Any) -> None:
    invitation = invitation_create(created_by=staff_user)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def use(email: str) -> None:
        try:
            barrier.wait()
            user_sign_up(email=email, password=PASSWORD, invitation_token=invitation.token)
            outcomes.append("in")
        except SignupRefused as error:
            outcomes.append(str(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=use, args=(f"racer{n}@example.com",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["This invitation has already been used. Ask whoever sent it for a new one.", "in"]
    assert User.objects.filter(email__startswith="racer").count() == 1


def test_staff_make_invitation_links_on_the_invitations_page(staff_user: Any, user: Any) -> None:
    client = Client()
    client.force_login(staff_user)
    response = client.post(reverse("invitations"), {"email": "friend@example.com"}, follow=True)
    invitation = Invitation.objects.get()
    assert invitation.created_by == staff_user
    assert invitation.email == "friend@example.com"
    assert f"http://testserver{invitation.path}" in response.content.decode()
    plain = Client()
    plain.force_login(user)
    assert plain.get(reverse("invitations")).status_code == 403
    assert plain.post(reverse("invitations"), {}).status_code == 403
    assert Invitation.objects.count() == 1


def test_staff_make_invitations_in_the_admin_too(make_user: Any) -> None:
    admin = make_user("root@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    response = client.post(
        reverse("admin:accounts_invitation_add"),
        {"email": "", "expires_at_0": "2099-01-01", "expires_at_1": "00:00:00"},
    )
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert invitation.created_by == admin
    assert len(invitation.token) >= 40


def signup_policy(tmp_path: Path, **env: str) -> str:
    variables = {**os.environ, "PARLEY_VAR_DIR": str(tmp_path), **env}
    variables.pop("PARLEY_SIGNUP", None) if "PARLEY_SIGNUP" not in env else None
    code = "from django.conf import settings; print(settings.PARLEY_SIGNUP)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], env=variables, capture_output=True, text=True
    )
    return (result.stdout + result.stderr).strip()


def test_sign_up_is_open_on_the_embedded_database_and_by_invitation_on_a_server(tmp_path: Path) -> None:
    embedded = f"postgres://postgres@{str(tmp_path / 'postgres').replace('/', '%2F')}/parley"
    assert signup_policy(tmp_path, DATABASE_URL=embedded).splitlines()[-1] == "open"
    assert (
        signup_policy(tmp_path, DATABASE_URL="postgres://u:p@db.example.com:5432/parley").splitlines()[-1] == "invite"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PARLEY_SIGNUP", "maybe", "PARLEY_SIGNUP='maybe' must be one of: open, invite, closed"),
        ("PARLEY_SIGNUP_RATE", "lots", "PARLEY_SIGNUP_RATE='lots' is not a rate"),
        ("PARLEY_INVITATION_DAYS", "0", "PARLEY_INVITATION_DAYS=0 is below the minimum of 1"),
    ],
)
def test_a_bad_sign_up_setting_stops_the_process_naming_it(tmp_path: Path, name: str, value: str, message: str) -> None:
    assert message in signup_policy(tmp_path, **{name: value})
