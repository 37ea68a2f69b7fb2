"""Fitting a long conversation into the model's window: the engine's search for the first
turn to keep, against dropping the oldest turn one at a time (how the engine did it before).

    python bench/trimming.py [--exchanges 150] [--repeats 3]

Both run on the same conversation (each question and answer about 100 tokens) with the
default chat model's tokenizer and window; medians over the repeats. Ends with one line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference import Engine
from inference.types import ChatMessage, GenerationRequest, SamplingParams


def one_at_a_time(engine: Engine, messages: list[ChatMessage], budget: int) -> tuple[list[int], int]:
    """The prompt without the oldest turns, dropped one by one until it fits (tests use it too)."""
    system = [m for m in messages[:1] if m.role == "system"]
    turns, dropped = messages[len(system) :], 0
    ids = engine._encode(system + turns)
    while len(ids) > budget:
        turns, dropped = turns[1:], dropped + 1
        while turns[0].role != "user":
            turns, dropped = turns[1:], dropped + 1
        ids = engine._encode(system + turns)
    return ids, dropped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exchanges", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    engine = Engine.from_config()
    history = [ChatMessage("system", "Be brief.")]
    for n in range(args.exchanges):
        history += [
            ChatMessage("user", f"Question {n}: " + "tell me more about the rivers of Europe and their history " * 10),
            ChatMessage("assistant", f"Answer {n}: " + "The Danube flows through ten countries. " * 12),
        ]
    history.append(ChatMessage("user", "And the Rhine?"))
    request = GenerationRequest(tuple(history), SamplingParams(max_new_tokens=512))
    times: dict[str, list[float]] = {"search": [], "one_at_a_time": []}
    for _ in range(args.repeats):
        started = time.perf_counter()
        ids, trimmed = engine._prompt(request)
        times["search"].append(time.perf_counter() - started)
        started = time.perf_counter()
        expected = one_at_a_time(engine, history, engine.max_context - 512)
        times["one_at_a_time"].append(time.perf_counter() - started)
        assert (ids, trimmed) == expected, "the two ways disagree"
    engine.close()
    search, linear = (statistics.median(times[name]) for name in ("search", "one_at_a_time"))
    print(f"{len(history)} messages, {len(ids):,} prompt tokens kept, {trimmed} messages left out")
    print(f"trim_search_s={search:.3f} trim_one_at_a_time_s={linear:.3f} speedup={linear / search:.1f}")


if __name__ == "__main__":
    main()
