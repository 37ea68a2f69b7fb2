"""The engine's own continuous batch against transformers' continuous batching.

    python -m bench.continuous_batching [--streams 8 32] [--new-tokens 32] [--repeats 3]

One process, one model copy in float32, greedy, a fixed number of new tokens (end of
sequence ignored), the same prompts for both. For each number of streams the two take
turns (the order reversed every other repeat) and each prints its tokens per second over
the whole run, medians over the repeats, with the ratio. transformers' path is
``model.generate_batch`` (its paged cache and scheduler, started for each run, as a
server would keep it warm: the first, warm-up run is not counted). Ends with one line
``engine8_tps=… transformers8_tps=… ratio8=…`` per number of streams.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

from bench.common import compared, median, parser, taking_turns
from bench.generation import TOPICS, engine_run, topic_requests
from inference import Engine
from inference.config import InferenceConfig
from inference.models import load_chat_model


def transformers_run(model: Any, tokenizer: Any, streams: int, new_tokens: int) -> float:
    """Tokens per second of ``generate_batch`` over ``streams`` prompts at once."""
    from transformers import GenerationConfig

    prompts = []
    for topic in TOPICS[:streams]:
        encoded = tokenizer.apply_chat_template(
            [{"role": "user", "content": f"Explain {topic} in a short paragraph."}],
            add_generation_prompt=True,
            tokenize=True,
        )
        prompts.append(list(encoded["input_ids"]) if not isinstance(encoded, list) else encoded)
    config = GenerationConfig(
        max_new_tokens=new_tokens, do_sample=False, eos_token_id=-1, pad_token_id=tokenizer.pad_token_id or 0
    )
    started = time.perf_counter()
    outputs = model.generate_batch(prompts, generation_config=config, warmup=False)
    elapsed = time.perf_counter() - started
    return sum(len(output.generated_tokens) for output in outputs.values()) / elapsed


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--streams", type=int, nargs="+", default=[8, 32])
    arguments.add_argument("--new-tokens", type=int, default=32)
    arguments.add_argument("--repeats", type=int, default=3)
    args = arguments.parse_args()

    config = dataclasses.replace(InferenceConfig.from_env(), dtype="float32")
    model, tokenizer = load_chat_model(config)
    engine = Engine(model, tokenizer, max_batch_size=max(args.streams))
    summary = []
    for streams in args.streams:
        requests = topic_requests(TOPICS[:streams], args.new_tokens)
        runs: dict[str, Callable[[], float]] = {
            "engine": functools.partial(lambda requests: engine_run(engine, requests)[0], requests),
            "transformers": functools.partial(transformers_run, model, tokenizer, streams, args.new_tokens),
        }
        taking_turns(1, runs)  # warm-up, not counted
        figures = {name: median(values) for name, values in taking_turns(args.repeats, runs).items()}
        print(
            f"{streams} streams: the engine "
            + compared(figures["engine"], figures["transformers"], "tokens/s", "transformers' continuous batching")
        )
        ratio = figures["engine"] / figures["transformers"]
        summary.append(
            f"engine{streams}_tps={figures['engine']:.1f} transformers{streams}_tps={figures['transformers']:.1f} "
            f"ratio{streams}={ratio:.2f}"
        )
    engine.close()
    print(" ".join(summary))


if __name__ == "__main__":
    main()
