"""Retrieval over documents' passages: how often the passage that answers a question is
found, how fast a search is at scale, and how fast OCR reads a page.

1. Quality: the documents of bench/data/retrieval.json are cut into passages and embedded
   as the reading worker does; each question's answer sits in one passage (the one holding
   its ``answer`` phrase). Printed: recall@5 and MRR for the vector search alone, the
   keyword search alone and the two fused (``webapp.documents.retrieval``).
2. Latency: synthetic passages (random unit vectors, random words) in one document, at
   --sizes passages, the fused search's two queries timed with the HNSW index and without
   it (an exact scan), taking turns, medians of --repeats.
3. OCR: --ocr-pages page images of 30 lines each read by RapidOCR, in pages a minute.

    python -m bench.retrieval                  # the figures in docs/decisions.md
    python -m bench.retrieval --sizes 10000 --ocr-pages 1   # a quick look
"""

from __future__ import annotations

import json
import time
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
    args = arguments.parse_args()
    with embedded_django(DEBUG="1"):
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        owner = fresh_owner()
        quality(owner, QUESTIONS)
        latency(owner, args.sizes, args.repeats)
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


def quality(owner: Any, path: Path) -> None:
    from webapp.documents.models import Passage
    from webapp.documents.retrieval import CANDIDATES, fused, keyword_candidates, question_vector, vector_candidates

    corpus = json.loads(path.read_text())
    started = time.perf_counter()
    documents = [add_document(owner, d["name"], d["text"]).pk for d in corpus["documents"]]
    passages = dict(Passage.objects.filter(document_id__in=documents).values_list("pk", "text"))
    print(
        f"corpus: {len(documents)} documents, {len(passages)} passages, read and embedded in "
        f"{time.perf_counter() - started:.1f} s; {len(corpus['questions'])} questions"
    )
    ranks: dict[str, list[int | None]] = {"vector": [], "keyword": [], "fused": []}
    for item in corpus["questions"]:
        answering = {pk for pk, text in passages.items() if item["answer"] in text}
        assert answering, f"no passage holds the answer {item['answer']!r}"
        vector = question_vector(item["question"])
        by_vector = vector_candidates(document_ids=documents, vector=vector)
        by_words = keyword_candidates(document_ids=documents, question=item["question"], vector=vector)
        for name, ranking in (
            ("vector", by_vector),
            ("keyword", by_words),
            ("fused", fused([by_vector, by_words], limit=CANDIDATES)),
        ):
            found = [f.passage_id for f in ranking]
            ranks[name].append(next((rank for rank, pk in enumerate(found, 1) if pk in answering), None))
    for name, found_at in ranks.items():
        recall = sum(1 for rank in found_at if rank is not None and rank <= 5) / len(found_at)
        mrr = sum(1 / rank for rank in found_at if rank is not None) / len(found_at)
        print(f"{name:>8}: recall@5 {recall:.3f}, MRR {mrr:.3f}")


def synthetic_passages(document_id: int, start: int, count: int) -> None:
    """``count`` passages of random unit vectors and random words, made in the database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO documents_passage (document_id, index, start, "end", page, heading, text, embedding)
            SELECT %(document)s, n, 0, 0, NULL, '',
                   (SELECT string_agg('w' || floor(random() * %(vocabulary)s)::int, ' ')
                    FROM generate_series(1, 40 + n %% 2)),
                   (SELECT (array_agg(random() - 0.5))::vector FROM generate_series(1, 384 + n %% 1))
            FROM generate_series(%(start)s, %(end)s) AS n
            """,
            {
                "document": document_id,
                "vocabulary": VOCABULARY,
                "start": start,
                "end": start + count - 1,
            },
        )
    # (``+ n % 2`` and ``+ n % 1`` tie the subqueries to the row, so each row gets its own.)


def latency(owner: Any, sizes: list[int], repeats: int) -> None:
    import random

    from django.db import connection

    from webapp.documents.models import Document

    document = Document.objects.create(
        owner=owner, name="synthetic", kind="text", size=0, sha256="0" * 64, original=b"", status="ready"
    )
    have = 0
    chooser = random.Random(7)
    for size in sorted(sizes):
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS documents_passage_embedding")
        started = time.perf_counter()
        synthetic_passages(document.pk, have, size - have)
        have = size
        made = time.perf_counter() - started
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            cursor.execute(
                "CREATE INDEX documents_passage_embedding ON documents_passage "
                "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
            )
            cursor.execute("ANALYZE documents_passage")
        built = time.perf_counter() - started
        questions = [[chooser.uniform(-1, 1) for _ in range(384)] for _ in range(repeats)]
        words = [" ".join(f"w{chooser.randrange(VOCABULARY)}" for _ in range(3)) for _ in range(repeats)]
        timings = taking_turns(
            repeats,
            {
                "hnsw": partial(timed_search, document.pk, questions, words, exact=False),
                "exact": partial(timed_search, document.pk, questions, words, exact=True),
            },
        )
        vector = {way: median(t[0] for t in timings[way]) * 1000 for way in timings}
        fused = {way: median(t[0] + t[1] for t in timings[way]) * 1000 for way in timings}
        keyword = median(t[1] for way in timings for t in timings[way]) * 1000
        print(f"{size:>7,} passages (made in {made:.0f} s, HNSW built in {built:.0f} s):")
        print("  vector search " + compared(vector["hnsw"], vector["exact"], "ms", "exact", lower_is_better=True))
        print(f"  keyword search {keyword:.1f} ms")
        print("  fused search " + compared(fused["hnsw"], fused["exact"], "ms", "exact", lower_is_better=True))


def timed_search(
    document_id: int, questions: list[list[float]], words: list[str], *, exact: bool
) -> tuple[float, float]:
    """Seconds of the vector query and of the keyword query of one fused search."""
    import random

    from django.db import connection, transaction

    from webapp.documents.retrieval import keyword_candidates, vector_candidates

    pick = random.randrange(len(questions))
    vector = questions[pick]
    with transaction.atomic():
        if exact:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_indexscan = off")
        started = time.perf_counter()
        vector_candidates(document_ids=[document_id], vector=vector)
        middle = time.perf_counter()
        keyword_candidates(document_ids=[document_id], question=words[pick], vector=vector)
        return middle - started, time.perf_counter() - middle


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
