from __future__ import annotations

from django.urls import path

from webapp.api import views

# /v1/…: OpenAI's paths, with no trailing slash, as its clients send them
v1_patterns = [
    path("models", views.models, name="models"),
    path("chat/completions", views.chat_completions, name="chat_completions"),
    path("chat/completions/<str:completion_id>", views.chat_completion, name="chat_completion"),
    path("embeddings", views.embeddings_create, name="embeddings"),
]

# /accounts/api-keys/…
key_patterns = [
    path("", views.keys, name="keys"),
    path("<int:key_id>/revoke", views.key_revoke, name="key_revoke"),
]
