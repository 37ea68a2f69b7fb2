"""Sampling cost: the nucleus found by sorting each row against inference.sampling.

    python bench/sampling.py [--repeats 3]

Part 1 samples real next-token distributions of the default chat model (a held-out text
read as an answer, every position) at the chat defaults, temperature 0.7 and top-p 0.95:
one row at a time with a full sort of the vocabulary (how the engine sampled before) and
with ``inference.sampling.sample``, at 1, 8 and 32 rows; medians over the windows.
Part 2 runs the engine with 32 streams greedy and sampled, alternating, medians over the
repeats: sampling should cost the batch little. Ends with one summary line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generation import HELD_OUT_TEXT, TOPICS, engine_run, request
from inference import Engine
from inference.config import InferenceConfig
from inference.models import load_chat_model
from inference.sampling import sample

TEMPERATURE, TOP_P = 0.7, 0.95


def sort_each_row(logits: torch.Tensor, generators: list[torch.Generator]) -> list[int]:
    chosen = []
    for row, generator in enumerate(generators):
        probs = torch.softmax(logits[row] / TEMPERATURE, dim=-1)
        ordered, order = probs.sort(descending=True)
        kept = ordered * ((ordered.cumsum(-1) - ordered) < TOP_P)
        chosen.append(int(order[torch.multinomial(kept, 1, generator=generator)]))
    return chosen


def sample_batch(logits: torch.Tensor, generators: list[torch.Generator]) -> list[int]:
    rows = len(generators)
    uniform = torch.cat([torch.rand(1, generator=g) for g in generators])
    return list(sample(logits, torch.full((rows,), TEMPERATURE), torch.full((rows,), TOP_P), uniform).tolist())


def real_logits(model: Any, tokenizer: Any) -> torch.Tensor:
    messages = [
        {"role": "user", "content": "Tell me about it."},
        {"role": "assistant", "content": HELD_OUT_TEXT.read_text()[:4000]},
    ]
    ids = tokenizer.apply_chat_template(messages, return_tensors="pt", return_dict=True)["input_ids"][:, :800]
    with torch.inference_mode():
        return model(input_ids=ids).logits[0, 20:].float()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=64)
    args = parser.parse_args()
    model, tokenizer = load_chat_model(InferenceConfig.from_env())
    logits = real_logits(model, tokenizer)

    per_row: dict[int, float] = {}
    batched: dict[int, float] = {}
    for rows in (1, 8, 32):
        generators = [torch.Generator().manual_seed(i) for i in range(rows)]
        times: dict[str, list[float]] = {"sort": [], "batch": []}
        for start in range(0, len(logits) - rows, max(rows, 24)):
            window = logits[start : start + rows].contiguous()
            for name, sampler in (("sort", sort_each_row), ("batch", sample_batch)):
                started = time.perf_counter()
                sampler(window, generators)
                times[name].append(time.perf_counter() - started)
        per_row[rows] = statistics.median(times["sort"]) * 1000
        batched[rows] = statistics.median(times["batch"]) * 1000
        print(f"{rows:2d} rows: sorting each row {per_row[rows]:.2f} ms, sample() {batched[rows]:.2f} ms", flush=True)

    engine = Engine(model, tokenizer, max_batch_size=32)
    warm_up = [request(topic, 8, temperature=TEMPERATURE, top_p=TOP_P, seed=1) for topic in TOPICS[:2]]
    engine_run(engine, warm_up)
    streams = 32
    figures: dict[str, list[float]] = {"greedy": [], "sampled": []}
    for _ in range(args.repeats):
        for name, temperature in (("greedy", 0.0), ("sampled", TEMPERATURE)):
            batch = [
                request(topic, args.new_tokens, temperature=temperature, top_p=TOP_P, seed=1)
                for topic in TOPICS[:streams]
            ]
            figures[name].append(engine_run(engine, batch)[0])
        greedy, sampled = figures["greedy"][-1], figures["sampled"][-1]
        print(f"engine, {streams} streams: greedy {greedy:.1f} tok/s, sampled {sampled:.1f}", flush=True)
    engine.close()
    greedy, sampled = (statistics.median(figures[name]) for name in ("greedy", "sampled"))
    print(
        f"sort_ms_32={per_row[32]:.1f} sample_ms_32={batched[32]:.2f} speedup32={per_row[32] / batched[32]:.1f} "
        f"engine32_greedy_tps={greedy:.1f} engine32_sampled_tps={sampled:.1f} sampled_vs_greedy={sampled / greedy:.2f}"
    )


if __name__ == "__main__":
    main()
