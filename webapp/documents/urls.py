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
]
