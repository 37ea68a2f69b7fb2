"""A job's progress over a websocket: its saved state on connect, then every change."""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404

from webapp.documents import services
from webapp.documents.models import Job
from webapp.documents.progress import JobProgress


class JobConsumer(AsyncWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=4401)
            return
        try:
            job: Job = await database_sync_to_async(services.job_get)(user, self.scope["url_route"]["kwargs"]["job_id"])
        except Http404:
            await self.close(code=4404)
            return
        self.group = job.group_name
        await self.channel_layer.group_add(self.group, self.channel_name)  # before reading the state
        await self.accept()
        await job.arefresh_from_db()
        await self._send({"type": "progress", **JobProgress.of(job).__dict__})

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self._send({"type": "error", "error": "This socket only reports progress; it takes no frames."})

    async def job_progress(self, event: dict[str, Any]) -> None:
        await self._send({**event, "type": "progress"})

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame))
