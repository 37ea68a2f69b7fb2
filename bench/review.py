"""The review queue at scale: a reviewer's whole cycle per item with a large queue next to
a small one, queueing a large sentiment batch in one statement next to ORM objects, and
the next-item lookup by keyset next to OFFSET, all in the same run.

    python -m bench.review [--items 100000] [--cycles 100]

It always starts its own embedded Postgres and Redis under var/bench (never the servers
of DATABASE_URL / REDIS_URL: it fills and empties tables). Requests go through Django's
test client in this process: the figures are server time, without a network.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bench.common import compared, embedded_django, median, parser, taking_turns, timed

if TYPE_CHECKING:
    from webapp.accounts.models import User


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--items", type=int, default=100_000, help="sentiment items in the large queue")
    arguments.add_argument("--small", type=int, default=1_000, help="sentiment items in the small queue")
    arguments.add_argument("--cycles", type=int, default=100, help="items reviewed in each queue")
    args = arguments.parse_args()

    with embedded_django(DEBUG="1"):
        run(args)


def fill(owner: User, rows: int) -> int:
    """A labelled batch of ``rows`` items, not yet queued; returns its id."""
    from django.db import connection

    from webapp.sentiment.models import SentimentBatch

    batch = SentimentBatch.objects.create(
        owner=owner, name="bench.csv", source="paste", raw=b"", model_name="bench",
        labels=["negative", "neutral", "positive"],
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO documents_sentimentitem "
            "(batch_id, row, text, extra, label, score, probabilities, needs_review) "
            "SELECT %s, n, 'review number ' || n, '{}', (ARRAY['negative','neutral','positive'])[1 + n %% 3], "
            "0.34 + (n * 7919 %% 6600) / 10000.0, '{}', false FROM generate_series(1, %s) AS n",
            [batch.pk, rows],
        )
    return batch.pk


def orm_track(batch_id: int) -> None:
    """The same rows as ``sentiment_batch_track``, built as objects and bulk-created."""
    from django.conf import settings

    from webapp.review.models import Kind, ReviewItem, Tier
    from webapp.sentiment.models import SentimentItem

    threshold = settings.PARLEY_SENTIMENT_REVIEW_BELOW
    items = SentimentItem.objects.filter(batch_id=batch_id).select_related("batch").iterator(chunk_size=5000)
    made = []
    for item in items:
        score = item.score
        assert score is not None, "fill() labels every item"
        made.append(
            ReviewItem(
                kind=Kind.SENTIMENT, sentiment_item=item, owner_id=item.batch.owner_id,
                model_name=item.batch.model_name, produced_at=item.batch.created_at, confidence=score,
                certainty=score if score < threshold else 1.0,
                tier=Tier.LOW_CONFIDENCE if score < threshold else Tier.NORMAL,
            )
        )  # fmt: skip
    ReviewItem.objects.bulk_create(made, batch_size=5000, ignore_conflicts=True)


def run(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from webapp.accounts.models import User
    from webapp.review import selectors, services
    from webapp.review.models import ReviewItem
    from webapp.review.selectors import QueueFilter
    from webapp.sentiment.models import SentimentBatch

    call_command("migrate", verbosity=0)
    ReviewItem.objects.all().delete()
    SentimentBatch.objects.all().delete()
    User.objects.filter(email__endswith="@bench.invalid").delete()
    owner = User.objects.create_user(email="owner@bench.invalid", password="x")
    reviewer = User.objects.create_user(email="reviewer@bench.invalid", password="x", is_staff=True)

    # 1. Queueing a large batch: one INSERT … SELECT against objects made in Python.
    batch_id = fill(owner, args.items)

    def queued(track: Callable[[], object]) -> float:
        seconds = timed(track)
        ReviewItem.objects.all().delete()
        return seconds

    tracks = taking_turns(
        3,
        {
            "sql": lambda: queued(lambda: services.sentiment_batch_track(batch_id=batch_id)),
            "orm": lambda: queued(lambda: orm_track(batch_id)),
        },
    )
    services.sentiment_batch_track(batch_id=batch_id)  # analyzes the table itself, being large
    sql, orm = median(tracks["sql"]), median(tracks["orm"])
    statement = compared(sql, orm, "s", "with ORM objects", digits=2, lower_is_better=True)
    print(f"queue {args.items:,} labels: one statement {statement} (median of 3)")

    # 2. The next item, deep in the queue: keyset against OFFSET.
    everything = QueueFilter(state="all")
    ordered = list(selectors.queue(everything).values_list("pk", flat=True))
    deep = ReviewItem.objects.get(pk=ordered[len(ordered) // 2])
    position = len(ordered) // 2
    keyset_times = [
        timed(lambda: selectors.neighbour(item=deep, queue_filter=everything, reviewer=reviewer)) for _ in range(20)
    ]
    offset_times = [timed(lambda: selectors.queue(everything)[position + 1 : position + 2].get()) for _ in range(20)]
    keyset, offset = median(keyset_times), median(offset_times)
    following = selectors.neighbour(item=deep, queue_filter=everything, reviewer=reviewer)
    assert following is not None
    assert following.pk == ordered[position + 1]
    print(
        f"next item at position {position:,}: keyset {keyset * 1000:.1f} ms, "
        f"OFFSET {offset * 1000:.1f} ms (median of 20)"
    )

    # 3. A reviewer's cycle (open the item, give a verdict, follow the redirect to the
    #    next one, open it) with the large queue, then with a small one.
    client = Client(HTTP_HOST="localhost")
    client.force_login(reviewer)

    def cycles(count: int) -> list[float]:
        times = []
        location = client.get(reverse("review:step"))["Location"]
        for _ in range(count):
            started = time.perf_counter()
            page = client.get(location)
            assert page.status_code == 200
            item_id = int(location.rstrip("/").rsplit("/", 1)[1])
            version = ReviewItem.objects.values_list("version", flat=True).get(pk=item_id)
            verdict = client.post(
                reverse("review:verdict", args=[item_id]), {"decision": "approve", "version": version}
            )
            assert verdict.status_code == 302, verdict.content[-500:]
            location = client.get(verdict["Location"])["Location"]
            times.append(time.perf_counter() - started)
        return times

    cycles(5)  # warm up
    large = median(cycles(args.cycles))
    queue_page = median(timed(lambda: client.get(reverse("review:queue"))) for _ in range(10))
    ReviewItem.objects.all().delete()
    SentimentBatch.objects.all().delete()
    small_batch = fill(owner, args.small)
    services.sentiment_batch_track(batch_id=small_batch)
    cycles(5)
    small = median(cycles(args.cycles))
    small_queue_page = median(timed(lambda: client.get(reverse("review:queue"))) for _ in range(10))
    print(
        f"reviewer cycle per item (median of {args.cycles}): {large * 1000:.1f} ms with {args.items:,} items, "
        f"{small * 1000:.1f} ms with {args.small:,}"
    )
    print(f"queue page: {queue_page * 1000:.1f} ms with {args.items:,} items, {small_queue_page * 1000:.1f} ms small")
    print(
        f"track_speedup={orm / sql:.2f} keyset_speedup={offset / keyset:.2f} "
        f"cycle_ms={large * 1000:.1f} cycle_large_vs_small={large / small:.2f} "
        f"queue_page_large_vs_small={queue_page / small_queue_page:.2f}"
    )
    ReviewItem.objects.all().delete()
    SentimentBatch.objects.all().delete()


if __name__ == "__main__":
    main()
