"""Verdicts: recorded with who and when, history kept, bad input refused, races told."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from webapp.accounts.models import User
from webapp.review import services
from webapp.review.models import ReviewItem, Verdict

pytestmark = pytest.mark.django_db


def open_and_judge(client: Client, item: ReviewItem, **fields: Any) -> Any:
    client.get(reverse("review:item", args=[item.pk]))
    item.refresh_from_db()
    data = {"version": item.version, **fields}
    return client.post(reverse("review:verdict", args=[item.pk]), data)


def test_a_verdict_is_recorded_with_who_and_when_and_the_next_item_opens(
    reviewer_client: Client, reviewer: User, outputs: dict[str, ReviewItem]
) -> None:
    item = outputs["disliked"]
    before = timezone.now()
    response = open_and_judge(
        reviewer_client, item, decision="needs_fix", rating="2", tags="Wrong facts, tone, wrong facts",
        comment="Parley is not food.", correction="Parley is a self-hosted AI workspace.",
    )  # fmt: skip
    assert response.status_code == 302
    assert response.url.startswith(reverse("review:step") + f"?after={item.pk}")
    assert reviewer_client.get(response.url)["Location"] == reverse("review:item", args=[outputs["unsure"].pk])
    verdict = Verdict.objects.get(item=item)
    assert (verdict.reviewer, verdict.decision, verdict.rating) == (reviewer, "needs_fix", 2)
    assert verdict.tags == ["wrong facts", "tone"]
    assert verdict.correction == "Parley is a self-hosted AI workspace."
    assert verdict.created_at >= before
    item.refresh_from_db()
    assert (item.decision, item.rating, item.corrected, item.version, item.claimed_by) == (
        "needs_fix",
        2,
        True,
        1,
        None,
    )


def test_changing_a_verdict_keeps_the_history(
    reviewer_client: Client, staff_user: User, outputs: dict[str, ReviewItem]
) -> None:
    item = outputs["summary"]
    open_and_judge(reviewer_client, item, decision="approve", rating="4")
    staff = Client()
    staff.force_login(staff_user)
    open_and_judge(staff, item, decision="reject", comment="Misses the main finding.")
    verdicts = list(Verdict.objects.filter(item=item).order_by("created_at"))
    assert [(v.reviewer.email, v.decision) for v in verdicts] == [
        ("reviewer@example.com", "approve"),
        ("staff@example.com", "reject"),
    ]
    item.refresh_from_db()
    assert (item.decision, item.rating, item.version) == ("reject", None, 2)
    page = staff.get(reverse("review:item", args=[item.pk])).content.decode()
    assert "Misses the main finding." in page
    assert "reviewer@example.com" in page


def test_an_unchanged_correction_is_no_correction_and_a_diff_shows_an_edit(
    reviewer_client: Client, outputs: dict[str, ReviewItem]
) -> None:
    item = outputs["chat"]
    open_and_judge(reviewer_client, item, decision="approve", correction="Parley is a self-hosted workspace.\n")
    assert Verdict.objects.get(item=item).correction == ""
    assert not ReviewItem.objects.get(pk=item.pk).corrected
    diff = reviewer_client.post(
        reverse("review:diff", args=[item.pk]), {"correction": "Parley is a private, self-hosted workspace."}
    )
    assert diff.status_code == 200
    assert "Parley is a<ins> private,</ins> self-hosted" in diff.content.decode()
    too_long = reviewer_client.post(reverse("review:diff", args=[item.pk]), {"correction": "x" * 20_001})
    assert "A correction can be at most 20,000 characters long." in too_long.content.decode()


def test_a_sentiment_label_is_corrected_with_a_label(reviewer_client: Client, outputs: dict[str, ReviewItem]) -> None:
    item = outputs["unsure"]
    open_and_judge(reviewer_client, item, decision="reject", corrected_label="negative")
    assert Verdict.objects.get(item=item).corrected_label == "negative"
    page = reviewer_client.get(reverse("review:item", args=[item.pk])).content.decode()
    assert "Corrected label: <strong>negative</strong>" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"decision": "maybe"}, "Choose approve, needs fix or reject."),
        ({"decision": ""}, "This field is required."),
        ({"decision": "approve", "rating": "9"}, "A rating is a whole number from 1 to 5."),
        ({"decision": "approve", "rating": "three"}, "A rating is a whole number from 1 to 5."),
        ({"decision": "approve", "tags": ",".join(f"t{n}" for n in range(11))}, "At most 10 tags."),
        ({"decision": "approve", "tags": "x" * 41}, "A tag can be at most 40 characters long"),
        ({"decision": "approve", "comment": "x" * 2001}, "at most 2000 characters"),
        ({"decision": "approve", "correction": "x" * 20_001}, "A correction can be at most 20,000 characters long."),
        ({"decision": "approve", "corrected_label": "positive"}, "Only a sentiment label can be corrected"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_nothing_is_saved(
    reviewer_client: Client, outputs: dict[str, ReviewItem], fields: dict[str, str], message: str
) -> None:
    item = outputs["chat"]
    response = open_and_judge(reviewer_client, item, **fields)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Verdict.objects.exists()
    item.refresh_from_db()
    assert (item.decision, item.version) == ("", 0)


def test_text_is_not_a_sentiment_correction(reviewer_client: Client, outputs: dict[str, ReviewItem]) -> None:
    response = open_and_judge(reviewer_client, outputs["sure"], decision="reject", correction="negative really")
    assert response.status_code == 422
    assert "corrected with the label" in response.content.decode()
    response = open_and_judge(reviewer_client, outputs["sure"], decision="reject", corrected_label="furious")
    assert response.status_code == 422
    assert not Verdict.objects.exists()


def test_a_second_reviewer_on_the_same_item_is_told_and_keeps_their_work(
    reviewer_client: Client, staff_user: User, outputs: dict[str, ReviewItem]
) -> None:
    """The first reviewer's hold ran out, a second one judged; then the first submits."""
    item = outputs["summary"]
    reviewer_client.get(reverse("review:item", args=[item.pk]))  # drawn at version 0
    ReviewItem.objects.filter(pk=item.pk).update(claimed_until=timezone.now() - timedelta(minutes=1))
    staff = Client()
    staff.force_login(staff_user)
    assert open_and_judge(staff, item, decision="approve").status_code == 302

    late = reviewer_client.post(
        reverse("review:verdict", args=[item.pk]),
        {"version": 0, "decision": "reject", "comment": "My careful notes", "correction": "A better summary."},
    )
    page = late.content.decode()
    assert late.status_code == 409
    assert "staff@example.com recorded “approve” while you had this item open" in page
    assert "My careful notes" in page
    assert "A better summary." in page
    assert 'name="version" value="1"' in page
    assert [v.decision for v in Verdict.objects.filter(item=item)] == ["approve"]

    # having read it, they submit again on purpose: theirs becomes the latest, both are kept
    again = reviewer_client.post(
        reverse("review:verdict", args=[item.pk]), {"version": 1, "decision": "reject", "comment": "My careful notes"}
    )
    assert again.status_code == 302
    assert sorted(v.decision for v in Verdict.objects.filter(item=item)) == ["approve", "reject"]


@pytest.mark.django_db(transaction=True)
def test_two_verdicts_sent_at_the_same_moment_one_wins_and_the_other_is_told(
    reviewer: User, staff_user: User, outputs: dict[str, ReviewItem]
) -> None:
    item = outputs["chat"]
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def submit(user: User, decision: str) -> None:
        try:
            barrier.wait()
            services.verdict_submit(
                item_id=item.pk, reviewer=user, seen_version=0,
                verdict=services.VerdictInput(decision, None, [], "", "", ""),
            )  # fmt: skip
            results[user.email] = "saved"
        except services.ReviewConflict as conflict:
            results[user.email] = str(conflict)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=submit, args=(reviewer, "approve")),
        threading.Thread(target=submit, args=(staff_user, "reject")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # either may win (the test once assumed which, by sorting the messages)
    saved = [email for email, result in results.items() if result == "saved"]
    assert len(saved) == 1
    (loser,) = set(results) - set(saved)
    assert "your verdict was not saved" in results[loser]
    assert Verdict.objects.filter(item=item).count() == 1
    assert ReviewItem.objects.get(pk=item.pk).version == 1
