"""Projects and pins in a real browser: a project made, a conversation moved in from its
menu and another by dragging, one pinned, and the sidebar's groups in their order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from tests.browser.conftest import Parley
from tests.browser.test_chat import log_in, orm, send
from webapp.accounts.models import User
from webapp.chat.models import Conversation, Message
from webapp.documents.models import Document

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def conversation_of(owner: User, title: str, days_ago: float) -> Conversation:
    def create() -> Conversation:
        conversation = Conversation.objects.create(owner=owner, title=title)
        Message.objects.create(conversation=conversation, role="user", content=f"About {title}")
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now() - timedelta(days=days_ago))
        return conversation

    return orm(create)


def test_a_project_a_move_in_a_pin_and_the_sidebar_groups_in_order(
    parley_web: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    from playwright.sync_api import expect

    user = orm(lambda: make_user("organised@example.com"))
    budget = conversation_of(user, "Budget", days_ago=0)
    letters = conversation_of(user, "Letters", days_ago=0.001)
    recipes = conversation_of(user, "Recipes", days_ago=3)
    conversation_of(user, "Old notes", days_ago=40)
    log_in(page, parley_web.url, user.email)

    # a project, made from the sidebar's Projects page
    page.goto(f"{parley_web.url}/chat/")
    page.locator(".chat-sidebar").get_by_role("link", name="Projects").click()
    page.get_by_label("Name").fill("  Household  ")
    page.get_by_label("System prompt for new chats in it").fill("Answer in one sentence.")
    page.get_by_role("button", name="Make the project").click()
    expect(page.locator(".flash")).to_contain_text("Project “Household” made.")

    # a conversation moved into it from its menu
    page.goto(f"{parley_web.url}/chat/{budget.pk}/")
    page.locator(".chat-menu summary").click()
    page.locator(".chat-menu").get_by_label("Project").select_option(label="Household")
    page.locator(".chat-menu").get_by_role("button", name="Move").click()
    expect(page.locator(".flash")).to_contain_text("“Budget” moved into “Household”.")

    # another pinned from its menu
    page.goto(f"{parley_web.url}/chat/{recipes.pk}/")
    page.locator(".chat-menu summary").click()
    page.get_by_role("button", name="Pin to the top").click()

    sidebar = page.locator("#conversation-list")
    groups = sidebar.locator(".sidebar-group .group-label")
    expect(groups).to_have_text(["Pinned", "Household", "Today", "Older"])
    expect(sidebar.locator(".pinned-group a")).to_have_text(["Recipes"])
    household = sidebar.locator(".project-group", has_text="Household")
    expect(household.locator("a[draggable=true]")).to_have_text(["Budget"])
    expect(sidebar.locator(".date-group", has_text="Today").locator("a")).to_have_text(["Letters"])
    expect(sidebar.locator(".date-group", has_text="Older").locator("a")).to_have_text(["Old notes"])

    # a third dragged onto the project: the sidebar is redrawn with it there
    sidebar.get_by_role("link", name="Letters").drag_to(household.locator("summary"))
    expect(household.locator("a[draggable=true]")).to_have_text(["Budget", "Letters"])
    expect(groups).to_have_text(["Pinned", "Household", "Older"])
    assert orm(lambda: Conversation.objects.get(pk=letters.pk).project_id) is not None

    # a project folded stays folded on the next page
    household.locator("summary .group-label").click()
    expect(household.locator("a[draggable=true]").first).to_be_hidden()
    page.reload()
    expect(sidebar.locator(".project-group", has_text="Household").locator("a[draggable=true]").first).to_be_hidden()
    sidebar.locator(".project-group summary .group-label").click()

    # a new chat in the project is made in it, with its system prompt
    sidebar.get_by_role("link", name="New chat in “Household”").click()
    expect(page.locator(".new-in-project")).to_contain_text("A new chat in Household.")
    send(page, "Which bin for glass?")
    page.wait_for_url(f"{parley_web.url}/chat/*/")
    household = page.locator("#conversation-list .project-group", has_text="Household")
    expect(household.locator("a[draggable=true]").first).to_have_text("Which bin for glass?")
    made = orm(lambda: Conversation.objects.get(owner=user, title="Which bin for glass?"))
    assert made.system_prompt == "Answer in one sentence."


def test_a_project_s_model_and_documents_are_chosen_on_its_page_and_a_new_chat_starts_with_them(
    parley_web: Parley, page: Page, make_user: Callable[..., User]
) -> None:
    from playwright.sync_api import expect

    user = orm(lambda: make_user("defaults@example.com"))
    for name in ("handbook.txt", "rota.txt"):
        orm(lambda name=name: Document.objects.create(  # type: ignore[misc]
            owner=user, name=name, kind="text", size=1, sha256=name, original=b"x", status="ready"
        ))  # fmt: skip
    model = orm(lambda: django_settings.PARLEY_INFERENCE.models.default)
    log_in(page, parley_web.url, user.email)

    page.goto(f"{parley_web.url}/chat/projects/")
    page.get_by_label("Name").fill("Staff")
    page.get_by_label("Model for new chats in it").select_option(model)
    page.get_by_label("handbook.txt").check()
    page.get_by_role("button", name="Make the project").click()
    expect(page.locator(".flash")).to_contain_text("Project “Staff” made.")
    expect(page.get_by_label("handbook.txt")).to_be_checked()
    expect(page.get_by_label("rota.txt")).not_to_be_checked()

    page.get_by_role("link", name="New chat in it").click()
    defaults = page.locator(".project-defaults")
    expect(defaults).to_contain_text(f"Model: {model}")
    expect(defaults).to_contain_text("Asks about: handbook.txt")
    send(page, "Who opens on Monday?")
    page.wait_for_url(f"{parley_web.url}/chat/*/")
    expect(page.locator(".chat-documents summary")).to_have_text("Documents (1)")
    page.locator(".chat-settings summary").click()
    expect(page.locator(".chat-settings").get_by_label("Model")).to_have_value(model)
