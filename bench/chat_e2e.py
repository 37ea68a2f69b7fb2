"""End-to-end chat: browser-like clients against a running Parley, next to the engine alone.

    ./parley run                      # in another terminal
    python -m bench.chat_e2e [--url http://127.0.0.1:8000] [--clients 8] [--rounds 5] [--max-tokens 96]

Each client signs up its own user, opens a conversation and its websocket (as the page
does), then all clients ask at once: the answer is requested over HTTP (Regenerate) and
read from the websocket. Time to first token is measured from the request to the first
text the client sees; throughput is completion tokens over the wall time of the round.
The same prompts then run on an engine loaded in this process, greedy on both sides, so
both produce the same tokens. Figures are medians over the rounds; the last line is
``overhead_ttft_ms_p50=<x> client_vs_engine_throughput=<ratio>``.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from typing import Any

import websockets

from bench.common import median, parser, percentile

QUESTIONS = [
    "Explain how a bicycle works.", "Why is the sky blue?", "How do bees make honey?", "What causes the tides?",
    "How is bread made?", "Why do leaves change colour?", "How does a compass work?", "What is a glacier?",
    "How do birds migrate?", "How does soap clean?", "What are volcanoes?", "How do trains run?",
    "What are clouds made of?", "How do fish breathe?", "What is the water cycle?", "How do rainbows form?",
]  # fmt: skip
FINAL = {"complete", "interrupted", "failed"}


@dataclass
class Client:
    url: str
    question: str
    jar: CookieJar = field(default_factory=CookieJar)
    conversation: int = 0
    answer: int = 0
    socket: Any = None
    request_seconds: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name and c.value is not None)

    def post(self, path: str, data: dict[str, str], htmx: bool = False) -> Any:
        body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=body, method="POST")
        request.add_header("X-CSRFToken", self.cookie("csrftoken"))
        request.add_header("Referer", f"{self.url}/")
        if htmx:
            request.add_header("HX-Request", "true")
        return self.opener.open(request, timeout=60)

    def sign_up(self) -> None:
        self.opener.open(f"{self.url}/accounts/signup/", timeout=30).read()
        email = f"bench-{secrets.token_hex(6)}@example.com"
        password = secrets.token_urlsafe(16)
        self.post("/accounts/signup/", {"email": email, "password1": password, "password2": password}).read()
        # signing up does not sign in (the same page whether or not the address had an account)
        self.opener.open(f"{self.url}/accounts/login/", timeout=30).read()
        self.post("/accounts/login/", {"username": email, "password": password}).read()

    def start(self) -> None:
        response = self.post("/chat/start", {"content": self.question})
        match = re.search(r"/chat/(\d+)/", response.geturl())
        assert match, f"starting a chat did not lead to a conversation: {response.geturl()}"
        self.conversation = int(match.group(1))

    async def connect(self) -> None:
        ws_url = self.url.replace("http", "ws", 1) + f"/ws/chat/{self.conversation}/"
        self.socket = await websockets.connect(
            ws_url,
            additional_headers={"Cookie": f"sessionid={self.cookie('sessionid')}", "Origin": self.url},
            ping_interval=None,  # the server pings; on a loaded machine a client's own pings only time out
        )

    async def frame(self) -> dict[str, Any]:
        return dict(json.loads(await self.socket.recv()))

    async def settle_first_answer(self, max_tokens: int) -> None:
        """Stop the answer to the opening message and make the conversation greedy."""
        while True:
            frame = await self.frame()
            if frame["type"] == "answer":
                self.answer = frame["message"]
                if frame["status"] in FINAL:
                    break
                await self.socket.send(json.dumps({"type": "stop", "message": self.answer}))
            if frame["type"] == "status" and frame["message"] == self.answer and frame["status"] in FINAL:
                break
        settings = {"system_prompt": "", "temperature": "0", "top_p": "1", "max_tokens": str(max_tokens)}
        self.post(f"/chat/{self.conversation}/settings", settings).read()

    async def ask(self) -> tuple[float, float | None, int, float]:
        """Regenerate the answer; returns (start, seconds to first text, completion tokens,
        seconds to first token inside the engine as the worker measured it)."""
        started = time.perf_counter()
        # as the page does: it says which message it shows last, and gets back just the new version
        path = f"/chat/{self.conversation}/messages/{self.answer}/regenerate"
        await asyncio.to_thread(lambda: self.post(path, {"shown": str(self.answer)}, htmx=True).read())
        self.request_seconds.append(time.perf_counter() - started)
        first_text: float | None = None
        while True:
            frame = await self.frame()
            if frame["type"] == "created":
                self.answer = frame["message"]
            if frame.get("message") != self.answer:
                continue
            if first_text is None and (frame.get("delta") or frame.get("content")):
                first_text = time.perf_counter() - started
            if frame["type"] == "status" and frame["status"] in FINAL:
                in_engine = float(frame.get("time_to_first_token_ms") or 0) / 1000
                return started, first_text, int(frame.get("completion_tokens") or 0), in_engine


@dataclass
class Round:
    ttfts: list[float]  # seconds, as the clients saw them
    tokens_per_second: float
    in_engine_ttfts: list[float] = field(default_factory=list)  # web only: the engine's share


async def web_round(clients: list[Client]) -> Round:
    results = await asyncio.gather(*(client.ask() for client in clients))
    finished = time.perf_counter()
    tokens = sum(count for _, _, count, _ in results)
    return Round(
        ttfts=[ttft for _, ttft, _, _ in results if ttft is not None],
        tokens_per_second=tokens / (finished - min(start for start, _, _, _ in results)),
        in_engine_ttfts=[in_engine for _, _, _, in_engine in results],
    )


def engine_round(engine: Any, questions: list[str], max_tokens: int) -> Round:
    from inference import GenerationRequest

    started = time.perf_counter()
    streams = [
        engine.submit(GenerationRequest.of([{"role": "user", "content": q}], max_new_tokens=max_tokens, temperature=0))
        for q in questions
    ]
    results = [stream.result() for stream in streams]
    elapsed = time.perf_counter() - started
    ttfts = [r.stats.time_to_first_token for r in results if r.stats.time_to_first_token is not None]
    return Round(ttfts=ttfts, tokens_per_second=sum(r.stats.completion_tokens for r in results) / elapsed)


async def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--url", default="http://127.0.0.1:8000")
    arguments.add_argument("--clients", type=int, default=8)
    arguments.add_argument("--rounds", type=int, default=5)
    arguments.add_argument("--max-tokens", type=int, default=96)
    arguments.add_argument(
        "--threads", type=int, default=0, help="torch threads of the engine alone (see PARLEY_TORCH_THREADS)"
    )
    arguments.add_argument(
        "--prefill-tokens",
        type=int,
        default=256,
        help="the engine alone's prefill budget: set it as the worker's (PARLEY_GENERATION_PREFILL_TOKENS)",
    )
    args = arguments.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    url = args.url.rstrip("/")
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.clients)]
    # One thread per client for its blocking HTTP requests, as each browser sends its own:
    # asyncio's default pool (cores + 4 threads) would hold back the last clients' requests.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=args.clients + 1))

    clients = [Client(url, question) for question in questions]
    for client in clients:  # setup, not measured
        await asyncio.to_thread(client.sign_up)
        await asyncio.to_thread(client.start)
        await client.connect()
        await client.settle_first_answer(args.max_tokens)
    from inference import Engine

    # in a thread, so this loop keeps answering the server's websocket pings while it loads
    engine = await asyncio.to_thread(Engine.from_config, prefill_tokens=args.prefill_tokens)
    await web_round(clients[:1])  # warm-up
    await asyncio.to_thread(engine_round, engine, questions[:1], args.max_tokens)

    # Alternate web and engine rounds so that the machine's noise falls on both alike.
    web: list[Round] = []
    alone: list[Round] = []
    for _ in range(args.rounds):
        web.append(await web_round(clients))
        # in a thread, so this loop keeps answering the server's websocket pings
        alone.append(await asyncio.to_thread(engine_round, engine, questions, args.max_tokens))
    for client in clients:
        await client.socket.close()
    engine.close()

    def ms(values: list[float], q: float) -> float:
        return percentile(values, q) * 1000

    web_ttft = [t for r in web for t in r.ttfts]
    web_in_engine = [t for r in web for t in r.in_engine_ttfts]
    alone_ttft = [t for r in alone for t in r.ttfts]
    ratios = [w.tokens_per_second / a.tokens_per_second for w, a in zip(web, alone, strict=True)]
    print(
        f"clients={args.clients} rounds={args.rounds} max_tokens={args.max_tokens} "
        f"engine_threads={args.threads or 'default'} (greedy; rounds alternate)"
    )
    print(
        f"web     ttft_p50_ms={ms(web_ttft, 0.5):.0f} ttft_p95_ms={ms(web_ttft, 0.95):.0f} "
        f"tokens_per_s={median(r.tokens_per_second for r in web):.1f} "
        f"(of which in the engine: ttft_p50_ms={ms(web_in_engine, 0.5):.0f}; "
        f"the HTTP request: p50_ms={ms([t for c in clients for t in c.request_seconds], 0.5):.0f})"
    )
    print(
        f"engine  ttft_p50_ms={ms(alone_ttft, 0.5):.0f} ttft_p95_ms={ms(alone_ttft, 0.95):.0f} "
        f"tokens_per_s={median(r.tokens_per_second for r in alone):.1f}"
    )
    print(f"throughput ratio per round: {' '.join(f'{r:.3f}' for r in ratios)}")
    print(
        f"overhead_ttft_ms_p50={ms(web_ttft, 0.5) - ms(alone_ttft, 0.5):.0f} "
        f"client_vs_engine_throughput={median(ratios):.3f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
