"""What background jobs tell ``/metrics`` at each scrape, read from Postgres then: jobs
waiting and running per kind (each kind has its own Celery queue)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from webapp.jobs.models import Job


class JobQueueCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts: dict[tuple[str, str], int] = {
            (kind, str(state)): 0 for kind in Job.Kind.values for state in (Job.State.QUEUED, Job.State.RUNNING)
        }
        for row in (
            Job.objects.filter(state__in=(Job.State.QUEUED, Job.State.RUNNING))
            .values("kind", "state")
            .annotate(count=Count("pk"))
            .order_by()
        ):
            counts[(row["kind"], row["state"])] = row["count"]
        waiting = GaugeMetricFamily("parley_jobs_waiting", "Background jobs queued, per kind.", labels=["kind"])
        running = GaugeMetricFamily("parley_jobs_running", "Background jobs running, per kind.", labels=["kind"])
        for (kind, state), count in sorted(counts.items()):
            (waiting if state == Job.State.QUEUED else running).add_metric([kind], count)
        yield from (waiting, running)
