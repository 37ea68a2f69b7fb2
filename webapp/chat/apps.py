from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "webapp.chat"
    label = "chat"
    verbose_name = "Chat"

    def ready(self) -> None:
        from webapp.chat import signals  # noqa: F401  (connects the logout handler)
