"""A long prompt arriving while answers stream: prefilled whole, or a chunk a step.

    python -m bench.long_prompt [--streams 8] [--prompt-chars 16000] [--repeats 2]

Some answers are streaming when a long message arrives (the held-out text, repeated to
16,000 characters, to summarize: about 3,500 tokens). With ``prefill_tokens=0`` the engine prefills it in one pass and
every streaming answer waits for it; with the generation worker's budget (256) it is
prefilled a chunk a step, with a decoding step of the others between chunks. Prints, for
both in the same run (taking turns, medians over the repeats), the longest wait for the
next token among the streaming answers, the long prompt's time to first token, and that
of a short message sent once the long one's prefill has begun.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time

from bench.common import median, parser, taking_turns
from bench.generation import TOPICS, request
from inference import Engine, GenerationRequest, Stream
from inference.config import InferenceConfig
from inference.models import load_chat_model
from tests.oracles import HELD_OUT_TEXT


def arrivals(stream: Stream, times: list[float]) -> None:
    for _ in stream:
        times.append(time.perf_counter())


def trial(engine: Engine, streams: int, long_request: GenerationRequest) -> tuple[float, float, float, int]:
    """(the longest wait for a token of any streaming answer while the long prompt waited
    for its first token; that time to first token; the time to first token of a short
    message sent once the long one's prefill began; all in ms; the long prompt's tokens)"""
    running = [engine.submit(request(topic, 2000)) for topic in TOPICS[:streams]]
    times: list[list[float]] = [[] for _ in running]
    readers = [threading.Thread(target=arrivals, args=(s, t)) for s, t in zip(running, times, strict=True)]
    for reader in readers:
        reader.start()
    while min(len(t) for t in times) < 5:  # all streaming
        time.sleep(0.05)
    submitted = time.perf_counter()
    long = engine.submit(long_request)
    while engine.queue_length:  # the long prompt is being prefilled
        time.sleep(0.005)
    short = engine.submit(request(TOPICS[-1], 8))
    next(iter(long))
    first_token = time.perf_counter()
    short_stats = short.result().stats
    assert short_stats is not None
    assert short_stats.time_to_first_token is not None
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
    short_ttft = short_stats.time_to_first_token * 1000
    return max(gaps) * 1000, (first_token - submitted) * 1000, short_ttft, long.prompt_tokens


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--streams", type=int, default=8)
    arguments.add_argument("--prompt-chars", type=int, default=16000)
    arguments.add_argument("--chunk", type=int, default=256, help="the generation worker's prefill budget")
    arguments.add_argument("--repeats", type=int, default=2)
    args = arguments.parse_args()
    model, tokenizer = load_chat_model(InferenceConfig.from_env())
    held_out = HELD_OUT_TEXT.read_text()
    text = (held_out * (args.prompt_chars // len(held_out) + 1))[: args.prompt_chars]
    long_request = GenerationRequest.of(
        [{"role": "user", "content": f"Summarize this text:\n\n{text}"}], max_new_tokens=8, temperature=0
    )
    engines = {"whole": Engine(model, tokenizer), "chunked": Engine(model, tokenizer, prefill_tokens=args.chunk)}

    def one_trial(name: str) -> tuple[float, float, float, int]:
        figures = stall, ttft, short_ttft, _ = trial(engines[name], args.streams, long_request)
        print(
            f"{name}: longest wait {stall:.0f} ms, long prompt's first token {ttft:.0f} ms, "
            f"a short message's {short_ttft:.0f} ms",
            flush=True,
        )
        return figures

    trials = taking_turns(args.repeats, {name: functools.partial(one_trial, name) for name in engines})
    for engine in engines.values():
        engine.close()
    prompt_tokens = trials["whole"][-1][3]
    (stall_whole, ttft_whole, short_whole), (stall_chunked, ttft_chunked, short_chunked) = (
        tuple(median(values) for values in list(zip(*trials[name], strict=True))[:3]) for name in ("whole", "chunked")
    )
    print(f"{args.streams} streaming answers; a {prompt_tokens:,}-token prompt; chunks of {args.chunk}")
    print(
        f"stall_ms_whole={stall_whole:.0f} stall_ms_chunked={stall_chunked:.0f} "
        f"long_ttft_ms_whole={ttft_whole:.0f} long_ttft_ms_chunked={ttft_chunked:.0f} "
        f"short_ttft_ms_whole={short_whole:.0f} short_ttft_ms_chunked={short_chunked:.0f}"
    )


if __name__ == "__main__":
    main()
