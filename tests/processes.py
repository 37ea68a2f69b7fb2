"""Helpers for tests that start Parley's own processes against the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from django.db import connection
from honcho.environ import parse_procfile

BASE_DIR = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The test database (pytest-django's, with its test_ name) as a DATABASE_URL."""
    params = connection.settings_dict
    host = str(params["HOST"]).replace("/", "%2F")
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgres://{params['USER']}{password}@{host}{port}/{params['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url(), "PARLEY_HTTPS": "0", "DEBUG": "1", **extra}


def run_command_against(database: str, var_dir: Path) -> subprocess.CompletedProcess[str]:
    """``./parley run``'s launcher started against ``database``, its output captured: for
    the databases it must refuse, so it is expected to stop by itself."""
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "PARLEY_VAR_DIR": str(var_dir),
        "SECRET_KEY": "k" * 50,
        "PARLEY_PORT": "0",
    }
    return subprocess.run(
        [sys.executable, "-m", "webapp.launcher", "run"], env=env, cwd=BASE_DIR, capture_output=True, text=True
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def procfile_web(*, stderr: IO[bytes] | None = None, **extra: str) -> Iterator[str]:
    """The Procfile's own ``web`` command (through a shell, as honcho runs it) against the
    test database, with ``extra`` in its environment; yields its ``host:port`` once
    /healthz answers, and stops it (the shell and the server) afterwards."""
    port = free_port()
    command = parse_procfile((BASE_DIR / "Procfile").read_text()).processes["web"]
    env = process_env(PARLEY_HOST="127.0.0.1", PARLEY_PORT=str(port), **extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # as the launcher runs it
    # The shell expands the command's variables, then becomes the server: waiting for it waits for the server.
    server = subprocess.Popen(
        f"exec {command}", shell=True, cwd=BASE_DIR, env=env, start_new_session=True, stderr=stderr
    )
    url = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"the web server exited with {server.returncode}"
            assert time.monotonic() < deadline, "the web server did not start within 60 s"
            try:
                urllib.request.urlopen(f"http://{url}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
