"""Generation throughput: transformers generate() one request at a time against the engine.

    python -m bench.generation [--new-tokens 64] [--repeats 3]

Everything runs in one process and one run, greedy, with a fixed number of new tokens;
figures are medians over the repeats. After the float32 figures, the same engine runs
the model in bfloat16 (PARLEY_DTYPE=bfloat16) and in int8 (PARLEY_CHAT_QUANTIZE=int8),
each with its perplexity on a held-out text. Ends with one summary line.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.common import median, parser
from inference import Engine, GenerationRequest
from inference.config import InferenceConfig
from inference.models import load_chat_model
from inference.quantize import perplexity, quantize_int8
from tests.oracles import HELD_OUT_TEXT

TOPICS = [
    "the history of Rome", "how bread is made", "why the sky is blue", "the water cycle", "how bees make honey",
    "the rules of chess", "how a bicycle works", "the life of a star", "what volcanoes are", "how to plant a tree",
    "the moon's phases", "how rainbows form", "what clouds are made of", "how trains run", "the first computers",
    "how fish breathe", "why leaves change colour", "how a compass works", "what tides are", "how ants live",
    "the Great Wall of China", "how paper is made", "what a glacier is", "how birds migrate", "how soap cleans",
    "what electricity is", "how the heart pumps blood", "the invention of printing", "how coral reefs grow",
    "why we sleep", "how wind turbines work", "what deserts are like",
]  # fmt: skip


def request(topic: str, new_tokens: int, **sampling: Any) -> GenerationRequest:
    """Exactly ``new_tokens`` about ``topic``; greedy unless ``sampling`` says otherwise."""
    return GenerationRequest.of(
        [{"role": "user", "content": f"Explain {topic} in a short paragraph."}],
        max_new_tokens=new_tokens,
        ignore_eos=True,
        **{"temperature": 0, **sampling},
    )


def topic_requests(topics: list[str], new_tokens: int) -> list[GenerationRequest]:
    return [request(topic, new_tokens) for topic in topics]


def serial_generate(model: Any, tokenizer: Any, topics: list[str], new_tokens: int) -> float:
    import torch

    started, produced = time.perf_counter(), 0
    for topic in topics:
        inputs = tokenizer.apply_chat_template(
            [{"role": "user", "content": f"Explain {topic} in a short paragraph."}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        with torch.inference_mode():
            output = model.generate(
                **inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, top_p=None, top_k=None
            )
        produced += output.shape[1] - inputs["input_ids"].shape[1]
    return produced / (time.perf_counter() - started)


def engine_run(engine: Engine, requests: list[GenerationRequest]) -> tuple[float, list[float]]:
    """All the requests at once: tokens per second over the run, and each time to first token.

    The engine starts each run keeping only what a server that has answered anyone keeps:
    the system prompt and chat template (from one question on another topic), never an
    earlier run's identical prompts.
    """
    engine.clear_prefix_cache()
    engine.generate(request("the colour of the sea", 1))
    started = time.perf_counter()
    streams = [engine.submit(r) for r in requests]
    results = [s.result() for s in streams]
    elapsed = time.perf_counter() - started
    produced = sum(r.stats.completion_tokens for r in results)
    ttfts = [r.stats.time_to_first_token or 0.0 for r in results]
    return produced / elapsed, ttfts


@dataclass
class EngineFigures:
    """Per repeat: tokens/s at 1 (mean over requests one by one), 8 and 32 streams, and the
    median time to first token at 8."""

    one: list[float] = field(default_factory=list)
    eight: list[float] = field(default_factory=list)
    thirty_two: list[float] = field(default_factory=list)
    ttft8_ms: list[float] = field(default_factory=list)
    thirty_two_no_prefix_cache: list[float] = field(default_factory=list)

    def measure(
        self, engine: Engine, new_tokens: int, single_topics: list[str], no_prefix_cache: Engine | None = None
    ) -> None:
        self.one.append(statistics.mean(engine_run(engine, [request(t, new_tokens)])[0] for t in single_topics))
        tps8, ttfts = engine_run(engine, topic_requests(TOPICS[:8], new_tokens))
        self.eight.append(tps8)
        self.ttft8_ms.append(median(ttfts) * 1000)
        self.thirty_two.append(engine_run(engine, topic_requests(TOPICS[:32], new_tokens))[0])
        if no_prefix_cache is not None:
            runs = topic_requests(TOPICS[:32], new_tokens)
            self.thirty_two_no_prefix_cache.append(engine_run(no_prefix_cache, runs)[0])

    def medians(self) -> tuple[float, float, float, float]:
        figures = (self.one, self.eight, self.thirty_two, self.ttft8_ms)
        one, eight, thirty_two, ttft8 = (median(values) for values in figures)
        return one, eight, thirty_two, ttft8


def measure_engine(model: Any, tokenizer: Any, args: argparse.Namespace) -> EngineFigures:
    """The engine's figures for a converted copy of the model (int8, bfloat16)."""
    engine = Engine(model, tokenizer, max_batch_size=32, prefill_tokens=args.prefill_tokens)
    engine_run(engine, topic_requests(TOPICS[:2], 8))
    figures = EngineFigures()
    for _ in range(args.repeats):
        figures.measure(engine, args.new_tokens, TOPICS[: args.serial_requests])
    engine.close()
    return figures


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--new-tokens", type=int, default=64)
    arguments.add_argument("--repeats", type=int, default=3)
    arguments.add_argument("--serial-requests", type=int, default=4)
    arguments.add_argument(
        "--prefill-tokens", type=int, default=0, help="the engine's prefill budget (the chat worker uses 256)"
    )
    args = arguments.parse_args()
    import torch

    # float32 whatever this CPU would choose: bfloat16 and int8 are measured against it below
    config = dataclasses.replace(InferenceConfig.from_env(), dtype="float32")
    if config.chat_quantize != "none":
        sys.exit("run the benchmark on the float model: it measures int8 itself (unset PARLEY_CHAT_QUANTIZE).")
    model, tokenizer = load_chat_model(config)
    engine = Engine(model, tokenizer, max_batch_size=32, prefill_tokens=args.prefill_tokens)
    # the same model, every prompt prefilled whole: what keeping the shared system prompt adds
    uncached = Engine(model, tokenizer, max_batch_size=32, prefill_tokens=args.prefill_tokens, prefix_cache_mb=0)
    n = args.new_tokens
    engine_run(engine, topic_requests(TOPICS[:2], 8))  # warm up

    serial: list[float] = []
    fp32 = EngineFigures()
    for repeat in range(args.repeats):
        serial.append(serial_generate(model, tokenizer, TOPICS[: args.serial_requests], n))
        fp32.measure(engine, n, TOPICS[: args.serial_requests], no_prefix_cache=uncached)
        print(
            f"repeat {repeat + 1}: generate() serial {serial[-1]:.1f} tok/s, engine 1 {fp32.one[-1]:.1f}, "
            f"8 {fp32.eight[-1]:.1f}, 32 {fp32.thirty_two[-1]:.1f} "
            f"(prefix cache off: {fp32.thirty_two_no_prefix_cache[-1]:.1f})",
            flush=True,
        )
    engine.close()
    uncached.close()

    text = HELD_OUT_TEXT.read_text()
    ppl_fp32 = perplexity(model, tokenizer, text)
    # bfloat16 (PARLEY_DTYPE=bfloat16): a copy, since int8 below converts the float model in place
    bf16_model = copy.deepcopy(model).to(torch.bfloat16)
    ppl_bf16 = perplexity(bf16_model, tokenizer, text)
    bf16 = measure_engine(bf16_model, tokenizer, args)
    del bf16_model

    quantize_int8(model)
    ppl_int8 = perplexity(model, tokenizer, text)
    int8 = measure_engine(model, tokenizer, args)

    a = median(serial)
    b, c, d, e = fp32.medians()
    int8_one, int8_eight, f, _ = int8.medians()
    change = ppl_int8 / ppl_fp32 - 1
    print(
        f"perplexity on {HELD_OUT_TEXT.name}: fp32 {ppl_fp32:.2f}, int8 {ppl_int8:.2f} ({change:+.1%}), "
        f"bf16 {ppl_bf16:.2f} ({ppl_bf16 / ppl_fp32 - 1:+.1%})"
    )
    print(f"int8 engine: 1 stream {int8_one:.1f} tok/s, 8 {int8_eight:.1f}, 32 {f:.1f}")
    no_cache = median(fp32.thirty_two_no_prefix_cache)
    print(f"fp32 engine, 32 streams, prefix cache off: {no_cache:.1f} tok/s (speedup32 {no_cache / a:.2f})")
    bf16_one, bf16_eight, bf16_thirty_two, bf16_ttft8 = bf16.medians()
    print(
        f"bf16 engine: 1 stream {bf16_one:.1f} tok/s, 8 {bf16_eight:.1f}, 32 {bf16_thirty_two:.1f}, "
        f"ttft8_p50_ms {bf16_ttft8:.0f}"
    )
    print(
        f"serial_tps={a:.1f} engine1_tps={b:.1f} engine8_tps={c:.1f} engine32_tps={d:.1f} "
        f"speedup1={b / a:.2f} speedup8={c / a:.2f} speedup32={d / a:.2f} "
        f"ttft8_p50_ms={e:.0f} int8_engine32_tps={f:.1f}"
    )


if __name__ == "__main__":
    main()
