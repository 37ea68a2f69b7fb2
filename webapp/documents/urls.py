from django.urls import path

from webapp.documents import views

app_name = "documents"

urlpatterns = [
    path("", views.index, name="index"),
    path("upload", views.upload, name="upload"),
    path("<int:document_id>/", views.detail, name="detail"),
    path("<int:document_id>/download", views.download, name="download"),
    path("<int:document_id>/delete", views.delete, name="delete"),
    path("<int:document_id>/summarize", views.summarize, name="summarize"),
    path("jobs/<int:job_id>/cancel", views.cancel, name="cancel"),
    path("collections/", views.collections, name="collections"),
    path("collections/<int:collection_id>/", views.collection, name="collection"),
    path("collections/<int:collection_id>/delete", views.collection_delete, name="collection_delete"),
]
