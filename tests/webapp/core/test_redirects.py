"""A redirect to a target from the request never leaves the site: an outside one goes home."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpResponse, HttpResponseRedirect
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.conftest import PASSWORD
from webapp.chat.models import Conversation
from webapp.core.redirects import SameSiteRedirectMiddleware, safe_redirect_url

pytestmark = pytest.mark.django_db

OUTSIDE = [
    "https://evil.example/login",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "http://testserver@evil.example/",
    " https://evil.example/",
]


@pytest.mark.parametrize("target", OUTSIDE)
def test_logging_in_with_an_outside_next_goes_to_the_home_page(user: Any, target: str) -> None:
    client = Client()
    form = client.get(reverse("login"), {"next": target}).content.decode()
    assert "evil.example" not in form
    assert "javascript:" not in form
    response = client.post(reverse("login"), {"username": user.email, "password": PASSWORD, "next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.get(reverse("home")).wsgi_request.user == user


def test_logging_in_with_a_next_on_this_site_goes_there(user: Any) -> None:
    client = Client()
    target = reverse("documents:index") + "?q=report"
    response = client.post(reverse("login"), {"username": user.email, "password": PASSWORD, "next": target})
    assert response["Location"] == target


@pytest.mark.parametrize("target", OUTSIDE[:3])
def test_logging_out_with_an_outside_next_stays_on_the_site(logged_in_client: Client, target: str) -> None:
    response = logged_in_client.post(reverse("logout"), {"next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("login")


# The ones that reach a Location header as they are; Django's redirect refuses other schemes itself.
OTHER_HOSTS = ["https://evil.example/login", "//evil.example/", "///evil.example/", "https:evil.example"]


@pytest.mark.parametrize("target", [*OUTSIDE, *OTHER_HOSTS, "http://testserver@evil.example/"])
def test_a_view_redirecting_to_an_outside_next_goes_back_to_its_own_page(
    logged_in_client: Client, user: Any, target: str
) -> None:
    conversation = Conversation.objects.create(owner=user, title="Trip")
    response = logged_in_client.post(reverse("chat:rename", args=[conversation.pk]), {"title": "Plans", "next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("chat:conversation", args=[conversation.pk])
    conversation.refresh_from_db()
    assert conversation.title == "Plans"


def test_a_view_redirecting_to_a_next_on_this_site_goes_there(logged_in_client: Client, user: Any) -> None:
    conversation = Conversation.objects.create(owner=user, title="Trip")
    target = reverse("documents:index")
    response = logged_in_client.post(reverse("chat:rename", args=[conversation.pk]), {"title": "Plans", "next": target})
    assert response["Location"] == target


def test_an_htmx_redirect_outside_the_site_goes_home_too() -> None:
    request = RequestFactory().get("/")

    def view(_: Any) -> HttpResponse:
        response = HttpResponse()
        response["HX-Redirect"] = "https://evil.example/"
        return response

    assert SameSiteRedirectMiddleware(view)(request)["HX-Redirect"] == reverse("home")
    on_site = SameSiteRedirectMiddleware(lambda _: HttpResponseRedirect("/documents/"))(request)
    assert on_site["Location"] == "/documents/"


def test_an_http_target_from_an_https_page_is_not_followed() -> None:
    secure = RequestFactory().get("/", secure=True)
    assert safe_redirect_url(secure, "http://testserver/documents/") == reverse("home")
    assert safe_redirect_url(secure, "https://testserver/documents/") == "https://testserver/documents/"
    assert safe_redirect_url(secure, "https://evil.example/", fallback="/chat/") == "/chat/"
