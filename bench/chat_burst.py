"""A burst of Regenerates: several users press it at the same moment, against a real web server.

    python -m bench.chat_burst [--users 8] [--rounds 15] [--compare PATH]

It starts its own embedded Postgres and Redis under var/bench, and the web process as
``./parley run`` serves it (uvicorn, DEBUG off), but no generation worker: the figures are
the web process's alone. For each request it measures the HTTP time, and the time until
a generation worker would be woken (the Postgres notification, which this script listens
to). With ``--compare PATH`` (another checkout of Parley, such as a ``git worktree`` of an
older commit) a second web server runs that code on the same databases, and the two take
turns round by round (the order reversed every other round). Figures are medians and p95
over the rounds after two warm-up rounds.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

from bench.common import PROJECT_DIR, embedded_django, median, parser, percentile, taking_turns

CSRF = "b" * 32  # any well-formed token does, as long as the cookie and the header agree
WARM_UP = 2


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--users", type=int, default=8)
    arguments.add_argument("--rounds", type=int, default=15)
    arguments.add_argument("--compare", type=Path, help="another checkout of Parley, served side by side")
    args = arguments.parse_args()
    environment = {"DEBUG": "0", "SECRET_KEY": "bench-" + "x" * 50, "PARLEY_HTTPS": "0"}
    with embedded_django(**environment, PARLEY_CHAT_RATE="100000/m", ALLOWED_HOSTS="127.0.0.1"):
        run(args)


def run(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.test import Client

    from webapp.accounts.models import User
    from webapp.chat import services
    from webapp.chat.models import Message
    from webapp.chat.notify import worker_notifications

    call_command("migrate", verbosity=0)
    User.objects.filter(email__endswith="@chat-burst.invalid").delete()
    users: list[list[Any]] = []  # [session cookie, conversation id, the answer shown last]
    for number in range(args.users):
        user = User.objects.create_user(email=f"user{number}@chat-burst.invalid", password="x")
        conversation, answer = services.conversation_start(owner=user, content=f"Question {number}?")
        Message.objects.filter(pk=answer.pk).update(status="complete", content="An answer. " * 20)
        client = Client()
        client.force_login(user)
        users.append([client.cookies["sessionid"].value, conversation.pk, answer.pk])

    servers = [("this checkout", PROJECT_DIR)] + ([("--compare", args.compare.resolve())] if args.compare else [])
    serve = [sys.executable, "-m", "uvicorn", "webapp.asgi:application", "--ws", "websockets-sansio"]
    serve += ["--log-level", "warning"]
    processes = [
        subprocess.Popen([*serve, "--port", str(8100 + index)], cwd=folder, env=dict(os.environ))
        for index, (_, folder) in enumerate(servers)
    ]
    listener = worker_notifications()
    try:
        for index in range(len(servers)):
            wait_until_up(8100 + index)

        def one_burst(port: int) -> tuple[list[float], list[float]]:
            figures = burst(port, users, listener)
            Message.objects.filter(status="queued").update(status="complete", content="An answer. " * 20)
            time.sleep(0.3)
            return figures

        rounds = taking_turns(
            WARM_UP + args.rounds,
            {name: functools.partial(one_burst, 8100 + index) for index, (name, _) in enumerate(servers)},
        )
    finally:
        listener.close()
        for process in processes:
            process.terminate()
            process.wait()

    print(f"{args.users} user(s) press Regenerate at once; {args.rounds} rounds (ms):")
    for name, bursts in rounds.items():
        http = [seconds for figures, _ in bursts[WARM_UP:] for seconds in figures]
        woken = [seconds for _, figures in bursts[WARM_UP:] for seconds in figures]
        print(
            f"  {name:14s} HTTP p50 {median(http) * 1000:4.0f}  p95 {percentile(http, 0.95) * 1000:4.0f}   "
            f"worker woken p50 {median(woken) * 1000:4.0f}  p95 {percentile(woken, 0.95) * 1000:4.0f}"
        )


def wait_until_up(port: int) -> None:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the web server on port {port} did not start")


def burst(port: int, users: list[list[Any]], listener: psycopg.Connection[Any]) -> tuple[list[float], list[float]]:
    """Every user regenerates at once; seconds to each response and to each notification."""
    http: list[float] = []
    started = time.perf_counter()

    def regenerate(user: list[Any]) -> None:
        session, conversation, answer = user
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/chat/{conversation}/messages/{answer}/regenerate",
            data=urllib.parse.urlencode({"shown": answer}).encode(),
            headers={"Cookie": f"sessionid={session}; csrftoken={CSRF}", "X-CSRFToken": CSRF, "HX-Request": "true"},
        )
        body = urllib.request.urlopen(request, timeout=30).read().decode()
        http.append(time.perf_counter() - started)
        new_version = re.search(r'id="message-(\d+)"', body)
        assert new_version, f"no new version in the response: {body[:200]}"
        user[2] = int(new_version.group(1))

    threads = [threading.Thread(target=regenerate, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    woken: list[float] = []
    deadline = started + 10
    while len(woken) < len(users) and time.perf_counter() < deadline:
        for _ in listener.notifies(timeout=0.5, stop_after=1):
            woken.append(time.perf_counter() - started)
    for thread in threads:
        thread.join()
    return http, woken


if __name__ == "__main__":
    main()
