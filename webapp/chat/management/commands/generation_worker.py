"""``manage.py generation_worker``: the process that owns the chat model."""

from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference.engine import Engine
from inference.errors import InferenceError
from webapp.chat.worker import GenerationWorker


class Command(BaseCommand):
    help = "Generate chat answers: claim queued answers from Postgres and stream them to the browser."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            engine = Engine.from_config(
                settings.PARLEY_INFERENCE,
                max_batch_size=settings.PARLEY_GENERATION_BATCH_SIZE,
                prefill_tokens=settings.PARLEY_GENERATION_PREFILL_TOKENS,
                max_new_tokens_limit=settings.PARLEY_CHAT_MAX_ANSWER_TOKENS,
            )
        except InferenceError as error:
            raise CommandError(str(error)) from None
        worker = GenerationWorker(engine, updates_per_second=settings.PARLEY_CHAT_UPDATES_PER_SECOND)

        def stop(signum: int, frame: Any) -> None:
            worker.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            worker.run()
        finally:
            engine.close()
