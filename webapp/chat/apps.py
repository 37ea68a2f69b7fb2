from django.apps import AppConfig

from webapp.core.navigation import NavEntry


class ChatConfig(AppConfig):
    name = "webapp.chat"
    label = "chat"
    verbose_name = "Chat"

    def nav_entries(self) -> list[NavEntry]:
        return [NavEntry("Chat", "chat:index", "Talk with the model running on this server.", order=10)]
