"""Message search for one user with a long history: the first page of results (hits and
their snippets, as the sidebar shows them), for a set of typical queries.

    python -m bench.search [--conversations 10000] [--messages-each 50] [--repeats 3] [--rounds 20]

The history is made-up text with words of Zipf-like frequencies (the commonest word in
nine messages of ten, the rare ones in a few dozen), written with COPY; another user's
conversations are there too, and never found. It always starts its own embedded Postgres
and Redis under var/bench (never the servers of DATABASE_URL / REDIS_URL). The figures are
the server's time, in this process, without a network.

Side by side: the stored document (``Message.search_document``) with its GIN index and
the index newest first, as Parley searches; the same page through a GIN index on the
expression (as before the stored document); and the same query with neither index. Then
the whole page newest first (the default) against best match first (``ts_rank``).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import io
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bench.common import compared, embedded_django, median, parser, percentile, taking_turns, timed

if TYPE_CHECKING:
    from webapp.accounts.models import User
    from webapp.chat.search import ParsedQuery

PAGE = 20

VOCABULARY = 20_000
SYLLABLES = ["ka", "lo", "mi", "ren", "tu", "sa", "vel", "dor", "ni", "pha", "qu", "bre", "zon", "ti", "mar", "el"]


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--conversations", type=int, default=10_000, help="the searching user's conversations")
    arguments.add_argument("--messages-each", type=int, default=50, help="messages in each conversation")
    arguments.add_argument("--repeats", type=int, default=3, help="runs of each query in each way, side by side")
    arguments.add_argument("--rounds", type=int, default=20, help="rounds of every query, for the median and p95")
    arguments.add_argument("--cap", type=float, default=3.0, help="seconds after which a compared run is stopped")
    args = arguments.parse_args()
    with embedded_django(DEBUG="0", SECRET_KEY="bench-" + "x" * 50, PARLEY_HTTPS="0"):
        run(args)


def vocabulary() -> list[str]:
    """Distinct made-up words, the first the commonest."""
    rng = random.Random(7)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def fill(owner: User, conversations: int, messages_each: int, words: list[str], seed: int) -> None:
    """``conversations`` of ``owner``, each a chain of questions and answers, with COPY."""
    import numpy as np
    from django.db import connection, transaction

    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    total = conversations * messages_each
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('chat_conversation', 'id'))")
        first_conversation = cursor.fetchone()[0]
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('chat_conversation', 'id'), %s)", [first_conversation + conversations]
        )
        cursor.execute("SELECT nextval(pg_get_serial_sequence('chat_message', 'id'))")
        first_message = cursor.fetchone()[0]
        cursor.execute("SELECT setval(pg_get_serial_sequence('chat_message', 'id'), %s)", [first_message + total])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    span = datetime.timedelta(days=700)
    lengths = np.where(np.arange(total) % 2 == 0, rng.integers(5, 30, total), rng.integers(20, 90, total))
    picks = rng.choice(len(words), size=int(lengths.sum()), p=weights)
    conversation_rows = io.StringIO()
    message_rows = io.StringIO()
    offset = 0
    for c in range(conversations):
        conversation_id = first_conversation + c
        began = start + span * c / conversations
        for m in range(messages_each):
            index = c * messages_each + m
            length = int(lengths[index])
            text = " ".join(words[w] for w in picks[offset : offset + length])
            offset += length
            message_id = first_message + index
            parent = "\\N" if m == 0 else str(message_id - 1)
            role = "user" if m % 2 == 0 else "assistant"
            at = (began + datetime.timedelta(minutes=m)).isoformat()
            message_rows.write(
                f"{message_id}\t{conversation_id}\t{parent}\t{role}\t{text}\tcomplete\t0\t\t{{}}\t0\t\t0\t{at}\t{at}\n"
            )
        last = first_message + c * messages_each + messages_each - 1
        at = (began + datetime.timedelta(minutes=messages_each)).isoformat()
        title = " ".join(words[w] for w in picks[c * 3 : c * 3 + 3])
        conversation_rows.write(
            f"{conversation_id}\t{owner.pk}\t{title}\tuser\t\t0.7\t0.95\t512\t{last}\tf\t{began.isoformat()}\t{at}\n"
        )
    # one transaction: a conversation's current message is written after it (the key is deferred)
    with transaction.atomic(), connection.cursor() as wrapper:
        cursor = wrapper.cursor
        with cursor.copy(
            "COPY chat_conversation (id, owner_id, title, title_source, system_prompt, temperature, top_p, "
            "max_tokens, current_leaf_id, archived, created_at, updated_at) FROM STDIN"
        ) as copy:
            copy.write(conversation_rows.getvalue())
        with cursor.copy(
            "COPY chat_message (id, conversation_id, parent_id, role, content, status, seq, model_name, settings, "
            "trimmed_messages, error, stop_requested, created_at, updated_at) FROM STDIN"
        ) as copy:
            copy.write(message_rows.getvalue())


def page_ids(user: User, query: ParsedQuery, *, stored: bool) -> list[int]:
    """The first page's messages alone (no snippets), matched against the stored document
    or, as before it, against the expression that a GIN index was built on."""
    from django.contrib.postgres.search import SearchVector

    from webapp.chat.models import Message

    messages = Message.objects.filter(conversation__owner=user)
    if stored:
        messages = messages.filter(search_document=query.query)
    else:
        messages = messages.annotate(document=SearchVector("content", config="simple")).filter(document=query.query)
    return list(messages.order_by("-created_at", "-pk").values_list("pk", flat=True)[: PAGE + 1])


def run(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.db import OperationalError, connection, transaction

    from webapp.accounts.models import User
    from webapp.chat import search
    from webapp.chat.models import Conversation

    call_command("migrate", verbosity=0)
    Conversation.objects.all().delete()
    User.objects.filter(email__endswith="@bench.invalid").delete()
    owner = User.objects.create_user(email="owner@bench.invalid", password="x")
    other = User.objects.create_user(email="other@bench.invalid", password="x")
    words = vocabulary()
    total = args.conversations * args.messages_each
    with connection.cursor() as cursor:
        # the search indexes are built once after the rows are in, much sooner than row by row
        cursor.execute("DROP INDEX IF EXISTS bench_expression")
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'chat_message' AND indexname = ANY(%s)",
            [["chat_msg_search_document", "chat_msg_newest"]],
        )
        definitions = cursor.fetchall()
        for index, _ in definitions:
            cursor.execute(f"DROP INDEX {index}")

    def filled() -> None:
        fill(owner, args.conversations, args.messages_each, words, seed=1)
        fill(other, max(1, args.conversations // 10), 10, words, seed=2)
        with connection.cursor() as cursor:
            for _, definition in definitions:
                cursor.execute(definition)

    filling = timed(filled)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE chat_message")
        cursor.execute("VACUUM ANALYZE chat_conversation")
    print(
        f"{args.conversations:,} conversations, {total:,} messages of one user "
        f"(and a tenth as many of another) written and indexed in {filling:.1f} s"
    )

    # The commonest word, one in the hundreds, one in the thousands, one in the rare tail, none.
    queries = {
        "commonest word": words[0],
        "common word": words[30],
        "rarer word": words[2_000],
        "rare word": words[15_000],
        "two words": f"{words[30]} {words[300]}",
        "phrase": f'"{words[0]} {words[1]}"',
        "word, role:user": f"{words[300]} role:user",
        "word, after:": f"{words[300]} after:2026-06-01",
        "no such word": "zzzyzx",
    }
    parsed = {name: search.parse_query(text) for name, text in queries.items()}

    def page(name: str) -> float:
        return timed(lambda: search.search_messages(user=owner, query=parsed[name]))

    def capped(
        action: Callable[[], object], *, settings: Sequence[str] = (), drop: Sequence[str] = ()
    ) -> Callable[[], float]:
        """``action`` in a transaction that is rolled back, under ``settings`` and without
        the indexes in ``drop``; stopped after ``--cap`` seconds (and counted as that)."""

        def once() -> float:
            seconds = args.cap
            try:
                with transaction.atomic():
                    with connection.cursor() as cursor:
                        cursor.execute(f"SET LOCAL statement_timeout = {int(args.cap * 1000)}")
                        for setting in settings:
                            cursor.execute(f"SET LOCAL {setting}")
                        for index in drop:
                            cursor.execute(f"DROP INDEX {index}")
                    seconds = timed(action)
                    transaction.set_rollback(True)
            except OperationalError:
                pass
            return seconds

        return once

    # found, and never another user's
    for name in queries:
        results = search.search_messages(user=owner, query=parsed[name])
        assert all(Conversation.objects.get(pk=h.conversation_id).owner_id == owner.pk for h in results.hits)

    # the index on the expression, as before, only for the comparison
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE INDEX IF NOT EXISTS bench_expression ON chat_message "
            "USING gin (to_tsvector('simple'::regconfig, COALESCE(content, '')))"
        )
        cursor.execute("ANALYZE chat_message")

    def now(name: str) -> Callable[[], float]:
        return capped(lambda: page_ids(owner, parsed[name], stored=True))

    def before(name: str) -> Callable[[], float]:
        # the indexes as they were: the expression's alone (dropped in a transaction rolled back)
        return capped(
            lambda: page_ids(owner, parsed[name], stored=False),
            drop=["chat_msg_newest", "chat_msg_search_document"],
        )

    def plain(name: str) -> Callable[[], float]:
        # no index at all: every message's stored document is read
        return capped(
            lambda: page_ids(owner, parsed[name], stored=True),
            settings=["enable_bitmapscan = off", "enable_indexscan = off"],
        )

    print(
        f"the first page's {search.PAGE_SIZE} messages (without snippets), medians of {args.repeats}, "
        f"a run stopped at {args.cap:.0f} s:"
    )
    for name in queries:
        runs = taking_turns(args.repeats, {"now": now(name), "before": before(name), "plain": plain(name)})
        hits = len(search.search_messages(user=owner, query=parsed[name]).hits)
        ms = median(runs["now"]) * 1000
        print(
            f"  {name:16} {queries[name]!r:28} {hits:2} hits: "
            f"{compared(ms, median(runs['before']) * 1000, 'ms', 'on the expression index', lower_is_better=True)}"
            f", {median(runs['plain']) * 1000:.0f} ms without an index"
        )

    # the two orders a user can pick, side by side: newest first stops at a page, best match
    # first scores every match with ts_rank before it can take one
    def ordered(name: str, order: str) -> Callable[[], float]:
        return capped(lambda: search.search_messages(user=owner, query=parsed[name], order=order))

    print(f"the whole first page, newest first against best match first (ts_rank), medians of {args.repeats}:")
    for name in queries:
        runs = taking_turns(
            args.repeats, {"newest": ordered(name, search.NEWEST), "relevance": ordered(name, search.RELEVANCE)}
        )
        ms = median(runs["relevance"]) * 1000
        print(
            f"  {name:16} {queries[name]!r:28} best match first: "
            f"{compared(ms, median(runs['newest']) * 1000, 'ms', 'newest first', lower_is_better=True)}"
        )

    # the whole first page as the sidebar gets it (hits, snippets, matching titles), the
    # typical queries in turn, many rounds: the figure a user feels
    rounds = taking_turns(args.rounds, {name: functools.partial(page, name) for name in queries})
    every = [seconds for name in queries for seconds in rounds[name]]
    print(
        f"every query, {args.rounds} rounds: median {median(every) * 1000:.1f} ms, "
        f"p95 {percentile(every, 0.95) * 1000:.1f} ms, slowest {max(every) * 1000:.1f} ms (target: under 100 ms)"
    )


if __name__ == "__main__":
    main()
