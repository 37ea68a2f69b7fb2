"""Server-drawn SVG of the approval rate per day (no script, nothing fetched)."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from webapp.review.selectors import VerdictCounts

HEIGHT, BAR_WIDTH, GAP, AXIS = 160, 18, 6, 28


def approval_by_day(days: Sequence[VerdictCounts]) -> SafeString:
    """One bar per day with reviews: its height the share approved, its title the figures."""
    width = max(1, len(days)) * (BAR_WIDTH + GAP) + AXIS
    bars = []
    for index, day in enumerate(days):
        bar_height = max(1.0, day.approval_rate * HEIGHT)
        x = AXIS + index * (BAR_WIDTH + GAP)
        title = f"{day.name}: {day.approved} of {day.reviewed} approved ({day.approval_rate:.0%})"
        bars.append(
            (x, HEIGHT - bar_height, BAR_WIDTH, bar_height, title, x + BAR_WIDTH / 2, HEIGHT + 14, day.name[5:])
        )
    drawn = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" rx="2" fill="#2f9e44"><title>{}</title></rect>'
        '<text x="{}" y="{}" text-anchor="middle" font-size="9">{}</text>',
        bars,
    )
    return format_html(
        '<svg class="chart" role="img" aria-label="Share of reviewed items approved, per day" '
        'viewBox="0 0 {} {}" width="{}" height="{}">'
        '<text x="0" y="10" font-size="10">100%</text><text x="0" y="{}" font-size="10">0%</text>'
        '<line x1="{}" y1="0" x2="{}" y2="{}" stroke="#ced4da"></line>{}</svg>',
        width, HEIGHT + 20, width, HEIGHT + 20, HEIGHT, AXIS - 2, AXIS - 2, HEIGHT, drawn,
    )  # fmt: skip
