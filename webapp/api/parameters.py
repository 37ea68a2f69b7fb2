"""The bodies of ``/v1`` requests, checked whole before anything is written.

Each problem is a 400 naming the parameter (``param``) and what is wrong with it; an
unknown model is a 404, as OpenAI answers it. Parameters OpenAI defines that change
nothing here (``user``, ``presence_penalty`` at 0, …) are accepted and ignored; those
whose effect Parley cannot give (``n`` above 1, tools, logprobs, images) are refused
rather than silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from webapp.api import catalog
from webapp.api.errors import ApiError, bad_parameter
from webapp.chat.models import Message
from webapp.chat.services import Turn

DEFAULT_MAX_TOKENS = 512
MAX_STOP_SEQUENCES = 4
MAX_EMBEDDING_INPUTS = 256
ROLES = ("system", "developer", "user", "assistant")
REFUSED = {
    "tools": "'tools' (function calling) is not supported by this server.",
    "tool_choice": "'tool_choice' (function calling) is not supported by this server.",
    "functions": "'functions' is not supported by this server.",
    "logprobs": "'logprobs' is not supported by this server.",
    "response_format": "'response_format' (structured output) is not supported by this server.",
}


@dataclass(frozen=True)
class CompletionParameters:
    model: str
    system_prompt: str
    turns: list[Turn]
    temperature: float
    top_p: float
    max_tokens: int
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool


@dataclass(frozen=True)
class EmbeddingParameters:
    model: str
    texts: list[str]
    base64: bool  # encoding_format: the official client asks for base64 floats by default


def json_body(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return parsed


def _model(body: dict[str, Any], offered: list[str]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_parameter("model", "'model' is required: one of GET /v1/models.")
    if model not in offered:
        raise ApiError(
            404,
            f"The model '{model}' does not exist here; the models are: {', '.join(offered)}.",
            param="model",
            code="model_not_found",
        )
    return model


def _number(
    body: dict[str, Any], name: str, default: float, low: float, high: float, *, low_open: bool = False
) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_parameter(name, f"'{name}' must be a number.")
    if value > high or value < low or (low_open and value == low):
        bound = f"above {low:g}" if low_open else f"at least {low:g}"
        raise bad_parameter(name, f"'{name}' is {value:g}; it must be {bound} and at most {high:g}.")
    return float(value)


def _text_of(content: Any, position: int) -> str:
    param = f"messages[{position}].content"
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad_parameter(param, f"'{param}' may only hold text parts; images and audio are not supported.")
            parts.append(part["text"])
        return "".join(parts)
    raise bad_parameter(param, f"'{param}' must be a string or a list of text parts.")


def _messages(body: dict[str, Any]) -> tuple[str, list[Turn]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_parameter("messages", "'messages' is required: a non-empty list of {role, content}.")
    limit = settings.PARLEY_CHAT_MAX_MESSAGE_CHARS
    system: list[str] = []
    turns: list[Turn] = []
    for position, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_parameter(f"messages[{position}]", f"'messages[{position}]' must be an object.")
        role = message.get("role")
        if role not in ROLES:
            raise bad_parameter(
                f"messages[{position}].role",
                f"'messages[{position}].role' is {role!r}; it must be one of {', '.join(ROLES)}.",
            )
        text = _text_of(message.get("content"), position)
        if len(text) > limit:
            raise bad_parameter(
                f"messages[{position}].content",
                f"'messages[{position}].content' is {len(text):,} characters long; the limit is {limit:,}.",
            )
        if role in ("system", "developer"):
            system.append(text)
        else:
            turns.append(Turn(role=Message.Role.USER if role == "user" else Message.Role.ASSISTANT, content=text))
    if not turns or turns[-1].role != Message.Role.USER:
        raise bad_parameter("messages", "The last of 'messages' (after any system messages) must be the user's.")
    if not turns[-1].content.strip():
        raise bad_parameter("messages", "The last user message is empty.")
    return "\n\n".join(system), turns


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    if (
        not isinstance(stop, list)
        or not all(isinstance(item, str) and item for item in stop)
        or len(stop) > MAX_STOP_SEQUENCES
    ):
        raise bad_parameter(
            "stop", f"'stop' must be a string or a list of at most {MAX_STOP_SEQUENCES} non-empty strings."
        )
    return tuple(stop)


def _max_tokens(body: dict[str, Any]) -> int:
    limit = settings.PARLEY_CHAT_MAX_ANSWER_TOKENS
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    value = body.get(name)
    if value is None:
        return min(DEFAULT_MAX_TOKENS, limit)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise bad_parameter(name, f"'{name}' must be a whole number from 1 to {limit}.")
    return value


def completion_parameters(body: dict[str, Any]) -> CompletionParameters:
    model = _model(body, catalog.chat_models())
    for name, refusal in REFUSED.items():
        if body.get(name) not in (None, False, []):
            raise bad_parameter(name, refusal)
    n = body.get("n")
    if n is not None and n != 1:
        raise bad_parameter("n", "'n' must be 1: this server writes one choice per request.")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_parameter("stream", "'stream' must be true or false.")
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, dict) or not stream):
        raise bad_parameter("stream_options", "'stream_options' is an object, and only for 'stream': true.")
    include_usage = bool((options or {}).get("include_usage", False))
    system_prompt, turns = _messages(body)
    return CompletionParameters(
        model=model,
        system_prompt=system_prompt,
        turns=turns,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0, low_open=True),
        max_tokens=_max_tokens(body),
        stop=_stop(body),
        stream=stream,
        include_usage=include_usage,
    )


def embedding_parameters(body: dict[str, Any]) -> EmbeddingParameters:
    model = _model(body, catalog.embedding_models())
    given = body.get("input")
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
        raise bad_parameter(
            "input", "'input' must be a string or a non-empty list of strings (token ids are not taken)."
        )
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise bad_parameter(
            "input", f"'input' holds {len(texts)} texts; at most {MAX_EMBEDDING_INPUTS} go in one request."
        )
    if any(not text.strip() for text in texts):
        raise bad_parameter("input", "'input' holds an empty text.")
    limit = settings.PARLEY_CHAT_MAX_MESSAGE_CHARS
    if any(len(text) > limit for text in texts):
        raise bad_parameter("input", f"A text of 'input' is longer than {limit:,} characters.")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise bad_parameter("encoding_format", "'encoding_format' must be 'float' or 'base64'.")
    if body.get("dimensions") is not None:
        raise bad_parameter("dimensions", "'dimensions' cannot be changed: the model's vectors have their own size.")
    return EmbeddingParameters(model=model, texts=texts, base64=encoding == "base64")
