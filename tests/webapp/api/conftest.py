"""Fixtures for /v1: a real web server (uvicorn, as the Procfile runs it) on the test
database, a real generation worker on a tiny model in this process (``start_worker``,
as chat's tests use it), users with API keys, and the official ``openai`` client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import openai
import pytest

from tests.browser.conftest import _wait_for_sessions_to_end, _wait_until_serving
from tests.processes import BASE_DIR, free_port, process_env
from tests.webapp.chat.conftest import start_worker  # noqa: F401  (the fixture, for these tests)
from webapp.accounts.models import User
from webapp.api import catalog
from webapp.api.services import api_key_create


@dataclass
class WebServer:
    url: str
    process: subprocess.Popen[bytes]

    def client(self, key: str) -> openai.OpenAI:
        # no retries: a test sees each refusal as the server gave it
        return openai.OpenAI(api_key=key, base_url=f"{self.url}/v1", max_retries=0, timeout=60)


@pytest.fixture
def start_web(transactional_db: None) -> Iterator[Callable[..., WebServer]]:
    started: list[WebServer] = []

    def start(**env: str) -> WebServer:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "webapp.asgi:application", "--host", "127.0.0.1", "--port", str(port),
             "--ws", "websockets-sansio", "--lifespan", "off", "--no-access-log"],
            cwd=BASE_DIR, env=process_env(**env),
        )  # fmt: skip
        server = WebServer(f"http://127.0.0.1:{port}", process)
        started.append(server)
        _wait_until_serving(server.url, process)
        return server

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    _wait_for_sessions_to_end()


@pytest.fixture
def web(start_web: Callable[..., WebServer]) -> WebServer:
    return start_web()


@pytest.fixture
def key_of(db: None) -> Callable[[User], str]:
    def make(user: User) -> str:
        return api_key_create(owner=user, name="tests").secret

    return make


@pytest.fixture
def model() -> str:
    return catalog.chat_models()[0]
