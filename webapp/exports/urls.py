from django.urls import path

from webapp.exports import views

app_name = "exports"

urlpatterns = [
    path("everything.zip", views.everything, name="everything"),
]
