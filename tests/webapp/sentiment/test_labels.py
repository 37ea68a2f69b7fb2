"""A batch's labels are its classifier's: a tiny two-label model, end to end.

The classifier is a random sequence-classification model built from a config whose
labels are "bad" and "good", saved to a folder and configured as PARLEY_SENTIMENT_MODEL is;
the batch goes through the real Celery task function on the real database, and its
counts, chart, filter, exports and review form show those labels and no others.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from tests.webapp.responses import streamed
from webapp.accounts.models import User
from webapp.review.models import ReviewItem
from webapp.sentiment import selectors, services
from webapp.sentiment.models import SentimentBatch
from webapp.sentiment.tasks import classify_batch

pytestmark = pytest.mark.django_db

TEXTS = ["What a lovely day.", "This is awful.", "The bus came at nine.", "I would buy it again.", "Never again."]
OLD_LABELS = {"negative", "neutral", "positive"}


@pytest.fixture
def good_or_bad(tmp_path: Path, settings: Settings) -> Iterator[Path]:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from inference.config import InferenceConfig
    from inference.models import embedding_model_dir

    tokenizer = AutoTokenizer.from_pretrained(embedding_model_dir(InferenceConfig.from_env()))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, id2label={0: "bad", 1: "good"}, label2id={"bad": 0, "good": 1},
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    # as PARLEY_SENTIMENT_MODEL would configure it
    settings.PARLEY_INFERENCE = dataclasses.replace(settings.PARLEY_INFERENCE, sentiment_model=str(tmp_path))
    services.classifier.cache_clear()  # loaded once per process: load this one
    yield tmp_path
    services.classifier.cache_clear()


def classified(owner: User) -> SentimentBatch:
    batch = services.batch_create(owner, name="", data="\n".join(TEXTS).encode(), pasted=True)
    classify_batch.run(batch.job_id)
    batch.refresh_from_db()
    return batch


def test_a_two_label_classifier_labels_the_batch_with_its_own_labels(
    good_or_bad: Path, logged_in_client: Client, user: User, staff_user: User
) -> None:
    batch = classified(user)
    assert batch.job is not None
    assert batch.job.state == "done"
    assert batch.labels == ["bad", "good"]
    assert batch.model_name == good_or_bad.name
    given = set(batch.items.values_list("label", flat=True))
    assert given <= {"bad", "good"}

    counts = selectors.batch_counts(batch)
    assert [c.label for c in counts] == ["bad", "good"]
    assert sum(c.count for c in counts) == len(TEXTS)

    url = reverse("sentiment:batch", args=[batch.pk])
    page = logged_in_client.get(url).content.decode()
    chart = page[page.index("<svg") : page.index("</svg>")]
    assert re.findall(r'dominant-baseline="middle">([a-z]+)</text>', chart) == ["bad", "good"]
    options = re.findall(r'<option value="([a-z]*)"', page)
    assert options == ["", "bad", "good", "empty"]
    assert not OLD_LABELS & set(re.findall(r"[a-z]+", page))

    label = sorted(given)[0]
    filtered = logged_in_client.get(url, {"label": label}, HTTP_HX_REQUEST="true").content.decode()
    shown = [text for text in TEXTS if text in filtered]
    assert shown == list(batch.items.filter(label=label).values_list("text", flat=True))

    exported = b"".join(streamed(logged_in_client.get(reverse("sentiment:export", args=[batch.pk, "csv"]))))
    rows = list(csv.DictReader(io.StringIO(exported.decode())))
    assert [r["label"] for r in rows] == list(batch.items.values_list("label", flat=True))
    assert {"bad_probability", "good_probability"} <= set(rows[0])
    assert all(abs(float(r["bad_probability"]) + float(r["good_probability"]) - 1) < 1e-3 for r in rows)
    jsonl = b"".join(streamed(logged_in_client.get(reverse("sentiment:export", args=[batch.pk, "jsonl"]))))
    assert all(list(json.loads(line)["probabilities"]) == ["bad", "good"] for line in jsonl.decode().splitlines())

    # The review queue corrects a label with one of the batch's labels.
    item = ReviewItem.objects.filter(sentiment_item__batch=batch).first()
    assert item is not None
    reviewer = Client()
    reviewer.force_login(staff_user)
    form = reviewer.get(reverse("review:item", args=[item.pk])).content.decode()
    corrected = form[
        form.index('name="corrected_label"') : form.index("</select>", form.index('name="corrected_label"'))
    ]
    assert re.findall(r'<option value="([a-z]*)"', corrected) == ["", "bad", "good"]
    refused = reviewer.post(
        reverse("review:verdict", args=[item.pk]), {"version": 0, "decision": "reject", "corrected_label": "negative"}
    )
    assert refused.status_code == 422
    assert "Choose one of this batch&#x27;s labels: bad, good." in refused.content.decode()
