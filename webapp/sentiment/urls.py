from __future__ import annotations

from django.urls import URLPattern, path

from webapp.sentiment import views

app_name = "sentiment"

urlpatterns: list[URLPattern] = [
    path("", views.index, name="index"),
    path("new", views.create, name="create"),
    path("<int:batch_id>/", views.batch, name="batch"),
    path("<int:batch_id>/column", views.choose_column, name="column"),
    path("<int:batch_id>/export.<str:fmt>", views.export, name="export"),
]
