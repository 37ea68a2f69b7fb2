"""A long prompt arriving while answers stream: prefilled whole, or a chunk a step.

    python bench/long_prompt.py [--streams 8] [--prompt-chars 16000] [--repeats 2]

Some answers are streaming when a long message arrives (the held-out text, repeated to
16,000 characters, to summarize: about 3,500 tokens). With ``prefill_tokens=0`` the engine prefills it in one pass and
every streaming answer waits for it; with the generation worker's budget (256) it is
prefilled a chunk a step, with a decoding step of the others between chunks. Prints, for
both in the same run (alternating, medians over the repeats), the longest wait for the
next token among the streaming answers and the long prompt's time to first token.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generation import HELD_OUT_TEXT, TOPICS, request
from inference import Engine, GenerationRequest, Stream
from inference.config import InferenceConfig
from inference.models import load_chat_model


def arrivals(stream: Stream, times: list[float]) -> None:
    for _ in stream:
        times.append(time.perf_counter())


def trial(engine: Engine, streams: int, long_request: GenerationRequest) -> tuple[float, float, int]:
    """(the longest wait for a token of any streaming answer while the long prompt waited
    for its first token, in ms; that time to first token, in ms; its prompt tokens)"""
    running = [engine.submit(request(topic, 2000)) for topic in TOPICS[:streams]]
    times: list[list[float]] = [[] for _ in running]
    readers = [threading.Thread(target=arrivals, args=(s, t)) for s, t in zip(running, times, strict=True)]
    for reader in readers:
        reader.start()
    while min(len(t) for t in times) < 5:  # all streaming
        time.sleep(0.05)
    submitted = time.perf_counter()
    long = engine.submit(long_request)
    next(iter(long))
    first_token = time.perf_counter()
    for stream in running:
        stream.cancel()
    for reader in readers:
        reader.join()
    long.result()
    # per answer, the longest time without a token between the long prompt's arrival and
    # its first token (the window's ends count, as the answers were cancelled right after)
    gaps = [
        later - earlier
        for stream_times in times
        for earlier, later in itertools.pairwise(
            [submitted, *(t for t in stream_times if submitted < t < first_token), first_token]
        )
    ]
    return max(gaps) * 1000, (first_token - submitted) * 1000, long.prompt_tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--prompt-chars", type=int, default=16000)
    parser.add_argument("--chunk", type=int, default=256, help="the generation worker's prefill budget")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    model, tokenizer = load_chat_model(InferenceConfig.from_env())
    held_out = HELD_OUT_TEXT.read_text()
    text = (held_out * (args.prompt_chars // len(held_out) + 1))[: args.prompt_chars]
    long_request = GenerationRequest.of(
        [{"role": "user", "content": f"Summarize this text:\n\n{text}"}], max_new_tokens=8, temperature=0
    )
    engines = {"whole": Engine(model, tokenizer), "chunked": Engine(model, tokenizer, prefill_tokens=args.chunk)}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
    prompt_tokens = 0
    for repeat in range(args.repeats):
        for name, engine in engines.items():
            stall, ttft, prompt_tokens = trial(engine, args.streams, long_request)
            figures[name].append((stall, ttft))
            print(f"repeat {repeat + 1} {name}: longest wait {stall:.0f} ms, long prompt's first token {ttft:.0f} ms")
    for engine in engines.values():
        engine.close()
    (stall_whole, ttft_whole), (stall_chunked, ttft_chunked) = (
        (statistics.median(s for s, _ in figures[name]), statistics.median(t for _, t in figures[name]))
        for name in ("whole", "chunked")
    )
    print(f"{args.streams} streaming answers; a {prompt_tokens:,}-token prompt; chunks of {args.chunk}")
    print(
        f"stall_ms_whole={stall_whole:.0f} stall_ms_chunked={stall_chunked:.0f} "
        f"long_ttft_ms_whole={ttft_whole:.0f} long_ttft_ms_chunked={ttft_chunked:.0f}"
    )


if __name__ == "__main__":
    main()
