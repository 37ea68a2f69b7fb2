"""What chat tells ``/metrics`` at each scrape, read from Postgres then: answers waiting and
being written per model, and the generation workers alive per model."""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from webapp.chat import liveness
from webapp.chat.models import Message


class AnswerQueueCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        models = settings.PARLEY_INFERENCE.models
        counts: dict[tuple[str, str], int] = {
            (model, str(status)): 0 for model in models.names for status in Message.IN_FLIGHT
        }
        in_flight = (
            Message.objects.filter(role=Message.Role.ASSISTANT, status__in=Message.IN_FLIGHT)
            .values("settings__model", "status")
            .annotate(count=Count("pk"))
            .order_by()
        )
        for row in in_flight:
            # answers queued before the registry named no model: the default's
            key = (row["settings__model"] or models.default, row["status"])
            counts[key] = counts.get(key, 0) + row["count"]
        waiting = GaugeMetricFamily(
            "parley_answers_waiting", "Answers queued for a worker, per model.", labels=["model"]
        )
        running = GaugeMetricFamily("parley_answers_running", "Answers being written, per model.", labels=["model"])
        for (model, status), count in sorted(counts.items()):
            (waiting if status == Message.Status.QUEUED else running).add_metric([model], count)
        workers = GaugeMetricFamily(
            "parley_generation_workers", "Generation workers alive, per model.", labels=["model"]
        )
        for model, alive in liveness.workers_per_model(models.names).items():
            workers.add_metric([model], alive)
        yield from (waiting, running, workers)
