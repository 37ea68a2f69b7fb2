from django.urls import path

from webapp.chat import document_views, views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("list", views.conversation_list, name="list"),
    path("search", views.search_results, name="search"),
    path("start", views.start, name="start"),
    path("import", views.import_conversations, name="import"),
    path("projects/", views.projects, name="projects"),
    path("projects/<int:project_id>/", views.project, name="project"),
    path("projects/<int:project_id>/delete", views.project_delete, name="project_delete"),
    path("models/", views.models_list, name="models"),
    path("shared/", views.shared_list, name="shared_list"),
    path("shared/<str:token>/", views.shared, name="shared"),
    path("shared/<str:token>/revoke", views.shared_revoke, name="shared_revoke"),
    path("<int:conversation_id>/", views.conversation, name="conversation"),
    path("<int:conversation_id>/export.<str:extension>", views.export, name="export"),
    path("<int:conversation_id>/share", views.share, name="share"),
    path("<int:conversation_id>/thread", views.thread, name="thread"),
    path("<int:conversation_id>/send", views.send, name="send"),
    path("<int:conversation_id>/settings", views.update_settings, name="settings"),
    path("<int:conversation_id>/documents", document_views.attach, name="attach"),
    path("<int:conversation_id>/documents/<int:document_id>/detach", document_views.detach, name="detach"),
    path(
        "<int:conversation_id>/collections/<int:collection_id>/detach",
        document_views.detach_collection,
        name="detach_collection",
    ),
    path("about/<int:document_id>", document_views.about, name="about"),
    path("<int:conversation_id>/rename", views.rename, name="rename"),
    path("<int:conversation_id>/move", views.move, name="move"),
    path("<int:conversation_id>/pin", views.pin, name="pin"),
    path("<int:conversation_id>/archive", views.archive, name="archive"),
    path("<int:conversation_id>/delete", views.delete, name="delete"),
    path("<int:conversation_id>/messages/<int:message_id>/", views.message, name="message"),
    path("<int:conversation_id>/messages/<int:message_id>/regenerate", views.regenerate, name="regenerate"),
    path("<int:conversation_id>/messages/<int:message_id>/edit", views.edit, name="edit"),
    path("<int:conversation_id>/messages/<int:message_id>/switch", views.switch, name="switch"),
    path("<int:conversation_id>/messages/<int:message_id>/stop", views.stop, name="stop"),
    path("<int:conversation_id>/messages/<int:message_id>/feedback", views.feedback, name="feedback"),
]
