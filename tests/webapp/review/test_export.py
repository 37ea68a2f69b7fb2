"""The dataset export: every reviewed item of the filter once, with its training fields and provenance."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.webapp.responses import streamed
from tests.webapp.review.conftest import make_chat_answer, make_sentiment
from webapp.accounts.models import User
from webapp.core.streaming import PULL_CHARACTERS
from webapp.review.models import ReviewItem
from webapp.review.selectors import QueueFilter, export_lines

pytestmark = pytest.mark.django_db


def judge(client: Client, item: ReviewItem, **fields: Any) -> None:
    client.get(reverse("review:item", args=[item.pk]))
    item.refresh_from_db()
    response = client.post(reverse("review:verdict", args=[item.pk]), {"version": item.version, **fields})
    assert response.status_code == 302, response.content.decode()[-2000:]


def export(client: Client, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"{reverse('review:export')}?{query}")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    body = b"".join(streamed(response)).decode()
    return [json.loads(line) for line in body.splitlines()]


@pytest.fixture
def reviewed(reviewer_client: Client, user: User, outputs: dict[str, ReviewItem]) -> dict[str, Any]:
    system = make_chat_answer(user, "Bonjour !", question="Say hello in French.", system_prompt="Be brief.")
    rejected = make_chat_answer(user, "I will not.", question="Help me.")
    judge(reviewer_client, outputs["chat"], decision="approve", rating="5", tags="good")
    judge(reviewer_client, outputs["disliked"], decision="needs_fix", correction="Parley is a workspace.", tags="facts")
    judge(reviewer_client, outputs["summary"], decision="approve")
    judge(reviewer_client, outputs["api"], decision="approve")
    judge(reviewer_client, outputs["unsure"], decision="reject", corrected_label="positive")
    judge(reviewer_client, outputs["sure"], decision="approve")
    judge(reviewer_client, system, decision="approve")
    judge(reviewer_client, rejected, decision="reject")
    return {**outputs, "system": system, "rejected": rejected, "unreviewed": make_chat_answer(user, "Later.")}


def by_item(lines: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    ids = [line["provenance"]["item"] for line in lines]
    assert len(ids) == len(set(ids)), "an item appeared twice"
    return dict(zip(ids, lines, strict=True))


def test_every_reviewed_item_appears_once_with_its_fields(reviewer_client: Client, reviewed: dict[str, Any]) -> None:
    lines = by_item(export(reviewer_client))
    expected = {item.pk for name, item in reviewed.items() if name != "unreviewed"}
    assert set(lines) == expected

    approved = lines[reviewed["chat"].pk]
    assert approved["messages"] == [
        {"role": "user", "content": "What is Parley?"},
        {"role": "assistant", "content": "Parley is a self-hosted workspace."},
    ]
    assert "chosen" not in approved
    provenance = approved["provenance"]
    assert provenance["kind"] == "chat"
    assert provenance["model"] == "smollm2-135m"
    assert provenance["reviewer"] == "reviewer@example.com"
    assert provenance["verdict"] == "approve"
    assert provenance["rating"] == 5
    assert provenance["tags"] == ["good"]
    assert set(provenance["settings"]) == {"model", "temperature", "top_p", "max_tokens"}
    assert provenance["created"]
    assert provenance["reviewed"]

    from_a_tool = lines[reviewed["api"].pk]
    assert from_a_tool["provenance"]["kind"] == "api"
    assert from_a_tool["messages"][-1] == {"role": "assistant", "content": "Parley answers tools too."}

    fixed = lines[reviewed["disliked"].pk]
    assert fixed["messages"][-1] == {"role": "assistant", "content": "Parley is a workspace."}
    assert (fixed["chosen"], fixed["rejected"]) == ("Parley is a workspace.", "Parley is a kind of cheese.")

    with_system = lines[reviewed["system"].pk]
    assert with_system["messages"][0] == {"role": "system", "content": "Be brief."}

    refused = lines[reviewed["rejected"].pk]
    assert "messages" not in refused
    assert refused["original"] == "I will not."

    label = lines[reviewed["unsure"].pk]
    assert (label["text"], label["label"], label["model_label"]) == ("It is fine I guess", "positive", "neutral")
    assert lines[reviewed["sure"].pk]["label"] == "positive"

    summary = lines[reviewed["summary"].pk]
    assert summary["messages"][0]["content"].startswith("Summarize this document")
    assert summary["messages"][-1]["content"] == "The report is about rivers."


def test_each_dataset_keeps_what_its_tuning_can_use(reviewer_client: Client, reviewed: dict[str, Any]) -> None:
    sft = by_item(export(reviewer_client, "dataset=sft"))
    assert set(sft) == {reviewed[name].pk for name in ("chat", "api", "disliked", "summary", "system")}
    assert all("messages" in line for line in sft.values())
    pairs = by_item(export(reviewer_client, "dataset=preference"))
    assert set(pairs) == {reviewed["disliked"].pk}
    labels = by_item(export(reviewer_client, "dataset=sentiment"))
    assert set(labels) == {reviewed["unsure"].pk, reviewed["sure"].pk}


def test_the_export_follows_the_filter(reviewer_client: Client, reviewed: dict[str, Any]) -> None:
    chat_only = by_item(export(reviewer_client, "kind=chat&decision=approve"))
    assert set(chat_only) == {reviewed["chat"].pk, reviewed["system"].pk}
    assert export(reviewer_client, "feedback=up") == []


def test_an_unknown_dataset_is_refused(reviewer_client: Client) -> None:
    response = reviewer_client.get(reverse("review:export") + "?dataset=everything")
    assert response.status_code == 400
    assert "Unknown dataset" in response.content.decode()


def test_a_large_export_streams(reviewer_client: Client, reviewer: User, user: User) -> None:
    from webapp.review import services

    items = make_sentiment(user, [(f"text {n}", "neutral", 0.9) for n in range(1200)])
    for item in items:
        services.verdict_submit(
            item_id=item.pk, reviewer=reviewer, seen_version=0,
            verdict=services.VerdictInput("approve", None, [], "", "", ""),
        )  # fmt: skip
    response = reviewer_client.get(reverse("review:export") + "?dataset=sentiment")
    chunks = list(streamed(response))
    assert len(chunks) > 1  # in pieces, never the whole file at once
    assert max(len(chunk) for chunk in chunks) < 2 * PULL_CHARACTERS
    lines = b"".join(chunks).splitlines()
    assert len({json.loads(line)["provenance"]["item"] for line in lines}) == len(lines) == 1200


def test_the_export_reads_each_item_with_its_prompt_in_one_query(reviewed: dict[str, Any]) -> None:
    with CaptureQueriesContext(connection) as queries:
        lines = list(export_lines(QueueFilter(), "reviews"))
    assert len(lines) == 8
    assert len(queries) == 1  # not one more per chat answer to rebuild its prompt
