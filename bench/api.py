"""/v1 against the engine alone: concurrent ``openai``-client streams through Parley's
OpenAI-compatible API, next to the same requests submitted straight to an engine.

    python -m bench.api [--clients 8] [--rounds 3] [--max-tokens 64]

Parley runs on embedded servers of its own under var/bench: uvicorn and a generation
worker with the configured chat model (as ``./parley run`` starts them), one user and API
key per client. Each API round, every client streams one greedy completion at once
(``stream_options.include_usage``); time to first token is from the request to the first
text the client reads, throughput is the completion tokens of all over the round's wall
time. The engine round submits the same messages to an engine loaded in this process,
greedy too, so both write the same tokens. Rounds take turns; figures are medians, and
the last line is ``api_ttft_overhead_ms_p50=<x> api_vs_engine_throughput=<ratio>``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.common import PROJECT_DIR, embedded_django, median, parser, taking_turns
from tests.waiting import wait_for

QUESTIONS = [
    "Explain how a bicycle works.", "Why is the sky blue?", "How do bees make honey?", "What causes the tides?",
    "How is bread made?", "Why do leaves change colour?", "How does a compass work?", "What is a glacier?",
]  # fmt: skip


@dataclass
class Round:
    ttfts: list[float]  # seconds
    tokens_per_second: float
    in_engine_ttfts: list[float] = field(default_factory=list)  # API only: the worker's engine's share


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--clients", type=int, default=8)
    arguments.add_argument("--rounds", type=int, default=3)
    arguments.add_argument("--max-tokens", type=int, default=64)
    args = arguments.parse_args()
    environment = {"DEBUG": "0", "SECRET_KEY": "bench-" + "x" * 50, "PARLEY_HTTPS": "0"}
    with embedded_django(**environment, PARLEY_CHAT_RATE="100000/m", ALLOWED_HOSTS="127.0.0.1"):
        run(args)


def run(args: Any) -> None:
    import openai
    from django.conf import settings
    from django.core.management import call_command

    from inference import Engine, GenerationRequest
    from webapp.accounts.models import User
    from webapp.api import catalog
    from webapp.api.services import api_key_create
    from webapp.chat.liveness import workers_alive
    from webapp.chat.models import Message

    call_command("migrate", verbosity=0)
    User.objects.filter(email__endswith="@bench-api.invalid").delete()
    keys = [
        api_key_create(owner=User.objects.create_user(email=f"user{n}@bench-api.invalid"), name="bench").secret
        for n in range(args.clients)
    ]
    questions = [QUESTIONS[n % len(QUESTIONS)] for n in range(args.clients)]
    model = catalog.chat_models()[0]
    port = 8190
    web = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "webapp.asgi:application", "--port", str(port), "--log-level", "warning",
         "--lifespan", "off", "--no-access-log"],
        cwd=PROJECT_DIR, env=dict(os.environ),
    )  # fmt: skip
    worker = subprocess.Popen([sys.executable, "manage.py", "generation_worker"], cwd=PROJECT_DIR, env=dict(os.environ))
    engine = Engine.from_config(settings.PARLEY_INFERENCE, prefill_tokens=settings.PARLEY_GENERATION_PREFILL_TOKENS)
    clients = [
        openai.OpenAI(api_key=key, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout=300) for key in keys
    ]
    pool = ThreadPoolExecutor(max_workers=args.clients)
    try:
        wait_for(
            lambda: serving(port) and workers_alive(), 300, "the web server and the generation worker", interval=0.5
        )

        def one_stream(client: openai.OpenAI, question: str) -> tuple[float, float | None, float, int, str]:
            started = time.perf_counter()
            first: float | None = None
            tokens = 0
            completion = ""
            stream = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": question}],
                max_tokens=args.max_tokens,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
            for chunk in stream:
                completion = chunk.id
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter() - started
                if chunk.usage is not None:
                    tokens = chunk.usage.completion_tokens
            return started, first, time.perf_counter(), tokens, completion

        def api_round() -> Round:
            results = list(pool.map(one_stream, clients, questions))
            wall = max(end for _, _, end, _, _ in results) - min(start for start, *_ in results)
            answers = [int(completion.removeprefix("chatcmpl-")) for *_, completion in results]
            in_engine = Message.objects.filter(pk__in=answers).values_list("time_to_first_token_ms", flat=True)
            return Round(
                ttfts=[first for _, first, _, _, _ in results if first is not None],
                tokens_per_second=sum(tokens for _, _, _, tokens, _ in results) / wall,
                in_engine_ttfts=[ms / 1000 for ms in in_engine if ms is not None],
            )

        def engine_round() -> Round:
            started = time.perf_counter()
            streams = [
                engine.submit(
                    GenerationRequest.of(
                        [{"role": "user", "content": q}], max_new_tokens=args.max_tokens, temperature=0
                    )
                )
                for q in questions
            ]
            results = [stream.result() for stream in streams]
            elapsed = time.perf_counter() - started
            return Round(
                ttfts=[r.stats.time_to_first_token for r in results if r.stats.time_to_first_token is not None],
                tokens_per_second=sum(r.stats.completion_tokens for r in results) / elapsed,
            )

        api_round(), engine_round()  # warm-up: first prefills, the web process's first requests
        rounds = taking_turns(args.rounds, {"api": api_round, "engine": engine_round})
    finally:
        pool.shutdown()
        for process in (web, worker):
            process.terminate()
        for process in (web, worker):
            process.wait(timeout=60)
        engine.close()

    def ttft_ms(name: str) -> float:
        return median(t for r in rounds[name] for t in r.ttfts) * 1000

    def throughput(name: str) -> float:
        return median(r.tokens_per_second for r in rounds[name])

    ratios = [a.tokens_per_second / e.tokens_per_second for a, e in zip(rounds["api"], rounds["engine"], strict=True)]
    print(
        f"clients={args.clients} rounds={args.rounds} max_tokens={args.max_tokens} model={model} "
        "(greedy; rounds alternate)"
    )
    in_engine = median(t for r in rounds["api"] for t in r.in_engine_ttfts) * 1000
    print(
        f"api     ttft_p50_ms={ttft_ms('api'):.0f} tokens_per_s={throughput('api'):.1f} "
        f"(of which in the worker's engine: ttft_p50_ms={in_engine:.0f})"
    )
    print(f"engine  ttft_p50_ms={ttft_ms('engine'):.0f} tokens_per_s={throughput('engine'):.1f}")
    print(f"throughput ratio per round: {' '.join(f'{r:.3f}' for r in ratios)}")
    print(
        f"api_ttft_overhead_ms_p50={ttft_ms('api') - ttft_ms('engine'):.0f} "
        f"api_vs_engine_throughput={median(ratios):.3f}"
    )


def serving(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
    except OSError:
        return False
    return True


if __name__ == "__main__":
    main()
