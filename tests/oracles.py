"""References the tests (and the benchmarks) hold the code against."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inference import ChatMessage, Engine

# An English text no model here was tuned on: perplexity judges a converted model by it.
HELD_OUT_TEXT = Path(__file__).resolve().parent / "data" / "heldout_english.txt"


def one_at_a_time(engine: Engine, messages: list[ChatMessage], budget: int) -> tuple[list[int], int]:
    """The prompt without the oldest turns, dropped one by one until it fits in ``budget``
    tokens (how the engine trimmed before it searched), and how many messages were dropped."""
    system = [m for m in messages[:1] if m.role == "system"]
    turns, dropped = messages[len(system) :], 0
    ids = engine._encode(system + turns)
    while len(ids) > budget:
        turns, dropped = turns[1:], dropped + 1
        while turns[0].role != "user":
            turns, dropped = turns[1:], dropped + 1
        ids = engine._encode(system + turns)
    return ids, dropped
