from __future__ import annotations

from django.urls import path

from webapp.review import views

app_name = "review"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("step", views.step, name="step"),
    path("items/<int:item_id>/", views.item, name="item"),
    path("items/<int:item_id>/verdict", views.verdict, name="verdict"),
    path("items/<int:item_id>/diff", views.diff, name="diff"),
    path("stats", views.stats, name="stats"),
    path("export.jsonl", views.export, name="export"),
]
