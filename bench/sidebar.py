"""The chat sidebar of a user with many conversations in many projects, grouped (Pinned, each
project, then dates) three ways, in the same run, taking turns: a subquery per project in
the projects' query (Parley's), one window over all the user's conversations, and a query
per project; then the chat page with it against the page listing the flat 200 of the
archive, the shape of the sidebar before projects.

    python -m bench.sidebar [--conversations 10000] [--projects 50] [--repeats 11]

It always starts its own embedded Postgres and Redis under var/bench (never the servers
of DATABASE_URL / REDIS_URL: it fills and empties tables). The figures are the sidebar's
reading alone, medians of ``--repeats``, then the whole chat page through Django's test
client in this process (server time, without a network).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from bench.common import compared, embedded_django, median, parser, taking_turns, timed

if TYPE_CHECKING:
    from datetime import date

    from django.db.models import QuerySet

    from webapp.accounts.models import User
    from webapp.chat.models import Conversation
    from webapp.chat.selectors import SidebarGroup


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--conversations", type=int, default=10_000, help="conversations of the one user")
    arguments.add_argument("--projects", type=int, default=50, help="projects they are spread over")
    arguments.add_argument("--repeats", type=int, default=11, help="times each is measured")
    args = arguments.parse_args()

    with embedded_django(DEBUG="1"):
        run(args)


def fill(owner: User, conversations: int, projects: int) -> None:
    """``projects`` projects; half the conversations in them, a few pinned, the rest loose,
    last active over the past year."""
    from django.db import connection

    from webapp.chat.models import Project

    Project.objects.bulk_create([Project(owner=owner, name=f"Project {number}") for number in range(projects)])
    first = Project.objects.filter(owner=owner).order_by("pk").values_list("pk", flat=True).first() or 0
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO chat_conversation (owner_id, title, system_prompt, temperature, top_p, max_tokens, "
            "archived, project_id, pinned_at, created_at, updated_at) "
            "SELECT %s, 'Conversation ' || n, '', 0.7, 0.95, 512, n %% 20 = 0, "
            "CASE WHEN n %% 2 = 0 AND %s > 0 THEN %s + (n / 2) %% GREATEST(%s, 1) END, "
            "CASE WHEN n %% 500 = 1 THEN now() - n * interval '1 minute' END, "
            "now() - n * interval '53 minutes', now() - n * interval '53 minutes' "
            "FROM generate_series(1, %s) AS n",
            [owner.pk, projects, first, projects, conversations],
        )
        cursor.execute("ANALYZE chat_conversation")


def groups_one_query_each(*, user: User) -> list[SidebarGroup]:
    """The same groups as ``selectors.sidebar_groups``, with a query for each project."""
    from django.utils import timezone

    from webapp.chat import selectors
    from webapp.chat.models import Conversation
    from webapp.chat.selectors import SidebarEntry, SidebarGroup

    listed = Conversation.objects.filter(owner=user, archived=False)
    unpinned = listed.filter(pinned_at__isnull=True).order_by("-updated_at", "-pk")
    pinned = listed.filter(pinned_at__isnull=False).order_by("-pinned_at", "-pk").values_list("pk", "title")
    groups = [
        SidebarGroup(
            kind="pinned",
            label="Pinned",
            conversations=[SidebarEntry(pk=pk, title=title) for pk, title in pinned[: selectors.SIDEBAR_PINNED_LIMIT]],
        )
    ]
    for project in selectors.projects_for(user=user):
        in_project = unpinned.filter(project=project).values_list("pk", "title")
        entries = [SidebarEntry(pk=pk, title=title) for pk, title in in_project[: selectors.SIDEBAR_PROJECT_LIMIT + 1]]
        groups.append(
            SidebarGroup(
                kind="project",
                label=project.name,
                project=project,
                conversations=entries[: selectors.SIDEBAR_PROJECT_LIMIT],
                more=len(entries) > selectors.SIDEBAR_PROJECT_LIMIT,
            )
        )
    return groups + _by_day(unpinned, timezone.localdate())


def groups_windowed(*, user: User) -> list[SidebarGroup]:
    """The same groups from one window over all the user's conversations (each group's rows
    numbered, the first few of each kept), and the projects."""
    from django.db.models import Case, F, IntegerField, Value, When, Window
    from django.db.models.functions import Coalesce, RowNumber
    from django.utils import timezone

    from webapp.chat import selectors
    from webapp.chat.models import Conversation
    from webapp.chat.selectors import SidebarEntry, SidebarGroup

    group = Case(
        When(pinned_at__isnull=False, then=Value(-1)),
        default=Coalesce(F("project_id"), Value(0)),
        output_field=IntegerField(),
    )
    limit = Case(
        When(pinned_at__isnull=False, then=Value(selectors.SIDEBAR_PINNED_LIMIT)),
        When(project_id__isnull=True, then=Value(selectors.SIDEBAR_DATED_LIMIT)),
        default=Value(selectors.SIDEBAR_PROJECT_LIMIT + 1),
        output_field=IntegerField(),
    )
    order = [F("pinned_at").desc(nulls_last=True), F("updated_at").desc(), F("pk").desc()]
    ranked = (
        Conversation.objects.filter(owner=user, archived=False)
        .annotate(
            sidebar_group=group,
            sidebar_limit=limit,
            place=Window(RowNumber(), partition_by=[group], order_by=order),
        )
        .filter(place__lte=F("sidebar_limit"))
        .order_by("sidebar_group", "place")
        .values_list("sidebar_group", "pk", "title", "updated_at")
    )
    pinned = SidebarGroup(kind="pinned", label="Pinned")
    by_project = {
        project.pk: SidebarGroup(kind="project", label=project.name, project=project)
        for project in selectors.projects_for(user=user)
    }
    days = selectors.DayStarts.of(timezone.localdate())
    by_day = {label: SidebarGroup(kind="date", label=label) for label in selectors.DayStarts.LABELS}
    for sidebar_group, pk, title, updated_at in ranked:
        entry = SidebarEntry(pk=pk, title=title)
        if sidebar_group == -1:
            pinned.conversations.append(entry)
        elif sidebar_group == 0:
            by_day[days.label(updated_at)].conversations.append(entry)
        elif len(by_project[sidebar_group].conversations) < selectors.SIDEBAR_PROJECT_LIMIT:
            by_project[sidebar_group].conversations.append(entry)
        else:
            by_project[sidebar_group].more = True
    return [pinned, *by_project.values(), *(day for day in by_day.values() if day.conversations)]


def _by_day(unpinned: QuerySet[Conversation], today: date) -> list[SidebarGroup]:
    from webapp.chat import selectors
    from webapp.chat.selectors import SidebarEntry, SidebarGroup

    days = selectors.DayStarts.of(today)
    by_day: dict[str, SidebarGroup] = {label: SidebarGroup(kind="date", label=label) for label in days.LABELS}
    loose = unpinned.filter(project__isnull=True).values_list("pk", "title", "updated_at")
    for pk, title, updated_at in loose[: selectors.SIDEBAR_DATED_LIMIT]:
        by_day[days.label(updated_at)].conversations.append(SidebarEntry(pk=pk, title=title))
    return [day for day in by_day.values() if day.conversations]


def run(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from webapp.accounts.models import User
    from webapp.chat import selectors

    call_command("migrate", verbosity=0)
    User.objects.filter(email__endswith="@bench.invalid").delete()
    user = User.objects.create_user(email="sidebar@bench.invalid", password="x")
    fill(user, args.conversations, args.projects)

    def shown(groups: list[SidebarGroup]) -> list[tuple[str, list[int], bool]]:
        return [
            (group.label, [c.pk for c in group.conversations], group.more) for group in groups if group.conversations
        ]

    readings: dict[str, Callable[[], list[SidebarGroup]]] = {
        "subqueries": lambda: selectors.sidebar_groups(user=user),
        "windowed": lambda: groups_windowed(user=user),
        "per project": lambda: groups_one_query_each(user=user),
    }
    expected = shown(readings["subqueries"]())
    for name, read in readings.items():
        assert shown(read()) == expected, f"{name} lists other conversations"
    counts = {}
    for name, read in readings.items():
        with CaptureQueriesContext(connection) as queries:
            read()
        counts[name] = len(queries)
    listed = sum(len(conversations) for _, conversations, _ in expected)
    print(
        f"{args.conversations:,} conversations, {args.projects} projects: the sidebar lists {listed:,} in "
        f"{len(expected)} groups; queries: " + ", ".join(f"{name} {count}" for name, count in counts.items())
    )
    results = taking_turns(args.repeats, {name: functools.partial(timed, read) for name, read in readings.items()})
    ms = {name: median(seconds) * 1000 for name, seconds in results.items()}
    for name in ("windowed", "per project"):
        print(f"sidebar read: {compared(ms['subqueries'], ms[name], 'ms', name, lower_is_better=True)}")

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    page_url = reverse("chat:index")
    pages = taking_turns(
        args.repeats,
        {
            "grouped": lambda: timed(lambda: client.get(page_url)),
            # the archive's flat list of 200, the shape of the sidebar before projects
            "flat": lambda: timed(lambda: client.get(page_url, {"archived": "1"})),
        },
    )
    grouped_ms, flat_ms = median(pages["grouped"]) * 1000, median(pages["flat"]) * 1000
    print(
        f"the chat page: {compared(grouped_ms, flat_ms, 'ms', 'listing the flat 200 archived', lower_is_better=True)}"
    )


if __name__ == "__main__":
    main()
