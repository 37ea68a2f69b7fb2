"""A server-drawn SVG bar chart of a batch's labels (no script, nothing fetched).

Colours go by a label's place in the batch's list, not by its name: a sentiment
classifier lists its labels from the most negative to the most positive, so the first
is drawn red, the last green, and those between along the way through grey. Blank
texts (EMPTY) are light grey.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from webapp.sentiment.models import EMPTY
from webapp.sentiment.selectors import LabelCount

RED, GREY, GREEN, LIGHT_GREY = (224, 49, 49), (134, 142, 150), (47, 158, 68), "#ced4da"
BAR_HEIGHT, GAP, LABEL_WIDTH, BAR_WIDTH = 22, 8, 80, 260


def _mix(start: tuple[int, int, int], end: tuple[int, int, int], share: float) -> str:
    red, green, blue = (round(a + (b - a) * share) for a, b in zip(start, end, strict=True))
    return f"#{red:02x}{green:02x}{blue:02x}"


def label_colours(labels: Sequence[str]) -> dict[str, str]:
    """Red to grey to green over ``labels`` in order (three labels: exactly those three)."""
    colours = {EMPTY: LIGHT_GREY}
    last = len(labels) - 1
    for index, label in enumerate(labels):
        place = index / last if last else 0.5
        colours[label] = _mix(RED, GREY, place * 2) if place <= 0.5 else _mix(GREY, GREEN, place * 2 - 1)
    return colours


def label_bars(counts: Sequence[LabelCount]) -> SafeString:
    colours = label_colours([count.label for count in counts if count.label != EMPTY])
    height = len(counts) * (BAR_HEIGHT + GAP)
    rows = []
    for i, count in enumerate(counts):
        top = i * (BAR_HEIGHT + GAP)
        middle = top + BAR_HEIGHT / 2
        width = max(1.0, count.share * BAR_WIDTH)
        rows.append(
            (middle, count.label, LABEL_WIDTH, top, width, BAR_HEIGHT, colours[count.label],
             LABEL_WIDTH + width + 6, middle, count.count, round(count.share * 100))
        )  # fmt: skip
    bars = format_html_join(
        "",
        '<text x="0" y="{}" dominant-baseline="middle">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" rx="3"></rect>'
        '<text x="{}" y="{}" dominant-baseline="middle">{} ({}%)</text>',
        rows,
    )
    return format_html(
        '<svg class="chart" role="img" aria-label="Labels in this batch" viewBox="0 0 {} {}" width="{}" height="{}">'
        "{}</svg>",
        LABEL_WIDTH + BAR_WIDTH + 120, height, LABEL_WIDTH + BAR_WIDTH + 120, height, bars,
    )  # fmt: skip
