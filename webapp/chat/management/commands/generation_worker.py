"""``manage.py generation_worker [--model NAME]``: the process that serves one chat model
of the registry (the default model when none is named)."""

from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference.backends import backend_for
from inference.errors import InferenceError
from webapp.chat.worker import GenerationWorker


class Command(BaseCommand):
    help = "Generate the answers of one chat model: claim its queued answers from Postgres and stream them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", default="", help="the model's name in PARLEY_MODELS (default: the default one)")

    def handle(self, *args: Any, **options: Any) -> None:
        registry = settings.PARLEY_INFERENCE.models
        name = options["model"] or registry.default
        model = registry.get(name)
        if model is None:
            where = registry.source or "the model registry"
            raise CommandError(f"{where} has no model {name!r}; it lists {', '.join(registry.names)}.")
        try:
            backend = backend_for(
                model,
                settings.PARLEY_INFERENCE,
                max_batch_size=settings.PARLEY_GENERATION_BATCH_SIZE,
                prefill_tokens=settings.PARLEY_GENERATION_PREFILL_TOKENS,
                max_new_tokens_limit=settings.PARLEY_CHAT_MAX_ANSWER_TOKENS,
            )
        except InferenceError as error:
            raise CommandError(f"{model.name}: {error}") from None
        worker = GenerationWorker(backend, model=model.name, updates_per_second=settings.PARLEY_CHAT_UPDATES_PER_SECOND)

        def stop(signum: int, frame: Any) -> None:
            worker.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            worker.run()
        finally:
            backend.close()
