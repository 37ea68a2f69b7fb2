"""An answer's lifecycle: each transition happens once and says so (tests/test_layers.py
holds that nothing else writes a status)."""

from __future__ import annotations

from typing import get_args, get_type_hints

import pytest
from django.conf import settings

from tests.webapp.chat.conftest import Converse
from webapp.chat import events
from webapp.chat.answers import (
    AnswerStatistics,
    answer_claim,
    answer_fail,
    answer_finish,
    answer_interrupt,
    answer_reap,
)
from webapp.chat.consumers import ConversationConsumer
from webapp.chat.models import Message

DEFAULT_MODEL = settings.PARLEY_INFERENCE.models.default
STATISTICS = AnswerStatistics(
    prompt_tokens=5, completion_tokens=3, time_to_first_token_ms=12.5, tokens_per_second=30.0, trimmed_messages=0
)


def test_every_frame_has_a_handler_on_the_socket() -> None:
    for frame in get_args(events.ChatEvent):
        (kind,) = get_args(get_type_hints(frame)["type"])
        assert callable(getattr(ConversationConsumer, kind.replace(".", "_"), None)), kind


@pytest.mark.django_db
def test_stop_ends_a_queued_answer_once(converse: Converse) -> None:
    _, answer = converse()
    assert answer_interrupt(answer=answer)
    assert not answer_interrupt(answer=answer)
    answer.refresh_from_db()
    assert (answer.status, answer.content, answer.stop_requested) == ("interrupted", "", True)


@pytest.mark.django_db
def test_a_queued_answer_is_claimed_once(converse: Converse) -> None:
    _, answer = converse()
    assert answer_claim(worker_key=7, model=DEFAULT_MODEL, model_name="tiny", limit=5) == [answer]
    assert answer_claim(worker_key=8, model=DEFAULT_MODEL, model_name="tiny", limit=5) == []
    answer.refresh_from_db()
    assert (answer.status, answer.worker_key, answer.model_name) == ("generating", 7, "tiny")


@pytest.mark.django_db
def test_an_ended_answer_is_neither_finished_nor_failed_again(converse: Converse) -> None:
    _, answer = converse()
    answer_claim(worker_key=7, model=DEFAULT_MODEL, model_name="tiny", limit=1)
    assert answer_fail(answer_id=answer.pk, reason="boom")
    finished = answer_finish(
        answer=answer, status="complete", content="Late text", seq=4, error="", statistics=STATISTICS
    )
    assert not finished
    assert not answer_fail(answer_id=answer.pk, reason="again")
    answer.refresh_from_db()
    assert (answer.status, answer.error, answer.content) == ("failed", "boom", "")


@pytest.mark.django_db
def test_a_finished_answer_keeps_its_text_and_numbers(converse: Converse) -> None:
    _, answer = converse()
    answer_claim(worker_key=7, model=DEFAULT_MODEL, model_name="tiny", limit=1)
    assert answer_finish(answer=answer, status="complete", content="Done.", seq=2, error="", statistics=STATISTICS)
    answer.refresh_from_db()
    assert (answer.status, answer.content, answer.seq, answer.completion_tokens) == ("complete", "Done.", 2, 3)
    assert answer_reap() == 0  # nothing is left generating


@pytest.mark.django_db
def test_an_answer_does_not_end_as_generating(converse: Converse) -> None:
    _, answer = converse()
    with pytest.raises(ValueError, match="not how an answer ends"):
        answer_finish(answer=answer, status="generating", content="", seq=0, error="", statistics=STATISTICS)
    assert Message.objects.get(pk=answer.pk).status == "queued"
