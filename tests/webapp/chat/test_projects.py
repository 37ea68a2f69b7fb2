"""Projects and pins: making, renaming and deleting projects, moving conversations into and
out of them, what a new chat in a project starts with, pinning, and the sidebar's groups."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django import Settings

from inference.config import LocalModel, ModelRegistry, UpstreamModel
from tests.webapp.chat.test_views import HX
from webapp.accounts.models import User
from webapp.chat import selectors, services
from webapp.chat.models import Conversation, ConversationDocument, Message, Project
from webapp.documents.models import Document

pytestmark = pytest.mark.django_db

LOCAL = django_settings.PARLEY_INFERENCE.models.default
TEAM = UpstreamModel(name="team-llama", base_url="http://gpu:8000/v1", model="llama-3.1-8b", context_length=8192)


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    cache.clear()


@pytest.fixture
def other(make_user: Callable[..., User]) -> User:
    return make_user("mallory@example.com")


def chat(owner: User, title: str, *, project: Project | None = None, days_ago: float = 0) -> Conversation:
    """A conversation of one exchange, last active ``days_ago``."""
    conversation = Conversation.objects.create(owner=owner, title=title, project=project)
    question = Message.objects.create(conversation=conversation, role="user", content=f"About {title}?")
    Message.objects.create(conversation=conversation, role="assistant", parent=question, content="Yes.")
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now() - timedelta(days=days_ago))
    conversation.refresh_from_db()
    return conversation


def document_of(owner: User, name: str) -> Document:
    return Document.objects.create(
        owner=owner, name=name, kind="text", size=1, sha256=f"{owner.pk}-{name}", original=b"x", status="ready"
    )


def attached_to(conversation: Conversation) -> list[str]:
    return sorted(
        ConversationDocument.objects.filter(conversation=conversation).values_list("document__name", flat=True)
    )


def error_on(response: Any) -> str:
    match = re.search(r'<div class="form-errors"[^>]*><p>(.*?)</p>', response.content.decode())
    assert match, "the page shows no error"
    return match.group(1)


# ---- making, renaming -------------------------------------------------------------------------


def test_a_project_is_made_from_the_projects_page_with_its_name_tidied(logged_in_client: Client, user: User) -> None:
    response = logged_in_client.post(
        reverse("chat:projects"), {"name": "  Tax   return 2026 ", "system_prompt": "Answer as an accountant."}
    )
    project = Project.objects.get(owner=user)
    assert response.status_code == 302
    assert response["Location"] == reverse("chat:project", args=[project.pk])
    assert (project.name, project.system_prompt) == ("Tax return 2026", "Answer as an accountant.")
    listing = logged_in_client.get(reverse("chat:projects")).content.decode()
    assert "Tax return 2026" in listing


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "A project needs a name."),
        ("   \t ", "A project needs a name."),
        ("x" * 101, "A project&#x27;s name can be at most 100 characters long; that one is 101."),
    ],
)
def test_a_bad_name_is_refused_with_the_reason_and_nothing_is_made(
    logged_in_client: Client, user: User, name: str, error: str
) -> None:
    response = logged_in_client.post(reverse("chat:projects"), {"name": name, "system_prompt": ""})
    assert response.status_code == 422
    assert error_on(response) == error
    assert not Project.objects.exists()


def test_a_system_prompt_over_the_limit_is_refused_and_nothing_is_made(logged_in_client: Client) -> None:
    response = logged_in_client.post(reverse("chat:projects"), {"name": "Long", "system_prompt": "p" * 8001})
    assert response.status_code == 422
    assert "at most 8000 characters" in error_on(response)
    assert not Project.objects.exists()


def test_a_name_of_exactly_100_characters_is_taken(user: User) -> None:
    assert services.project_create(owner=user, name="y" * 100).name == "y" * 100


def test_a_name_the_user_already_has_in_any_case_is_refused_but_another_user_may_have_it(
    logged_in_client: Client, user: User, other: User
) -> None:
    services.project_create(owner=user, name="Work")
    response = logged_in_client.post(reverse("chat:projects"), {"name": " work ", "system_prompt": ""})
    assert response.status_code == 422
    assert error_on(response) == "You already have a project named “work”."
    assert list(Project.objects.filter(owner=user).values_list("name", flat=True)) == ["Work"]
    assert services.project_create(owner=other, name="Work").owner == other


def test_the_database_refuses_a_duplicate_name_even_past_the_check(user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two tabs making the same name at once: the constraint decides, the user gets the same message."""
    services.project_create(owner=user, name="Work")
    # the check finds the name free, as it would for both tabs of a race; the insert then conflicts
    monkeypatch.setattr(services, "_check_name_free", lambda **kwargs: None)
    with pytest.raises(services.ChatError, match=r"You already have a project named “WORK”\."):
        services.project_create(owner=user, name="WORK")
    assert Project.objects.filter(owner=user).count() == 1


def test_a_project_is_renamed_and_its_system_prompt_changed_for_new_chats_only(
    logged_in_client: Client, user: User
) -> None:
    project = services.project_create(owner=user, name="Work", system_prompt="Be formal.")
    earlier, _ = services.conversation_start(owner=user, content="First", project=project)
    response = logged_in_client.post(
        reverse("chat:project", args=[project.pk]), {"name": "Office", "system_prompt": "Be brief."}
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.name, project.system_prompt) == ("Office", "Be brief.")
    earlier.refresh_from_db()
    assert earlier.system_prompt == "Be formal."
    later, _ = services.conversation_start(owner=user, content="Second", project=project)
    assert later.system_prompt == "Be brief."


@pytest.mark.parametrize(
    ("name", "error"),
    [("", "A project needs a name."), ("Home", "You already have a project named “Home”."), ("z" * 150, "at most 100")],
)
def test_a_bad_rename_is_refused_and_changes_nothing(
    logged_in_client: Client, user: User, name: str, error: str
) -> None:
    services.project_create(owner=user, name="Home")
    project = services.project_create(owner=user, name="Work", system_prompt="Be formal.")
    response = logged_in_client.post(
        reverse("chat:project", args=[project.pk]), {"name": name, "system_prompt": "Changed."}
    )
    assert response.status_code == 422
    assert error in error_on(response)
    project.refresh_from_db()
    assert (project.name, project.system_prompt) == ("Work", "Be formal.")


def test_a_project_keeps_its_own_name_when_only_its_case_changes(user: User) -> None:
    project = services.project_create(owner=user, name="work")
    services.project_update(project=project, name="Work", system_prompt="")
    project.refresh_from_db()
    assert project.name == "Work"


def test_another_users_project_is_not_found_and_not_changed(client: Client, user: User, other: User) -> None:
    project = services.project_create(owner=user, name="Work")
    client.force_login(other)
    assert client.get(reverse("chat:project", args=[project.pk])).status_code == 404
    assert client.post(reverse("chat:project", args=[project.pk]), {"name": "Mine"}).status_code == 404
    assert client.post(reverse("chat:project_delete", args=[project.pk]), {"conversations": "keep"}).status_code == 404
    assert client.get(reverse("chat:index"), {"project": project.pk}).status_code == 404
    project.refresh_from_db()
    assert project.name == "Work"
    assert "Work" not in client.get(reverse("chat:projects")).content.decode()


# ---- deleting -----------------------------------------------------------------------------------


def test_deleting_a_project_and_keeping_its_conversations_leaves_them_outside_any_project(
    logged_in_client: Client, user: User
) -> None:
    project = services.project_create(owner=user, name="Work")
    kept = [chat(user, "One", project=project), chat(user, "Two", project=project)]
    response = logged_in_client.post(reverse("chat:project_delete", args=[project.pk]), {"conversations": "keep"})
    assert response.status_code == 302
    assert not Project.objects.exists()
    for conversation in kept:
        conversation.refresh_from_db()
        assert conversation.project_id is None
        assert conversation.messages.count() == 2
    flash = logged_in_client.get(response["Location"]).content.decode()
    assert "Project “Work” deleted; its 2 conversations are kept outside any project." in flash


def test_deleting_a_project_can_move_its_conversations_into_another(logged_in_client: Client, user: User) -> None:
    project = services.project_create(owner=user, name="Work")
    target = services.project_create(owner=user, name="Archive 2026")
    already = chat(user, "Already there", project=target)
    moved = chat(user, "Moved", project=project)
    response = logged_in_client.post(
        reverse("chat:project_delete", args=[project.pk]), {"conversations": "move", "into": target.pk}
    )
    assert response.status_code == 302
    assert list(Project.objects.values_list("name", flat=True)) == ["Archive 2026"]
    assert set(target.conversations.all()) == {already, moved}


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "Say what becomes of its conversations."),
        ({"conversations": "burn"}, "Say what becomes of its conversations."),
        ({"conversations": "move"}, "Choose the project to move its conversations into."),
        ({"conversations": "move", "into": "itself"}, "Choose another of your projects"),
    ],
)
def test_a_deletion_without_a_clear_choice_is_refused_and_changes_nothing(
    logged_in_client: Client, user: User, form: dict[str, Any], error: str
) -> None:
    project = services.project_create(owner=user, name="Work")
    conversation = chat(user, "One", project=project)
    if form.get("into") == "itself":
        form = {**form, "into": project.pk}
    response = logged_in_client.post(reverse("chat:project_delete", args=[project.pk]), form)
    assert response.status_code == 422
    assert error in error_on(response)
    conversation.refresh_from_db()
    assert conversation.project == project


def test_deleting_with_a_move_into_another_users_project_is_not_found_and_changes_nothing(
    logged_in_client: Client, user: User, other: User
) -> None:
    project = services.project_create(owner=user, name="Work")
    theirs = services.project_create(owner=other, name="Theirs")
    conversation = chat(user, "One", project=project)
    response = logged_in_client.post(
        reverse("chat:project_delete", args=[project.pk]), {"conversations": "move", "into": theirs.pk}
    )
    assert response.status_code == 404
    assert Project.objects.filter(pk=project.pk).exists()
    conversation.refresh_from_db()
    assert conversation.project == project
    assert not theirs.conversations.exists()


def test_a_deletion_that_fails_midway_leaves_the_project_and_its_conversations(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = services.project_create(owner=user, name="Work")
    target = services.project_create(owner=user, name="Other")
    conversation = chat(user, "One", project=project)

    def failing_delete(self: Any) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr("django.db.models.query.QuerySet.delete", failing_delete)
    with pytest.raises(RuntimeError):
        services.project_delete(project=project, move_to=target)
    conversation.refresh_from_db()
    assert conversation.project == project  # the move was rolled back with the deletion
    assert Project.objects.filter(pk=project.pk).exists()


# ---- moving and pinning -------------------------------------------------------------------------


def test_the_conversation_menu_moves_it_into_a_project_and_out_again(logged_in_client: Client, user: User) -> None:
    project = services.project_create(owner=user, name="Work")
    conversation = chat(user, "Budget", days_ago=3)
    last_active = conversation.updated_at
    page = logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert f'<option value="{project.pk}">Work</option>' in page

    move = reverse("chat:move", args=[conversation.pk])
    response = logged_in_client.post(move, {"project": project.pk})
    assert response.status_code == 302
    assert response["Location"] == reverse("chat:conversation", args=[conversation.pk])
    conversation.refresh_from_db()
    assert conversation.project == project
    assert conversation.updated_at == last_active  # moving is not activity: it keeps its place by date

    assert logged_in_client.post(move, {"project": ""}).status_code == 302
    conversation.refresh_from_db()
    assert conversation.project is None


def test_moving_into_another_users_project_is_not_found_and_changes_nothing(
    logged_in_client: Client, user: User, other: User
) -> None:
    theirs = services.project_create(owner=other, name="Theirs")
    conversation = chat(user, "Mine")
    for project_id in (theirs.pk, 999_999, "abc"):
        response = logged_in_client.post(reverse("chat:move", args=[conversation.pk]), {"project": project_id})
        assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.project is None
    assert not theirs.conversations.exists()


def test_moving_or_pinning_another_users_conversation_is_not_found_and_changes_nothing(
    logged_in_client: Client, user: User, other: User
) -> None:
    mine = services.project_create(owner=user, name="Mine")
    theirs = chat(other, "Theirs")
    assert logged_in_client.post(reverse("chat:move", args=[theirs.pk]), {"project": mine.pk}).status_code == 404
    assert logged_in_client.post(reverse("chat:pin", args=[theirs.pk]), {"pinned": "1"}).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.project, theirs.pinned_at) == (None, None)


def test_the_service_refuses_a_project_of_another_owner(user: User, other: User) -> None:
    conversation = chat(user, "Mine")
    with pytest.raises(services.ChatError):
        services.conversation_move(conversation=conversation, project=services.project_create(owner=other, name="X"))
    conversation.refresh_from_db()
    assert conversation.project is None


def test_a_drop_in_the_sidebar_moves_it_and_redraws_the_sidebar(logged_in_client: Client, user: User) -> None:
    project = services.project_create(owner=user, name="Work")
    conversation = chat(user, "Budget")
    response = logged_in_client.post(
        reverse("chat:move", args=[conversation.pk]), {"project": project.pk, "current": conversation.pk}, **HX
    )
    assert response.status_code == 200
    html = response.content.decode()
    group = html[html.index(f'data-project-id="{project.pk}"') : html.index("</details>")]
    assert "Budget" in group
    assert 'aria-current="page"' in group


def test_pinning_keeps_its_place_and_time_and_unpinning_ends_it(logged_in_client: Client, user: User) -> None:
    conversation = chat(user, "Plans", days_ago=10)
    last_active = conversation.updated_at
    pin = reverse("chat:pin", args=[conversation.pk])
    page = logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert "Pin to the top" in page

    assert logged_in_client.post(pin, {"pinned": "1"}).status_code == 302
    conversation.refresh_from_db()
    pinned_at = conversation.pinned_at
    assert pinned_at is not None
    assert conversation.updated_at == last_active
    assert "Unpin" in logged_in_client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()

    logged_in_client.post(pin, {"pinned": "1"})  # a second pin (another tab) keeps the first one's place
    conversation.refresh_from_db()
    assert conversation.pinned_at == pinned_at

    logged_in_client.post(pin, {"pinned": "0"})
    conversation.refresh_from_db()
    assert conversation.pinned_at is None


# ---- a new chat in a project ----------------------------------------------------------------------


def test_what_a_new_conversation_inherits_comes_from_one_function(user: User) -> None:
    note = document_of(user, "handbook.txt")
    project = services.project_create(
        owner=user, name="Work", system_prompt="Cite the handbook.", model=LOCAL, document_ids=[note.pk]
    )
    assert services.conversation_inheritance(project=None) == services.Inheritance(fields={}, document_ids=())
    assert services.conversation_inheritance(project=project) == services.Inheritance(
        fields={"project": project, "system_prompt": "Cite the handbook.", "model": LOCAL},
        document_ids=(note.pk,),
    )


def test_a_new_chat_in_a_project_is_made_in_it_with_its_system_prompt(logged_in_client: Client, user: User) -> None:
    project = services.project_create(owner=user, name="Work", system_prompt="Cite the handbook.")
    page = logged_in_client.get(reverse("chat:index"), {"project": project.pk}).content.decode()
    assert f'<input type="hidden" name="project" value="{project.pk}">' in page
    assert "A new chat in" in page

    response = logged_in_client.post(reverse("chat:start"), {"content": "Holidays?", "project": project.pk})
    assert response.status_code == 302
    conversation = Conversation.objects.get(owner=user)
    assert conversation.project == project
    assert conversation.system_prompt == "Cite the handbook."
    answer = conversation.messages.get(role="assistant")
    assert selectors.context_for(answer=answer)[0] == {"role": "system", "content": "Cite the handbook."}


def test_a_new_chat_in_another_users_project_is_not_found_and_nothing_is_made(
    logged_in_client: Client, user: User, other: User
) -> None:
    theirs = services.project_create(owner=other, name="Theirs", system_prompt="Secret.")
    response = logged_in_client.post(reverse("chat:start"), {"content": "Hello", "project": theirs.pk})
    assert response.status_code == 404
    assert not Conversation.objects.exists()


# ---- the sidebar ----------------------------------------------------------------------------------


def labels(groups: list[selectors.SidebarGroup]) -> list[tuple[str, list[str]]]:
    return [(group.label, [c.title for c in group.conversations]) for group in groups]


def sidebar_of(user: User) -> list[selectors.SidebarGroup]:
    return selectors.sidebar_groups(user=user)


def test_the_sidebar_groups_pinned_then_projects_then_dates(user: User, other: User) -> None:
    work = services.project_create(owner=user, name="work")
    services.project_create(owner=user, name="Empty")
    alpha = services.project_create(owner=user, name="Alpha")
    chat(user, "Just now")
    chat(user, "A moment ago", days_ago=0.0001)
    chat(user, "Yesterday's", days_ago=1)
    chat(user, "Last week", days_ago=5)
    chat(user, "Long ago", days_ago=40)
    chat(user, "Report", project=work, days_ago=2)
    chat(user, "Plan", project=work, days_ago=30)
    chat(user, "Letters", project=alpha)
    favourite = chat(user, "Favourite", project=work, days_ago=50)
    first_pinned = chat(user, "Pinned first", days_ago=3)
    services.conversation_set_pinned(conversation=first_pinned, pinned=True)
    services.conversation_set_pinned(conversation=favourite, pinned=True)
    hidden = chat(user, "Archived", days_ago=0)
    services.conversation_set_archived(conversation=hidden, archived=True)
    chat(other, "Someone else's")

    assert labels(sidebar_of(user)) == [
        ("Pinned", ["Favourite", "Pinned first"]),  # the latest pinned first, whatever their project
        ("Alpha", ["Letters"]),
        ("Empty", []),
        ("work", ["Report", "Plan"]),
        ("Today", ["Just now", "A moment ago"]),
        ("Yesterday", ["Yesterday's"]),
        ("Previous 7 days", ["Last week"]),
        ("Older", ["Long ago"]),
    ]


def test_days_are_counted_in_the_servers_time_zone(user: User, settings: Settings) -> None:
    """Half past midnight in Kiritimati (UTC+14) is still the day before in UTC."""
    day = date(2026, 6, 10)
    conversation = chat(user, "Early")
    moment = datetime.combine(day, time(0, 30), tzinfo=ZoneInfo("Pacific/Kiritimati"))
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=moment)

    settings.TIME_ZONE = "Pacific/Kiritimati"
    groups = selectors.sidebar_groups(user=user, today=day)
    assert labels(groups) == [("Today", ["Early"])]
    settings.TIME_ZONE = "UTC"
    groups = selectors.sidebar_groups(user=user, today=day)
    assert labels(groups) == [("Yesterday", ["Early"])]


def test_each_group_lists_its_latest_up_to_its_limit_and_a_project_says_it_has_more(
    logged_in_client: Client, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selectors, "SIDEBAR_PINNED_LIMIT", 1)
    monkeypatch.setattr(selectors, "SIDEBAR_PROJECT_LIMIT", 2)
    monkeypatch.setattr(selectors, "SIDEBAR_DATED_LIMIT", 3)
    work = services.project_create(owner=user, name="Work")
    home = services.project_create(owner=user, name="Home")
    for days in (1, 2, 3):
        chat(user, f"Work {days}", project=work, days_ago=days)
        chat(user, f"Loose {days}", days_ago=days * 10)
    chat(user, "Loose 4", days_ago=40)
    for days in (1, 2):
        chat(user, f"Home {days}", project=home, days_ago=days)
    for days in (4, 5):
        services.conversation_set_pinned(conversation=chat(user, f"Pinned {days}", days_ago=days), pinned=True)
    groups = sidebar_of(user)
    assert labels(groups) == [
        ("Pinned", ["Pinned 5"]),
        ("Home", ["Home 1", "Home 2"]),
        ("Work", ["Work 1", "Work 2"]),
        ("Older", ["Loose 1", "Loose 2", "Loose 3"]),
    ]
    assert [group.more for group in groups if group.project] == [False, True]
    html = logged_in_client.get(reverse("chat:index")).content.decode()
    assert f'href="{reverse("chat:project", args=[work.pk])}">All in “Work”…' in html
    assert "All in “Home”" not in html
    assert "Work 3" in logged_in_client.get(reverse("chat:project", args=[work.pk])).content.decode()


def test_the_page_shows_the_groups_in_order(logged_in_client: Client, user: User) -> None:
    work = services.project_create(owner=user, name="Work")
    chat(user, "Report", project=work)
    chat(user, "Recent")
    services.conversation_set_pinned(conversation=chat(user, "Pinned one", days_ago=100), pinned=True)
    html = logged_in_client.get(reverse("chat:index")).content.decode()
    positions = [html.index(text) for text in ('aria-label="Pinned"', "Pinned one", ">Work<", "Report", ">Today<")]
    assert positions == sorted(positions)
    assert "Recent" in html[html.index(">Today<") :]


def test_a_search_and_the_archive_list_flat_as_before(logged_in_client: Client, user: User) -> None:
    work = services.project_create(owner=user, name="Work")
    budget = chat(user, "Budget", project=work)
    found = logged_in_client.get(reverse("chat:search"), {"q": "Budget"}, **HX).content.decode()
    assert "About <mark>Budget</mark>" in found  # the message, its word highlighted
    assert "sidebar-group" not in found
    Conversation.objects.filter(pk=budget.pk).update(archived=True)
    archive = logged_in_client.get(reverse("chat:list"), {"archived": "1"}, **HX).content.decode()
    assert "Budget" in archive
    assert "sidebar-group" not in archive


def test_the_sidebar_takes_the_same_number_of_queries_whatever_it_holds(
    logged_in_client: Client, user: User, make_user: Callable[..., User]
) -> None:
    """No query per project or per conversation: a small sidebar and a full one cost the same."""

    def queries_for(client: Client) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as page:
            assert client.get(reverse("chat:index")).status_code == 200
        with CaptureQueriesContext(connection) as partial:
            assert client.get(reverse("chat:list"), **HX).status_code == 200
        return len(page), len(partial)

    services.project_create(owner=user, name="Only")
    chat(user, "Only one")
    small = queries_for(logged_in_client)

    busy = make_user("busy@example.com")
    for number in range(6):
        project = services.project_create(owner=busy, name=f"Project {number}")
        for days in (0, 3, 20):
            chat(busy, f"In {number} from {days}", project=project, days_ago=days)
    for days in (0, 1, 4, 9, 60):
        services.conversation_set_pinned(conversation=chat(busy, f"Loose {days}", days_ago=days), pinned=days == 9)
    client = Client()
    client.force_login(busy)
    large = queries_for(client)
    assert len(sidebar_of(busy)) == 1 + 6 + 4  # pinned, six projects, and four dates: the full page was drawn
    assert small == large, (small, large)


# ---- export and import ----------------------------------------------------------------------------


def test_the_json_export_carries_the_project_name_and_the_pin_and_an_import_restores_them(
    logged_in_client: Client, user: User, client: Client, other: User
) -> None:
    project = services.project_create(owner=user, name="Work")
    conversation = chat(user, "Budget", project=project)
    services.conversation_set_pinned(conversation=conversation, pinned=True)
    exported = json.loads(logged_in_client.get(reverse("chat:export", args=[conversation.pk, "json"])).content)
    assert exported["project"] == "Work"
    assert exported["pinned_at"] == conversation.pinned_at.isoformat()  # type: ignore[union-attr]

    # into the same account: the project of that name is used, not made twice
    file = SimpleUploadedFile("chat.json", json.dumps(exported).encode(), "application/json")
    assert logged_in_client.post(reverse("chat:import"), {"file": file}).status_code == 200
    copy = Conversation.objects.filter(owner=user).exclude(pk=conversation.pk).get()
    assert Project.objects.filter(owner=user).count() == 1
    again = json.loads(logged_in_client.get(reverse("chat:export", args=[copy.pk, "json"])).content)
    assert (again["project"], again["pinned_at"]) == (exported["project"], exported["pinned_at"])

    # into another account: a project of the name is made for it
    client.force_login(other)
    file = SimpleUploadedFile("chat.json", json.dumps(exported).encode(), "application/json")
    assert client.post(reverse("chat:import"), {"file": file}).status_code == 200
    theirs = Conversation.objects.get(owner=other)
    assert theirs.project is not None
    assert (theirs.project.owner, theirs.project.name) == (other, "Work")
    assert theirs.pinned_at == conversation.pinned_at
    assert project.conversations.count() == 2  # the first account's project got nothing of theirs


@pytest.mark.parametrize(
    ("project", "pinned_at", "expected_project", "pinned"),
    [
        (None, None, None, False),
        (42, "not a time", None, False),
        ("   ", 1.5, None, True),
        ("  a\n  name  " + "n" * 300, "2999-01-01T00:00:00+00:00", "a name " + "n" * 93, True),
    ],
)
def test_an_imported_project_and_pin_are_taken_as_far_as_they_make_sense(
    user: User, project: Any, pinned_at: Any, expected_project: str | None, pinned: bool
) -> None:
    from webapp.chat import imports

    document = {
        "format": "parley.conversation",
        "version": 1,
        "title": "Imported",
        "project": project,
        "pinned_at": pinned_at,
        "messages": [{"id": 1, "parent_id": None, "role": "user", "content": "Hi"}],
    }
    result = services.conversations_import(owner=user, plan=imports.plan_from(document))
    [conversation] = result.conversations
    conversation.refresh_from_db()
    assert (conversation.project.name if conversation.project else None) == expected_project
    assert (conversation.pinned_at is not None) == pinned
    if conversation.pinned_at:
        assert conversation.pinned_at <= timezone.now()  # never pinned in the future


def test_the_zip_of_everything_names_each_conversations_project_without_a_query_for_each(
    logged_in_client: Client, user: User
) -> None:
    from tests.webapp.exports.test_views import download

    projects = [services.project_create(owner=user, name=f"Project {number}") for number in range(3)]
    for project in projects:
        chat(user, f"In {project}", project=project)
    chat(user, "In none")
    with CaptureQueriesContext(connection) as queries:
        archive = download(logged_in_client)
    documents = [json.loads(archive.read(name)) for name in archive.namelist() if name.endswith(".json")]
    assert sorted((d["title"], d["project"]) for d in documents) == [
        ("In Project 0", "Project 0"),
        ("In Project 1", "Project 1"),
        ("In Project 2", "Project 2"),
        ("In none", None),
    ]
    assert not [q for q in queries.captured_queries if q["sql"].startswith('SELECT "chat_project"')]


# ---- a project's model and documents --------------------------------------------------------------


def offer(settings: Settings, *models: LocalModel | UpstreamModel) -> None:
    registry = ModelRegistry(models=(LocalModel(name=LOCAL), *models), default=LOCAL, source="PARLEY_MODELS")
    settings.PARLEY_INFERENCE = dataclasses.replace(settings.PARLEY_INFERENCE, models=registry)


def project_form(**values: Any) -> dict[str, Any]:
    return {"name": "Work", "system_prompt": "", "model": "", **values}


def test_a_project_holds_a_model_and_documents_that_new_chats_in_it_start_with(
    logged_in_client: Client, user: User, settings: Settings
) -> None:
    offer(settings, TEAM)
    handbook, rota = document_of(user, "handbook.txt"), document_of(user, "rota.txt")
    document_of(user, "recipes.txt")
    form = logged_in_client.get(reverse("chat:projects")).content.decode()
    assert '<option value="team-llama">team-llama</option>' in form
    assert "recipes.txt" in form  # the user's documents are offered

    response = logged_in_client.post(
        reverse("chat:projects"), project_form(model="team-llama", documents=[handbook.pk, rota.pk])
    )
    project = Project.objects.get(owner=user)
    assert response["Location"] == reverse("chat:project", args=[project.pk])
    assert project.model == "team-llama"
    assert sorted(project.documents.values_list("name", flat=True)) == ["handbook.txt", "rota.txt"]
    page = logged_in_client.get(reverse("chat:project", args=[project.pk])).content.decode()
    assert '<option value="team-llama" selected>team-llama</option>' in page
    assert re.search(rf'value="{handbook.pk}"[^>]*checked', page)

    new_chat = logged_in_client.get(reverse("chat:index"), {"project": project.pk}).content.decode()
    assert "Model: <strong>team-llama</strong>" in new_chat
    assert "handbook.txt</a>, <a" in new_chat
    assert "rota.txt</a>" in new_chat

    logged_in_client.post(reverse("chat:start"), {"content": "Who is on call?", "project": project.pk})
    conversation = Conversation.objects.get(owner=user)
    assert conversation.model == "team-llama"
    assert attached_to(conversation) == ["handbook.txt", "rota.txt"]
    assert conversation.messages.get(role="assistant").settings["model"] == "team-llama"

    # a change to the project is for the chats made after it
    logged_in_client.post(reverse("chat:project", args=[project.pk]), project_form(documents=[rota.pk]))
    project.refresh_from_db()
    assert (project.model, list(project.documents.values_list("name", flat=True))) == ("", ["rota.txt"])
    conversation.refresh_from_db()
    assert conversation.model == "team-llama"
    assert attached_to(conversation) == ["handbook.txt", "rota.txt"]
    logged_in_client.post(reverse("chat:start"), {"content": "And now?", "project": project.pk})
    later = Conversation.objects.filter(owner=user).exclude(pk=conversation.pk).get()
    assert (later.model, attached_to(later)) == ("", ["rota.txt"])


def test_a_default_model_removed_from_the_registry_gives_way_to_the_default_and_the_page_says_so(
    logged_in_client: Client, user: User, settings: Settings
) -> None:
    offer(settings, TEAM)
    project = services.project_create(owner=user, name="Work", model="team-llama")
    offer(settings)  # the operator takes team-llama away
    notice = (
        "The project&#x27;s model “team-llama” is no longer offered here, "
        f"so this chat uses the default model ({LOCAL})."
    )
    assert notice in logged_in_client.get(reverse("chat:index"), {"project": project.pk}).content.decode()
    page = logged_in_client.get(reverse("chat:project", args=[project.pk])).content.decode()
    assert "“team-llama”, the project's model, is no longer offered here" in page

    response = logged_in_client.post(reverse("chat:start"), {"content": "Still working?", "project": project.pk})
    assert response.status_code == 302
    conversation = Conversation.objects.get(owner=user)
    assert (conversation.model, conversation.project) == ("", project)
    assert conversation.messages.get(role="assistant").settings["model"] == LOCAL
    assert notice in logged_in_client.get(response["Location"]).content.decode()  # told once, on the new chat


def test_a_model_the_registry_does_not_offer_is_refused_for_a_project_and_nothing_is_made(
    logged_in_client: Client, settings: Settings
) -> None:
    offer(settings)
    response = logged_in_client.post(reverse("chat:projects"), project_form(model="gpt-9"))
    assert response.status_code == 422
    assert "gpt-9 is not one of the available choices" in error_on(response)
    assert not Project.objects.exists()


def test_a_deleted_default_document_leaves_the_project_and_new_chats_start_without_it(
    logged_in_client: Client, user: User
) -> None:
    handbook, rota = document_of(user, "handbook.txt"), document_of(user, "rota.txt")
    project = services.project_create(owner=user, name="Work", document_ids=[handbook.pk, rota.pk])
    logged_in_client.post(reverse("documents:delete", args=[handbook.pk]))
    assert list(project.documents.values_list("name", flat=True)) == ["rota.txt"]
    response = logged_in_client.post(reverse("chat:start"), {"content": "Who is on call?", "project": project.pk})
    assert response.status_code == 302
    assert attached_to(Conversation.objects.get(owner=user)) == ["rota.txt"]


def test_another_users_document_is_refused_as_a_default_and_never_handed_down(
    logged_in_client: Client, user: User, other: User
) -> None:
    mine, theirs = document_of(user, "mine.txt"), document_of(other, "theirs.txt")
    project = services.project_create(owner=user, name="Work", system_prompt="Be brief.", document_ids=[mine.pk])
    assert "theirs.txt" not in logged_in_client.get(reverse("chat:project", args=[project.pk])).content.decode()
    response = logged_in_client.post(
        reverse("chat:project", args=[project.pk]),
        project_form(system_prompt="Changed.", documents=[mine.pk, theirs.pk]),
    )
    assert response.status_code == 422
    assert error_on(response) == "Choose among your own documents."
    project.refresh_from_db()
    assert (project.name, project.system_prompt) == ("Work", "Be brief.")
    assert list(project.documents.values_list("name", flat=True)) == ["mine.txt"]
    with pytest.raises(services.ChatError, match=r"Choose among your own documents\."):
        services.project_update(project=project, name="Work", system_prompt="", document_ids=[theirs.pk])
    assert list(project.documents.values_list("name", flat=True)) == ["mine.txt"]

    # one that got in by other means (the admin, an older release) is left out, and the chat starts
    project.documents.add(theirs)
    logged_in_client.post(reverse("chat:start"), {"content": "Hello?", "project": project.pk})
    assert attached_to(Conversation.objects.get(owner=user)) == ["mine.txt"]
