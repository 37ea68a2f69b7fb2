"""Writing a whole document's summary, in a Celery worker: every chunk (batched), then
the combination, with the key sentences beside it, by the model of the registry the summary
was asked of (``PARLEY_SUMMARY_MODEL`` unless its owner picked another).

Chunk summaries are saved as they finish, so a job taken over after a crash or a retry
starts from the chunks already done; the owner's Cancel is noticed between steps. Each
model's summarizer is made once per worker process, on the first summary asked of it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Literal

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction

from webapp.accounts.usage import usage_record
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


class ModelGone(Exception):
    """The model a summary was asked of is no longer in the registry."""


@cache
def summarizer(model: str) -> Summarizer:
    """One summarizer per model of the registry and worker process, made on the first
    summary asked of it: a local model is loaded (and kept), an upstream's client connects.

    An upstream model's own tokenizer is not at hand, so its chunks are cut by the same
    estimate of characters a token that fits a conversation to its window.
    """
    import dataclasses

    from inference.config import UpstreamModel
    from inference.summarize import Summarizer

    config = settings.PARLEY_INFERENCE
    entry = config.models.get(model)
    if entry is None:
        raise ModelGone(model)
    if isinstance(entry, UpstreamModel):
        from inference.embeddings import Embedder
        from inference.upstream import EstimatingTokenizer, UpstreamEngine

        engine = UpstreamEngine(entry, max_batch_size=settings.PARLEY_SUMMARY_BATCH_SIZE)
        return Summarizer(engine, Embedder.from_config(config), tokenizer=EstimatingTokenizer())
    return Summarizer.from_config(
        dataclasses.replace(config, chat_model=entry.path),
        name=entry.name,
        max_batch_size=settings.PARLEY_SUMMARY_BATCH_SIZE,
    )


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

    model = summary.model or settings.PARLEY_SUMMARY_MODEL
    result = None
    try:
        writer = summarizer(model)
        try:
            result = writer.summarize(
                text,
                summary.length,
                summary.form,
                on_progress=on_progress,
                done_chunks=done,
                on_chunk=on_chunk,
                should_stop=lambda: job_cancelled(job_id=job.pk),
            )
            written = result.summary
        except EmptyTextError:
            written = ""  # a text without words (emoji only): the page says there is nothing to summarise
        key_sentences = document_key_sentences(writer, summary.document)
    except ModelGone as gone:
        job_fail(job=job, reason=f"The model {gone} this summary was asked of is no longer offered here.")
        return
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
    with transaction.atomic():
        Summary.objects.filter(pk=summary.pk).update(
            text=written, key_sentences=key_sentences, model_name=writer.engine.model_name
        )
        if result is not None and (result.prompt_tokens or result.completion_tokens):
            usage_record(
                user_id=summary.document.owner_id,
                model=model,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
            )
        review.summary_track(summary_id=summary.pk)
        job_finish(job=job)
