"""Fifty tabs on one streaming answer: the web server renders each update once for all of
them, every tab gets every piece, and /healthz stays fast meanwhile.

The web server is the Procfile's own ``web`` command (uvicorn) against the test database,
with its renders logged (``LOG_DEBUG=webapp.chat.renders``): the log is what counts them.
The answer is written by a real generation worker on the tiny model, slowed to stream for
a few seconds, and the fifty sockets are real websocket clients.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from tests.processes import procfile_web
from tests.webapp.chat.conftest import Converse
from webapp.accounts.models import User
from webapp.chat import renders
from webapp.chat.models import Message
from webapp.chat.worker import GenerationWorker
from webapp.core.rendering import render_markdown

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_db")]

SOCKETS = 50
# /healthz's median while the fifty sockets stream. Alone it answers in a few milliseconds;
# here it shares two cores with the fifty clients, the generation worker and the test
# itself, and on a loaded CI machine a request can wait hundreds of milliseconds for a
# core. Renders of the answer on the event loop, or one per socket (fifty per update),
# would hold it for seconds; a second leaves room for the machine's load and not for that.
HEALTHZ_MEDIAN_BOUND_S = 1.0


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "web.log"
    with log.open("wb") as stderr, procfile_web(stderr=stderr, LOG_DEBUG="webapp.chat.renders") as url:
        yield url, log


def renders_logged(log: Path, message_id: int) -> list[int]:
    """The sequence numbers the server rendered answer ``message_id`` at, one per render."""
    pattern = re.compile(rf"rendered answer {message_id} at seq (\d+) ")
    return [int(found.group(1)) for found in pattern.finditer(log.read_text(errors="replace"))]


async def frames_until_the_end(socket: ClientConnection, message_id: int) -> list[dict[str, Any]]:
    """Every frame about the answer, until the one that ends it (with its final text), each
    with the time it came at (``"at"``, ``time.monotonic()``)."""
    frames = []
    async with asyncio.timeout(120):
        while True:
            frame = json.loads(await socket.recv(decode=True))
            if frame.get("message") != message_id:
                continue
            frames.append({**frame, "at": time.monotonic()})
            if frame["type"] == "status" and frame["status"] != "generating":
                return frames


class HealthzProbe:
    """Asks /healthz one request after the other in a thread, timing each."""

    def __init__(self, url: str) -> None:
        self.url = f"http://{url}/healthz"
        self.timings: list[tuple[float, float]] = []  # (asked at, seconds to answer)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.is_set():
            asked = time.monotonic()
            with urllib.request.urlopen(self.url, timeout=30) as response:
                response.read()
            self.timings.append((asked, time.monotonic() - asked))

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=60)


async def test_fifty_sockets_on_one_answer_share_one_render_per_update_and_healthz_stays_fast(
    web_server: tuple[str, Path], user: User, converse: Converse, start_worker: Callable[..., GenerationWorker]
) -> None:
    url, log = web_server
    conversation, answer = await database_sync_to_async(converse)(max_tokens=80)
    client = Client()
    await database_sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    uri = f"ws://{url}/ws/chat/{conversation.pk}/"
    sockets = [
        await connect(uri, origin=Origin(f"http://{url}"), additional_headers={"Cookie": cookie})
        for _ in range(SOCKETS)
    ]
    try:
        # every socket has the answer's saved state (queued, empty) before any piece is written
        for socket in sockets:
            first = json.loads(await socket.recv(decode=True))
            assert (first["type"], first["message"], first["seq"]) == ("answer", answer.pk, 0)
        probe = HealthzProbe(url)
        probe.thread.start()
        await database_sync_to_async(start_worker)(step_seconds=0.05)
        frames = await asyncio.gather(*(frames_until_the_end(socket, answer.pk) for socket in sockets))
        probe.stop()
    finally:
        for socket in sockets:
            await socket.close()

    saved = await Message.objects.aget(pk=answer.pk)
    assert saved.status == "complete"
    assert saved.seq > 20, "the answer streamed too few pieces to tell anything"
    # every socket got every piece, in order, once, each frame with the html of the text it
    # has so far, and then the end with the final text's html (which holds the last pieces
    # when the end came while their frame was being rendered)
    html_of: dict[str, str] = {}
    for received in frames:
        deltas = [frame for frame in received if frame["type"] == "delta"]
        assert [frame["from_seq"] for frame in deltas] == [1] + [frame["seq"] + 1 for frame in deltas[:-1]]
        streamed = ""
        for frame in deltas:
            streamed += frame["delta"]
            assert saved.content.startswith(streamed)
            assert frame["html"] == html_of.setdefault(streamed, render_markdown(streamed))
        end = received[-1]
        assert (end["status"], end["seq"], end["html"]) == ("complete", saved.seq, render_markdown(saved.content))

    # one render per sequence number any socket was sent html of: shared, not one per socket
    rendered = renders_logged(log, answer.pk)
    sent_at = {frame["seq"] for received in frames for frame in received if "html" in frame} | {0}
    assert sorted(rendered) == sorted(sent_at)
    assert len(rendered) <= saved.seq + 1  # at most one per update, and the empty text on connect

    # the requests asked between the first piece any socket got and the end the last one got
    streaming_from = min(frame["at"] for received in frames for frame in received if frame["type"] == "delta")
    streaming_until = max(received[-1]["at"] for received in frames)
    during = [seconds for asked, seconds in probe.timings if streaming_from <= asked <= streaming_until]
    assert len(during) >= 5, f"only {len(during)} /healthz requests while the answer streamed"
    median = statistics.median(during)
    assert median < HEALTHZ_MEDIAN_BOUND_S, f"/healthz took a median {median:.3f} s ({len(during)} requests)"


async def test_sockets_asking_at_once_share_one_render_and_another_text_gets_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rendered: list[str] = []

    def counted(text: str) -> str:
        rendered.append(text)
        return render_markdown(text)

    monkeypatch.setattr(renders, "render_markdown", counted)
    shared = renders.AnswerRenders()
    asked = await asyncio.gather(*(shared.html(message_id=7, seq=3, text="**Hello**") for _ in range(SOCKETS)))
    assert {html for html, _ in asked} == {"<p><strong>Hello</strong></p>\n"}
    assert rendered == ["**Hello**"]
    # the same number with another text (a saved text read after a restart, say) is not
    # given the first one's html
    html, _ = await shared.html(message_id=7, seq=3, text="<script>x</script>")
    assert html == "<p>&lt;script&gt;x&lt;/script&gt;</p>\n"
    assert rendered == ["**Hello**", "<script>x</script>"]


async def test_an_answers_first_pieces_are_rendered_on_the_loop_and_a_long_text_in_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: dict[str, str] = {}

    def where(text: str) -> str:
        threads[text] = threading.current_thread().name
        return render_markdown(text)

    monkeypatch.setattr(renders, "render_markdown", where)
    shared = renders.AnswerRenders()
    first = "Hello"
    long = "A sentence of a long answer. " * 20
    assert len(long) > renders.INLINE_CHARS
    html, _ = await shared.html(message_id=8, seq=1, text=first)
    assert html == "<p>Hello</p>\n"
    html, _ = await shared.html(message_id=8, seq=30, text=long)
    assert html == render_markdown(long)
    loop_thread = threading.current_thread().name
    assert threads[first] == loop_thread, "a first piece waited for a thread"
    assert threads[long] != loop_thread, "a long render held the event loop"
