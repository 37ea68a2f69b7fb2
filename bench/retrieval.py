"""Retrieval over documents' passages: how often the passage that answers a question is
found, how fast a search is at scale, and how fast OCR reads a page.

1. Quality: the documents of bench/data/retrieval.json are cut into passages and embedded
   as the reading worker does; each question's answer sits in one passage (the one holding
   its ``answer`` phrase). Printed: recall@5 and MRR for the vector search alone, the
   keyword search alone and the two fused (``webapp.documents.retrieval``).
2. Latency: synthetic passages (random unit vectors, random words) in one document, at
   --sizes passages, each size in a database of its own kept under var/bench (the first run
   builds them: minutes at 100,000), the fused search timed with the HNSW index and without
   it (an exact scan), taking turns, medians of --repeats: its wall time, and the processor
   time it took here and in the database server (which waits for a core on a shared machine
   leave out). With --compare, the search as it
   was before it became one statement (two queries and two more round trips, fused in
   Python: ``before_search`` below) takes its turns too, and its quality is printed beside.
3. OCR: --ocr-pages page images of 30 lines each read by the engine `PARLEY_OCR_ENGINE` picks, in
   pages a minute (`python -m bench.ocr` sets the two engines side by side).

    python -m bench.retrieval --compare        # the figures in docs/decisions.md
    python -m bench.retrieval --sizes 10000 --ocr-pages 0   # a quick look
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import PROJECT_DIR, compared, embedded_django, median, parser, taking_turns

QUESTIONS = PROJECT_DIR / "bench" / "data" / "retrieval.json"
VOCABULARY = 5000  # synthetic words w0 … w4999: each of a passage's 40 is in about 0.8% of passages


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="synthetic passages")
    arguments.add_argument("--repeats", type=int, default=30, help="searches timed at each size, each way")
    arguments.add_argument("--ocr-pages", type=int, default=2, help="page images read by OCR")
    arguments.add_argument("--compare", action="store_true", help="the search before it was one statement too")
    args = arguments.parse_args()
    with embedded_django(DEBUG="1"):
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        owner = fresh_owner()
        quality(owner, QUESTIONS, compare=args.compare)
        latency(args.sizes, args.repeats, compare=args.compare)
        if args.ocr_pages:
            ocr_pace(args.ocr_pages)


def fresh_owner() -> Any:
    from webapp.accounts.models import User

    User.objects.filter(email="bench-retrieval@example.com").delete()
    return User.objects.create_user(email="bench-retrieval@example.com", password="bench-password-1")


def add_document(owner: Any, name: str, text: str) -> Any:
    """A document read as the reading worker reads it: extracted, cut, embedded, saved."""
    import hashlib

    from webapp.documents.extraction import extract
    from webapp.documents.models import Document
    from webapp.documents.passages import passages_embedded, passages_replace

    data = text.encode()
    kind = "markdown" if name.endswith(".md") else "text"
    extracted = extract(kind, data)
    document = Document.objects.create(
        owner=owner, name=name, kind=kind, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        original=data, text=extracted.text, words=extracted.words, pages=extracted.pages, status="ready",
    )  # fmt: skip
    passages_replace(document_id=document.pk, passages=passages_embedded(extracted))
    return document


def quality(owner: Any, path: Path, *, compare: bool) -> None:
    from webapp.documents.models import Passage
    from webapp.documents.retrieval import (
        CANDIDATES,
        fused_candidates,
        keyword_candidates,
        question_vector,
        vector_candidates,
    )

    corpus = json.loads(path.read_text())
    started = time.perf_counter()
    documents = [add_document(owner, d["name"], d["text"]).pk for d in corpus["documents"]]
    passages = dict(Passage.objects.filter(document_id__in=documents).values_list("pk", "text"))
    print(
        f"corpus: {len(documents)} documents, {len(passages)} passages, read and embedded in "
        f"{time.perf_counter() - started:.1f} s; {len(corpus['questions'])} questions"
    )
    ranks: dict[str, list[int | None]] = {"vector": [], "keyword": [], "fused": []}
    if compare:
        ranks.update({"keyword before": [], "fused before": []})
    for item in corpus["questions"]:
        answering = {pk for pk, text in passages.items() if item["answer"] in text}
        assert answering, f"no passage holds the answer {item['answer']!r}"
        question, vector = item["question"], question_vector(item["question"])
        rankings = {
            "vector": vector_candidates(document_ids=documents, vector=vector),
            "keyword": keyword_candidates(document_ids=documents, question=question, vector=vector),
            "fused": fused_candidates(document_ids=documents, question=question, vector=vector, limit=CANDIDATES),
        }
        found_ids = {name: [f.passage_id for f in ranking] for name, ranking in rankings.items()}
        if compare:
            by_words = before_keyword(documents, question, vector)
            found_ids["keyword before"] = [pk for pk, _ in by_words]
            before = before_fused([before_vector(documents, vector), by_words], CANDIDATES)
            found_ids["fused before"] = [pk for pk, _ in before]
        for name, found in found_ids.items():
            ranks[name].append(next((rank for rank, pk in enumerate(found, 1) if pk in answering), None))
    for name, found_at in ranks.items():
        recall = sum(1 for rank in found_at if rank is not None and rank <= 5) / len(found_at)
        mrr = sum(1 / rank for rank in found_at if rank is not None) / len(found_at)
        print(f"{name:>14}: recall@5 {recall:.3f}, MRR {mrr:.3f}")


def synthetic_passages(document_id: int, count: int) -> None:
    """``count`` passages of random unit vectors and random words, made in the database
    (the same ones on every machine: the random numbers are seeded)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.24)")
        cursor.execute(
            """
            INSERT INTO documents_passage (document_id, index, start, "end", page, heading, text, embedding)
            SELECT %(document)s, n, 0, 0, NULL, '',
                   (SELECT string_agg('w' || floor(random() * %(vocabulary)s)::int, ' ')
                    FROM generate_series(1, 40 + n %% 2)),
                   (SELECT (array_agg(random() - 0.5))::vector FROM generate_series(1, 384 + n %% 1))
            FROM generate_series(0, %(count)s - 1) AS n
            """,
            {"document": document_id, "vocabulary": VOCABULARY, "count": count},
        )
    # (``+ n % 2`` and ``+ n % 1`` tie the subqueries to the row, so each row gets its own.)


@contextmanager
def synthetic_database(size: int) -> Iterator[tuple[int, float | None]]:
    """Django's connection on a database of its own holding ``size`` synthetic passages in
    one document, indexed as the migrations index them; yields the document's id and the
    seconds the build took (None when it was there already). The database is kept under
    var/bench: the HNSW index over 100,000 passages takes minutes to build, so later runs
    reuse it."""
    from django.core.management import call_command
    from django.db import connection

    name = f"parley_bench_passages_{size}"
    home = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    connection.settings_dict["NAME"] = name
    try:
        call_command("migrate", verbosity=0)
        yield synthetic_document(size)
    finally:
        connection.close()
        connection.settings_dict["NAME"] = home


def synthetic_document(size: int) -> tuple[int, float | None]:
    """The document of ``size`` synthetic passages in the current database, made unless a
    finished one is there (a build cut short is made again)."""
    from django.db import connection

    from webapp.accounts.models import User
    from webapp.documents.models import Document, Passage

    owner, _ = User.objects.get_or_create(
        email="bench-synthetic@example.com", defaults={"username": "bench-synthetic@example.com"}
    )
    kept = Document.objects.filter(owner=owner, name=f"synthetic {size}", status="ready").first()
    if kept is not None and Passage.objects.filter(document=kept).count() == size:
        return kept.pk, None
    started = time.perf_counter()
    Document.objects.filter(owner=owner).delete()
    document = Document.objects.create(
        owner=owner, name=f"synthetic {size}", kind="text", size=0, sha256="0" * 64, original=b"", status="pending"
    )
    indexes = [index for index in Passage._meta.indexes if index.name == "documents_passage_embedding"]
    with connection.schema_editor() as editor:  # built once over the rows: much faster than row by row
        for index in indexes:
            editor.remove_index(Passage, index)
    synthetic_passages(document.pk, size)
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        with connection.schema_editor() as editor:
            for index in indexes:
                editor.add_index(Passage, index)
        cursor.execute("VACUUM ANALYZE documents_passage")  # the GIN index's pending list merged, as autovacuum would
    Document.objects.filter(pk=document.pk).update(status="ready")  # finished: kept for the next run
    return document.pk, time.perf_counter() - started


def latency(sizes: list[int], repeats: int, *, compare: bool) -> None:
    """Wall time of a search, and the processor time it took in this process and in the
    database server's process together: on a shared machine the wall time also holds the
    waits for a core, the processor time does not."""
    import random

    chooser = random.Random(7)
    for size in sorted(sizes):
        with synthetic_database(size) as (document, built):
            questions = [[chooser.uniform(-1, 1) for _ in range(384)] for _ in range(repeats)]
            words = [" ".join(f"w{chooser.randrange(VOCABULARY)}" for _ in range(3)) for _ in range(repeats)]
            ways = {
                "hnsw": partial(timed_search, document, questions, words, exact=False, before=False),
                "exact": partial(timed_search, document, questions, words, exact=True, before=False),
            }
            if compare:
                ways["hnsw before"] = partial(timed_search, document, questions, words, exact=False, before=True)
                ways["exact before"] = partial(timed_search, document, questions, words, exact=True, before=True)
            turns = taking_turns(repeats, ways)
        made = "kept from an earlier run" if built is None else f"made and indexed in {built:.0f} s"
        print(f"{size:>7,} passages ({made}), one fused search:")
        for measure, figure in (("wall", 0), ("processor", 1)):
            times = {way: median(timing[figure] for timing in timings) * 1000 for way, timings in turns.items()}
            print(f"  {measure} time:")
            print("    with HNSW " + compared(times["hnsw"], times["exact"], "ms", "exact", lower_is_better=True))
            if compare:
                for index in ("hnsw", "exact"):
                    print(
                        f"    {'with HNSW' if index == 'hnsw' else 'exact':>9} "
                        + compared(times[index], times[f"{index} before"], "ms", "before", lower_is_better=True)
                    )


def processor_seconds(server_pid: int) -> float:
    """Processor time so far of this process and of the database server's process serving it
    (Linux: the scheduler's own count, in nanoseconds)."""
    server = int(Path(f"/proc/{server_pid}/schedstat").read_text().split()[0])
    return time.process_time() + server / 1e9


def timed_search(
    document_id: int, questions: list[list[float]], words: list[str], *, exact: bool, before: bool
) -> tuple[float, float]:
    """Seconds of one fused search (the question's vector given), now or as it was before:
    wall time, and processor time here and in the server."""
    import random

    from django.db import connection, transaction

    from webapp.documents.retrieval import fused_candidates

    pick = random.randrange(len(questions))
    vector, question = questions[pick], words[pick]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            server_pid = cursor.fetchone()[0]
            if exact:
                cursor.execute("SET LOCAL enable_indexscan = off")
        started, processor = time.perf_counter(), processor_seconds(server_pid)
        if before:
            before_fused([before_vector([document_id], vector), before_keyword([document_id], question, vector)], 5)
        else:
            fused_candidates(document_ids=[document_id], question=question, vector=vector, limit=5)
        return time.perf_counter() - started, processor_seconds(server_pid) - processor


# The fused search as it was before it became one statement, the baseline of --compare: the
# nearest by the ORM in a transaction of its own (again exactly when too few are left, after
# counting), the question's words in a round trip of their own, the words' query, and the
# fusion in Python. Rows: (passage id, document id).


def before_vector(document_ids: list[int], vector: list[float]) -> list[tuple[int, int]]:
    from django.db import connection, transaction
    from pgvector.django import CosineDistance

    from webapp.documents.models import Passage

    nearest = (
        Passage.objects.filter(document_id__in=document_ids)
        .annotate(distance=CosineDistance("embedding", list(vector)))
        .order_by("distance")
        .values_list("pk", "document_id")
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL hnsw.ef_search = 100")
        rows = list(nearest[:20])
    if len(rows) < 20 and Passage.objects.filter(document_id__in=document_ids).count() > len(rows):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_indexscan = off")
            rows = list(nearest[:20])
    return rows


def before_keyword(document_ids: list[int], question: str, vector: list[float]) -> list[tuple[int, int]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT tsvector_to_array(to_tsvector('english', %s))", [question])
        words = cursor.fetchone()[0]
    if not words:
        return []
    queries = ["'" + word.replace("\\", "\\\\").replace("'", "''") + "'" for word in words]
    matched = " + ".join(["(p.search @@ %s::tsquery)::int"] * len(queries))
    sql = f"""
        SELECT kept.id, kept.document_id, 1 - (p.embedding <=> %s::vector), kept.matched
        FROM (
            SELECT p.id, p.document_id, {matched} AS matched, ts_rank_cd(p.search, %s::tsquery) AS rank
            FROM documents_passage p
            WHERE p.document_id = ANY(%s) AND p.search @@ %s::tsquery
            ORDER BY matched DESC, rank DESC, p.id
            LIMIT 20
        ) kept JOIN documents_passage p ON p.id = kept.id
        ORDER BY kept.matched DESC, kept.rank DESC, kept.id
    """
    any_word = " | ".join(queries)
    vector_text = "[" + ",".join(f"{value:.7g}" for value in vector) + "]"
    with connection.cursor() as cursor:
        cursor.execute(sql, [vector_text, *queries, any_word, list(document_ids), any_word])
        return [(pk, document) for pk, document, *_ in cursor.fetchall()]


def before_fused(rankings: list[list[tuple[int, int]]], limit: int) -> list[tuple[int, int]]:
    scores: dict[tuple[int, int], float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            scores[row] = scores.get(row, 0.0) + 1 / (60 + rank)
    return sorted(scores, key=lambda row: (-scores[row], row[0]))[:limit]


def ocr_pace(pages: int) -> None:
    from PIL import Image, ImageDraw, ImageFont

    from webapp.documents.reading import page_reader

    reader = page_reader()
    font = ImageFont.load_default(size=28)
    images = []
    for page in range(pages):
        image = Image.new("RGB", (1240, 1754), "white")  # A4 at 150 dpi
        draw = ImageDraw.Draw(image)
        for line in range(30):
            draw.text((80, 80 + line * 52), f"Page {page + 1}, line {line + 1}: the tenant keeps the drains clear.",
                      fill="black", font=font)  # fmt: skip
        images.append(image)
    reader.read(images[0])  # the first call warms the session up
    started = time.perf_counter()
    lines = sum(len(reader.read(image).splitlines()) for image in images)
    seconds = time.perf_counter() - started
    pace = pages / seconds * 60
    print(f"OCR: {pages} A4 pages of 30 lines in {seconds:.1f} s, {pace:.1f} pages a minute ({lines} lines read)")


if __name__ == "__main__":
    main()
