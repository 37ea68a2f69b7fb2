"""Websocket handshakes are let through only from the site's own pages.

A browser sends its cookies with a websocket handshake to any site, whichever page opens
it, and the same-origin policy does not apply to websockets: only the ``Origin`` header
tells the server which page asks. Channels' ``AllowedHostsOriginValidator`` compares the
Origin's host alone, so a page on another port or scheme of the same host (another
service on ``http://localhost:9999``, a plain-HTTP page of an HTTPS site) could open a
socket as the signed-in user.

``SameOriginValidator`` lets a handshake through only when its Origin is, in scheme,
host and port, the origin the server is serving it as (the request's own ``Host``, one of
``ALLOWED_HOSTS``, with the scheme of the connection: ``https`` when ``PARLEY_HTTPS`` is
on or, behind a proxy, when it forwards ``X-Forwarded-Proto: https``), or one of
``CSRF_TRUSTED_ORIGINS`` (which may name a subdomain wildcard, ``https://*.example.com``,
as Django's CSRF check reads them). No Origin, ``null`` or anything unparsable is
refused. A refused handshake is closed before it is accepted, with code 4403 (the
browser sees the handshake fail with HTTP 403).
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

REFUSED_CODE = 4403
DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


def parse_origin(value: str) -> Origin | None:
    """``scheme://host[:port]`` with the port filled in; None for anything else."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    return Origin(scheme, parts.hostname.lower().rstrip("."), port or DEFAULT_PORTS[scheme])


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    values = [value for key, value in scope.get("headers", []) if key.lower() == name]
    if len(values) != 1:
        return None  # missing, or sent twice: nothing to trust
    try:
        return bytes(values[0]).decode("latin-1")
    except (TypeError, ValueError):
        return None


def _served_scheme(scope: dict[str, Any]) -> str:
    """The scheme of the pages that may open this socket."""
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        forwarded = _header(scope, proxy_header[0].removeprefix("HTTP_").replace("_", "-").lower().encode())
        if forwarded is not None:
            return "https" if forwarded.split(",")[0].strip().lower() == proxy_header[1] else "http"
    if scope.get("scheme") in ("wss", "https") or getattr(settings, "HTTPS", False):
        return "https"
    return "http"


def own_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin this handshake is served as, from its ``Host``; None when the Host is
    missing or not one of ``ALLOWED_HOSTS``."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, _ = split_domain_port(host.lower())
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    return parse_origin(f"{_served_scheme(scope)}://{host}")


def _trusted(origin: Origin) -> bool:
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in entry
        trusted = parse_origin(entry.replace("://*.", "://", 1) if wildcard else entry)
        if trusted is None or (trusted.scheme, trusted.port) != (origin.scheme, origin.port):
            continue
        if origin.host == trusted.host or (wildcard and origin.host.endswith("." + trusted.host)):
            return True
    return False


def origin_allowed(scope: dict[str, Any]) -> bool:
    header = _header(scope, b"origin")
    origin = parse_origin(header) if header else None
    if origin is None:
        return False
    return origin == own_origin(scope) or _trusted(origin)


class _Refuse(WebsocketDenier):
    async def connect(self) -> None:
        await self.close(code=REFUSED_CODE)


class SameOriginValidator:
    """ASGI middleware for websocket routes: see the module docstring."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator guards websocket connections only.")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await _Refuse()(scope, receive, send)
