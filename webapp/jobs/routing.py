"""The job socket's route, shared by every page that shows a job."""

from __future__ import annotations

from django.urls import URLPattern, path

from webapp.jobs.consumers import JobConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
]
