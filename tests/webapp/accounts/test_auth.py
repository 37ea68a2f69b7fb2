from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from tests.conftest import PASSWORD
from webapp.accounts.models import User

pytestmark = pytest.mark.django_db


def test_sign_up_creates_the_account_and_the_user_can_log_in() -> None:
    client = Client()
    response = client.post(
        reverse("signup"), {"email": "New@Example.com", "password1": PASSWORD, "password2": PASSWORD}, follow=True
    )
    assert response.status_code == 200
    assert "Now log in" in response.content.decode()
    assert User.objects.get().email == "new@example.com"
    assert client.post(reverse("login"), {"username": "new@example.com", "password": PASSWORD}).status_code == 302


def test_sign_up_rejects_a_weak_password_next_to_the_field() -> None:
    response = Client().post(reverse("signup"), {"email": "a@example.com", "password1": "123", "password2": "123"})
    assert response.status_code == 400
    assert 'id="id_password1_error"' in response.content.decode()
    assert "too short" in response.content.decode()
    assert not User.objects.exists()


def test_sign_up_rejects_different_passwords() -> None:
    response = Client().post(
        reverse("signup"), {"email": "b@example.com", "password1": PASSWORD, "password2": PASSWORD + "x"}
    )
    assert "The two passwords differ" in response.content.decode()
    assert not User.objects.exists()


def test_login_and_logout(user: User) -> None:
    client = Client()
    response = client.post(reverse("login"), {"username": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


def test_login_with_a_wrong_password_says_so(user: User) -> None:
    response = Client().post(reverse("login"), {"username": "alice@example.com", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct" in response.content.decode()


def test_login_is_throttled_after_repeated_failures(user: User, settings: Settings) -> None:
    client = Client(REMOTE_ADDR="10.1.1.1")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "alice@example.com", "password": "wrong"})
    # Even the right password is refused while locked out.
    response = client.post(reverse("login"), {"username": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.content.decode()
    assert not response.wsgi_request.user.is_authenticated


def test_password_change(logged_in_client: Client, user: User) -> None:
    new_password = "another-Long-passw0rd"
    response = logged_in_client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)


def test_password_change_rejects_a_wrong_old_password(logged_in_client: Client, user: User) -> None:
    response = logged_in_client.post(
        reverse("password_change"),
        {"old_password": "nope", "new_password1": "another-Long-passw0rd", "new_password2": "another-Long-passw0rd"},
    )
    assert response.status_code == 200
    assert "incorrectly" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_reset_sends_an_email_with_a_working_link(user: User, settings: Settings) -> None:
    settings.PARLEY_MAIL_CONFIGURED = True
    client = Client()
    client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/password/reset/" in line).strip()
    path = link[link.index("/accounts/") :]
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "brand-new-passw0rd", "new_password2": "brand-new-passw0rd"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("brand-new-passw0rd")


def test_staff_see_the_review_link_and_others_do_not(make_user: Callable[..., User]) -> None:
    staff, plain = Client(), Client()
    staff.force_login(make_user("s@example.com", is_staff=True))
    plain.force_login(make_user("p@example.com"))
    staff_page, plain_page = staff.get(reverse("home")).content.decode(), plain.get(reverse("home")).content.decode()
    review_link = f'<a href="{reverse("review:queue")}"'
    assert review_link in staff_page
    assert ">Review</a>" in staff_page
    assert review_link not in plain_page
    assert ">Review<" not in plain_page
    assert ">Admin<" in staff_page
    assert ">Admin<" not in plain_page


def test_ensure_admin_creates_one_admin_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.management import call_command

    monkeypatch.setenv("PARLEY_ADMIN_EMAIL", "boss@example.com")
    monkeypatch.delenv("PARLEY_ADMIN_PASSWORD", raising=False)
    call_command("ensure_admin")
    output = capsys.readouterr().out
    password = output.split("one-time password: ")[1].split()[0]
    assert User.objects.get(email="boss@example.com").check_password(password)
    call_command("ensure_admin")
    assert User.objects.filter(is_superuser=True).count() == 1


def test_without_a_mail_backend_reset_says_it_is_unavailable_and_makes_no_link(user: User, settings: Settings) -> None:
    settings.PARLEY_MAIL_CONFIGURED = False
    page = Client().get(reverse("password_reset"))
    assert page.status_code == 503
    assert "cannot send you a reset link" in page.content.decode()
    answer = Client().post(reverse("password_reset"), {"email": "alice@example.com"})
    assert answer.status_code == 503
    assert mail.outbox == []


def test_the_admin_with_a_one_time_password_must_choose_a_new_one_before_anything_else(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.management import call_command

    monkeypatch.setenv("PARLEY_ADMIN_EMAIL", "boss@example.com")
    monkeypatch.delenv("PARLEY_ADMIN_PASSWORD", raising=False)
    call_command("ensure_admin")
    one_time = capsys.readouterr().out.split("one-time password: ")[1].split()[0]
    client = Client()
    assert client.post(reverse("login"), {"username": "boss@example.com", "password": one_time}).status_code == 302
    for page in ("home", "documents:index", "review:queue"):
        held = client.get(reverse(page), follow=True)
        assert held.redirect_chain[-1][0] == reverse("password_change")
        assert "Choose a new password before going on" in held.content.decode()
    assert client.get("/admin/")["Location"] == reverse("password_change")
    changed = client.post(
        reverse("password_change"),
        {"old_password": one_time, "new_password1": "a-Brand-new-passw0rd", "new_password2": "a-Brand-new-passw0rd"},
    )
    assert changed.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    assert not User.objects.get(email="boss@example.com").must_change_password


def test_an_admin_whose_password_came_from_the_environment_is_not_held(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.management import call_command

    monkeypatch.setenv("PARLEY_ADMIN_EMAIL", "boss@example.com")
    monkeypatch.setenv("PARLEY_ADMIN_PASSWORD", "a-Chosen-passw0rd")
    call_command("ensure_admin")
    client = Client()
    client.post(reverse("login"), {"username": "boss@example.com", "password": "a-Chosen-passw0rd"})
    assert client.get(reverse("home")).status_code == 200
