"""What the document page shows of a finished summary: the form that measured best first
(webapp/documents/summaries.py SHOWN_FIRST), the other one click away, and a plain
"nothing to summarise" for a document without words."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from inference import Engine
from inference.summarize import Summarizer
from tests.models import build_tiny_model
from webapp.accounts.models import User
from webapp.documents import summaries, views
from webapp.documents.models import Document, Summary
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db

WRITTEN = "The committee approved the new bridge with a budget of 42 million pounds."
KEY_SENTENCES = ["The Director set out the three options that officers had costed.", "Option C was approved."]


def ready_document(owner: User, text: str) -> Document:
    return Document.objects.create(
        owner=owner, name="report.txt", kind="text", size=len(text), sha256=str(hash(text)).ljust(64, "0")[:64],
        original=text.encode(), text=text, status="ready", words=len(text.split()), pages=1,
    )  # fmt: skip


def finished_summary(document: Document, text: str, key_sentences: list[str]) -> Summary:
    job = Job.objects.create(owner=document.owner, kind=Job.Kind.SUMMARY, document=document, state=Job.State.DONE)
    return Summary.objects.create(
        document=document, job=job, text=text, key_sentences=key_sentences, model_name="SmolLM2"
    )


def shown_and_behind_a_click(page: str) -> tuple[str, str]:
    """The summary's text outside any <details>, and the text inside one."""
    article = page[page.index('<article class="summary"') : page.index("</article>")]
    hidden = " ".join(re.findall(r"<details.*?</details>", article, re.S))
    shown = re.sub(r"<details.*?</details>", "", article, flags=re.S)
    return shown, hidden


def test_the_key_sentences_are_shown_first_and_the_written_summary_one_click_away(
    logged_in_client: Client, user: User
) -> None:
    assert summaries.SHOWN_FIRST == "key_sentences"  # what bench/summary_quality.py measured best
    document = ready_document(user, "Some text of the report.")
    finished_summary(document, WRITTEN, KEY_SENTENCES)
    page = logged_in_client.get(reverse("documents:detail", args=[document.pk])).content.decode()
    shown, hidden = shown_and_behind_a_click(page)
    assert all(sentence in shown for sentence in KEY_SENTENCES)
    assert WRITTEN not in shown
    assert WRITTEN in hidden
    assert "<summary>Written summary</summary>" in hidden


def test_with_the_written_summary_first_the_key_sentences_are_one_click_away(
    logged_in_client: Client, user: User, monkeypatch: Any
) -> None:
    monkeypatch.setattr(views, "SHOWN_FIRST", "written")
    document = ready_document(user, "Some text of the report.")
    finished_summary(document, WRITTEN, KEY_SENTENCES)
    page = logged_in_client.get(reverse("documents:detail", args=[document.pk])).content.decode()
    shown, hidden = shown_and_behind_a_click(page)
    assert WRITTEN in shown
    assert not any(sentence in shown for sentence in KEY_SENTENCES)
    assert all(sentence in hidden for sentence in KEY_SENTENCES)


def test_the_htmx_refresh_shows_the_same(logged_in_client: Client, user: User) -> None:
    document = ready_document(user, "Some text of the report.")
    finished_summary(document, WRITTEN, KEY_SENTENCES)
    response = logged_in_client.get(reverse("documents:detail", args=[document.pk]), HTTP_HX_REQUEST="true")
    shown, hidden = shown_and_behind_a_click(response.content.decode())
    assert KEY_SENTENCES[0] in shown
    assert WRITTEN in hidden


def test_a_document_of_emoji_has_nothing_to_summarise_and_says_so(
    logged_in_client: Client, user: User, chat_tokenizer: Any, monkeypatch: Any
) -> None:
    """The worker's own code on a text without words: the job finishes, the page says why."""
    engine = Engine(build_tiny_model(len(chat_tokenizer)), chat_tokenizer, model_name="tiny")
    monkeypatch.setattr(summaries, "summarizer", lambda model: Summarizer(engine))
    try:
        document = ready_document(user, "🎉🎉 👍 🔥🔥🔥")
        job = Job.objects.create(owner=user, kind=Job.Kind.SUMMARY, document=document, state=Job.State.RUNNING)
        summary = Summary.objects.create(document=document, job=job)
        summaries.summary_write(job=job)
    finally:
        engine.close()
    job.refresh_from_db()
    summary.refresh_from_db()
    assert job.state == Job.State.DONE
    assert summary.text == ""
    assert summary.key_sentences == []
    page = logged_in_client.get(reverse("documents:detail", args=[document.pk])).content.decode()
    assert "Nothing to summarise: the document has no words." in page
