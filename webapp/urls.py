from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from webapp.api import urls as api_urls
from webapp.core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("metrics", core_views.metrics, name="metrics"),
    path("accounts/api-keys/", include((api_urls.key_patterns, "api"))),
    path("accounts/", include("webapp.accounts.urls")),
    path("chat/", include("webapp.chat.urls")),
    path("documents/", include("webapp.documents.urls")),
    path("sentiment/", include("webapp.sentiment.urls")),
    path("review/", include("webapp.review.urls")),
    path("exports/", include("webapp.exports.urls")),
    path("v1/", include((api_urls.v1_patterns, "v1"))),
    path("admin/", admin.site.urls),
]
