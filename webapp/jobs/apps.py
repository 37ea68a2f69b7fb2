from __future__ import annotations

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "webapp.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from webapp.core import metrics
        from webapp.jobs.metrics import JobQueueCollector

        metrics.collect_at_scrape(JobQueueCollector())
