"""Websocket routes of every app."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

from webapp.chat.routing import websocket_urlpatterns as chat_routes
from webapp.jobs.routing import websocket_urlpatterns as job_routes

websocket_urlpatterns: list[URLPattern | URLResolver] = [*chat_routes, *job_routes]
