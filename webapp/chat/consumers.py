"""The websocket of one conversation: replays saved answers, then forwards live deltas.

Frames to the browser (JSON):
- ``{"type": "answer", "message", "status", "seq", "content", "html", "position"}``: the saved state
  of an answer, sent on (re)connect and whenever a gap has to be filled from Postgres;
- ``{"type": "delta", "message", "from_seq", "seq", "delta", "html"}``: the pieces numbered
  ``from_seq`` to ``seq``, joined; ``html`` is the whole answer so far, rendered and
  sanitized on the server;
- ``{"type": "status", "message", "status", "html", ...}``: generating / complete /
  interrupted / failed, with the final text and statistics when it ends;
- ``{"type": "queue", "message", "position"}``, ``{"type": "created", "message"}``,
  ``{"type": "title", "title"}`` (the model titled the conversation), ``{"type": "error", "error"}``.

Frames from the browser: ``{"type": "stop", "message": id}``. A frame over the size limit
or past the rate limit gets an error frame and closes the socket (``webapp/core/sockets.py``).

Frames from the channel layer are the ``TypedDict``s of ``webapp/chat/events.py``, one
handler each (``chat.delta`` -> ``chat_delta``).

Every delta has a sequence number; the saved text carries the number of the last delta
it includes. A socket forwards a delta only when it is the next one, drops repeats, and
on a gap reads the saved text again (the worker saves at least every 250 ms), so a
reload mid-answer shows everything once.

Rendering the whole answer costs more as it grows (docs/decisions.md has the figures), so
a socket sends a frame per piece only while that is cheap: after each frame it waits
until rendering has taken at most ``RENDER_SHARE`` of the time, joining the pieces that
arrive meanwhile into the next frame. A short answer streams piece by piece; a long one
in a few frames a second, instead of the process spending its time re-rendering.

Rendering a long answer runs in a thread, never on the event loop: one render takes
milliseconds to tens of milliseconds, and on the loop that time would hold up every other
socket of the process (their deltas, their handshakes, the Stop of another user); a short
one (an answer's first pieces) is rendered on the loop, sooner than a thread could. And it
runs once per update for all the process's sockets on the answer (``webapp/chat/renders.py``):
each frame's html is asked for by answer and sequence number, and the sockets that ask for
the same one await the same render. A socket spaces its frames by the render's own time,
not by how long it waited, so the sockets on one answer keep sending at the same sequence
numbers. The pieces that arrive while a render is under way wait for the next frame, and
a frame whose answer was replaced meanwhile (by its saved or final text) is dropped, so
the frames of an answer still go out in order, each piece once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.http import Http404

from webapp.chat import selectors, services
from webapp.chat.events import (
    CreatedEvent,
    DeltaEvent,
    QueueEvent,
    StatusEvent,
    TitleEvent,
    conversation_group,
)
from webapp.chat.models import Conversation, Message
from webapp.chat.renders import answer_renders
from webapp.core.sockets import AccountSocket

logger = logging.getLogger(__name__)

GAP_WAIT = 0.05  # seconds between reads of the saved text while filling a gap
GAP_PATIENCE = 3.0  # then the saved text is taken as it is
RENDER_SHARE = 0.1  # of the time, at most, spent rendering one answer


async def _rendered(*, message_id: int, seq: int, text: str) -> tuple[str, float]:
    """The html of an answer's ``text`` up to delta ``seq``, rendered once for all the
    process's sockets on it, and the seconds that render took."""
    return await answer_renders().html(message_id=message_id, seq=seq, text=text)


@dataclass
class AnswerState:
    seq: int
    text: str
    unsent: str = ""  # pieces received but not yet sent to the browser, joined
    unsent_from: int = 0  # the number of the first of them; 0 when there are none
    next_frame_at: float = 0.0  # event-loop time
    timer: asyncio.TimerHandle | None = None
    rendering: bool = False  # a frame of this answer is being rendered in a thread

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class ConversationConsumer(AccountSocket):
    conversation: Conversation

    async def connect(self) -> None:
        await super().connect()
        self.answers: dict[int, AnswerState] = {}
        self._pending_sends: set[asyncio.Future[None]] = set()
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=4401)
            return
        try:
            self.conversation = await database_sync_to_async(selectors.conversation_get)(
                user=user, conversation_id=self.scope["url_route"]["kwargs"]["conversation_id"]
            )
        except Http404:
            await self.close(code=4404)
            return
        # Join before reading the saved text, so no delta falls between the two.
        await self.accept_joining([conversation_group(conversation_id=self.conversation.pk)])
        for answer in await self._in_flight_answers():
            await self._send_saved(answer)

    async def disconnect(self, code: int) -> None:
        for message_id in list(self.answers):
            self._forget(message_id)  # a send already under way then finds nothing to send
        await super().disconnect(code)

    # ---- from the browser ---------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if await self.refused(text_data, bytes_data):
            return
        if text_data is None:
            await self.send_error("That frame is not text; nothing was done.")
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            await self.send_error("That frame is not JSON; nothing was done.")
            return
        if not isinstance(frame, dict) or frame.get("type") != "stop":
            await self.send_error('Unknown frame; the only one accepted is {"type": "stop", "message": <id>}.')
            return
        message_id = frame.get("message")
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            await self.send_error("A stop frame needs the answer's id as a number.")
            return
        try:
            await database_sync_to_async(self._stop)(message_id)
        except Http404:
            await self.send_error("There is no such answer in this conversation.")
        except services.ChatError as error:
            await self.send_error(str(error))

    def _stop(self, message_id: int) -> None:
        answer = selectors.message_get(user=self.scope["user"], message_id=message_id, conversation=self.conversation)
        services.message_stop(answer=answer)

    # ---- from the generation worker, through the channel layer -----------------------------

    async def chat_delta(self, event: DeltaEvent) -> None:
        message_id, seq = event["message"], event["seq"]
        state = self.answers.setdefault(message_id, AnswerState(seq=0, text=""))
        if seq <= state.seq:
            return  # already in the saved text this socket started from
        if seq > state.seq + 1:
            await self._fill_gap(message_id, seq)
            state = self.answers[message_id]
            if seq != state.seq + 1:
                return
        if seq == 1:
            logger.debug("answer %d first text reached the socket at %.3f", message_id, time.time())
        state.seq = seq
        state.text += event["delta"]
        if not state.unsent_from:
            state.unsent_from = seq
        state.unsent += event["delta"]
        loop = asyncio.get_running_loop()
        wait = state.next_frame_at - loop.time()
        if wait <= 0:
            await self._send_unsent(message_id)
        elif state.timer is None:
            state.timer = loop.call_later(wait, self._send_unsent_later, message_id)

    def _send_unsent_later(self, message_id: int) -> None:
        task = asyncio.ensure_future(self._send_unsent(message_id))
        self._pending_sends.add(task)  # held until done, so the task is not collected
        task.add_done_callback(self._pending_sends.discard)

    async def _send_unsent(self, message_id: int) -> None:
        """One frame with every piece not yet sent and the whole answer rendered."""
        state = self.answers.get(message_id)
        if state is None:
            return
        state.cancel_timer()
        if not state.unsent_from or state.rendering:
            return  # a saved or final text took their place, or they go in the frame after this one
        frame = {
            "type": "delta",
            "message": message_id,
            "from_seq": state.unsent_from,
            "seq": state.seq,
            "delta": state.unsent,
        }
        state.unsent, state.unsent_from = "", 0
        state.rendering = True
        frame["html"], spent = await _rendered(message_id=message_id, seq=state.seq, text=state.text)
        if self.answers.get(message_id) is not state:
            return  # replaced while rendering by a saved or final text, which includes these pieces
        state.rendering = False
        loop = asyncio.get_running_loop()
        state.next_frame_at = loop.time() + spent / RENDER_SHARE
        await self.send_frame(frame)
        if frame["from_seq"] == 1:
            logger.debug(
                "answer %d first text sent to the browser at %.3f (rendered in %.1f ms)",
                message_id,
                time.time(),
                spent * 1000,
            )
        if state.unsent_from and state.timer is None:  # pieces that came while rendering
            state.timer = loop.call_at(state.next_frame_at, self._send_unsent_later, message_id)

    async def chat_status(self, event: StatusEvent) -> None:
        message_id = event["message"]
        frame: dict[str, Any] = {key: value for key, value in event.items() if key not in ("type", "content")}
        frame["type"] = "status"
        if "content" in event:  # the final text, which includes any piece not yet sent
            self._forget(message_id)
            self.answers[message_id] = AnswerState(seq=event["seq"], text=event["content"])
            frame["html"], _ = await _rendered(message_id=message_id, seq=event["seq"], text=event["content"])
        await self.send_frame(frame)

    async def chat_queue(self, event: QueueEvent) -> None:
        await self.send_frame({"type": "queue", "message": event["message"], "position": event["position"]})

    async def chat_created(self, event: CreatedEvent) -> None:
        await self.send_frame({"type": "created", "message": event["message"]})

    async def chat_title(self, event: TitleEvent) -> None:
        await self.send_frame({"type": "title", "title": event["title"]})

    # ---- saved state ---------------------------------------------------------------------

    async def _fill_gap(self, message_id: int, wanted_seq: int) -> None:
        """Read the saved text until it reaches the delta before ``wanted_seq``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GAP_PATIENCE
        while True:
            answer = await self._saved(message_id)
            if answer is None:
                return
            if answer.seq >= wanted_seq - 1 or not answer.in_flight or loop.time() >= deadline:
                await self._send_saved(answer)
                return
            await asyncio.sleep(GAP_WAIT)

    def _forget(self, message_id: int) -> None:
        state = self.answers.pop(message_id, None)
        if state is not None:
            state.cancel_timer()

    async def _send_saved(self, answer: Message) -> None:
        self._forget(answer.pk)
        self.answers[answer.pk] = AnswerState(seq=answer.seq, text=answer.content)
        await self.send_frame(
            {
                "type": "answer",
                "message": answer.pk,
                "status": answer.status,
                "seq": answer.seq,
                "content": answer.content,
                "html": (await _rendered(message_id=answer.pk, seq=answer.seq, text=answer.content))[0],
                "position": answer.position,  # type: ignore[attr-defined]
            }
        )

    @database_sync_to_async
    def _in_flight_answers(self) -> list[Message]:
        return selectors.in_flight_answers(conversation=self.conversation)

    @database_sync_to_async
    def _saved(self, message_id: int) -> Message | None:
        return selectors.saved_answer(conversation=self.conversation, message_id=message_id)
