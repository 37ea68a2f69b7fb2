"""A small corpus the passage, retrieval and chat tests share: long documents whose pages
talk about ordinary matters, with a fact planted on one page."""

from __future__ import annotations

import hashlib
import random

from webapp.accounts.models import User
from webapp.documents.models import Document
from webapp.documents.tasks import extract_document
from webapp.jobs.models import Job

SUBJECTS = ["The committee", "Our supplier", "The warehouse team", "The finance office", "Each region", "The board"]
VERBS = ["reviewed", "discussed", "postponed", "approved", "summarised", "questioned"]
OBJECTS = [
    "the quarterly budget",
    "the staff rota",
    "the parking arrangements",
    "the new printer contract",
    "the holiday calendar",
    "the cleaning schedule",
    "the annual report layout",
    "the office move",
]
ENDINGS = ["after a long debate.", "without objection.", "for the second time.", "at the end of the day."]

PLANTED_FACT = "The lighthouse on Gull Rock was repainted green by Bartholomew Quince in 1931."


def filler_page(seed: int, sentences: int = 40) -> str:
    """About 250 words of minutes, different for each seed."""
    chooser = random.Random(seed)
    return " ".join(
        f"{chooser.choice(SUBJECTS)} {chooser.choice(VERBS)} {chooser.choice(OBJECTS)} {chooser.choice(ENDINGS)}"
        for _ in range(sentences)
    )


def long_pages(pages: int = 12, planted_on: int = 7, fact: str = PLANTED_FACT, seed: int = 0) -> list[str]:
    """``pages`` pages of minutes; page ``planted_on`` (1-based) has ``fact`` in its middle."""
    texts = [filler_page(seed * 1000 + number) for number in range(pages)]
    middle = texts[planted_on - 1].split(". ")
    half = len(middle) // 2
    texts[planted_on - 1] = ". ".join([*middle[:half], fact.rstrip("."), *middle[half:]])
    return texts


def read_document(owner: User, name: str, kind: str, data: bytes) -> Document:
    """A document read by the reading task itself (in this process), its passages saved."""
    document = Document.objects.create(
        owner=owner, name=name, kind=kind, size=len(data), sha256=hashlib.sha256(data).hexdigest(), original=data
    )
    job = Job.objects.create(owner=owner, kind=Job.Kind.EXTRACT, document=document, total=1)
    extract_document.run(job.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.READY, document.error
    return document
