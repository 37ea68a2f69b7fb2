"""Searching one's messages: the query language, the results against real Postgres, the
page, and what a bad query gets."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.webapp.chat.test_views import HX
from webapp.accounts.models import User
from webapp.chat import search
from webapp.chat.models import Conversation, Message, Project
from webapp.chat.search import SearchRefused, parse_query, search_messages

# ---- the parser (no database) -----------------------------------------------------------------


def test_words_and_filters_are_told_apart() -> None:
    parsed = parse_query('nata role:assistant after:2026-01-01 before:2026-02-01 "pastel de" -lisbon')
    assert parsed.words == 'nata "pastel de" -lisbon'
    assert parsed.filters == {
        "role": "assistant",
        "after": datetime.date(2026, 1, 1),
        "before": datetime.date(2026, 2, 1),
    }


def test_pinned_and_project_filters_are_read_into_the_query() -> None:
    parsed = parse_query('budget pinned:yes in:"Trip plans"')
    assert parsed.words == "budget"
    assert parsed.filters == {"pinned": True, "in": "Trip plans"}
    assert parse_query("budget pinned:NO in:Work").filters == {"pinned": False, "in": "Work"}


def test_filter_names_and_roles_are_read_in_any_case() -> None:
    assert parse_query("hello ROLE:User").filters == {"role": "user"}


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("", "Add a word"),
        ("   ", "Add a word"),
        ('"" - or OR ! & | ( ) :', "Add a word"),
        ("-lisbon", "Add a word"),
        ('-"pastel de nata"', "Add a word"),
        ("role:user", "Add a word"),
        ("role:user after:2026-01-01", "Add a word"),
        ("___ ...", "Add a word"),
        ("nata colour:blue", "There is no filter “colour:”"),
        ("see http://example.com", 'put it in quotes: "http://example.com"'),
        ("nata role:robot", "role: is user or assistant, not “robot”"),
        ("nata role:", "role: needs a value, like role:user"),
        ("nata after:2026-13-01", "“2026-13-01” is not a date; write it as YYYY-MM-DD"),
        ("nata before:yesterday", "“yesterday” is not a date"),
        ("nata after:2026-02-01 before:2026-01-01", "after: must be a day before before:"),
        ("nata role:user role:assistant", "role: is given twice"),
        ("nata -role:user", "A filter cannot be negated"),
        ("nata pinned:maybe", "pinned: is yes or no"),
        ('nata in:""', "in: needs a value"),
        ("word " * 200, "at most 500 characters"),
    ],
)
def test_a_query_that_cannot_run_says_why(query: str, says: str) -> None:
    with pytest.raises(SearchRefused) as refusal:
        parse_query(query)
    assert says in str(refusal.value)


def test_a_quoted_filter_is_text() -> None:
    assert parse_query('"http://example.com"').words == '"http://example.com"'


def test_every_filter_is_one_entry_with_an_example_that_parses() -> None:
    for name, entry in search.FILTERS.items():
        assert entry.example.startswith(f"{name}:")
        assert name in parse_query(f"word {entry.example}").filters


def test_a_headline_is_escaped_and_only_its_marks_become_html() -> None:
    headline = f"say {search.MARK_START}<script>{search.MARK_END} & <b>bold</b> {search.MARK_START}x"
    assert search.marked(headline) == "say <mark>&lt;script&gt;</mark> &amp; &lt;b&gt;bold&lt;/b&gt; x"


# ---- against Postgres ------------------------------------------------------------------------


def conversation_of(owner: User, title: str, *texts: str, when: datetime.datetime | None = None) -> list[Message]:
    """A conversation of alternating questions and answers, one branch, written at ``when``."""
    conversation = Conversation.objects.create(owner=owner, title=title)
    messages: list[Message] = []
    for index, text in enumerate(texts):
        messages.append(
            Message.objects.create(
                conversation=conversation,
                parent=messages[-1] if messages else None,
                role="user" if index % 2 == 0 else "assistant",
                content=text,
            )
        )
    if when is not None:
        Message.objects.filter(conversation=conversation).update(created_at=when)
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=messages[-1])
    return messages


def found(user: User, query: str, page: int = 1) -> list[int]:
    return [hit.message_id for hit in search_messages(user=user, query=parse_query(query), page=page).hits]


@pytest.mark.django_db
def test_the_matching_message_is_found_with_its_conversation_role_and_a_marked_snippet(user: User) -> None:
    question, answer = conversation_of(user, "Lisbon trip", "Where should I eat?", "Try the pastéis de nata in Belém.")
    results = search_messages(user=user, query=parse_query("nata"))
    [hit] = results.hits
    assert hit.message_id == answer.pk
    assert hit.conversation_id == answer.conversation_id
    assert hit.conversation_title == "Lisbon trip"
    assert hit.role == "assistant"
    assert hit.created_at == answer.created_at
    assert "<mark>nata</mark>" in hit.snippet
    assert "Belém" in hit.snippet
    assert found(user, "eat") == [question.pk]


@pytest.mark.django_db
def test_a_script_in_a_message_comes_back_as_text(user: User) -> None:
    conversation_of(user, "Hostile", 'look <script>alert("x")</script> <img src=x onerror=alert(1)> here')
    [hit] = search_messages(user=user, query=parse_query("alert")).hits
    assert "<script" not in hit.snippet
    assert "<img" not in hit.snippet
    # ts_headline leaves out what its parser takes for tags; what is left shows as text
    assert "alert(&quot;x&quot;)" in hit.snippet
    assert "&lt;img src=x onerror=<mark>alert</mark>(1)&gt;" in hit.snippet


@pytest.mark.django_db
def test_another_users_messages_never_appear(user: User, make_user: Callable[..., User]) -> None:
    mine = conversation_of(user, "Mine", "zeppelin over the bay")
    conversation_of(make_user(), "Zeppelin theirs", "zeppelin theirs too")
    results = search_messages(user=user, query=parse_query("zeppelin"))
    assert [hit.message_id for hit in results.hits] == [mine[0].pk]
    assert results.conversations == []  # their title matches, not shown


@pytest.mark.django_db
def test_role_and_dates_narrow_the_messages(user: User) -> None:
    january = timezone.make_aware(datetime.datetime(2026, 1, 15, 12))
    march = timezone.make_aware(datetime.datetime(2026, 3, 1, 0, 0))
    old_question, old_answer = conversation_of(user, "Old", "tides question", "tides answer", when=january)
    new_question, new_answer = conversation_of(user, "New", "tides again", "tides again answered", when=march)
    assert found(user, "tides") == [new_answer.pk, new_question.pk, old_answer.pk, old_question.pk]
    assert found(user, "tides role:user") == [new_question.pk, old_question.pk]
    assert found(user, "tides role:assistant") == [new_answer.pk, old_answer.pk]
    # after: includes its day, before: does not
    assert found(user, "tides after:2026-03-01") == [new_answer.pk, new_question.pk]
    assert found(user, "tides before:2026-03-01") == [old_answer.pk, old_question.pk]
    assert found(user, "tides after:2026-01-16 before:2026-03-01") == []
    assert found(user, "tides -again") == [old_answer.pk, old_question.pk]
    assert found(user, '"again answered"') == [new_answer.pk]


@pytest.mark.django_db
def test_pinned_and_project_filters_narrow_to_those_conversations(user: User, make_user: Callable[..., User]) -> None:
    (loose,) = conversation_of(user, "Loose", "budget for the house")
    (pinned,) = conversation_of(user, "Pinned", "budget for the car")
    (in_project,) = conversation_of(user, "Planned", "budget for the trip")
    Conversation.objects.filter(pk=pinned.conversation_id).update(pinned_at=timezone.now())
    trip = Project.objects.create(owner=user, name="Trip plans")
    Conversation.objects.filter(pk=in_project.conversation_id).update(project=trip)
    # another user's project of the same name holds nothing of this user's
    other = make_user()
    (theirs,) = conversation_of(other, "Theirs", "budget for their trip")
    Conversation.objects.filter(pk=theirs.conversation_id).update(
        project=Project.objects.create(owner=other, name="Trip plans")
    )
    assert found(user, "budget pinned:yes") == [pinned.pk]
    assert found(user, "budget pinned:no") == [in_project.pk, loose.pk]
    assert found(user, 'budget in:"trip PLANS"') == [in_project.pk]
    assert found(user, "budget in:Nowhere") == []


@pytest.mark.django_db
def test_api_traffic_is_not_searched(user: User) -> None:
    (chat,) = conversation_of(user, "Chat", "lighthouse keepers")
    (api,) = conversation_of(user, "Api", "lighthouse keepers too")
    Conversation.objects.filter(pk=api.conversation_id).update(origin=Conversation.Origin.API)
    assert found(user, "lighthouse") == [chat.pk]


@pytest.mark.django_db
def test_pages_go_on_newest_first_without_counting(user: User) -> None:
    messages = conversation_of(user, "Many", *[f"harbour note {i}" for i in range(search.PAGE_SIZE + 5)])
    first = search_messages(user=user, query=parse_query("harbour"))
    second = search_messages(user=user, query=parse_query("harbour"), page=2)
    newest_first = [m.pk for m in reversed(messages)]
    assert [h.message_id for h in first.hits] == newest_first[: search.PAGE_SIZE]
    assert first.has_next
    assert [h.message_id for h in second.hits] == newest_first[search.PAGE_SIZE :]
    assert not second.has_next


@pytest.mark.django_db
def test_best_match_first_ranks_by_the_words_and_the_newest_first_among_equals(user: User) -> None:
    now = timezone.now()
    [once] = conversation_of(user, "Once", "the harbour at dusk", when=now - datetime.timedelta(days=3))
    [often] = conversation_of(
        user, "Often", "harbour walls, harbour lights, harbour boats", when=now - datetime.timedelta(days=9)
    )
    [older_once] = conversation_of(user, "Older", "the harbour at dusk", when=now - datetime.timedelta(days=20))
    [newest] = conversation_of(user, "Newest", "a harbour", when=now)
    relevance = search_messages(user=user, query=parse_query("harbour"), order=search.RELEVANCE).hits
    ranked = [hit.message_id for hit in relevance]
    assert ranked[0] == often.pk  # the word three times ranks above once
    assert ranked.index(once.pk) < ranked.index(older_once.pk)  # the same text: the newer first
    assert found(user, "harbour") == [newest.pk, once.pk, often.pk, older_once.pk]  # the default order


@pytest.mark.django_db
def test_best_match_first_pages_on_without_repeating_a_message(user: User) -> None:
    messages = conversation_of(user, "Many", *[f"harbour note {i}" for i in range(search.PAGE_SIZE + 5)])
    query = parse_query("harbour")
    first = search_messages(user=user, query=query, order=search.RELEVANCE)
    second = search_messages(user=user, query=query, page=2, order=search.RELEVANCE)
    # every message ranks the same, so the newest come first
    assert [h.message_id for h in first.hits + second.hits] == [m.pk for m in reversed(messages)]
    assert not second.has_next


@pytest.mark.django_db
def test_an_unknown_order_is_refused_with_the_orders_there_are(logged_in_client: Client, user: User) -> None:
    conversation_of(user, "Some", "something said")
    with pytest.raises(SearchRefused, match="newest first or best match first"):
        search_messages(user=user, query=parse_query("something"), order="alphabetical")
    response = logged_in_client.get(reverse("chat:search"), {"q": "something", "order": "alphabetical"}, **HX)
    assert response.status_code == 422
    assert "Results can be listed newest first or best match first." in response.content.decode()
    assert "message-hit" not in response.content.decode()


@pytest.mark.django_db
def test_the_search_page_offers_the_order_and_keeps_it_for_more_results(logged_in_client: Client, user: User) -> None:
    conversation_of(user, "Many", *[f"harbour note {i}" for i in range(search.PAGE_SIZE + 1)])
    conversation_of(user, "Loud", "harbour harbour harbour")
    body = logged_in_client.get(reverse("chat:search"), {"q": "harbour", "order": "relevance"}).content.decode()
    assert '<option value="relevance" selected>Best match first</option>' in body
    assert "order=relevance&amp;page=2" in body
    assert body.index('<span class="hit-title">Loud') < body.index('<span class="hit-title">Many')


@pytest.mark.django_db
def test_titles_that_match_come_with_the_first_page(user: User) -> None:
    conversation_of(user, "Harbour plans", "nothing about it")
    results = search_messages(user=user, query=parse_query("harbour"))
    assert [str(c) for c in results.conversations] == ["Harbour plans"]
    assert results.hits == []
    assert search_messages(user=user, query=parse_query("harbour role:user")).conversations == []


@pytest.mark.django_db
def test_archived_conversations_are_searched_and_marked(user: User) -> None:
    [message] = conversation_of(user, "Put away", "lighthouse keeper")
    Conversation.objects.filter(pk=message.conversation_id).update(archived=True)
    [hit] = search_messages(user=user, query=parse_query("lighthouse")).hits
    assert hit.archived


# ---- the page ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_search_partial_lists_messages_with_links_to_them(logged_in_client: Client, user: User) -> None:
    _question, answer = conversation_of(user, "Lisbon trip", "Where to eat?", "The pastéis de <b>nata</b>.")
    response = logged_in_client.get(reverse("chat:search"), {"q": "nata"}, **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert f"/chat/{answer.conversation_id}/?message={answer.pk}#message-{answer.pk}" in body
    assert "Lisbon trip" in body
    assert "<mark>nata</mark>" in body
    assert "<b>" not in body


@pytest.mark.django_db
def test_a_bad_query_gets_its_reason_and_no_messages(logged_in_client: Client, user: User) -> None:
    conversation_of(user, "Some", "something said")
    for query in ("!!! ---", "role:user", "something colour:blue", "something after:2026-02-30"):
        for response in (
            logged_in_client.get(reverse("chat:search"), {"q": query}),
            logged_in_client.get(reverse("chat:search"), {"q": query}, **HX),
        ):
            assert response.status_code == 422
            body = response.content.decode()
            assert 'role="alert"' in body
            assert "message-hit" not in body
            assert "something said" not in body


@pytest.mark.django_db
def test_the_search_page_without_htmx_shows_results_in_the_sidebar(logged_in_client: Client, user: User) -> None:
    [message] = conversation_of(user, "Only one", "kelp forests")
    body = logged_in_client.get(reverse("chat:search"), {"q": "kelp"}).content.decode()
    assert f"?message={message.pk}" in body
    assert 'value="kelp"' in body
    assert logged_in_client.get(reverse("chat:search"), {"q": " "})["Location"] == reverse("chat:index")


@pytest.mark.django_db
def test_more_results_come_as_the_next_page_of_hits(logged_in_client: Client, user: User) -> None:
    conversation_of(user, "Many", *[f"harbour note {i}" for i in range(search.PAGE_SIZE + 1)])
    first = logged_in_client.get(reverse("chat:search"), {"q": "harbour"}, **HX).content.decode()
    assert first.count('class="message-hit"') == search.PAGE_SIZE
    assert "page=2" in first
    second = logged_in_client.get(reverse("chat:search"), {"q": "harbour", "page": "2"}, **HX).content.decode()
    assert second.count('class="message-hit"') == 1
    assert "conversation-list" not in second  # the hits alone, to go where the link was
    assert "page=3" not in second


@pytest.mark.django_db
def test_an_empty_search_gives_the_conversation_list_back(logged_in_client: Client, user: User) -> None:
    conversation_of(user, "Listed", "hello")
    body = logged_in_client.get(reverse("chat:search"), {"q": ""}, **HX).content.decode()
    assert "Listed" in body
    assert 'id="conversation-list"' in body


@pytest.mark.django_db
def test_opening_a_result_on_another_branch_shows_that_branch(logged_in_client: Client, user: User) -> None:
    question, first_answer = conversation_of(user, "Versions", "Name a colour", "Vermilion, first try")
    second_answer = Message.objects.create(
        conversation=question.conversation, parent=question, role="assistant", content="Cobalt"
    )
    Conversation.objects.filter(pk=question.conversation_id).update(current_leaf=second_answer)
    [hit] = found(user, "vermilion")
    url = reverse("chat:conversation", args=[question.conversation_id])
    body = logged_in_client.get(url, {"message": hit}).content.decode()
    assert f'id="message-{first_answer.pk}" class="message message-assistant message-found"' in body
    assert f'id="message-{second_answer.pk}"' not in body
    conversation = Conversation.objects.get(pk=question.conversation_id)
    assert conversation.current_leaf_id == first_answer.pk  # a send now continues what is shown


@pytest.mark.django_db
def test_a_result_link_to_someone_elses_message_opens_nothing_of_theirs(
    logged_in_client: Client, user: User, make_user: Callable[..., User]
) -> None:
    [theirs] = conversation_of(make_user(), "Theirs", "their secret")
    [mine] = conversation_of(user, "Mine", "my words")
    url = reverse("chat:conversation", args=[mine.conversation_id])
    body = logged_in_client.get(url, {"message": theirs.pk}).content.decode()
    assert "their secret" not in body
    assert "message-found" not in body
    assert "my words" in body
    other = reverse("chat:conversation", args=[theirs.conversation_id])
    assert logged_in_client.get(other, {"message": theirs.pk}).status_code == 404
