"""A step of every Celery worker's consumer: send the jobs made while the broker was down.

Celery starts a consumer's steps each time its broker connection (re)starts, so the
jobs are sent as soon as the broker is back, and then every ``PARLEY_JOB_RESEND_SECONDS``
(a web process that could not send may have done so while this worker was connected).
This module is imported with the Celery app, before Django is set up: what needs Django
is imported when the step runs.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

logger = logging.getLogger(__name__)


class SendUnsentJobs(bootsteps.StartStopStep):
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.timer_entry: Any = None
        self.connected_before = False

    def start(self, parent: Any) -> None:
        from django.conf import settings

        self.timer_entry = parent.timer.call_repeatedly(settings.PARLEY_JOB_RESEND_SECONDS, send_unsent)
        if self.connected_before:  # the broker is back (at the first start, worker_ready's requeue sends all)
            send_unsent()
        self.connected_before = True

    def stop(self, parent: Any) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None


def send_unsent() -> None:
    from django.db import DatabaseError, connection

    from webapp.jobs.sending import jobs_send_unsent

    try:
        jobs_send_unsent()
    except DatabaseError as error:
        logger.warning("could not look for unsent jobs (%s)", error)
    finally:
        connection.close()
