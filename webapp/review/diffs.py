"""A word-level diff of an output and its correction, as escaped HTML.

Both texts are untrusted (one written by a model, one pasted by a reviewer): every piece
goes through ``format_html``, so markup in either shows as text.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

# Words, runs of white space and single punctuation marks: a changed comma shows as one.
_TOKENS = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)


def word_diff(original: str, corrected: str) -> SafeString:
    before, after = _TOKENS.findall(original), _TOKENS.findall(corrected)
    parts: list[str] = []
    for op, a1, a2, b1, b2 in SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(format_html("{}", "".join(before[a1:a2])))
            continue
        if a2 > a1:
            parts.append(format_html("<del>{}</del>", "".join(before[a1:a2])))
        if b2 > b1:
            parts.append(format_html("<ins>{}</ins>", "".join(after[b1:b2])))
    return mark_safe("".join(parts))  # every part above went through format_html


def changed(original: str, corrected: str) -> tuple[int, int]:
    """Words removed and added, for a one-line summary of a correction."""
    before, after = original.split(), corrected.split()
    removed = added = 0
    for op, a1, a2, b1, b2 in SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if op != "equal":
            removed += a2 - a1
            added += b2 - b1
    return removed, added
