"""A document's text cut into passages for retrieval: windows of tokens with overlap.

Each passage is a span of the text (character offsets, so a page can highlight it),
cut at word boundaries, with the page it starts on and the heading above it. Windows
are counted in the embedding model's own tokens, so every passage fits what the model
reads whole (all-MiniLM-L6-v2 reads 256, and was trained on 128): nothing of a passage is cut off unembedded.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PASSAGE_TOKENS = 128
OVERLAP_TOKENS = 24
MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class PassageSpan:
    index: int
    start: int  # character offsets into the document's text
    end: int
    page: int | None  # 1-based, where the source has pages
    heading: str
    text: str


def markdown_headings(text: str) -> list[tuple[int, str]]:
    """(offset, title) of each Markdown heading line, in order."""
    return [(match.start(), match.group(1)) for match in MARKDOWN_HEADING.finditer(text)]


def split_passages(
    text: str,
    tokenizer: Any,
    *,
    page_starts: Sequence[int] = (),
    headings: Sequence[tuple[int, str]] = (),
    size: int = PASSAGE_TOKENS,
    overlap: int = OVERLAP_TOKENS,
) -> list[PassageSpan]:
    """Windows of ``size`` tokens, each starting ``size - overlap`` after the last, moved
    back to the start of a word so no word is split between two passages.

    ``page_starts`` are the offsets where pages 1, 2, … begin (empty: no pages);
    ``headings`` the (offset, title) of the headings, in order.
    """
    if overlap >= size:
        raise ValueError("the overlap must be smaller than the passage")
    offsets = [
        span for span in tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    ]
    if not offsets:
        return []
    # A token begins a word when whitespace (or the text's start) comes before it.
    word_starts = [i for i, (start, _) in enumerate(offsets) if start == 0 or text[start - 1].isspace()]
    heading_offsets = [offset for offset, _ in headings]

    def word_start_at_or_before(token: int) -> int:
        position = bisect.bisect_right(word_starts, token) - 1
        return word_starts[position] if position >= 0 else token

    passages: list[PassageSpan] = []
    first = 0
    while first < len(offsets):
        last = min(first + size, len(offsets))  # exclusive
        if last < len(offsets):
            cut = word_start_at_or_before(last)
            last = cut if cut > first else last
        start, end = offsets[first][0], offsets[last - 1][1]
        page = bisect.bisect_right(page_starts, start) if page_starts else None
        heading_at = bisect.bisect_right(heading_offsets, start) - 1
        passages.append(
            PassageSpan(
                index=len(passages),
                start=start,
                end=end,
                page=page or None,
                heading=headings[heading_at][1] if heading_at >= 0 else "",
                text=text[start:end],
            )
        )
        if last >= len(offsets):
            break
        following = word_start_at_or_before(last - overlap)
        first = following if following > first else last - overlap
    return passages
