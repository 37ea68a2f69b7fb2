from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from webapp.accounts.models import User

pytestmark = pytest.mark.django_db

PROTECTED_PAGES = ["home", "password_change", "password_change_done"]


@pytest.mark.parametrize("name", PROTECTED_PAGES)
def test_every_page_redirects_an_anonymous_user_to_login(name: str) -> None:
    response = Client().get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", ["login", "signup", "password_reset"])
def test_public_pages_are_open(name: str, settings: Settings) -> None:
    settings.PARLEY_MAIL_CONFIGURED = True
    assert Client().get(reverse(name)).status_code == 200


def test_pages_send_security_headers(logged_in_client: Client) -> None:
    response = logged_in_client.get(reverse("home"))
    assert response["X-Frame-Options"] == "DENY"
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-eval" not in policy
    assert "unsafe-inline" not in policy


def test_htmx_sends_the_csrf_token_and_is_served_locally(logged_in_client: Client) -> None:
    html = logged_in_client.get(reverse("home")).content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert "/static/django_htmx/htmx" in html
    assert "unpkg" not in html
    assert "cdn" not in html.lower()


def test_csrf_is_enforced_on_forms(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "alice@example.com", "password": "x"})
    assert response.status_code == 403
    signup = client.post(reverse("signup"), {"email": "z@example.com", "password1": "a", "password2": "a"})
    assert signup.status_code == 403
    assert not User.objects.filter(email="z@example.com").exists()


def test_healthz_reports_both_services() -> None:
    response = Client().get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_answers_503_when_redis_is_down(settings: Settings) -> None:
    from webapp.redis_urls import RedisUrls

    dead = "redis://127.0.0.1:1/0"
    settings.REDIS_URLS = RedisUrls(channels=dead, broker=dead, cache=dead)
    response = Client().get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "ok"
    assert body["redis"].startswith("error")


def test_check_deploy_passes_with_production_settings(tmp_path: Path) -> None:
    import os

    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x" * 20 + "production-secret-key-that-is-long-enough-0123456789",
        "ALLOWED_HOSTS": "parley.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://parley.example.com",
        "PARLEY_VAR_DIR": str(tmp_path),
    }
    env.pop("PARLEY_HTTPS", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_missing_secret_key_in_production_is_one_clear_line(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "DEBUG": "0", "PARLEY_VAR_DIR": str(tmp_path)}
    env.pop("SECRET_KEY", None)
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PARLEY_GENERATION_PREFILL_TOKENS", "-1", "PARLEY_GENERATION_PREFILL_TOKENS=-1 is below the minimum of 0"),
        ("PARLEY_GENERATION_PREFILL_TOKENS", "lots", "is not an integer"),
        ("PARLEY_CHAT_UPDATES_PER_SECOND", "0", "PARLEY_CHAT_UPDATES_PER_SECOND=0 is below the minimum of 1"),
    ],
)
def test_a_bad_number_in_the_environment_stops_with_the_variables_name(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    import os

    env = {**os.environ, "PARLEY_VAR_DIR": str(tmp_path), name: value}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_the_web_layer_does_not_load_torch() -> None:
    code = (
        "import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'webapp.settings');"
        "import django, sys; django.setup();"
        "import webapp.asgi, webapp.urls, webapp.celery;"
        "import webapp.core.views, webapp.accounts.views, webapp.chat.views, webapp.chat.consumers;"
        "import webapp.documents.views, webapp.documents.tasks, webapp.api.views;"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False False"


def test_the_top_bar_links_to_chat(logged_in_client: Client) -> None:
    html = logged_in_client.get(reverse("home")).content.decode()
    assert f'href="{reverse("chat:index")}"' in html
    assert "Chat" in html
