"""Parley's engine against llama.cpp on the same weights, at 1, 8 and 32 streams.

    python -m bench.vs_llamacpp [--quick] [--new-tokens 64] [--repeats 3]

In one process and one run, taking turns (bench/common.py), the same prompts go through
Parley's engine and through llama.cpp (llama-cpp-python, its multi-sequence batch API;
bench/llamacpp.py): Parley in float32 against an F32 GGUF written from the very
safetensors Parley loads, Parley's int8 (PARLEY_CHAT_QUANTIZE=int8) against a Q8_0 GGUF
of them, and the packaged Q4_1 file for reference. Greedy, exactly ``--new-tokens`` new
tokens per stream, every stream's prompt prefilled from nothing (Parley's prefix cache is
cleared before each run); tokens/s counts the whole run, prefill included, medians over
the repeats. 1 stream is the mean over ``--single`` prompts one after another.

Also printed: the share of float32 greedy tokens on which the two agree (each answer's
tokens up to its first difference; float rounding may tip a later near-tie). Ends with
one summary line. ``--quick``: 16 tokens, one repeat, one single prompt (under 3 minutes
on 2 cores). ``--float32-only`` leaves int8 and the Q8_0 and Q4_1 files out. Parley's
step is what PARLEY_CHAT_STEP says (compiled by default: the engine compiles it before
the clock starts); ``--uncompiled-too`` adds the uncompiled fused step beside it.

torch and llama.cpp each bring an OpenMP runtime; ``inference`` is imported before torch
starts so that both wait passively (OMP_WAIT_POLICY, inference/__init__.py): with threads
spinning, llama.cpp ran several times slower beside torch in one process.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import median, parser, taking_turns
from bench.generation import TOPICS, request
from bench.llamacpp import LlamaCpp, gguf_from_safetensors
from inference import Engine, GenerationRequest
from inference.config import InferenceConfig
from inference.models import chat_model_dir, load_chat_model, packaged_gguf
from inference.prompts import encode
from inference.quantize import quantize_int8

STREAMS = (1, 8, 32)


@dataclass
class Figures:
    """One runner's tokens/s per stream count, a list per repeat, and its last answers."""

    tps: dict[int, list[float]] = field(default_factory=lambda: {n: [] for n in STREAMS})
    answers: dict[str, str] = field(default_factory=dict)

    def median(self, streams: int) -> float:
        return median(self.tps[streams])


def engine_answers(engine: Engine, requests: list[GenerationRequest]) -> tuple[int, list[str]]:
    """All the requests at once, from an empty prefix cache: tokens produced and the texts."""
    engine.clear_prefix_cache()
    results = [stream.result() for stream in [engine.submit(r) for r in requests]]
    return sum(r.stats.completion_tokens for r in results), [r.text for r in results]


def llamacpp_answers(
    llama: LlamaCpp, tokenizer: Any, prompts: list[list[int]], new_tokens: int
) -> tuple[int, list[str]]:
    outputs = llama.generate(prompts, new_tokens)
    return sum(len(o) for o in outputs), [tokenizer.decode(o) for o in outputs]


Runner = Callable[[list[str]], tuple[int, list[str]]]


def measure(run: Runner, figures: Figures, single: list[str]) -> None:
    """One repeat: each single prompt alone (the mean of their tokens/s), then 8 and 32 at once."""
    rates = []
    for topic in single:
        started = time.perf_counter()
        produced, texts = run([topic])
        rates.append(produced / (time.perf_counter() - started))
    figures.tps[1].append(statistics.mean(rates))
    for streams in STREAMS[1:]:
        started = time.perf_counter()
        produced, texts = run(TOPICS[:streams])
        figures.tps[streams].append(produced / (time.perf_counter() - started))
        figures.answers.update(zip(TOPICS[:streams], texts, strict=True))


def same_tokens(tokenizer: Any, ours: dict[str, str], theirs: dict[str, str]) -> float:
    """The share of their answers' tokens that ours begins with (up to the first difference)."""
    agreed = total = 0
    for topic, text in theirs.items():
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        total += len(ids)
        low, high = 0, len(ids)  # the longest run of leading tokens whose text ours starts with
        while low < high:
            middle = (low + high + 1) // 2
            if ours[topic].startswith(tokenizer.decode(ids[:middle])):
                low = middle
            else:
                high = middle - 1
        agreed += low
    return agreed / total if total else 0.0


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--quick", action="store_true", help="16 tokens, one repeat, one single prompt")
    arguments.add_argument("--new-tokens", type=int, default=64)
    arguments.add_argument("--repeats", type=int, default=3)
    arguments.add_argument("--single", type=int, default=2, help="prompts run one at a time for the 1-stream figure")
    arguments.add_argument(
        "--float32-only",
        action="store_true",
        help="leave out int8 and Q8_0 (on a CPU without VNNI, int8's batches take minutes a run)",
    )
    arguments.add_argument(
        "--uncompiled-too",
        action="store_true",
        help="also the uncompiled step (PARLEY_CHAT_STEP=fused) on its own copy of the model, for comparison",
    )
    args = arguments.parse_args()
    if args.quick:
        args.new_tokens, args.repeats, args.single = 16, 1, 1
    import torch

    config = dataclasses.replace(InferenceConfig.from_env(), dtype="float32")
    if config.chat_quantize != "none":
        sys.exit("run the benchmark on the float model: it measures int8 itself (unset PARLEY_CHAT_QUANTIZE).")
    model, tokenizer = load_chat_model(config)
    uncompiled_model = copy.deepcopy(model) if args.uncompiled_too else None
    started = time.perf_counter()
    engines = {"parley fp32": Engine(model, tokenizer, max_batch_size=32, chat_step=config.chat_step)}
    print(f"Parley's engine ready in {time.perf_counter() - started:.1f} s (PARLEY_CHAT_STEP={config.chat_step})")
    if uncompiled_model is not None:
        engines["parley fp32 fused"] = Engine(uncompiled_model, tokenizer, max_batch_size=32, chat_step="fused")
    started = time.perf_counter()
    files = {"llama.cpp F32": gguf_from_safetensors(chat_model_dir(config), packaged_gguf(), "F32")}
    if not args.float32_only:
        int8_model = copy.deepcopy(model)
        quantize_int8(int8_model)
        engines["parley int8"] = Engine(int8_model, tokenizer, max_batch_size=32, chat_step=config.chat_step)
        files["llama.cpp Q8_0"] = gguf_from_safetensors(chat_model_dir(config), packaged_gguf(), "Q8_0")
        files["llama.cpp Q4_1"] = packaged_gguf()
    print(f"GGUF files ready in {time.perf_counter() - started:.1f} s: {', '.join(p.name for p in files.values())}")
    prompt_ids = {topic: encode(tokenizer, request(topic, args.new_tokens).messages) for topic in TOPICS}
    context = max(len(ids) for ids in prompt_ids.values()) + args.new_tokens + 1
    threads = torch.get_num_threads()
    llamas = {
        name: LlamaCpp(path, threads=threads, streams=max(STREAMS), context=context) for name, path in files.items()
    }
    print(f"{torch.get_num_threads()} threads; CPU: {cpu_name()}; torch {torch.__version__}", flush=True)

    def parley(engine: Engine) -> Runner:
        return lambda topics: engine_answers(engine, [request(t, args.new_tokens) for t in topics])

    def llamacpp(llama: LlamaCpp) -> Runner:
        return lambda topics: llamacpp_answers(llama, tokenizer, [prompt_ids[t] for t in topics], args.new_tokens)

    runners = {**{n: parley(e) for n, e in engines.items()}, **{n: llamacpp(each) for n, each in llamas.items()}}
    for run in runners.values():  # warm up: first calls allocate and pick kernels
        run(TOPICS[:2])
    figures = {name: Figures() for name in runners}
    single = TOPICS[8 : 8 + args.single]
    for repeat in range(args.repeats):
        turns: dict[str, Callable[[], None]] = {
            name: functools.partial(measure, runners[name], figures[name], single) for name in runners
        }
        taking_turns(1, turns)
        line = ", ".join(f"{n} {' / '.join(f'{f.tps[s][-1]:.1f}' for s in STREAMS)}" for n, f in figures.items())
        print(f"repeat {repeat + 1} (tokens/s at {' / '.join(map(str, STREAMS))} streams): {line}", flush=True)
    for engine in engines.values():
        engine.close()
    for llama in llamas.values():
        llama.close()

    print(f"\ntokens/s, medians of {args.repeats}, {args.new_tokens} new tokens per stream, greedy:")
    print(f"{'':16}" + "".join(f"{f'{s} stream' + ('s' if s > 1 else ''):>12}" for s in STREAMS))
    for name, each in figures.items():
        print(f"{name:16}" + "".join(f"{each.median(s):12.1f}" for s in STREAMS))
    ratios = {s: figures["parley fp32"].median(s) / figures["llama.cpp F32"].median(s) for s in STREAMS}
    print("parley fp32 / llama.cpp F32:  " + ", ".join(f"{r:.2f}x at {s}" for s, r in ratios.items()))
    int8_line = ""
    if "parley int8" in figures:
        int8_ratios = {s: figures["parley int8"].median(s) / figures["llama.cpp Q8_0"].median(s) for s in STREAMS}
        print("parley int8 / llama.cpp Q8_0: " + ", ".join(f"{r:.2f}x at {s}" for s, r in int8_ratios.items()))
        int8_line = " ".join(f"int8_vs_q8_ratio{s}={int8_ratios[s]:.2f}" for s in (32, 1, 8)) + " "
    agreement = same_tokens(tokenizer, figures["parley fp32"].answers, figures["llama.cpp F32"].answers)
    print(f"float32 greedy tokens identical (up to each answer's first difference): {agreement:.1%}")
    print(
        f"parley1_tps={figures['parley fp32'].median(1):.1f} llamacpp1_tps={figures['llama.cpp F32'].median(1):.1f} "
        f"ratio1={ratios[1]:.2f} ratio8={ratios[8]:.2f} ratio32={ratios[32]:.2f} "
        f"{int8_line}same_tokens={agreement:.3f}"
    )


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return "unknown"


if __name__ == "__main__":
    main()
