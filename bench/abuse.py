"""One user floods Parley while another uploads a one-page file; and the web process's
memory while a large export streams.

    PARLEY_MODELS_DIR=var/models python -m bench.abuse [--repeats 2] [--flood-pages 2]

Parley runs here as the Procfile starts it (the web server, the reading worker and the
summaries worker) on embedded PostgreSQL and Redis of its own under var/bench. Two users
sign in. In each repeat, taking turns, the second user uploads a one-page file through
the web server and then asks for its summary, once while the first user is idle and once
while the first user floods: uploads of ten ``--flood-pages``-page files as fast as the
server answers, and a summary of each of their documents as soon as it is read, for as
long as the second user's file takes (what the quotas and the upload rate refuse is
refused; the flood goes on). The time from the upload to the text being read
("readable") and from the upload to the summary being written ("summarized") is printed,
each a median with the flood against without. After a flooded turn the first user's jobs
are cancelled and the workers left to go idle, so the next turn starts alike.

Then a third user's archive (``/exports/everything.zip``) of ``--export-mb`` MB of document
originals, written to the database by this process (the web process does not make them),
is downloaded, and the web process's resident memory (VmRSS) is sampled at rest and while
the archive streams. The last line is
``readable_s=<quiet>/<flooded> summarized_s=<quiet>/<flooded> export_rss_growth_mb=<x>``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from bench.common import PROJECT_DIR, compared, embedded_django, median, parser, taking_turns
from bench.documents import make_document
from tests.waiting import wait_for

POLL_SECONDS = 0.05


def serving(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 600) -> Any:
    """The tests' wait, with a bench's patience: behind a flood, a summary takes minutes."""
    return wait_for(condition, timeout, what, interval=POLL_SECONDS)


@contextmanager
def parley(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The Procfile's web, reading and summaries processes; yields the web server's."""
    from honcho.environ import parse_procfile

    commands = parse_procfile((PROJECT_DIR / "Procfile").read_text()).processes
    env = {**os.environ, "PARLEY_HOST": "127.0.0.1", "PARLEY_PORT": str(port)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    started = {
        name: subprocess.Popen(f"exec {commands[name]}", shell=True, cwd=PROJECT_DIR, env=env, start_new_session=True)
        for name in ("web", "reading", "celery")
    }
    try:
        yield started["web"]
    finally:
        for process in started.values():
            os.killpg(process.pid, signal.SIGTERM)
        for process in started.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


class Browser:
    """A signed-in browser of one user: its session cookie, and CSRF as the pages send it."""

    def __init__(self, url: str, user: Any) -> None:
        from django.test import Client

        client = Client()
        client.force_login(user)
        self.url = url
        self.session = requests.Session()
        self.session.cookies.set("sessionid", client.cookies["sessionid"].value)
        page = self.session.get(f"{url}/documents/", timeout=60)  # sets the CSRF cookie
        token = self.session.cookies.get("csrftoken")
        if token is None:
            raise RuntimeError(f"signed in, the documents page answered {page.status_code} at {page.url}")
        self.session.headers.update({"X-CSRFToken": token, "Referer": f"{url}/"})

    def upload(self, files: list[tuple[str, bytes]]) -> None:
        self.session.post(f"{self.url}/documents/upload", files=[("files", file) for file in files], timeout=120)

    def summarize(self, document_id: int) -> None:
        self.session.post(
            f"{self.url}/documents/{document_id}/summarize", data={"length": "short", "form": "paragraph"}, timeout=60
        )

    def cancel(self, job_id: int) -> None:
        self.session.post(f"{self.url}/documents/jobs/{job_id}/cancel", timeout=60)


def one_page(tag: str) -> bytes:
    return (f"{tag}. " + make_document(1)).encode()


def timed_upload(browser: Browser, owner: Any, name: str) -> tuple[float, float]:
    """Seconds from sending a one-page file to its text being read, and to its summary being written."""
    from webapp.documents.models import Document, Summary
    from webapp.jobs.models import Job

    started = time.perf_counter()
    browser.upload([(name, one_page(name))])
    document = wait_until(lambda: Document.objects.filter(owner=owner, name=name).first(), f"{name} to be kept")
    wait_until(
        lambda: Document.objects.filter(pk=document.pk).exclude(status=Document.Status.PENDING).exists(),
        f"{name} to be read",
    )
    readable = time.perf_counter() - started
    if Document.objects.get(pk=document.pk).status != Document.Status.READY:
        raise RuntimeError(f"{name} could not be read")
    browser.summarize(document.pk)
    summary = wait_until(lambda: Summary.objects.filter(document=document).first(), f"{name}'s summary to be queued")
    wait_until(lambda: Job.objects.filter(pk=summary.job_id, state__in=Job.FINISHED).exists(), f"{name}'s summary job")
    if Job.objects.get(pk=summary.job_id).state != Job.State.DONE:
        raise RuntimeError(f"{name}'s summary did not succeed")
    return readable, time.perf_counter() - started


class Flood:
    """The first user's uploads and summaries, as fast as the server answers, in a thread."""

    def __init__(self, browser: Browser, owner: Any, pages: int) -> None:
        self.browser, self.owner = browser, owner
        self.text = make_document(pages).encode()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.files = self.summaries = 0

    def _run(self) -> None:
        from django.db import connection

        from webapp.documents.models import Document

        try:
            while not self.stop.is_set():
                batch = [
                    (f"flood-{self.files + n}.txt", f"flood {self.files + n} {time.time_ns()}. ".encode() + self.text)
                    for n in range(10)
                ]
                self.browser.upload(batch)
                self.files += len(batch)
                ready = Document.objects.filter(
                    owner=self.owner, status=Document.Status.READY, summaries__isnull=True
                ).values_list("pk", flat=True)
                for document_id in ready:
                    self.browser.summarize(document_id)
                    self.summaries += 1
        finally:
            connection.close()

    def __enter__(self) -> Flood:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        from webapp.jobs.models import Job

        self.stop.set()
        self.thread.join(timeout=300)
        # the flood's jobs cancelled, and the workers left to go idle, before the next turn
        for job_id in Job.objects.filter(owner=self.owner, state__in=(Job.State.QUEUED, Job.State.RUNNING)).values_list(
            "pk", flat=True
        ):
            self.browser.cancel(job_id)
        wait_until(lambda: not Job.objects.filter(state=Job.State.RUNNING).exists(), "the workers to go idle")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def export_memory(url: str, web_pid: int, owner: Any, megabytes: int) -> tuple[int, int, int, float]:
    """(RSS at rest, peak RSS while streaming, in KB; archive bytes; seconds) of ``owner``'s archive."""
    from webapp.documents.models import Document

    piece = 4 * 1024 * 1024
    for number in range(max(1, megabytes * 1024 * 1024 // piece)):
        original = os.urandom(piece)  # as a photo or a zip is: it does not shrink in the archive
        Document.objects.create(
            owner=owner,
            name=f"large-{number}.txt",
            kind="text",
            size=len(original),
            sha256=hashlib.sha256(original).hexdigest(),
            original=original,
            text=make_document(5),
            status=Document.Status.READY,
        )
    browser = Browser(url, owner)
    at_rest = []
    for _ in range(20):
        at_rest.append(rss_kb(web_pid))
        time.sleep(POLL_SECONDS)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kb(web_pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    size = 0
    with browser.session.get(f"{url}/exports/everything.zip", stream=True, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return int(median(at_rest)), peak[0], size, seconds


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--repeats", type=int, default=2)
    arguments.add_argument("--flood-pages", type=int, default=2, help="pages of each file the flood uploads")
    arguments.add_argument("--export-mb", type=int, default=80, help="document originals in the exported archive")
    args = arguments.parse_args()
    environment = {"DEBUG": "0", "SECRET_KEY": "bench-" + "x" * 50, "PARLEY_HTTPS": "0", "LOG_LEVEL": "WARNING"}
    with embedded_django(**environment, ALLOWED_HOSTS="127.0.0.1"):
        run(args)


def run(args: Any) -> None:
    from django.core.management import call_command

    from webapp.accounts.models import User

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # the pages' styles, as DEBUG=0 serves them
    User.objects.filter(email__endswith="@bench-abuse.invalid").delete()
    flooder, other, exporter = (
        User.objects.create_user(email=f"{name}@bench-abuse.invalid") for name in ("flooder", "other", "exporter")
    )
    port = 8191
    url = f"http://127.0.0.1:{port}"
    with parley(port) as web:
        wait_until(lambda: serving(url), "the web server", timeout=120)
        flooding, waiting = Browser(url, flooder), Browser(url, other)
        timed_upload(waiting, other, "warm-up.txt")  # the workers load their models on their first job
        turns = iter(range(10**6))

        def quiet() -> tuple[float, float]:
            return timed_upload(waiting, other, f"quiet-{next(turns)}.txt")

        floods: list[Flood] = []

        def flooded() -> tuple[float, float]:
            with Flood(flooding, flooder, args.flood_pages) as flood:
                floods.append(flood)
                return timed_upload(waiting, other, f"flooded-{next(turns)}.txt")

        results = taking_turns(args.repeats, {"quiet": quiet, "flooded": flooded})
        from webapp.documents.models import Document, Summary

        kept = Document.objects.filter(owner=flooder).count()
        summaries_kept = Summary.objects.filter(document__owner=flooder).count()
        at_rest, peak, size, seconds = export_memory(url, web.pid, exporter, args.export_mb)

    readable = {name: median(r for r, _ in runs) for name, runs in results.items()}
    summarized = {name: median(s for _, s in runs) for name, runs in results.items()}
    print(f"{args.repeats} turns each; the flood sent {sum(f.files for f in floods)} files and "
          f"{sum(f.summaries for f in floods)} summary requests in all, of which {kept} files and "
          f"{summaries_kept} summaries were taken (the rest refused by the upload rate and the quotas)")  # fmt: skip
    for name, runs in results.items():
        print(f"  {name:8} readable {[round(r, 2) for r, _ in runs]} s, summarized {[round(s, 2) for _, s in runs]} s")
    print("one-page upload to readable: " + compared(readable["flooded"], readable["quiet"], "s", "without the flood",
          digits=2, lower_is_better=True))  # fmt: skip
    print("one-page upload to summarized: " + compared(summarized["flooded"], summarized["quiet"], "s",
          "without the flood", digits=2, lower_is_better=True))  # fmt: skip
    growth_mb = (peak - at_rest) / 1024
    print(f"export of {size / 1024 / 1024:.1f} MB in {seconds:.1f} s: web process RSS {at_rest / 1024:.1f} MB at rest, "
          f"peak {peak / 1024:.1f} MB while streaming (+{growth_mb:.1f} MB)")  # fmt: skip
    print(
        f"readable_s={readable['quiet']:.2f}/{readable['flooded']:.2f} "
        f"summarized_s={summarized['quiet']:.2f}/{summarized['flooded']:.2f} export_rss_growth_mb={growth_mb:.1f}"
    )


if __name__ == "__main__":
    main()
