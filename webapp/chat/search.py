"""Search of one user's messages: the query language and the queries that answer it.

A query is words, read by Postgres' ``websearch_to_tsquery`` (``"a phrase"``, ``-left
out``, ``or``), and filters, ``name:value`` (``in:"a project"`` when the value has
spaces). Each filter is one entry of ``FILTERS``: how its value is read, and how it narrows
the messages. ``parse_query`` refuses, with a ``SearchRefused`` that says why, what would
otherwise fail or find everything: no word to look for (only filters, operators or
punctuation), only words left out, an unknown filter, a filter twice, a bad date.

``search_messages`` finds the matching messages of the user's conversations (archived
ones too, marked), newest first or (``order="relevance"``) best match first by
``ts_rank`` with the newest first among equals, each with its conversation's title and a
snippet of the matched text. Newest first is the default: it stops at a page however
many messages match, where ranking must score every match before it can take the first.
The words are matched against ``Message.search_document``, the stored ``simple``
tsvector of the text, and the page is taken with ``LIMIT`` one more than it shows:
nothing counts every match. Postgres picks the plan by how common the words are: a rare
word through the GIN index, a common one by walking the messages newest first until the
page is full (``python -m bench.search`` has the figures).

A snippet is safe HTML: ``ts_headline`` marks the matched words with two private-use
characters (taken out of the text first), the whole snippet is escaped, and only then
are the marks turned into ``<mark>``.
"""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.db.models import F, Func, QuerySet, Value
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from webapp.accounts.models import User
from webapp.chat.models import Conversation, Message

SEARCH_CONFIG = "simple"  # the configuration the GIN indexes are built with
NEWEST, RELEVANCE = "newest", "relevance"
ORDERS = {NEWEST: "Newest first", RELEVANCE: "Best match first"}
PAGE_SIZE = 20
TITLE_MATCHES = 5
MAX_QUERY_CHARS = 500

# ts_headline's marks around a matched word: characters no text of the user's keeps
MARK_START, MARK_END = "\ue000", "\ue001"
_MARKED = re.compile(f"{MARK_START}([^{MARK_START}{MARK_END}]*){MARK_END}")

# a filter with a quoted value, a quoted phrase, or anything up to a space
_TOKEN = re.compile(r'-?[A-Za-z]+:"[^"]*"?|-?"[^"]*"?|\S+')
_FILTER = re.compile(r"(-?)([A-Za-z]+):(.*)", re.DOTALL)
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")


class SearchRefused(Exception):
    """A query that cannot be run as written; the message says why, for the user."""


# ---- filters: one entry each ---------------------------------------------------------------


def _role(value: str) -> str:
    role = value.lower()
    if role not in Message.Role.values:
        raise SearchRefused(f"role: is user or assistant, not “{value}”.")
    return role


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise SearchRefused(f"“{value}” is not a date; write it as YYYY-MM-DD, like 2026-03-31.") from None


def _yes_or_no(value: str) -> bool:
    answer = value.lower()
    if answer not in ("yes", "no"):
        raise SearchRefused(f"pinned: is yes or no, not “{value}”.")
    return answer == "yes"


def _name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise SearchRefused('in: needs a project\'s name, in quotes when it has spaces: in:"Trip plans".')
    return name


def _start_of(day: datetime.date) -> datetime.datetime:
    """Midnight at the start of ``day``, in the site's time zone."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


Narrow = Callable[[QuerySet[Message], Any], QuerySet[Message]]


@dataclass(frozen=True)
class Filter:
    example: str
    parse: Callable[[str], Any]
    narrow: Narrow


FILTERS: dict[str, Filter] = {
    "role": Filter("role:user", _role, lambda messages, role: messages.filter(role=role)),
    # before: excludes its day, after: includes it (as mail searches read them)
    "before": Filter("before:2026-03-31", _date, lambda messages, day: messages.filter(created_at__lt=_start_of(day))),
    "after": Filter("after:2026-01-01", _date, lambda messages, day: messages.filter(created_at__gte=_start_of(day))),
    "pinned": Filter(
        "pinned:yes", _yes_or_no, lambda messages, pinned: messages.filter(conversation__pinned_at__isnull=not pinned)
    ),
    # a project of the user's, named whatever the case (names are unique per owner so)
    "in": Filter(
        'in:"project name"', _name, lambda messages, name: messages.filter(conversation__project__name__iexact=name)
    ),
}


def _filters_help() -> str:
    return ", ".join(f.example for f in FILTERS.values())


# ---- the query -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedQuery:
    words: str  # for websearch_to_tsquery
    filters: dict[str, Any]  # filter name to its parsed value

    @property
    def query(self) -> SearchQuery:
        return SearchQuery(self.words, config=SEARCH_CONFIG, search_type="websearch")


def parse_query(raw: str) -> ParsedQuery:
    """Words and filters of a query; ``SearchRefused`` when it cannot be run as written."""
    if len(raw) > MAX_QUERY_CHARS:
        raise SearchRefused(f"A search can be at most {MAX_QUERY_CHARS} characters long.")
    words: list[str] = []
    filters: dict[str, Any] = {}
    for token in _TOKEN.findall(raw):
        found = _FILTER.fullmatch(token)
        if found is None or token.startswith(('"', '-"')):
            words.append(token)
            continue
        negated, name, value = found.groups()
        name = name.lower()
        if name not in FILTERS:
            raise SearchRefused(
                f"There is no filter “{name}:”. The filters are {_filters_help()}; "
                f'to search for the text itself, put it in quotes: "{token.lstrip("-")}".'
            )
        if negated:
            raise SearchRefused(f"A filter cannot be negated with -; write {FILTERS[name].example} for what you want.")
        if name in filters:
            raise SearchRefused(f"{name}: is given twice; give it once.")
        value = value.strip('"')
        if not value:
            raise SearchRefused(f"{name}: needs a value, like {FILTERS[name].example}.")
        filters[name] = FILTERS[name].parse(value)
    if not any(_looks_for(word) for word in words):
        raise SearchRefused(
            "Add a word to search for. Filters and - narrow a search; on their own they would list everything."
        )
    if "before" in filters and "after" in filters and filters["after"] >= filters["before"]:
        raise SearchRefused("after: must be a day before before:; no message can be from both.")
    return ParsedQuery(words=" ".join(words), filters=filters)


def _looks_for(word: str) -> bool:
    """Whether the word asks for something to be there (not left out, not an operator)."""
    return not word.startswith("-") and word.lower() != "or" and _LETTER_OR_DIGIT.search(word) is not None


# ---- the results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageHit:
    message_id: int
    conversation_id: int
    conversation_title: str
    archived: bool
    role: str
    created_at: datetime.datetime
    snippet: SafeString


@dataclass(frozen=True)
class SearchResults:
    hits: list[MessageHit]
    conversations: list[Conversation]  # titles that match, on the first page of a query without filters
    page: int
    has_next: bool


def search_messages(*, user: User, query: ParsedQuery, page: int = 1, order: str = NEWEST) -> SearchResults:
    """A page of the user's chat messages that match, in ``order`` (API traffic is not
    searched: it is not in the sidebar either)."""
    if order not in ORDERS:
        raise SearchRefused("Results can be listed newest first or best match first.")
    page = max(page, 1)
    messages = Message.objects.filter(
        conversation__owner=user, conversation__origin=Conversation.Origin.CHAT, search_document=query.query
    )
    for name, value in query.filters.items():
        messages = FILTERS[name].narrow(messages, value)
    start = (page - 1) * PAGE_SIZE
    if order == RELEVANCE:
        messages = messages.annotate(rank=SearchRank(F("search_document"), query.query)).order_by(
            "-rank", "-created_at", "-pk"
        )
    else:
        messages = messages.order_by("-created_at", "-pk")
    rows = list(
        messages.values("pk", "conversation_id", "conversation__title", "conversation__archived", "role", "created_at")[
            start : start + PAGE_SIZE + 1
        ]
    )
    has_next = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    snippets = _snippets(message_ids=[row["pk"] for row in rows], query=query)
    hits = [
        MessageHit(
            message_id=row["pk"],
            conversation_id=row["conversation_id"],
            conversation_title=row["conversation__title"] or f"Conversation {row['conversation_id']}",
            archived=row["conversation__archived"],
            role=row["role"],
            created_at=row["created_at"],
            snippet=snippets.get(row["pk"], SafeString("")),
        )
        for row in rows
    ]
    titled: list[Conversation] = []
    if page == 1 and not query.filters:
        titled = list(
            Conversation.objects.filter(owner=user, origin=Conversation.Origin.CHAT)
            .annotate(document=SearchVector("title", config=SEARCH_CONFIG))
            .filter(document=query.query)
            .order_by("-updated_at")[:TITLE_MATCHES]
        )
    return SearchResults(hits=hits, conversations=titled, page=page, has_next=has_next)


def _snippets(*, message_ids: list[int], query: ParsedQuery) -> dict[int, SafeString]:
    """The snippet of each message, in a query of its own: ts_headline reads a message
    whole, so it runs on the page's messages only, never on every match."""
    if not message_ids:
        return {}
    unmarked = Func(F("content"), Value(MARK_START + MARK_END), Value(""), function="translate")
    headlines = Message.objects.filter(pk__in=message_ids).annotate(
        headline=SearchHeadline(
            unmarked,
            query.query,
            config=SEARCH_CONFIG,
            start_sel=MARK_START,
            stop_sel=MARK_END,
            max_words=24,
            min_words=8,
            max_fragments=2,
            fragment_delimiter=" … ",
        )
    )
    return {pk: marked(headline) for pk, headline in headlines.values_list("pk", "headline")}


def marked(headline: str) -> SafeString:
    """A headline as HTML: its text escaped, its marked words in ``<mark>``."""
    escaped = html.escape(headline, quote=True)
    highlighted = _MARKED.sub(r"<mark>\1</mark>", escaped)
    return mark_safe(highlighted.replace(MARK_START, "").replace(MARK_END, ""))  # escaped above
