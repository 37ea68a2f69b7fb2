"""The generation worker against a database that drops its connections, and chat with no
worker alive at all.

The worker runs in this process against the real test database, with the tiny model;
``pg_terminate_backend`` cuts every connection but the test's own, as a Postgres restart
does. What is asserted is what a user sees afterwards: answers in progress end complete
(not reaped by the gap), a new question is answered, Stop still ends an answer within a
decoding step, and with no worker running a Stop still ends the answer and a waiting
answer says that no worker is running.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.waiting import wait_for
from tests.webapp.chat.conftest import Converse, converse, settled, start_worker  # noqa: F401
from webapp.chat import liveness, services
from webapp.chat.answers import REAPED_ERROR, answer_reap
from webapp.chat.models import Message
from webapp.chat.worker import GenerationWorker

pytestmark = pytest.mark.django_db(transaction=True)


def cut_every_other_connection() -> int:
    """Terminate every session on this database but the caller's, as a restart would, and
    wait until they have ended: ``pg_terminate_backend`` only signals, and a session still
    ending holds its locks, which would pass for a worker that had already reconnected."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [pid for (pid,) in cursor.fetchall()]
        cursor.execute("SELECT count(*) FROM unnest(%s::int[]) AS pid WHERE pg_terminate_backend(pid)", [pids])
        (count,) = cursor.fetchone()

    def ended() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s))"
                " + (SELECT count(*) FROM pg_locks WHERE pid = ANY(%s))",
                [pids, pids],
            )
            (left,) = cursor.fetchone()
        return left == 0

    wait_for(ended, what="the terminated sessions to end")
    return int(count)


def holds_its_lock(worker: GenerationWorker) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
            " AND ((classid::bigint << 32) | objid::bigint) = %s",
            [worker.key],
        )
        (count,) = cursor.fetchone()
    return count == 1


def test_an_answer_being_written_when_the_database_drops_ends_complete_and_is_not_reaped(
    start_worker: Callable[..., GenerationWorker],  # noqa: F811
    converse: Converse,  # noqa: F811
) -> None:
    _, answer = converse(max_tokens=200)
    worker = start_worker(step_seconds=0.02, reap_interval=600)
    wait_for(lambda: Message.objects.filter(pk=answer.pk, status="generating").exclude(content="").exists())
    assert cut_every_other_connection() >= 1
    # While it reconnects its lock is free: another worker's reaper finds it so, and waits.
    other_workers_record: dict[int, float] = {}
    assert answer_reap(free_since=other_workers_record, grace=10) == 0
    wait_for(lambda: holds_its_lock(worker), what="the worker to take its lock again")
    assert answer_reap(free_since=other_workers_record, grace=10) == 0
    assert other_workers_record == {}  # seen alive again: the record of it is dropped
    final = wait_for(lambda: settled(answer))
    assert final.status == Message.Status.COMPLETE
    assert final.error != REAPED_ERROR
    assert final.completion_tokens == 200
    assert len(final.content) > 0


def test_after_the_database_drops_a_new_question_is_answered_and_stop_works_within_a_step(
    start_worker: Callable[..., GenerationWorker],  # noqa: F811
    converse: Converse,  # noqa: F811
) -> None:
    # Stop requests are polled every 600 s here: only the notification, heard on the
    # reconnected connection, can end the answer in time.
    worker = start_worker(step_seconds=0.05, reap_interval=600)
    wait_for(lambda: holds_its_lock(worker))
    cut_every_other_connection()
    _, answer = converse(max_tokens=500)
    wait_for(lambda: Message.objects.filter(pk=answer.pk, status="generating").exclude(content="").exists())
    assert holds_its_lock(worker)
    answer.refresh_from_db()
    assert services.message_stop(answer=answer)
    stopped = wait_for(lambda: settled(answer), timeout=10)
    assert stopped.status == Message.Status.INTERRUPTED
    assert stopped.content
    assert stopped.completion_tokens is not None
    assert stopped.completion_tokens < 500


def test_with_no_worker_alive_stop_ends_the_answer_and_keeps_its_text(converse: Converse) -> None:  # noqa: F811
    _, answer = converse()
    # what a worker killed mid-answer leaves: generating, its text so far, a lock nobody holds
    Message.objects.filter(pk=answer.pk).update(status="generating", worker_key=424242, content="Half of it", seq=4)
    answer.refresh_from_db()
    assert services.message_stop(answer=answer)
    answer.refresh_from_db()
    assert (answer.status, answer.content, answer.seq) == ("interrupted", "Half of it", 4)


def test_a_waiting_answer_says_no_worker_is_running_until_one_starts(
    start_worker: Callable[..., GenerationWorker],  # noqa: F811
    converse: Converse,  # noqa: F811
    logged_in_client: Client,
) -> None:
    conversation, answer = converse()
    page = logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    default = django_settings.PARLEY_INFERENCE.models.default
    assert f"no generation worker is running for {default}: it starts as soon as one does" in page
    worker = start_worker(capacity=1, step_seconds=0.05)
    wait_for(lambda: holds_its_lock(worker))
    assert liveness.workers_alive() == 1
    _, waiting = converse("And another thing")
    _, third = converse("And a third")
    page = logged_in_client.get(reverse("chat:conversation", args=[third.conversation_id])).content.decode()
    assert "no generation worker is running" not in page
    for each in (answer, waiting, third):
        assert wait_for(functools.partial(settled, each)).status == Message.Status.COMPLETE
