"""How the web process holds its connections and runs its middleware under ASGI, where
every request has a thread of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from django.core.cache import caches
from django.core.handlers.asgi import ASGIHandler


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


def test_no_middleware_runs_on_the_event_loop_under_asgi() -> None:
    # A middleware that runs async there sends each of its hooks to a thread and back.
    handler = ASGIHandler()
    hooks = handler._view_middleware + handler._template_response_middleware + handler._exception_middleware
    middleware = {hook.__self__ for hook in hooks}  # type: ignore[attr-defined]
    assert {type(m).__name__ for m in middleware} >= {"CsrfViewMiddleware", "LoginRequiredMiddleware"}
    assert [type(m).__name__ for m in middleware if getattr(m, "async_mode", False)] == []


def test_a_pool_size_below_one_stops_with_the_variables_name(tmp_path: object) -> None:
    env = {**os.environ, "PARLEY_VAR_DIR": str(tmp_path), "PARLEY_DATABASE_POOL": "1", "PARLEY_DATABASE_POOL_SIZE": "0"}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "PARLEY_DATABASE_POOL_SIZE=0 is below the minimum of 1" in result.stdout + result.stderr
