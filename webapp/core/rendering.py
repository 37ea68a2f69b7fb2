"""Model output to safe HTML: markdown with raw HTML off, Pygments for code, nh3 last.

Model output is untrusted text. markdown-it-py never passes raw HTML through, so a
``<script>`` in an answer becomes visible text; nh3 then keeps only the tags and
attributes a chat answer needs, which also drops images (nothing is loaded from
outside), event handlers, ``hx-*`` attributes and ``javascript:`` links. The whole
accumulated text is rendered every time, so a tag split across deltas never exists as
HTML.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "span", "blockquote", "a",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "span": {"class"},
    "code": {"class"},
    "pre": {"class"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
}
_FORMATTER = HtmlFormatter(nowrap=True, cssclass="highlight")


def _highlight(code: str, language: str, _attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(language) if language else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes the code itself
    return highlight(code, lexer, _FORMATTER)


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "highlight": _highlight, "breaks": True}).enable(
        ["table", "strikethrough"]
    )


def render_markdown(text: str) -> str:
    """Safe HTML for a model's (or a user's) markdown text."""
    html = _markdown().render(text)
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
    )
