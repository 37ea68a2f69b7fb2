"""Model output is untrusted: whatever it writes comes out as inert HTML."""

from __future__ import annotations

import re

import pytest

from webapp.core.rendering import render_markdown

ATTACKS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click me](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    '<div hx-get="/accounts/logout/" hx-trigger="load">x</div>',
    '<button hx-post="/chat/1/delete">x</button>',
    "![tracker](https://evil.example/pixel.png)",
    '<iframe src="https://evil.example"></iframe>',
    '<a href="https://ok.example" onclick="steal()">ok</a>',
    "<svg/onload=alert(1)>",
    '```html\n<script>alert("in code")</script>\n```',
]


def assert_inert(html: str) -> None:
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<img" not in lowered
    assert "<iframe" not in lowered
    assert "<svg" not in lowered
    assert not re.search(r"<[^>]+\son\w+\s*=", lowered), html
    assert not re.search(r"<[^>]+\shx-", lowered), html
    assert "javascript:" not in re.sub(r">[^<]*<", "><", lowered), html  # not inside any tag


@pytest.mark.parametrize("attack", ATTACKS)
def test_attacks_come_out_inert(attack: str) -> None:
    assert_inert(render_markdown(f"Here you go: {attack} and more"))


def test_tags_split_across_deltas_are_inert_at_every_step() -> None:
    """The page re-renders the whole text after each delta; no prefix may be live either."""
    answer = "Sure! " + " ".join(ATTACKS)
    for end in range(1, len(answer) + 1, 3):
        assert_inert(render_markdown(answer[:end]))


def test_escaped_text_stays_readable() -> None:
    html = render_markdown("Use <b>bold</b> like this")
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_markdown_and_code_are_rendered() -> None:
    html = render_markdown(
        "# Title\n\n**bold** and `code`\n\n```python\ndef f():\n    return 1\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html
    assert "<code>code</code>" in html
    assert '<span class="k">def</span>' in html  # Pygments highlighted the block
    assert "<table>" in html
    assert "<td>1</td>" in html


def test_safe_links_keep_working_but_cannot_reach_the_opener() -> None:
    html = render_markdown("[docs](https://example.com/docs)")
    assert 'href="https://example.com/docs"' in html
    assert "noopener" in html
    assert "nofollow" in html
