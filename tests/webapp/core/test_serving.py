"""How the web process holds its connections and runs its middleware under ASGI, where
every request has a thread of its own."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from typing import Any

import pytest
from channels.testing import HttpCommunicator
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.cache import caches
from django.core.handlers.base import BaseHandler

from webapp.core.handlers import ThreadedASGIHandler


def test_the_web_process_borrows_database_connections_from_a_pool() -> None:
    # ten requests one after another, each in a new thread, as ASGI serves them
    code = """
import threading
import webapp.asgi
from django.db import connection
from django.conf import settings
pids = []
def request():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pids.append(cursor.fetchone()[0])
    connection.close()  # what Django does when a request ends
for _ in range(10):
    thread = threading.Thread(target=request)
    thread.start()
    thread.join()
print(settings.DATABASES["default"]["CONN_MAX_AGE"], len(set(pids)))
"""
    env = {key: value for key, value in os.environ.items() if key != "PARLEY_DATABASE_POOL"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    max_age, connections = result.stdout.split()
    assert max_age == "0"
    assert int(connections) <= 3  # a few connections served all ten, not ten


def test_other_processes_keep_their_connections_without_a_pool() -> None:
    code = "import django; django.setup(); from django.conf import settings; d = settings.DATABASES['default'];"
    code += "print(d['CONN_MAX_AGE'], 'pool' in d['OPTIONS'])"
    env = {key: value for key, value in os.environ.items() if key != "PARLEY_DATABASE_POOL"}
    env["DJANGO_SETTINGS_MODULE"] = "webapp.settings"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["60", "False"]


def test_requests_in_different_threads_share_the_caches_redis_connections() -> None:
    pools = []

    def request() -> None:
        cache = caches["default"]  # a cache object of this thread's own, as each request gets
        cache.set("serving-test", 1)
        pools.append((cache, cache._cache.get_client(write=True).connection_pool))  # type: ignore[attr-defined]

    for _ in range(3):
        thread = threading.Thread(target=request)
        thread.start()
        thread.join()
    assert len({id(cache) for cache, _ in pools}) == 3
    assert all(pool is pools[0][1] for _, pool in pools)


@pytest.mark.django_db
async def test_a_request_crosses_from_the_event_loop_once_into_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Where Django resolves the URL, a session middleware reads the cookie, and the view
    # runs: Django's own handler resolves on the event loop and sends the view to a thread.
    threads: dict[str, int] = {}

    def recorded(name: str, method: Any) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            threads[name] = threading.get_ident()
            return method(*args, **kwargs)

        return record

    monkeypatch.setattr(BaseHandler, "resolve_request", recorded("resolve", BaseHandler.resolve_request))
    monkeypatch.setattr(SessionMiddleware, "process_request", recorded("session", SessionMiddleware.process_request))
    monkeypatch.setattr(BaseHandler, "make_view_atomic", lambda handler, view: recorded("view", view))
    handler = ThreadedASGIHandler()
    assert not asyncio.iscoroutinefunction(handler._middleware_chain)  # type: ignore[attr-defined]
    communicator = HttpCommunicator(handler, "GET", "/accounts/login/", headers=[(b"host", b"testserver")])
    response = await communicator.get_response(timeout=10)
    assert response["status"] == 200
    assert b"csrfmiddlewaretoken" in response["body"]  # the whole chain ran: CSRF, sessions, the view
    assert len(set(threads.values())) == 1
    assert threads.keys() == {"resolve", "session", "view"}
    assert threads["view"] != threading.get_ident()  # not on the event loop


def test_a_pool_size_below_one_stops_with_the_variables_name(tmp_path: object) -> None:
    env = {**os.environ, "PARLEY_VAR_DIR": str(tmp_path), "PARLEY_DATABASE_POOL": "1", "PARLEY_DATABASE_POOL_SIZE": "0"}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "PARLEY_DATABASE_POOL_SIZE=0 is below the minimum of 1" in result.stdout + result.stderr
