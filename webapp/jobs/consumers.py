"""A job's progress over a websocket: its saved state on connect, then every change.

The socket is the owner's only: anyone else, or nobody logged in, is refused in
``connect``; logging out, a new password or a deactivated account closes it
(``webapp/core/sockets.py``). It forwards ``job.progress`` events from the job's group unchanged but for
the frame type, and takes no frames from the page: each gets an error frame, and one over the size or
rate limit also closes the socket.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.http import Http404

from webapp.core.sockets import AccountSocket
from webapp.jobs.events import JobProgressEvent, job_group, job_progress_frame
from webapp.jobs.models import Job
from webapp.jobs.selectors import job_get


class JobConsumer(AccountSocket):
    async def connect(self) -> None:
        await super().connect()
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
        await self.accept_joining([job_group(job.pk)])
        await job.arefresh_from_db()  # read after joining, so no change falls between the two
        await self.send_frame(dict(job_progress_frame(job)))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not await self.refused(text_data, bytes_data):
            await self.send_error("This socket only reports progress; it takes no frames.")

    async def job_progress(self, event: JobProgressEvent) -> None:
        await self.send_frame({**event, "type": "progress"})
