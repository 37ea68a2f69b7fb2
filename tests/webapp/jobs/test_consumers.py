"""The job socket: the owner hears a job's saved state on connect, then every change; nobody else does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from channels.db import database_sync_to_async
from django.db import connection

from tests.webapp.documents.test_summaries import long_text, ready_document
from tests.webapp.sockets import session_cookie, socket_to
from webapp.accounts.models import User
from webapp.documents import services
from webapp.jobs.events import publish_job_progress
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


async def test_progress_reaches_the_page_over_a_websocket(user: User, make_user: Callable[..., User]) -> None:
    document = await database_sync_to_async(ready_document)(user, long_text(100))
    summary = await database_sync_to_async(services.summary_request)(document, "short", "paragraph")
    socket = socket_to(f"/ws/jobs/{summary.job_id}/", await session_cookie(user))
    assert (await socket.connect())[0]
    first = json.loads(await socket.receive_from())
    assert (first["type"], first["state"], first["job"]) == ("progress", "queued", summary.job_id)

    def advance() -> None:
        Job.objects.filter(pk=summary.job_id).update(state="running", done=2, total=5)
        publish_job_progress(Job.objects.get(pk=summary.job_id))

    await database_sync_to_async(advance)()
    frame = json.loads(await socket.receive_from())
    assert (frame["state"], frame["done"], frame["total"]) == ("running", 2, 5)
    assert frame["text"] == "2 of 5 steps"  # written by the server; the page only shows it
    await socket.disconnect()

    stranger = await database_sync_to_async(make_user)()
    refused = socket_to(f"/ws/jobs/{summary.job_id}/", await session_cookie(stranger))
    assert not (await refused.connect())[0]
    await refused.disconnect()
    await database_sync_to_async(lambda: connection.close())()
    await asyncio.sleep(0)
