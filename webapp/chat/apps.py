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
        health.readiness_check("generation_worker", _every_model_served)

    def nav_entries(self) -> list[NavEntry]:
        return [NavEntry("Chat", "chat:index", "Talk with the model running on this server.", order=10)]


def _every_model_served() -> tuple[bool, str]:
    """Ready when each model of the registry has a live generation worker: an answer asked
    of a model without one would wait until a worker starts."""
    from django.conf import settings

    from webapp.chat import liveness

    alive = liveness.workers_per_model(settings.PARLEY_INFERENCE.models.names)
    report = ", ".join(f"{model}: {count}" for model, count in alive.items())
    return all(count > 0 for count in alive.values()), report
