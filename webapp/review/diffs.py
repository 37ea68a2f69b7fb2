"""The diff of an output and its correction, as escaped HTML.

diff-match-patch (Myers' algorithm with a time limit, then a semantic clean-up that
turns character noise into whole changed words and phrases) keeps the diff of two
20,000-character texts to a fraction of a second however unlike they are. Both texts
are untrusted (one written by a model, one pasted by a reviewer): every piece goes
through ``format_html``, so markup in either shows as text.
"""

from __future__ import annotations

from diff_match_patch import diff_match_patch
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

# Past this the diff is still correct, only less minimal.
TIME_LIMIT_SECONDS = 0.5
_TAGS = {diff_match_patch.DIFF_DELETE: "del", diff_match_patch.DIFF_INSERT: "ins"}


def text_diff(original: str, corrected: str) -> SafeString:
    differ = diff_match_patch()
    differ.Diff_Timeout = TIME_LIMIT_SECONDS
    changes = differ.diff_main(original, corrected)
    differ.diff_cleanupSemantic(changes)
    parts = [
        format_html("<{}>{}</{}>", _TAGS[op], text, _TAGS[op]) if op in _TAGS else format_html("{}", text)
        for op, text in changes
    ]
    return mark_safe("".join(parts))  # every part above went through format_html
