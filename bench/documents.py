"""Documents end to end: a 30-page summary and a 5,000-row sentiment batch through a
running Parley (web server, Celery worker, Redis, Postgres), next to one-at-a-time
baselines measured in this process in the same run.

    ./parley run                      # in another terminal
    python -m bench.documents [--url http://127.0.0.1:8000] [--rows 5000] [--pages 30]

The summary is timed from the request to the job's last progress frame; the batch from
choosing its text column to the end. Baselines: the same classifier one text at a time,
and chunk summaries written one at a time with the same engine (on the first chunks of
the same document). The last line is
``sentiment_rows_per_s=<x> sentiment_speedup=<ratio> summary_chunks_per_s=<y>``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import re
import time

import websockets

from bench.chat_e2e import Client  # the same browser-like client: sign-up, cookies, CSRF
from bench.common import parser

OPENINGS = ["The delivery", "Customer support", "This blender", "The hotel room", "Our waiter", "The app update"]
VERDICTS = [
    "was excellent and arrived early", "was a complete waste of money", "was fine, nothing special",
    "made my whole week better", "broke after two days", "did exactly what it promised",
    "was rude and slow", "felt average at best", "exceeded every expectation",
]  # fmt: skip
TOPICS = ["trade", "weather", "ships", "markets", "schools", "roads", "bridges", "festivals", "harvests", "music"]


def make_document(pages: int, words_per_page: int = 500) -> str:
    rng = random.Random(7)
    sentences: list[str] = []
    words = 0
    while words < pages * words_per_page:
        topic = rng.choice(TOPICS)
        sentence = (
            f"In year {1800 + len(sentences) % 200} the town council discussed {topic} at length, "
            f"and {rng.randint(2, 90)} citizens wrote letters about the {topic} of the northern district."
        )
        sentences.append(sentence)
        words += len(sentence.split())
    return " ".join(sentences)


def make_reviews(rows: int) -> bytes:
    rng = random.Random(11)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "review", "store"])
    for i in range(rows):
        writer.writerow([i, f"{rng.choice(OPENINGS)} {rng.choice(VERDICTS)}.", rng.choice(["north", "south"])])
    return buffer.getvalue().encode()


def multipart(field: str, name: str, data: bytes, extra: dict[str, str]) -> tuple[bytes, str]:
    boundary = "parleybench" + str(random.randrange(10**12))
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in extra.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(client: Client, path: str, field: str, name: str, data: bytes) -> str:
    import urllib.request

    body, content_type = multipart(field, name, data, {"csrfmiddlewaretoken": client.cookie("csrftoken")})
    request = urllib.request.Request(f"{client.url}{path}", data=body, method="POST")
    request.add_header("Content-Type", content_type)
    request.add_header("Referer", f"{client.url}/")
    response = client.opener.open(request, timeout=120)
    return str(response.geturl())


def page(client: Client, path: str) -> str:
    return str(client.opener.open(f"{client.url}{path}", timeout=60).read().decode())


async def wait_for_job(client: Client, job_id: int) -> float:
    """Seconds until the job finished, counted from this call; raises when it did not succeed."""
    started = time.perf_counter()
    url = client.url.replace("http", "ws", 1) + f"/ws/jobs/{job_id}/"
    headers = {"Cookie": f"sessionid={client.cookie('sessionid')}", "Origin": client.url}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as socket:
        while True:
            frame = json.loads(await socket.recv())
            if frame.get("state") in ("done", "failed", "cancelled"):
                if frame["state"] != "done":
                    raise RuntimeError(f"job {job_id} ended {frame['state']}: {frame.get('error')}")
                return time.perf_counter() - started


async def document_ready(client: Client, name: str) -> int:
    """The id of the uploaded document called ``name``, once its text has been read."""
    listing = await asyncio.to_thread(page, client, "/documents/")
    match = re.search(rf'href="/documents/(\d+)/">{re.escape(name)}<', listing)
    if not match:
        raise RuntimeError(f"{name} is not in the document list")
    doc_id = int(match.group(1))
    while "waiting to be read" in await asyncio.to_thread(page, client, f"/documents/{doc_id}/"):
        await asyncio.sleep(0.3)
    return doc_id


def job_id_in(html: str) -> int:
    match = re.search(r'data-job-socket="/ws/jobs/(\d+)/"', html)
    if not match:
        raise RuntimeError("no running job on the page")
    return int(match.group(1))


async def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--url", default="http://127.0.0.1:8000")
    arguments.add_argument("--rows", type=int, default=5000)
    arguments.add_argument("--pages", type=int, default=30)
    arguments.add_argument("--baseline-rows", type=int, default=500)
    arguments.add_argument("--baseline-chunks", type=int, default=3)
    args = arguments.parse_args()
    client = Client(args.url.rstrip("/"), "")
    await asyncio.to_thread(client.sign_up)

    # Warm-up: the Celery worker loads each model on its first job; that is not throughput.
    warm_url = await asyncio.to_thread(upload, client, "/sentiment/new", "file", "warm.txt", b"Great!\nAwful.\n")
    await wait_for_job(
        client, job_id_in(await asyncio.to_thread(page, client, re.sub(r"^https?://[^/]+", "", warm_url)))
    )
    await asyncio.to_thread(upload, client, "/documents/upload", "files", "warm.txt", make_document(1).encode())
    warm_doc = await document_ready(client, "warm.txt")
    await asyncio.to_thread(
        lambda: client.post(f"/documents/{warm_doc}/summarize", {"length": "short", "form": "paragraph"}).read()
    )
    await wait_for_job(client, job_id_in(await asyncio.to_thread(page, client, f"/documents/{warm_doc}/")))

    # Sentiment batch through the web server and the Celery worker.
    reviews = make_reviews(args.rows)
    batch_url = await asyncio.to_thread(upload, client, "/sentiment/new", "file", "reviews.csv", reviews)
    batch_path = re.sub(r"^https?://[^/]+", "", batch_url)
    started = time.perf_counter()
    await asyncio.to_thread(lambda: client.post(f"{batch_path}column", {"column": "review"}).read())
    job = job_id_in(await asyncio.to_thread(page, client, batch_path))
    await wait_for_job(client, job)
    batch_seconds = time.perf_counter() - started
    rows_per_s = args.rows / batch_seconds

    # A 30-page document: upload, wait for its text, then summarize it.
    text = make_document(args.pages)
    await asyncio.to_thread(upload, client, "/documents/upload", "files", "town-history.txt", text.encode())
    doc_id = await document_ready(client, "town-history.txt")
    started = time.perf_counter()
    await asyncio.to_thread(
        lambda: client.post(f"/documents/{doc_id}/summarize", {"length": "short", "form": "paragraph"}).read()
    )
    summary_job = job_id_in(await asyncio.to_thread(page, client, f"/documents/{doc_id}/"))
    await wait_for_job(client, summary_job)
    summary_seconds = time.perf_counter() - started
    detail = await asyncio.to_thread(page, client, f"/documents/{doc_id}/")
    chunks = int(re.search(r"from (\d+) parts? of the document", detail).group(1))  # type: ignore[union-attr]
    chunks_per_s = chunks / summary_seconds

    # Baselines in this process, one item at a time.
    from inference.engine import Engine
    from inference.sentiment import SentimentClassifier
    from inference.summarize import Summarizer

    classifier = SentimentClassifier.from_config()
    texts = [row.split(",", 2)[1] for row in reviews.decode().splitlines()[1 : args.baseline_rows + 1]]
    classifier.classify(texts[:10])  # warm-up
    started = time.perf_counter()
    for item in texts:
        classifier.classify([item], batch_size=1)
    naive_rows_per_s = len(texts) / (time.perf_counter() - started)

    writer = Summarizer.from_config()
    engine = writer.engine
    assert isinstance(engine, Engine)  # the local engine, whose one-at-a-time call is the baseline
    pieces = writer.chunks(text)[: args.baseline_chunks]
    started = time.perf_counter()
    for piece in pieces:
        engine.generate(writer._chunk_request(piece, len(pieces)))
    naive_chunks_per_s = len(pieces) / (time.perf_counter() - started)
    engine.close()

    print(f"sentiment: {args.rows} rows in {batch_seconds:.1f} s through Parley = {rows_per_s:.1f} rows/s; "
          f"one at a time here: {naive_rows_per_s:.1f} rows/s")  # fmt: skip
    print(f"summary: {args.pages} pages, {chunks} chunks in {summary_seconds:.1f} s through Parley = "
          f"{chunks_per_s:.3f} chunks/s (combination included); one chunk at a time here: "
          f"{naive_chunks_per_s:.3f} chunks/s (chunk summaries only)")  # fmt: skip
    print(
        f"sentiment_rows_per_s={rows_per_s:.1f} sentiment_speedup={rows_per_s / naive_rows_per_s:.2f} "
        f"summary_chunks_per_s={chunks_per_s:.3f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
