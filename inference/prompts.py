"""From a request to the token ids the model is given.

``validate`` refuses a malformed request with an InvalidRequestError that says what is
wrong; ``encode`` renders messages with the tokenizer's chat template; ``prompt_ids``
returns the prompt's ids, leaving out the oldest turns when the conversation does not
fit the model's window with room for the answer: the system prompt and the last message
are always kept, and a trimmed conversation starts at a user message.

``title_request`` asks the chat model for a conversation's title from its first message,
and ``clean_title`` makes what comes back into one (or None when nothing usable came).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from inference.errors import InvalidRequestError
from inference.types import ROLES, ChatMessage, GenerationRequest


def validate(request: GenerationRequest, *, max_new_tokens_limit: int) -> None:
    params = request.params
    if not request.messages:
        raise InvalidRequestError("the request has no messages.")
    for index, message in enumerate(request.messages):
        if message.role not in ROLES:
            raise InvalidRequestError(
                f"message {index} has role {message.role!r}; the roles are system, user and assistant."
            )
        if not isinstance(message.content, str) or not message.content.strip():
            raise InvalidRequestError(f"message {index} ({message.role}) is empty.")
    if request.messages[-1].role != "user":
        raise InvalidRequestError("the last message must be the user's.")
    if not 0 < params.max_new_tokens <= max_new_tokens_limit:
        raise InvalidRequestError(
            f"max_new_tokens must be between 1 and {max_new_tokens_limit}; got {params.max_new_tokens}."
        )
    if params.temperature < 0:
        raise InvalidRequestError(f"temperature must be 0 or more; got {params.temperature}.")
    if not 0 < params.top_p <= 1:
        raise InvalidRequestError(f"top_p must be in (0, 1]; got {params.top_p}.")


def encode(tokenizer: Any, messages: Sequence[ChatMessage]) -> list[int]:
    encoded = tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in messages], add_generation_prompt=True, tokenize=True
    )
    if hasattr(encoded, "keys"):  # a BatchEncoding
        encoded = encoded["input_ids"]
    return list(encoded)


def prompt_ids(tokenizer: Any, request: GenerationRequest, *, max_context: int) -> tuple[list[int], int]:
    """Token ids of the prompt, leaving out the oldest turns if it does not fit; returns
    them and how many messages were left out."""
    budget = max_context - request.params.max_new_tokens
    messages = list(request.messages)
    system = [m for m in messages[:1] if m.role == "system"]
    turns = messages[len(system) :]
    # A 200,000-character message cannot fit: refuse it before tokenizing the whole chat.
    last = turns[-1]
    if len(last.content) > budget * 8:
        raise InvalidRequestError(
            f"the message is {len(last.content):,} characters, far more than the model's window of "
            f"{max_context:,} tokens; shorten it."
        )
    ids = encode(tokenizer, system + turns)
    if len(ids) <= budget:
        return ids, 0
    return _trimmed(tokenizer, system, turns, budget, request.params.max_new_tokens)


def _trimmed(
    tokenizer: Any, system: list[ChatMessage], turns: list[ChatMessage], budget: int, max_new_tokens: int
) -> tuple[list[int], int]:
    """The prompt without the fewest oldest turns that makes it fit, starting at a user
    message; returns its ids and how many turns were left out.

    Every try renders the chat template over what is kept (a sixth of a second for a
    150-exchange chat), so instead of dropping one turn at a time the search starts from
    the newest turns, doubling how many it keeps until they no longer fit, then halves
    the gap: a few short encodings however long the conversation.
    """
    starts = [index for index, message in enumerate(turns) if index > 0 and message.role == "user"]

    def kept(position: int) -> list[int] | None:
        ids = encode(tokenizer, system + turns[starts[position] :])
        return ids if len(ids) <= budget else None

    # invariant: starts[fits] fits; everything from starts[too_long] back (-1: all turns) does not
    too_long, fits = -1, len(starts) - 1
    best = kept(fits) if starts else None
    if best is None:
        alone = len(encode(tokenizer, system + turns[-1:]))
        raise InvalidRequestError(
            f"the prompt is {alone:,} tokens with the system prompt and the last message alone; "
            f"the model's window leaves {budget:,} for it with max_new_tokens={max_new_tokens}."
        )
    step = 1
    while fits - step > too_long:
        ids = kept(fits - step)
        if ids is None:
            too_long = fits - step
            break
        fits, best, step = fits - step, ids, step * 2
    while fits - too_long > 1:
        middle = (fits + too_long) // 2
        ids = kept(middle)
        if ids is None:
            too_long = middle
        else:
            fits, best = middle, ids
    return best, starts[fits]


# ---- titles -----------------------------------------------------------------------------

TITLE_SYSTEM_PROMPT = "You give each message a short title of two to six words. You never answer the message."
# Worked examples, as earlier turns: the default model (135M parameters) answers a message
# it is asked to title, even when told not to, but follows examples (checked by hand on
# twenty first messages; the answer given alongside made it answer again, so it is left out).
TITLE_EXAMPLES = (
    ("How do I change a bike tyre?", "Changing a bike tyre"),
    ("Write a poem about autumn leaves.", "Autumn leaves poem"),
    ("What is the capital of Japan?", "Capital of Japan"),
    ("Write three sentences about the moon.", "Sentences about the moon"),
    ("Can you explain how vaccines work?", "How vaccines work"),
)
# enough of the first message to tell its subject, little to prefill: the title shares the
# model with the answers being written
TITLE_EXCERPT_CHARS = 600
TITLE_MAX_NEW_TOKENS = 20
TITLE_MAX_WORDS = 8
TITLE_MAX_CHARS = 60

_DASHES = "\u2013\u2014"  # en and em dash
_TITLE_LABEL = re.compile(rf"^(?:title|conversation title|subject)\s*[:\-{_DASHES}]\s*", re.IGNORECASE)
_MARKUP = "#*_`~>"
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb\u201e\u201a"  # straight, curly, guillemets, low
_CLOSING = f".,;:-{_DASHES} "


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TITLE_EXCERPT_CHARS else text[:TITLE_EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"


def title_request(*, question: str, cache_scope: str = "") -> GenerationRequest:
    """A greedy request for the title of a conversation that began with ``question``."""
    messages = [{"role": "system", "content": TITLE_SYSTEM_PROMPT}]
    for example, title in TITLE_EXAMPLES:
        messages += [{"role": "user", "content": f"Message: {example}"}, {"role": "assistant", "content": title}]
    messages.append({"role": "user", "content": f"Message: {_excerpt(question)}"})
    return GenerationRequest.of(messages, cache_scope=cache_scope, max_new_tokens=TITLE_MAX_NEW_TOKENS, temperature=0.0)


def clean_title(text: str) -> str | None:
    """The model's reply as a title: its first line, without a "Title:" label, markup,
    quotes or a closing full stop, at most ``TITLE_MAX_WORDS`` words and
    ``TITLE_MAX_CHARS`` characters; None when no word is left."""
    line = next((line for line in text.splitlines() if line.strip(_MARKUP + _QUOTES + " \t")), "")
    title = " ".join(line.split())
    for _ in range(3):  # "**Title:** \"Trip\"." has markup, a label, quotes and a stop, in any order
        title = _TITLE_LABEL.sub("", title.strip(_MARKUP + " ")).strip(_QUOTES + " ").rstrip(_CLOSING)
    words = title.split(" ")
    if len(words) > TITLE_MAX_WORDS:
        title = " ".join(words[:TITLE_MAX_WORDS]).rstrip(_CLOSING)
    if len(title) > TITLE_MAX_CHARS:
        title = title[: TITLE_MAX_CHARS + 1].rsplit(" ", 1)[0].rstrip(_CLOSING)[:TITLE_MAX_CHARS]
    return title if re.search(r"[^\W_]", title) else None


# ---- what the model is told of the documents a conversation asks about ----------------

PASSAGES_INSTRUCTIONS = (
    "Answer from the passages of the user's documents below. After each statement taken from a passage, "
    "cite it by its number in square brackets, like [1]. If the passages do not contain the answer, say "
    "that the documents do not answer it instead of guessing."
)
WHOLE_INSTRUCTIONS = (
    "Answer from the user's documents below, given whole. If they do not contain the answer, say that "
    "the documents do not answer it instead of guessing."
)
UNSUPPORTED_INSTRUCTIONS = (
    "The user asked about their documents ({names}), but nothing in them matches this question. Say that "
    "the documents do not answer it. Do not cite them and do not make up what they say."
)
UNREAD_INSTRUCTIONS = (
    "The user asked about their documents ({names}), which are still being read, so their text is not "
    "available yet. Say so, and that they can ask again in a moment."
)


def _source_label(name: str, page: int | None, heading: str) -> str:
    return name + (f", page {page}" if page else "") + (f" ({heading})" if heading else "")


def passages_block(passages: Sequence[tuple[str, int | None, str, str]]) -> str:
    """The instructions and the numbered passages, each (document name, page, heading, text)."""
    numbered = [
        f"[{number}] {_source_label(name, page, heading)}:\n{text}"
        for number, (name, page, heading, text) in enumerate(passages, start=1)
    ]
    return "\n\n".join([PASSAGES_INSTRUCTIONS, *numbered])


def whole_documents_block(documents: Sequence[tuple[str, str]]) -> str:
    """The instructions and each document's whole text, each (name, text)."""
    return "\n\n".join([WHOLE_INSTRUCTIONS, *(f"Document: {name}\n{text}" for name, text in documents)])


def unsupported_block(names: Sequence[str]) -> str:
    return UNSUPPORTED_INSTRUCTIONS.format(names=", ".join(names))


def unread_block(names: Sequence[str]) -> str:
    return UNREAD_INSTRUCTIONS.format(names=", ".join(names))


def system_with_documents(system_prompt: str, documents_block: str) -> str:
    """The conversation's own system prompt first, then what the documents say."""
    return "\n\n".join(part for part in (system_prompt.strip(), documents_block.strip()) if part)
