from django.apps import AppConfig

from webapp.core.navigation import NavEntry


class ChatConfig(AppConfig):
    name = "webapp.chat"
    label = "chat"
    verbose_name = "Chat"

    def ready(self) -> None:
        from webapp.chat.metrics import AnswerQueueCollector
        from webapp.core import health, metrics

        metrics.collect_at_scrape(AnswerQueueCollector())
        health.readiness_check("generation_worker", _default_model_served)

    def nav_entries(self) -> list[NavEntry]:
        return [NavEntry("Chat", "chat:index", "Talk with the model running on this server.", order=10)]


def _default_model_served() -> tuple[bool, str]:
    """Ready when a generation worker serves the default model (others' are reported too)."""
    from django.conf import settings

    from webapp.chat import liveness

    models = settings.PARLEY_INFERENCE.models
    alive = liveness.workers_per_model(models.names)
    report = ", ".join(f"{model}: {count}" for model, count in alive.items())
    return alive.get(models.default, 0) > 0, report
