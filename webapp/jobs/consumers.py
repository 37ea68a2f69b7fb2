"""A job's progress over a websocket: its saved state on connect, then every change.

The socket is the owner's only: anyone else, or nobody logged in, is refused in
``connect``; logging out, a new password or a deactivated account closes it
(``webapp/core/sockets.py``). It forwards ``job.progress`` events from the job's group unchanged but for
the frame type, and takes no frames from the page: each gets an error frame, and one over the size or
rate limit also closes the socket.
"""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404

from webapp.core.sockets import FrameGate, SessionClosedEvent, account_groups
from webapp.jobs.events import JobProgressEvent, job_group, job_progress_frame
from webapp.jobs.models import Job
from webapp.jobs.selectors import job_get


class JobConsumer(AsyncWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        self.gate = FrameGate()
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=4401)
            return
        try:
            job: Job = await database_sync_to_async(job_get)(
                user=user, job_id=self.scope["url_route"]["kwargs"]["job_id"]
            )
        except Http404:
            await self.close(code=4404)
            return
        # Joined before reading the state, so no change falls between the two.
        self.groups_joined = [job_group(job.pk), *account_groups(self.scope)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await job.arefresh_from_db()
        await self._send(dict(job_progress_frame(job)))

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        refused = self.gate.refusal(text_data, bytes_data)
        if refused is not None:
            await self._send({"type": "error", "error": refused.error})
            await self.close(code=refused.code)
            return
        await self._send({"type": "error", "error": "This socket only reports progress; it takes no frames."})

    async def job_progress(self, event: JobProgressEvent) -> None:
        await self._send({**event, "type": "progress"})

    async def session_closed(self, event: SessionClosedEvent) -> None:
        await self.close(code=event["code"])

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame))
