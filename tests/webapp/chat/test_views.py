"""Chat pages and partials: what a user sees and may do, with bad input and other users' ids."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django import DjangoAssertNumQueries, Settings

from tests.webapp.chat.conftest import Converse, finish
from webapp.accounts.models import User
from webapp.chat import selectors, services
from webapp.chat.models import Conversation, Feedback, Message

pytestmark = pytest.mark.django_db


class HtmxHeaders(TypedDict):
    """The test client's extra WSGI keys for a request htmx sends; a TypedDict so that ``**HX`` type-checks."""

    HTTP_HX_REQUEST: str


HX: HtmxHeaders = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    cache.clear()


def test_starting_a_chat_saves_the_question_and_a_queued_answer(logged_in_client: Client, user: User) -> None:
    response = logged_in_client.post(reverse("chat:start"), {"content": "What is   the\n capital of France?"})
    conversation = Conversation.objects.get(owner=user)
    assert response.status_code == 302
    assert response["Location"] == reverse("chat:conversation", args=[conversation.pk])
    assert conversation.title == "What is the capital of France?"
    question, answer = conversation.messages.order_by("pk")
    assert (question.role, question.status) == ("user", "complete")
    assert (answer.role, answer.status, answer.parent_id) == ("assistant", "queued", question.pk)
    assert answer.settings["max_tokens"] == conversation.max_tokens
    page = logged_in_client.get(response["Location"]).content.decode()
    assert 'data-role="user"' in page
    assert 'data-role="assistant" data-status="queued"' in page


def test_sending_in_a_conversation_returns_the_thread(logged_in_client: Client, converse: Converse) -> None:
    conversation, answer = converse()
    finish(answer)
    response = logged_in_client.post(reverse("chat:send", args=[conversation.pk]), {"content": "And then?"}, **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-role="user"') == 2
    assert 'data-status="queued"' in html
    conversation.refresh_from_db()
    assert conversation.current_leaf is not None
    assert conversation.current_leaf.parent is not None
    assert conversation.current_leaf.parent.content == "And then?"


def test_a_send_from_a_page_showing_the_branch_returns_only_the_new_messages(
    logged_in_client: Client, converse: Converse
) -> None:
    conversation, answer = converse()
    finish(answer, "The old answer.")
    url = reverse("chat:send", args=[conversation.pk])
    response = logged_in_client.post(url, {"content": "And then?", "shown": str(answer.pk)}, **HX)
    assert response.status_code == 200
    assert response["HX-Reswap"] == "beforeend"  # below the page's last message
    html = response.content.decode()
    assert html.count('data-role="user"') == 1
    assert "And then?" in html
    assert 'data-role="assistant" data-status="queued"' in html
    assert "The old answer." not in html
    assert 'id="thread"' not in html


@pytest.mark.parametrize("shown", ["999999", "not a number", None])
def test_a_send_from_a_page_showing_something_else_returns_the_whole_thread(
    logged_in_client: Client, converse: Converse, shown: str | None
) -> None:
    conversation, answer = converse()
    finish(answer, "The old answer.")
    data = {"content": "And then?"} | ({"shown": shown} if shown else {})
    response = logged_in_client.post(reverse("chat:send", args=[conversation.pk]), data, **HX)
    assert response.status_code == 200
    assert "HX-Reswap" not in response
    html = response.content.decode()
    assert 'id="thread"' in html
    assert html.count('data-role="user"') == 2
    assert "The old answer." in html


def test_a_regenerate_from_a_page_showing_the_answer_returns_only_its_new_version(
    logged_in_client: Client, converse: Converse
) -> None:
    conversation, first = converse()
    finish(first, "First answer.")
    url = reverse("chat:regenerate", args=[conversation.pk, first.pk])
    response = logged_in_client.post(url, {"shown": str(first.pk)}, **HX)
    assert response.status_code == 200
    assert response["HX-Retarget"] == f"#message-{first.pk}"
    assert response["HX-Reswap"] == "outerHTML"
    second = conversation.messages.get(role="assistant", status="queued")
    html = response.content.decode()
    assert f'id="message-{second.pk}"' in html
    assert "2/2" in html
    assert 'data-role="user"' not in html
    assert "First answer." not in html


def test_a_new_version_shows_its_place_among_the_earlier_ones(logged_in_client: Client, converse: Converse) -> None:
    conversation, first = converse()
    finish(first, "First answer.")
    second = finish(services.message_regenerate(answer=first), "Second answer.")
    url = reverse("chat:regenerate", args=[conversation.pk, second.pk])
    html = logged_in_client.post(url, {"shown": str(second.pk)}, **HX).content.decode()
    third = conversation.messages.get(role="assistant", status="queued")
    assert f'id="message-{third.pk}"' in html
    assert "3/3" in html
    assert reverse("chat:switch", args=[conversation.pk, second.pk]) in html  # "previous" leads to the second
    assert 'aria-label="Next version"' not in html


def test_a_send_after_an_edited_question_shows_the_edit_as_it_is(logged_in_client: Client, converse: Converse) -> None:
    conversation, answer = converse("First question")
    finish(answer)
    assert answer.parent is not None
    edited_answer = finish(services.message_edit(question=answer.parent, content="First question, edited"))
    html = logged_in_client.post(
        reverse("chat:send", args=[conversation.pk]), {"content": "And then?", "shown": str(edited_answer.pk)}, **HX
    ).content.decode()
    assert "And then?" in html
    assert 'class="versions"' not in html  # the new question has no other version
    # the page had drawn the edited branch; the whole thread is not sent again
    assert "First question" not in html


def test_a_send_or_regenerate_costs_the_same_queries_in_a_long_conversation(
    logged_in_client: Client, converse: Converse
) -> None:
    def conversation_of(exchanges: int) -> tuple[Conversation, Message]:
        conversation, answer = converse("Question 0")
        for turn in range(1, exchanges):
            finish(answer)
            conversation.refresh_from_db()
            answer = services.message_send(conversation=conversation, content=f"Question {turn}")
        return conversation, finish(answer)

    counts = []
    for exchanges in (1, 12):
        conversation, answer = conversation_of(exchanges)
        with CaptureQueriesContext(connection) as sending:
            send = reverse("chat:send", args=[conversation.pk])
            assert logged_in_client.post(send, {"content": "More?", "shown": str(answer.pk)}, **HX).status_code == 200
        new = finish(conversation.messages.get(status="queued"))
        with CaptureQueriesContext(connection) as regenerating:
            regenerate = reverse("chat:regenerate", args=[conversation.pk, new.pk])
            assert logged_in_client.post(regenerate, {"shown": str(new.pk)}, **HX).status_code == 200
        counts.append((len(sending), len(regenerating)))
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize(
    ("content", "error"),
    [("", "Write a message first."), ("   \n ", "Write a message first."), ("x" * 16_001, "the limit is 16000")],
)
def test_bad_messages_are_refused_next_to_the_composer(
    logged_in_client: Client, converse: Converse, content: str, error: str
) -> None:
    conversation, answer = converse()
    finish(answer)
    before = Message.objects.count()
    response = logged_in_client.post(reverse("chat:send", args=[conversation.pk]), {"content": content}, **HX)
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#chat-error"
    assert error in response.content.decode()
    assert Message.objects.count() == before


def test_one_answer_at_a_time_per_conversation(logged_in_client: Client, converse: Converse) -> None:
    conversation, _ = converse()
    response = logged_in_client.post(reverse("chat:send", args=[conversation.pk]), {"content": "again"}, **HX)
    assert response.status_code == 422
    assert "still being written" in response.content.decode()
    assert conversation.messages.count() == 2


def test_a_few_answers_at_a_time_per_user(logged_in_client: Client, user: User, settings: Settings) -> None:
    settings.PARLEY_CHAT_MAX_IN_FLIGHT_PER_USER = 2
    for text in ("one", "two"):
        assert logged_in_client.post(reverse("chat:start"), {"content": text}).status_code == 302
    response = logged_in_client.post(reverse("chat:start"), {"content": "three"}, **HX)
    assert response.status_code == 422
    assert "the limit is 2" in response.content.decode()
    assert Conversation.objects.filter(owner=user).count() == 2


def test_messages_per_minute_are_limited(logged_in_client: Client, user: User, settings: Settings) -> None:
    settings.PARLEY_CHAT_RATE = "3/m"
    settings.PARLEY_CHAT_MAX_IN_FLIGHT_PER_USER = 100
    for i in range(3):
        assert logged_in_client.post(reverse("chat:start"), {"content": f"q{i}"}).status_code == 302
    response = logged_in_client.post(reverse("chat:start"), {"content": "one too many"}, **HX)
    assert response.status_code == 422
    assert "faster than this server allows (3/m)" in response.content.decode()
    assert Conversation.objects.filter(owner=user).count() == 3


def test_regenerate_adds_a_version_and_switching_shows_either(logged_in_client: Client, converse: Converse) -> None:
    conversation, first = converse()
    finish(first, "First answer.")
    response = logged_in_client.post(reverse("chat:regenerate", args=[conversation.pk, first.pk]), **HX)
    assert response.status_code == 200
    second = conversation.messages.get(role="assistant", status="queued")
    assert second.parent_id == first.parent_id
    assert "2/2" in response.content.decode()
    finish(second, "Second answer.")
    html = logged_in_client.post(reverse("chat:switch", args=[conversation.pk, first.pk]), **HX).content.decode()
    assert "First answer." in html
    assert "Second answer." not in html
    assert "1/2" in html


def test_editing_a_message_makes_a_branch_and_keeps_the_old_one(logged_in_client: Client, converse: Converse) -> None:
    conversation, answer = converse("Tell me about cats")
    finish(answer, "Cats are small.")
    question = answer.parent
    assert question is not None
    html = logged_in_client.post(
        reverse("chat:edit", args=[conversation.pk, question.pk]), {"content": "Tell me about dogs"}, **HX
    ).content.decode()
    assert "Tell me about dogs" in html
    assert "Tell me about cats" not in html
    assert "2/2" in html
    edited = conversation.messages.get(content="Tell me about dogs")
    assert edited.parent_id == question.parent_id
    assert edited.children.get().status == "queued"
    finish(edited.children.get(), "Dogs are loyal.")
    html = logged_in_client.post(reverse("chat:switch", args=[conversation.pk, question.pk]), **HX).content.decode()
    assert "Tell me about cats" in html
    assert "Cats are small." in html
    assert "Dogs are loyal." not in html


def test_the_model_sees_the_system_prompt_and_the_shown_branch_only(converse: Converse) -> None:
    conversation, answer = converse("first question")
    Conversation.objects.filter(pk=conversation.pk).update(system_prompt="Be brief.")
    finish(answer, "first answer")
    failed = services.message_regenerate(answer=answer)
    Message.objects.filter(pk=failed.pk).update(status="failed", error="boom")
    conversation.refresh_from_db()
    services.branch_switch(message=answer)
    conversation.refresh_from_db()
    final = services.message_send(conversation=conversation, content="second question")
    final.refresh_from_db()
    assert selectors.context_for(answer=final) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]


def test_the_contexts_of_several_answers_come_from_one_query(
    converse: Converse, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    _, first = converse("Question one")
    second_conversation, second = converse("Question two")
    Conversation.objects.filter(pk=second_conversation.pk).update(system_prompt="Be brief.")
    answers = list(Message.objects.select_related("conversation").filter(pk__in=[first.pk, second.pk]))
    with django_assert_num_queries(1):
        contexts = selectors.contexts_for(answers=answers)
    assert contexts == {
        first.pk: [{"role": "user", "content": "Question one"}],
        second.pk: [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Question two"}],
    }


def test_stop_over_http(logged_in_client: Client, converse: Converse) -> None:
    conversation, answer = converse()
    response = logged_in_client.post(reverse("chat:stop", args=[conversation.pk, answer.pk]), **HX)
    assert response.status_code == 204
    answer.refresh_from_db()
    assert answer.status == "interrupted"


def test_feedback_up_down_and_comment(logged_in_client: Client, converse: Converse, user: User) -> None:
    conversation, answer = converse()
    finish(answer)
    url = reverse("chat:feedback", args=[conversation.pk, answer.pk])
    html = logged_in_client.post(url, {"rating": "1"}, **HX).content.decode()
    assert 'aria-pressed="true"' in html
    logged_in_client.post(url, {"rating": "-1", "comment": "Wrong capital."}, **HX)
    feedback = Feedback.objects.get(message=answer)
    assert (feedback.rating, feedback.comment, feedback.user) == (-1, "Wrong capital.", user)
    response = logged_in_client.post(url, {"rating": "5"}, **HX)
    assert response.status_code == 422
    assert Feedback.objects.get(message=answer).rating == -1


def test_the_thread_costs_the_same_queries_however_long_it_is(
    logged_in_client: Client, converse: Converse, user: User, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    """Each answer shows its thumbs; reading them one answer at a time would grow with the thread."""

    def thread_of(exchanges: int) -> str:
        conversation, answer = converse()
        for turn in range(exchanges):
            finish(answer, f"Answer {turn}.")
            Feedback.objects.create(message=answer, user=user, rating=1 if turn % 2 else -1)
            if turn + 1 < exchanges:
                answer = services.message_send(conversation=conversation, content=f"Question {turn + 1}")
        return reverse("chat:thread", args=[conversation.pk])

    short, long = thread_of(1), thread_of(6)
    with CaptureQueriesContext(connection) as baseline:
        assert logged_in_client.get(short, **HX).status_code == 200
    with django_assert_num_queries(len(baseline)):
        html = logged_in_client.get(long, **HX).content.decode()
    assert html.count('aria-pressed="true"') == 6  # every answer's thumb, up or down


def test_settings_are_validated_and_saved(logged_in_client: Client, converse: Converse) -> None:
    conversation, _ = converse()
    url = reverse("chat:settings", args=[conversation.pk])
    bad = logged_in_client.post(url, {"system_prompt": "", "temperature": "9", "top_p": "0.9", "max_tokens": "100"})
    assert bad.status_code == 422
    assert "less than or equal to 2" in bad.content.decode()
    conversation.refresh_from_db()
    assert conversation.temperature == 0
    good = logged_in_client.post(
        url, {"system_prompt": "You are a pirate.", "temperature": "0.3", "top_p": "0.8", "max_tokens": "200"}
    )
    assert good.status_code == 302
    conversation.refresh_from_db()
    assert (conversation.system_prompt, conversation.temperature, conversation.top_p, conversation.max_tokens) == (
        "You are a pirate.",
        0.3,
        0.8,
        200,
    )


def test_rename_archive_and_delete(logged_in_client: Client, converse: Converse, user: User) -> None:
    conversation, answer = converse()
    finish(answer)
    logged_in_client.post(reverse("chat:rename", args=[conversation.pk]), {"title": "  Trip   plans "})
    conversation.refresh_from_db()
    assert conversation.title == "Trip plans"
    logged_in_client.post(reverse("chat:rename", args=[conversation.pk]), {"title": "   "})
    conversation.refresh_from_db()
    assert conversation.title == "Trip plans"
    logged_in_client.post(reverse("chat:archive", args=[conversation.pk]), {"archived": "1"})
    assert "Trip plans" not in logged_in_client.get(reverse("chat:list")).content.decode()
    assert "Trip plans" in logged_in_client.get(reverse("chat:list"), {"archived": "1"}).content.decode()
    logged_in_client.post(reverse("chat:delete", args=[conversation.pk]))
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()


def test_search_finds_titles_and_message_text_of_ones_own_conversations(
    logged_in_client: Client, converse: Converse, make_user: Callable[..., User]
) -> None:
    _, a = converse("Planning a trip to Lisbon")
    finish(a, "Try the pastéis de nata in Belém.")
    _, b = converse("Fix my Python code")
    finish(b, "Use a list comprehension.")
    _, c = converse("Lisbon secrets", owner=make_user())
    finish(c)

    def found(query: str) -> str:
        return logged_in_client.get(reverse("chat:search"), {"q": query}, **HX).content.decode()

    assert "Planning a trip to Lisbon" in found("lisbon")
    assert "Lisbon secrets" not in found("lisbon")
    assert "Planning a trip" in found("nata")
    assert "Fix my Python" not in found("nata")
    assert "Fix my Python" in found("comprehension")
    assert "Nothing matches" in found("zeppelin")


def test_conversations_are_listed_newest_first(logged_in_client: Client, converse: Converse) -> None:
    _first, a = converse("older one")
    finish(a)
    _second, b = converse("newer one")
    finish(b)
    html = logged_in_client.get(reverse("chat:index")).content.decode()
    assert html.index("newer one") < html.index("older one")


def test_another_users_things_are_not_found(client: Client, converse: Converse, make_user: Callable[..., User]) -> None:
    conversation, answer = converse()
    finish(answer)
    question = answer.parent
    assert question is not None
    client.force_login(make_user())
    gets = [
        reverse("chat:conversation", args=[conversation.pk]),
        reverse("chat:thread", args=[conversation.pk]),
        reverse("chat:message", args=[conversation.pk, answer.pk]),
    ]
    posts = [
        (reverse("chat:send", args=[conversation.pk]), {"content": "hi"}),
        (reverse("chat:settings", args=[conversation.pk]), {"temperature": "1", "top_p": "1", "max_tokens": "50"}),
        (reverse("chat:rename", args=[conversation.pk]), {"title": "mine now"}),
        (reverse("chat:archive", args=[conversation.pk]), {}),
        (reverse("chat:delete", args=[conversation.pk]), {}),
        (reverse("chat:regenerate", args=[conversation.pk, answer.pk]), {}),
        (reverse("chat:edit", args=[conversation.pk, question.pk]), {"content": "x"}),
        (reverse("chat:switch", args=[conversation.pk, answer.pk]), {}),
        (reverse("chat:stop", args=[conversation.pk, answer.pk]), {}),
        (reverse("chat:feedback", args=[conversation.pk, answer.pk]), {"rating": "-1"}),
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    assert Conversation.objects.filter(pk=conversation.pk, title=conversation.title).exists()
    assert conversation.messages.count() == 2
    assert not Feedback.objects.exists()


def test_a_message_id_from_another_conversation_is_not_found(logged_in_client: Client, converse: Converse) -> None:
    _first, answer = converse()
    finish(answer)
    second, other = converse("another")
    finish(other)
    url = reverse("chat:feedback", args=[second.pk, answer.pk])
    assert logged_in_client.post(url, {"rating": "1"}).status_code == 404


def test_chat_pages_need_a_login(converse: Converse) -> None:
    conversation, _ = converse()
    for url in (reverse("chat:index"), reverse("chat:conversation", args=[conversation.pk])):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
