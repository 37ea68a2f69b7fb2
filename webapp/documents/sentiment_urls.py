from django.urls import path

from webapp.documents import sentiment_views as views

app_name = "sentiment"

urlpatterns = [
    path("", views.index, name="index"),
    path("new", views.create, name="create"),
    path("<int:batch_id>/", views.batch, name="batch"),
    path("<int:batch_id>/column", views.choose_column, name="column"),
    path("<int:batch_id>/export.<str:fmt>", views.export, name="export"),
]
