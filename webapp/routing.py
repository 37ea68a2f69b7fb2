"""Websocket routes of every app."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

from webapp.chat.routing import websocket_urlpatterns as chat_routes
from webapp.documents.routing import websocket_urlpatterns as document_routes

websocket_urlpatterns: list[URLPattern | URLResolver] = [*chat_routes, *document_routes]
