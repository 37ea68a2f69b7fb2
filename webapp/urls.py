from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from webapp.core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("accounts/", include("webapp.accounts.urls")),
    path("chat/", include("webapp.chat.urls")),
    path("documents/", include("webapp.documents.urls")),
    path("sentiment/", include("webapp.sentiment.urls")),
    path("review/", include("webapp.review.urls")),
    path("exports/", include("webapp.exports.urls")),
    path("admin/", admin.site.urls),
]
