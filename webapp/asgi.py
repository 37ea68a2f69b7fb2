"""ASGI entry point: HTTP pages through Django, websockets through Channels."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
# Every request runs in a thread of its own here: database connections come from a pool
# (see webapp/settings.py), not one opened per request.
os.environ.setdefault("PARLEY_DATABASE_POOL", "1")

import django

# Django must be set up before anything imports models (the websocket routes do).
django.setup(set_prefix=False)

from webapp.core.handlers import ThreadedASGIHandler  # noqa: E402

django_asgi_app = ThreadedASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from webapp.core.origins import SameOriginValidator  # noqa: E402
from webapp.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Every websocket route: only the site's own pages (scheme, host and port) may open one.
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
