"""Chat completions: an API request becomes an answer of the chat's own queue, and its
text comes back from the same deltas a chat socket forwards.

A request is stored as a conversation of its own, marked ``origin=api``: its messages
become the conversation's history and its answer is queued by ``answers.answer_enqueue``,
under the user's in-flight limit, so it is claimed by the same generation workers,
batched with every browser chat, saved as it grows, interrupted (text kept) when its
worker dies, and reviewed, as any answer. The chat sidebar leaves such conversations out.

``answer_pieces`` follows one answer: it joins the conversation's channel-layer group
first, then reads the saved text, then forwards each numbered delta in order; on a gap,
or when nothing arrives for ``POLL_SECONDS`` (the layer may drop a frame), it reads the
saved text again, so the pieces always join to exactly the answer's text. A request that
goes away before its answer ends stops it (``answer_stop``), as Stop does in the page.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

from webapp.accounts.models import User
from webapp.accounts.usage import seconds_until_tomorrow
from webapp.api.errors import ApiError, no_worker, out_of_budget, over_limit
from webapp.api.parameters import CompletionParameters
from webapp.chat import liveness, services
from webapp.chat.answers import answer_interrupt
from webapp.chat.events import conversation_group
from webapp.chat.models import Conversation, Message

POLL_SECONDS = 1.0
IN_FLIGHT_RETRY_SECONDS = 2  # answers end within seconds; a client may try again soon after


# ---- writing: start and stop -----------------------------------------------------------------


def completion_start(*, user: User, parameters: CompletionParameters) -> Message:
    """Queue the answer to ``parameters.turns``, or refuse: no worker alive (503), the user's
    in-flight limit or daily token budget (429); nothing is written when refused."""
    if not liveness.workers_alive(model=parameters.model):
        raise no_worker(model=parameters.model)
    try:
        _, answer = services.conversation_start_from_turns(
            owner=user,
            origin=Conversation.Origin.API,
            system_prompt=parameters.system_prompt,
            turns=parameters.turns,
            temperature=parameters.temperature,
            top_p=parameters.top_p,
            max_tokens=parameters.max_tokens,
            model=parameters.model,
            stop=parameters.stop,
        )
    except services.InFlightLimitError as error:
        raise over_limit(str(error), retry_after=IN_FLIGHT_RETRY_SECONDS) from None
    except services.BudgetExceededError as error:
        raise out_of_budget(str(error), retry_after=seconds_until_tomorrow()) from None
    except services.ChatError as error:
        raise ApiError(400, str(error), param="messages") from None
    return answer


def answer_stop(*, answer_id: int) -> None:
    """The client went away: stop the answer, keeping the text written so far."""
    answer = Message.objects.filter(pk=answer_id).only("pk", "conversation_id").first()
    if answer is not None:
        answer_interrupt(answer=answer)
    connection.close()


# ---- reading: the saved state and the live deltas ---------------------------------------------


@dataclass(frozen=True)
class Saved:
    status: str
    seq: int
    content: str
    error: str
    prompt_tokens: int
    completion_tokens: int
    max_tokens: int

    @property
    def ended(self) -> bool:
        return self.status not in Message.IN_FLIGHT

    @property
    def finish_reason(self) -> str:
        return "length" if self.completion_tokens >= self.max_tokens else "stop"

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def saved_state(*, answer_id: int) -> Saved | None:
    """The answer as Postgres has it; the connection goes back to the pool at once, so a
    long stream holds none while it waits."""
    answer = Message.objects.filter(pk=answer_id).first()
    connection.close()
    if answer is None:
        return None
    return Saved(
        status=answer.status,
        seq=answer.seq,
        content=answer.content,
        error=answer.error,
        prompt_tokens=answer.prompt_tokens or 0,
        completion_tokens=answer.completion_tokens or 0,
        max_tokens=int(answer.settings.get("max_tokens", 0)),
    )


class AnswerGone(Exception):
    """The answer's conversation was deleted while it was being written."""


async def answer_pieces(*, answer: Message) -> AsyncIterator[str]:
    """The answer's text in pieces as it is written, until it ends (see the module docstring)."""
    layer = get_channel_layer()
    assert layer is not None, "the channel layer is configured in settings"
    channel = await layer.new_channel()
    group = conversation_group(conversation_id=answer.conversation_id)
    await layer.group_add(group, channel)
    read = sync_to_async(saved_state)
    sent, seq = "", 0
    try:
        while True:
            try:
                event: dict[str, Any] | None = await asyncio.wait_for(layer.receive(channel), POLL_SECONDS)
            except TimeoutError:
                event = None
            if event is not None and event.get("message") != answer.pk:
                continue
            if event is not None and event["type"] == "chat.delta" and event["seq"] == seq + 1:
                seq += 1
                sent += event["delta"]
                yield event["delta"]
                continue
            if event is not None and event["type"] == "chat.delta" and event["seq"] <= seq:
                continue  # already in the saved text read before it
            if event is not None and event["type"] == "chat.status" and "content" not in event:
                continue  # it started
            # the end (with its final text), a gap, or a quiet spell: Postgres has the truth
            final = event["content"] if event is not None and event["type"] == "chat.status" else None
            state = await read(answer_id=answer.pk)
            if state is None:
                raise AnswerGone()
            text = final if final is not None else state.content
            if (final is not None or state.seq >= seq) and len(text) > len(sent):
                yield text[len(sent) :]
                sent, seq = text, max(seq, state.seq)
            if final is not None or state.ended:
                return
    finally:
        await layer.group_discard(group, channel)


# ---- OpenAI's shapes ------------------------------------------------------------------------


def completion_id(answer: Message) -> str:
    return f"chatcmpl-{answer.pk}"


def _envelope(answer: Message, model: str, object_name: str) -> dict[str, Any]:
    return {
        "id": completion_id(answer),
        "object": object_name,
        "created": int(answer.created_at.timestamp()),
        "model": model,
        "system_fingerprint": None,
    }


def failure(state: Saved | None) -> ApiError | None:
    """How an answer that did not end well is told: failed, stopped or its worker gone."""
    if state is None:
        return ApiError(500, "The conversation of this answer was deleted while it was written.", type="server_error")
    if state.status == Message.Status.COMPLETE:
        return None
    reason = state.error or "The answer was stopped before it ended."
    return ApiError(500, reason, type="server_error", code=state.status)


def completion_body(*, answer: Message, model: str, state: Saved) -> dict[str, Any]:
    return {
        **_envelope(answer, model, "chat.completion"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": state.content, "refusal": None},
                "logprobs": None,
                "finish_reason": state.finish_reason,
            }
        ],
        "usage": state.usage(),
    }


def _chunk(answer: Message, parameters: CompletionParameters, choices: list[dict[str, Any]]) -> str:
    body = {**_envelope(answer, parameters.model, "chat.completion.chunk"), "choices": choices}
    if parameters.include_usage:
        body["usage"] = None
    return _event(body)


def _event(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


async def completion_whole(*, answer: Message, model: str) -> dict[str, Any]:
    """The whole answer once it has ended, as one ``chat.completion``; raises ``ApiError``
    for one that failed or was stopped."""
    try:
        async for _ in answer_pieces(answer=answer):
            pass
    except AnswerGone:
        pass
    state = await sync_to_async(saved_state)(answer_id=answer.pk)
    problem = failure(state)
    if problem is not None:
        raise problem
    assert state is not None
    return completion_body(answer=answer, model=model, state=state)


async def completion_events(*, answer: Message, parameters: CompletionParameters) -> AsyncIterator[str]:
    """The answer as server-sent events in OpenAI's chunk format, ending with ``[DONE]``.

    If the client goes away first (the web server cancels this generator), the answer is
    stopped with its text so far kept.
    """
    ended = False
    try:
        yield _chunk(answer, parameters, [_choice({"role": "assistant", "content": ""})])
        try:
            async for piece in answer_pieces(answer=answer):
                yield _chunk(answer, parameters, [_choice({"content": piece})])
        except AnswerGone:
            pass
        ended = True
        state = await sync_to_async(saved_state)(answer_id=answer.pk)
        problem = failure(state)
        if problem is not None:
            yield _event(problem.body())
        else:
            assert state is not None
            yield _chunk(answer, parameters, [_choice({}, state.finish_reason)])
            if parameters.include_usage:
                yield _event(
                    {
                        **_envelope(answer, parameters.model, "chat.completion.chunk"),
                        "choices": [],
                        "usage": state.usage(),
                    }
                )
        yield "data: [DONE]\n\n"
    finally:
        if not ended:
            await sync_to_async(answer_stop)(answer_id=answer.pk)
