"""What a caller hands the engine and what it gets back, as frozen dataclasses.

A ``GenerationRequest`` is messages plus ``SamplingParams``; a finished request is
described by ``GenerationStats`` and, joined with its text, a ``GenerationResult``.
These types know nothing of models or threads: the web layer, benchmarks and tests build
and read them without loading torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

ROLES = ("system", "user", "assistant")
FinishReason = Literal["stop", "length", "cancelled", "error"]


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 512
    temperature: float = 0.7  # 0 means greedy
    top_p: float = 0.95
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False  # benchmarks: always produce max_new_tokens


@dataclass(frozen=True)
class GenerationRequest:
    messages: tuple[ChatMessage, ...]
    params: SamplingParams = SamplingParams()
    # Requests share kept prefixes (prefix_cache.py) only within one scope: a chat server
    # gives each user their own, so how soon a first token comes says nothing of other users.
    cache_scope: str = ""

    @classmethod
    def of(
        cls, messages: Sequence[dict[str, str] | ChatMessage], *, cache_scope: str = "", **params: Any
    ) -> GenerationRequest:
        converted = tuple(m if isinstance(m, ChatMessage) else ChatMessage(m["role"], m["content"]) for m in messages)
        if "stop" in params:
            params["stop"] = tuple(params["stop"])
        return cls(messages=converted, params=SamplingParams(**params), cache_scope=cache_scope)


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token: float | None  # seconds from submit to the first token
    tokens_per_second: float
    finish_reason: FinishReason
    trimmed_messages: int = 0  # oldest turns left out to fit the model's window
    error: str | None = None
    cached_prompt_tokens: int = 0  # leading prompt tokens taken from an earlier request (prefix_cache.py)
    # seconds from the first token to the end, for the time between tokens; None without one
    decode_seconds: float | None = None


@dataclass(frozen=True)
class GenerationResult:
    text: str
    stats: GenerationStats
