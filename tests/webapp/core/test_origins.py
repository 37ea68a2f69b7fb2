"""Websocket handshakes come only from the site's own pages: scheme, host and port."""

from __future__ import annotations

from typing import Any

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator

from webapp.asgi import application
from webapp.core.origins import REFUSED_CODE, SameOriginValidator


class Accepting(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()


guarded = SameOriginValidator(Accepting.as_asgi())


async def handshake(app: Any, path: str = "/ws/", **headers: str) -> tuple[bool, int | None]:
    """Whether the handshake was accepted, and the close code when it was not."""
    socket = WebsocketCommunicator(
        app, path, headers=[(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    )
    connected, code = await socket.connect()
    await socket.disconnect()
    return connected, None if connected else code


@pytest.fixture(autouse=True)
def plain_http_site(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["localhost", "parley.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = []
    settings.HTTPS = False
    settings.SECURE_PROXY_SSL_HEADER = None


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("localhost", "http://localhost"),
        ("localhost:8000", "http://localhost:8000"),
        ("localhost:80", "http://localhost"),
        ("LOCALHOST:8000", "http://localhost:8000/"),
    ],
)
async def test_a_page_of_the_same_origin_may_open_a_socket(host: str, origin: str) -> None:
    assert await handshake(guarded, host=host, origin=origin) == (True, None)


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("localhost:8000", "http://localhost:9999"),  # another port of the same host
        ("localhost", "http://localhost:8000"),
        ("localhost:8000", "https://localhost:8000"),  # another scheme
        ("localhost", "https://localhost"),
        ("localhost:8000", "http://evil.example:8000"),  # another host
        ("localhost:8000", "http://localhost.evil.example:8000"),
        ("evil.example", "http://evil.example"),  # a Host the site does not serve
        ("localhost", "null"),
        ("localhost", "http://localhost/page"),
        ("localhost", "file://localhost"),
        ("localhost", "http://localhost:99999"),
    ],
)
async def test_a_page_of_another_origin_is_refused(host: str, origin: str) -> None:
    assert await handshake(guarded, host=host, origin=origin) == (False, REFUSED_CODE)


async def test_a_handshake_without_an_origin_or_a_host_is_refused() -> None:
    assert await handshake(guarded, host="localhost") == (False, REFUSED_CODE)
    assert await handshake(guarded, origin="http://localhost") == (False, REFUSED_CODE)


async def test_an_https_site_takes_only_its_https_pages(settings: Any) -> None:
    settings.HTTPS = True
    assert await handshake(guarded, host="parley.example.com", origin="https://parley.example.com") == (True, None)
    assert await handshake(guarded, host="parley.example.com", origin="http://parley.example.com") == (
        False,
        REFUSED_CODE,
    )


async def test_behind_a_proxy_the_forwarded_scheme_is_the_sites(settings: Any) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    https = {"host": "parley.example.com", "x_forwarded_proto": "https"}
    assert await handshake(guarded, origin="https://parley.example.com", **https) == (True, None)
    assert await handshake(guarded, origin="http://parley.example.com", **https) == (False, REFUSED_CODE)
    plain = {"host": "parley.example.com", "x_forwarded_proto": "http"}
    assert await handshake(guarded, origin="http://parley.example.com", **plain) == (True, None)
    assert await handshake(guarded, origin="https://parley.example.com", **plain) == (False, REFUSED_CODE)


async def test_csrf_trusted_origins_may_open_sockets(settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com", "https://*.team.example.com:8443"]
    assert await handshake(guarded, host="localhost:8000", origin="https://chat.example.com") == (True, None)
    assert await handshake(guarded, host="localhost:8000", origin="https://a.team.example.com:8443") == (True, None)
    for origin in ("http://chat.example.com", "https://chat.example.com:444", "https://a.team.example.com"):
        assert await handshake(guarded, host="localhost:8000", origin=origin) == (False, REFUSED_CODE)


@pytest.mark.parametrize("path", ["/ws/chat/1/", "/ws/jobs/1/"])
async def test_every_websocket_route_refuses_another_port(path: str) -> None:
    assert await handshake(application, path, host="localhost:8000", origin="http://localhost:9999") == (
        False,
        REFUSED_CODE,
    )
