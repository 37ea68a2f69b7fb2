"""Writing a whole document's summary, in a Celery worker: every chunk (batched), then
the combination, with the key sentences beside it.

Chunk summaries are saved as they finish, so a job taken over after a crash or a retry
starts from the chunks already done; the owner's Cancel is noticed between steps. The
summarizer (the chat model) is loaded once per worker process, on the first summary.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Literal

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from webapp.documents.models import ChunkSummary, Document, Passage, Summary
from webapp.jobs.models import Job
from webapp.jobs.selectors import job_cancelled
from webapp.jobs.services import job_fail, job_fail_too_slow, job_finish, job_progress
from webapp.review import services as review

if TYPE_CHECKING:
    from inference.summarize import Summarizer

# Which of a summary's two forms the document page shows first; the other is one click
# away: "key_sentences" (extractive) or "written" (map-reduce). Chosen by
# bench/summary_quality.py with the packaged models: key sentences ROUGE-L 0.210 against
# 0.152, every sentence in the document against two thirds (docs/decisions.md).
SHOWN_FIRST: Literal["key_sentences", "written"] = "key_sentences"


@cache
def summarizer() -> Summarizer:
    """One engine per worker process, loaded on the first summary it is given."""
    from inference.summarize import Summarizer

    return Summarizer.from_config(settings.PARLEY_INFERENCE, max_batch_size=settings.PARLEY_SUMMARY_BATCH_SIZE)


def document_key_sentences(writer: Summarizer, document: Document) -> list[str]:
    """The document's key sentences; a document read for asking has its passages embedded
    already, and they are found through those, embedding only the sentences of the
    passages picked (bench/key_sentences.py: twice as fast, ROUGE-L 0.224 against 0.210)."""
    passages = list(Passage.objects.filter(document=document).order_by("index").values_list("text", "embedding"))
    if passages:
        return writer.key_sentences_from_passages(document.text, passages)
    return writer.key_sentences(document.text)


def summary_write(*, job: Job) -> None:
    """Summarize the job's document and queue the summary for review; a cancelled job stops."""
    from inference.errors import CancelledError, EmptyTextError, InferenceError

    summary = Summary.objects.select_related("document").filter(job=job).first()
    if summary is None:  # the summary's job outlived it: nothing to write
        return
    text = summary.document.text
    done = dict(ChunkSummary.objects.filter(summary=summary).values_list("index", "text"))

    def on_progress(finished: int, total: int) -> None:
        job_progress(job=job, done=finished, total=total + 1)  # +1: the final combination

    def on_chunk(index: int, chunk_text: str) -> None:
        ChunkSummary.objects.get_or_create(summary=summary, index=index, defaults={"text": chunk_text})

    try:
        writer = summarizer()
        try:
            written = writer.summarize(
                text,
                summary.length,
                summary.form,
                on_progress=on_progress,
                done_chunks=done,
                on_chunk=on_chunk,
                should_stop=lambda: job_cancelled(job_id=job.pk),
            ).summary
        except EmptyTextError:
            written = ""  # a text without words (emoji only): the page says there is nothing to summarise
        key_sentences = document_key_sentences(writer, summary.document)
    except CancelledError:
        return  # the job row already says cancelled
    except SoftTimeLimitExceeded:
        job_fail_too_slow(job=job, doing="The summary")
        return
    except InferenceError as error:
        job_fail(job=job, reason=f"The summary could not be written: {error}")
        return
    if job_cancelled(job_id=job.pk):
        return
    Summary.objects.filter(pk=summary.pk).update(
        text=written, key_sentences=key_sentences, model_name=writer.engine.model_name
    )
    review.summary_track(summary_id=summary.pk)
    job_finish(job=job)
