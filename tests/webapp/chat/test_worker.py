"""The generation worker against the real test database and Redis."""

from __future__ import annotations

import functools
import itertools
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inference.engine import Engine
from tests.processes import BASE_DIR, process_env
from tests.waiting import wait_for
from tests.webapp.chat.conftest import Converse, settled
from webapp.accounts.models import User
from webapp.chat import selectors, services
from webapp.chat.answers import answer_reap
from webapp.chat.models import Message
from webapp.chat.worker import GenerationWorker, LiveAnswer
from webapp.core.events import ThreadPublisher

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_queued_answer_is_generated_saved_and_counted(
    start_worker: Callable[..., GenerationWorker], converse: Converse
) -> None:
    _conversation, answer = converse("Tell me a story", max_tokens=40)
    start_worker()
    done = wait_for(lambda: settled(answer))
    assert done.status == Message.Status.COMPLETE
    assert done.content
    assert done.model_name == "tiny-test-model"
    assert done.completion_tokens == 40  # the tiny model never says it is done
    assert done.prompt_tokens
    assert done.prompt_tokens > 0
    assert done.tokens_per_second
    assert done.tokens_per_second > 0
    assert done.time_to_first_token_ms is not None
    assert done.seq > 0


def test_text_is_saved_while_it_grows(start_worker: Callable[..., GenerationWorker], converse: Converse) -> None:
    _conversation, answer = converse(max_tokens=300)
    start_worker()
    seen: list[str] = []

    def partial() -> bool:
        answer.refresh_from_db()
        if answer.status == Message.Status.GENERATING and answer.content:
            seen.append(answer.content)
        return len(set(seen)) >= 3 or not answer.in_flight

    wait_for(partial)
    assert len(set(seen)) >= 3, "the growing answer was not saved along the way"
    final = wait_for(lambda: settled(answer))
    assert all(final.content.startswith(text) for text in seen)


def test_growing_answers_are_saved_in_one_statement_and_a_stopped_one_keeps_its_end(
    converse: Converse, make_user: Callable[..., User]
) -> None:
    _, growing = converse()
    _, stopped = converse(owner=make_user())
    Message.objects.filter(pk=growing.pk).update(status=Message.Status.GENERATING)
    Message.objects.filter(pk=stopped.pk).update(status=Message.Status.INTERRUPTED, content="Its last words", seq=5)
    live = [
        LiveAnswer(message=Message.objects.get(pk=growing.pk), stream=cast(Any, None), text="So far", seq=3),
        LiveAnswer(message=Message.objects.get(pk=stopped.pk), stream=cast(Any, None), text="Late text", seq=7),
    ]
    with CaptureQueriesContext(connection) as queries:
        GenerationWorker._save(live)
    statements = [query["sql"].split()[0] for query in queries]
    assert statements == ["BEGIN", "UPDATE", "COMMIT"]
    growing.refresh_from_db()
    stopped.refresh_from_db()
    assert (growing.status, growing.content, growing.seq) == ("generating", "So far", 3)
    assert (stopped.status, stopped.content, stopped.seq) == ("interrupted", "Its last words", 5)


def test_answers_are_published_less_often_the_more_stream_at_once(
    start_worker: Callable[..., GenerationWorker],
) -> None:
    worker = start_worker(updates_per_second=40)
    assert worker.update_interval(1) == pytest.approx(0.025)
    assert worker.update_interval(8) == pytest.approx(0.2)
    assert worker.update_interval(100) == worker.max_update_interval == 0.5
    fast = start_worker(updates_per_second=1000)
    assert fast.update_interval(2) == fast.flush_interval == 0.02  # never more often than the pump's clock


def test_between_a_first_text_and_the_end_each_answer_waits_its_turn(
    start_worker: Callable[..., GenerationWorker],
    converse: Converse,
    make_user: Callable[..., User],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = [converse(f"question {i}", owner=make_user(), max_tokens=250)[1] for i in range(2)]
    published: list[tuple[float, dict[str, Any]]] = []
    original = ThreadPublisher.publish_many

    def recording(publisher: ThreadPublisher, events: list[tuple[str, dict[str, Any]]]) -> None:
        published.extend((time.monotonic(), event) for _, event in events)
        original(publisher, events)

    monkeypatch.setattr(ThreadPublisher, "publish_many", recording)
    start_worker(updates_per_second=2, max_update_interval=1.0)  # two answers: a delta a second each
    for answer in answers:
        final = wait_for(functools.partial(settled, answer))
        assert final.status == Message.Status.COMPLETE
        deltas = [(at, event) for at, event in published if event.get("message") == answer.pk and "delta" in event]
        assert "".join(event["delta"] for _, event in deltas) == final.content
        assert [event["seq"] for _, event in deltas] == list(range(1, final.seq + 1))
        assert final.seq >= 3
        # the first text went out at once, not a second's worth of tokens later
        assert len(deltas[0][1]["delta"]) * 5 < len(deltas[1][1]["delta"])
        times = [at for at, _ in deltas[:-1]]  # the last went out with the end, which never waits
        assert all(later - earlier > 0.9 for earlier, later in itertools.pairwise(times))


def test_a_waiting_worker_takes_a_new_answer_when_notified_not_at_its_next_poll(
    start_worker: Callable[..., GenerationWorker], converse: Converse, make_user: Callable[..., User]
) -> None:
    worker = start_worker(poll_interval=600)  # it looks once at start, then only when woken
    _, first = converse(max_tokens=5)
    assert wait_for(lambda: settled(first)).status == Message.Status.COMPLETE
    wait_for(lambda: not worker.wake.is_set())  # it has looked again since, and waits
    _, second = converse(owner=make_user(), max_tokens=5)
    assert wait_for(lambda: settled(second), timeout=30).status == Message.Status.COMPLETE


def test_two_workers_claim_each_answer_once(
    start_worker: Callable[..., GenerationWorker],
    make_user: Callable[..., User],
    converse: Converse,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = [converse(f"question {i}", owner=make_user(), max_tokens=20)[1] for i in range(8)]
    served: dict[int, list[int]] = {}
    original = GenerationWorker.begin

    def recording(worker: GenerationWorker, claimed: list[Message], **options: Any) -> None:
        for answer in claimed:
            served.setdefault(answer.pk, []).append(worker.key)
        original(worker, claimed, **options)

    monkeypatch.setattr(GenerationWorker, "begin", recording)
    first, second = start_worker(capacity=3), start_worker(capacity=3)
    for answer in answers:
        assert wait_for(functools.partial(settled, answer)).status == Message.Status.COMPLETE
    assert sorted(served) == sorted(a.pk for a in answers)
    assert all(len(keys) == 1 for keys in served.values())
    assert {keys[0] for keys in served.values()} == {first.key, second.key}, "both workers should have taken some"


def test_stop_interrupts_within_a_step_and_keeps_the_text(
    start_worker: Callable[..., GenerationWorker], converse: Converse
) -> None:
    _conversation, answer = converse(max_tokens=450)
    start_worker(step_seconds=0.02)
    wait_for(lambda: Message.objects.filter(pk=answer.pk, seq__gte=3).exists())
    assert services.message_stop(answer=answer)
    stopped = wait_for(lambda: settled(answer), timeout=5)
    assert stopped.status == Message.Status.INTERRUPTED
    assert stopped.content
    assert 0 < stopped.completion_tokens < 450


def test_stop_before_a_worker_claims_it(converse: Converse) -> None:
    _conversation, answer = converse()
    assert services.message_stop(answer=answer)
    answer.refresh_from_db()
    assert answer.status == Message.Status.INTERRUPTED
    assert answer.content == ""


def test_other_answers_go_on_when_one_is_stopped(
    start_worker: Callable[..., GenerationWorker], converse: Converse, make_user: Callable[..., User]
) -> None:
    _, stopped = converse(max_tokens=450)
    _, other = converse(owner=make_user(), max_tokens=150)
    start_worker()
    wait_for(lambda: Message.objects.filter(pk=stopped.pk, seq__gte=2).exists())
    services.message_stop(answer=stopped)
    assert wait_for(lambda: settled(stopped)).status == Message.Status.INTERRUPTED
    assert wait_for(lambda: settled(other)).status == Message.Status.COMPLETE
    assert other.completion_tokens == 150


def test_an_engine_failure_marks_the_answer_failed_with_a_reason(
    start_worker: Callable[..., GenerationWorker], converse: Converse
) -> None:
    worker = start_worker()

    def broken_forward(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA out of memory (simulated)")

    assert isinstance(worker.engine, Engine)
    worker.engine.model.forward = broken_forward
    _, answer = converse()
    failed = wait_for(lambda: settled(answer))
    assert failed.status == Message.Status.FAILED
    assert "CUDA out of memory (simulated)" in failed.error


def test_a_request_the_engine_refuses_fails_with_its_reason(
    start_worker: Callable[..., GenerationWorker], converse: Converse
) -> None:
    start_worker()
    _, answer = converse(max_tokens=100_000)
    failed = wait_for(lambda: settled(answer))
    assert failed.status == Message.Status.FAILED
    assert "max_new_tokens" in failed.error


def test_a_killed_worker_leaves_an_interrupted_answer_with_its_partial_text(converse: Converse) -> None:
    """The real command, with the real default model, killed with SIGKILL mid-answer."""
    _, answer = converse("Write a long essay about the history of bread.", max_tokens=800)
    process = subprocess.Popen([sys.executable, "manage.py", "generation_worker"], cwd=BASE_DIR, env=process_env())
    try:
        wait_for(lambda: Message.objects.filter(pk=answer.pk, status="generating").exclude(content="").exists(), 120)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    answer.refresh_from_db()
    assert answer.status == Message.Status.GENERATING  # nobody has cleaned up yet
    partial = answer.content
    # once Postgres notices the closed session and frees its lock
    assert wait_for(answer_reap, timeout=10) == 1
    answer.refresh_from_db()
    assert answer.status == Message.Status.INTERRUPTED
    assert answer.content == partial
    assert partial
    assert "stopped" in answer.error


def test_the_reaper_leaves_a_live_workers_answers_alone(
    start_worker: Callable[..., GenerationWorker], converse: Converse
) -> None:
    _, answer = converse(max_tokens=450)
    start_worker(step_seconds=0.02)
    wait_for(lambda: Message.objects.filter(pk=answer.pk, status="generating").exists())
    assert answer_reap() == 0
    answer.refresh_from_db()
    assert answer.status == Message.Status.GENERATING
    services.message_stop(answer=answer)


def test_a_new_worker_reaps_a_dead_workers_answer_once_its_lock_stays_free(
    start_worker: Callable[..., GenerationWorker], converse: Converse
) -> None:
    _, answer = converse()
    Message.objects.filter(pk=answer.pk).update(status="generating", worker_key=12345, content="half an ans", seq=3)
    started = time.monotonic()
    start_worker(reap_grace=1.0)
    reaped = wait_for(lambda: settled(answer))
    assert time.monotonic() - started >= 1.0  # not at the first sight of a free lock
    assert reaped.status == Message.Status.INTERRUPTED
    assert reaped.content == "half an ans"


def test_a_key_found_free_once_is_not_reaped_before_the_grace_has_passed(converse: Converse) -> None:
    _, answer = converse()
    Message.objects.filter(pk=answer.pk).update(status="generating", worker_key=12345, content="so far", seq=2)
    free_since: dict[int, float] = {}
    assert answer_reap(free_since=free_since, grace=60) == 0
    assert set(free_since) == {12345}
    answer.refresh_from_db()
    assert answer.status == Message.Status.GENERATING
    free_since[12345] -= 61  # found free a minute ago
    assert answer_reap(free_since=free_since, grace=60) == 1
    answer.refresh_from_db()
    assert (answer.status, answer.content) == ("interrupted", "so far")
    assert free_since == {}


def test_a_full_worker_leaves_the_rest_queued_and_reports_their_place(
    start_worker: Callable[..., GenerationWorker], converse: Converse, make_user: Callable[..., User]
) -> None:
    _, first = converse(max_tokens=400)
    _, second = converse(owner=make_user(), max_tokens=10)
    _, third = converse(owner=make_user(), max_tokens=10)
    start_worker(capacity=1, step_seconds=0.02)
    wait_for(lambda: Message.objects.filter(pk=first.pk, status="generating").exists())
    second.refresh_from_db()
    third.refresh_from_db()
    assert (second.status, third.status) == ("queued", "queued")
    assert (selectors.queue_position(answer=second), selectors.queue_position(answer=third)) == (1, 2)
    for answer in (first, second, third):
        assert wait_for(functools.partial(settled, answer)).status == Message.Status.COMPLETE


def test_each_user_s_answers_share_kept_prefixes_only_with_their_own(
    converse: Converse, make_user: Callable[..., User]
) -> None:
    bob = make_user("bob@example.com")
    _, first = converse("Same words")
    _, second = converse("Same words")
    _, bobs = converse("Same words", owner=bob)
    answers = (first, second, bobs)
    scopes = [GenerationWorker._request(answer, selectors.context_for(answer=answer)).cache_scope for answer in answers]
    assert scopes[0] == scopes[1] == f"user:{first.conversation.owner_id}"
    assert scopes[2] == f"user:{bob.pk}" != scopes[0]
