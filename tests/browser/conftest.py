"""A whole Parley (ASGI web server and generation worker with the real default model)
on the test database, and headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from django.db import connection

from tests.processes import BASE_DIR, free_port, process_env

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
# As root Chromium needs --no-sandbox; the rest keep it off this machine's closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web server exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class Parley:
    """The web server and (unless a test needs no model) the generation worker, as
    ``./parley run`` starts them."""

    def __init__(self, *, generation: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = process_env()
        self.worker = (
            subprocess.Popen([sys.executable, "manage.py", "generation_worker"], cwd=BASE_DIR, env=self.env)
            if generation
            else None
        )
        self.web = self._start_web()

    def _start_web(self) -> subprocess.Popen[bytes]:
        web = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "webapp.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--ws", "websockets-sansio", "--lifespan", "off", "--no-access-log"],
            cwd=BASE_DIR, env=self.env,
        )  # fmt: skip
        _wait_until_serving(self.url, web)
        return web

    def restart_web(self, down_for: float = 1.0) -> None:
        """Drop every browser connection, as a crashed or redeployed web server would."""
        self.web.kill()
        self.web.wait()
        time.sleep(down_for)
        self.web = self._start_web()

    def stop(self) -> None:
        processes = [process for process in (self.worker, self.web) if process is not None]
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def parley(transactional_db: None) -> Iterator[Parley]:
    server = Parley()
    try:
        yield server
    finally:
        server.stop()
        _wait_for_sessions_to_end()


@pytest.fixture
def parley_web(transactional_db: None) -> Iterator[Parley]:
    """The web server alone, for pages that need no model."""
    server = Parley(generation=False)
    try:
        yield server
    finally:
        server.stop()
        _wait_for_sessions_to_end()


def _wait_for_sessions_to_end(timeout: float = 10) -> None:
    """Postgres ends a killed client's session a moment later; the test database is dropped after."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)


@pytest.fixture
def page() -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.set_default_timeout(30_000)
        page = context.new_page()
        yield page
        browser.close()
