"""Helpers for tests that start Parley's own processes against the test database."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from django.db import connection

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
