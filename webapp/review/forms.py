"""The queue's filter and the verdict form; both validate here, before any service runs."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator

from webapp.review.models import Decision, Kind, ReviewItem
from webapp.review.services import VerdictInput

MAX_TAGS = 10
TAG_LENGTH = 40
COMMENT_LENGTH = 2000


class QueueFilterForm(forms.Form):
    """GET parameters of the queue; anything unknown is an error, shown, not ignored."""

    STATES = [("unreviewed", "Not reviewed"), ("reviewed", "Reviewed"), ("all", "All")]
    FEEDBACK = [("", "Any feedback"), ("down", "Thumbs down"), ("up", "Thumbs up"), ("none", "No feedback")]

    kind = forms.ChoiceField(choices=[("", "All kinds"), *Kind.choices], required=False)
    model = forms.CharField(max_length=200, required=False)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    feedback = forms.ChoiceField(choices=FEEDBACK, required=False)
    low_confidence = forms.BooleanField(required=False, label="Low-confidence sentiment only")
    state = forms.ChoiceField(choices=STATES, required=False)
    decision = forms.ChoiceField(choices=[("", "Any verdict"), *Decision.choices], required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        if data.get("decision") and data.get("state") == "unreviewed":
            self.add_error("decision", "Items that are not reviewed have no verdict yet; choose “Reviewed” or “All”.")
        return data


def parse_tags(raw: str) -> list[str]:
    """Comma-separated tags, lower-cased, in the order given, without repeats."""
    tags: list[str] = []
    for part in raw.split(","):
        tag = re.sub(r"\s+", " ", part).strip().lower()
        if tag and tag not in tags:
            tags.append(tag)
    return tags


class VerdictForm(forms.Form):
    decision = forms.ChoiceField(
        choices=Decision.choices, error_messages={"invalid_choice": "Choose approve, needs fix or reject."}
    )
    rating = forms.TypedChoiceField(
        choices=[("", "no rating")] + [(str(n), str(n)) for n in range(1, 6)],
        coerce=int,
        empty_value=None,
        required=False,
        error_messages={"invalid_choice": "A rating is a whole number from 1 to 5."},
    )
    tags = forms.CharField(required=False, max_length=MAX_TAGS * (TAG_LENGTH + 2), help_text="Separated by commas.")
    comment = forms.CharField(required=False, max_length=COMMENT_LENGTH, widget=forms.Textarea(attrs={"rows": 2}))
    correction = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 10}))
    # The choices are the item's batch's labels (set in __init__); a text item has none
    # but says why in clean_corrected_label rather than calling the label an invalid choice.
    corrected_label = forms.CharField(required=False, max_length=16, widget=forms.Select)
    version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)

    def __init__(self, *args: Any, item: ReviewItem, original: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item, self.original = item, original
        self.labels: list[str] = item.sentiment_item.batch.labels if item.sentiment_item else []
        self.fields["corrected_label"].widget.choices = [("", "keep the label")] + [
            (label, label) for label in self.labels
        ]
        limit = settings.PARLEY_REVIEW_MAX_CORRECTION_CHARS
        self.fields["correction"].validators.append(
            MaxLengthValidator(limit, f"A correction can be at most {limit:,} characters long.")
        )

    def clean_tags(self) -> list[str]:
        tags = parse_tags(self.cleaned_data.get("tags") or "")
        if len(tags) > MAX_TAGS:
            raise forms.ValidationError(f"At most {MAX_TAGS} tags.")
        for tag in tags:
            if len(tag) > TAG_LENGTH:
                raise forms.ValidationError(f"A tag can be at most {TAG_LENGTH} characters long: “{tag[:20]}…”.")
        return tags

    def clean_correction(self) -> str:
        correction: str = self.cleaned_data.get("correction") or ""
        if not self.item.is_text:
            if correction.strip():
                raise forms.ValidationError("A sentiment label is corrected with the label, not with text.")
            return ""
        # The textarea starts with the original: unchanged (or emptied) means "no correction".
        if not correction.strip() or correction.strip() == self.original.strip():
            return ""
        return correction.strip()

    def clean_corrected_label(self) -> str:
        label: str = self.cleaned_data.get("corrected_label") or ""
        if label and self.item.is_text:
            raise forms.ValidationError("Only a sentiment label can be corrected with a label.")
        if label and label not in self.labels:
            raise forms.ValidationError(f"Choose one of this batch's labels: {', '.join(self.labels)}.")
        return "" if label == self.original else label

    def verdict(self) -> VerdictInput:
        data = self.cleaned_data
        return VerdictInput(
            decision=data["decision"],
            rating=data["rating"],
            tags=data["tags"],
            comment=data["comment"].strip(),
            correction=data["correction"],
            corrected_label=data["corrected_label"],
        )
