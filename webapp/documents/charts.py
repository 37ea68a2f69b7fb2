"""A server-drawn SVG bar chart of a batch's labels (no script, nothing fetched)."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from webapp.documents.services import LabelCount

COLOURS = {"negative": "#e03131", "neutral": "#868e96", "positive": "#2f9e44", "empty": "#ced4da"}
BAR_HEIGHT, GAP, LABEL_WIDTH, BAR_WIDTH = 22, 8, 80, 260


def label_bars(counts: Sequence[LabelCount]) -> SafeString:
    height = len(counts) * (BAR_HEIGHT + GAP)
    rows = []
    for i, count in enumerate(counts):
        top = i * (BAR_HEIGHT + GAP)
        middle = top + BAR_HEIGHT / 2
        width = max(1.0, count.share * BAR_WIDTH)
        rows.append(
            (middle, count.label, LABEL_WIDTH, top, width, BAR_HEIGHT, COLOURS[count.label],
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
