"""The title prompt and the cleaning of what the model answers to it (no model needed)."""

from __future__ import annotations

import pytest

from inference import prompts


@pytest.mark.parametrize(
    ("reply", "title"),
    [
        ("Baking Bread at Home", "Baking Bread at Home"),
        ('"Baking Bread at Home"', "Baking Bread at Home"),
        ("\u201cBaking bread\u201d.", "Baking bread"),
        ("**Title:** 'Baking bread'.", "Baking bread"),
        ("Title \u2014 Baking bread", "Baking bread"),
        ("# Baking bread", "Baking bread"),
        ("\n\n  Baking bread\nThis conversation is about bread.", "Baking bread"),
        ("What is sourdough?", "What is sourdough?"),
        ("Baking   bread \t at home", "Baking bread at home"),
        ("one two three four five six seven eight nine ten", "one two three four five six seven eight"),
    ],
)
def test_a_reply_becomes_a_title(reply: str, title: str) -> None:
    assert prompts.clean_title(reply) == title


@pytest.mark.parametrize("reply", ["", "   \n\n", '""', "Title:", "**", "...", "\u2014"])
def test_a_reply_with_no_word_gives_no_title(reply: str) -> None:
    assert prompts.clean_title(reply) is None


def test_a_long_word_is_cut_to_the_longest_title() -> None:
    title = prompts.clean_title("Supercalifragilistic" * 10)
    assert title is not None
    assert len(title) == prompts.TITLE_MAX_CHARS


def test_a_long_title_is_cut_at_a_word() -> None:
    title = prompts.clean_title("Extraordinarily complicated questions regarding international sourdough regulations")
    assert title is not None
    assert len(title) <= prompts.TITLE_MAX_CHARS
    assert title == "Extraordinarily complicated questions regarding"


def test_the_request_is_short_greedy_and_ends_with_an_excerpt_of_the_question() -> None:
    request = prompts.title_request(question="How do I bake bread? " + "Flour. " * 500, cache_scope="user:3")
    assert request.params.temperature == 0
    assert request.params.max_new_tokens == prompts.TITLE_MAX_NEW_TOKENS
    assert request.cache_scope == "user:3"
    assert request.messages[0].role == "system"
    assert [m.role for m in request.messages[1:]] == ["user", "assistant"] * len(prompts.TITLE_EXAMPLES) + ["user"]
    last = request.messages[-1].content
    assert last.startswith("Message: How do I bake bread?")
    assert len(last) < prompts.TITLE_EXCERPT_CHARS + 20
