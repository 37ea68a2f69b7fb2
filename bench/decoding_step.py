"""One decoding step: the model's own forward against the fused and compiled steps, and where the time goes.

    python -m bench.decoding_step [--rows 1 8 32] [--context 100] [--steps 10] [--int8]

For each batch size, the steps run on the same prefilled batch (the engine's kind of
cache, one padded row), taking turns step by step: the model's own forward, the fused
step on the model's own layers (``fused-model-layout``), the fused step with its
float32 weights laid out for decoding (``fused``; DecodingLinear), and the engine's
default, that step with its one-row programs compiled ahead of time (``compiled``:
inference/ahead_of_time.py; several rows run it as ``fused``, and with ``--int8`` there
is no compiled kind). Each runs on its own copy of the model. Prints the median
milliseconds of each and the ratios, then, per step kind, torch.profiler's top operations
at the first batch size with their share of the step's time and how many calls a step
makes.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from bench.common import compared, median, parser
from inference import ahead_of_time
from inference.config import InferenceConfig
from inference.decoding_step import FusedLlamaStep
from inference.models import load_chat_model
from inference.quantize import quantize_int8


def prefilled(model: Any, rows: int, context: int) -> tuple[Any, Any, Any, Any]:
    """A batch of ``rows`` random prompts of ``context`` tokens, the first row left-padded
    by 5: its cache, mask, next input ids and positions."""
    import torch

    from inference.kv_cache import roomy_cache

    generator = torch.Generator().manual_seed(rows)
    ids = torch.randint(100, 40000, (rows, context), generator=generator)
    mask = torch.ones(rows, context, dtype=torch.long)
    mask[0, :5] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = roomy_cache()
    model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1)
    return cache, mask, ids[:, -1:], positions[:, -1:] + 1


def profiled_as(name: str, program: Any) -> Callable[..., Any]:
    """``program``, each call recorded as one operation for torch.profiler."""
    from torch.profiler import record_function

    def call(*tensors: Any, **constants: Any) -> Any:
        with record_function(f"one-row {name} program"):
            return program(*tensors, **constants)

    return call


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--rows", type=int, nargs="+", default=[1, 8, 32])
    arguments.add_argument("--context", type=int, default=100, help="tokens already in the cache")
    arguments.add_argument("--steps", type=int, default=10)
    arguments.add_argument("--int8", action="store_true", help="the model in int8 (PARLEY_CHAT_QUANTIZE=int8)")
    arguments.add_argument("--top", type=int, default=12, help="operations shown per profile")
    args = arguments.parse_args()
    import torch
    from torch.profiler import ProfilerActivity, profile

    config = dataclasses.replace(InferenceConfig.from_env(), dtype="float32", chat_quantize="none")
    model, _ = load_chat_model(config)
    if args.int8:
        model = copy.deepcopy(model)
        quantize_int8(model)
    copies = {name: copy.deepcopy(model) for name in ("fused-model-layout", "fused", "compiled")}

    def transformers_step(ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
        return model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True).logits

    steps: dict[str, Callable[..., Any]] = {
        "transformers": transformers_step,
        "fused-model-layout": FusedLlamaStep(copies["fused-model-layout"], decoding_layout=False),
        "fused": FusedLlamaStep(copies["fused"]),
    }
    if not args.int8:  # int8 decodes uncompiled
        compiled = FusedLlamaStep(copies["compiled"], compiled=True)
        ahead_of_time.compile_one_row(compiled)
        assert compiled.one_row is not None
        # named in the profile: what the programs run is C++ the profiler cannot see into
        layer_program, head_program = compiled.one_row
        compiled.one_row = (profiled_as("layer", layer_program), profiled_as("head", head_program))
        steps["compiled"] = compiled
    with torch.inference_mode():
        for rows in args.rows:
            batches = {name: list(prefilled(model, rows, args.context)) for name in steps}
            times: dict[str, list[float]] = {name: [] for name in steps}
            for _ in range(args.steps + 1):  # the first step of each is a warm-up
                for name, step in steps.items():
                    cache, mask, ids, positions = batches[name]
                    mask = torch.cat([mask, torch.ones(rows, 1, dtype=mask.dtype)], 1)
                    started = time.perf_counter()
                    step(ids, mask, positions, cache)
                    times[name].append(time.perf_counter() - started)
                    batches[name] = [cache, mask, ids, positions + 1]
            ms = {name: 1000 * median(values[1:]) for name, values in times.items()}
            against = {"transformers": "the model forward", "fused-model-layout": "on the model's layout"}
            for name, words in against.items():
                figures = compared(ms["fused"], ms[name], "ms", words, lower_is_better=True)
                print(f"{rows:2} rows: fused step {figures}", flush=True)
            if "compiled" in ms:
                figures = compared(ms["compiled"], ms["fused"], "ms", "the fused step", lower_is_better=True)
                print(f"{rows:2} rows: compiled step {figures}", flush=True)
        rows = args.rows[0]
        for name, step in steps.items():
            cache, mask, ids, positions = prefilled(model, rows, args.context)
            with profile(activities=[ProfilerActivity.CPU]) as profiled:
                for _ in range(3):
                    mask = torch.cat([mask, torch.ones(rows, 1, dtype=mask.dtype)], 1)
                    step(ids, mask, positions, cache)
                    positions = positions + 1
            events = [e for e in profiled.key_averages() if e.self_cpu_time_total > 0]
            total = sum(e.self_cpu_time_total for e in events)
            calls = sum(e.count for e in events) / 3
            print(f"\n{name} step at {rows} row(s): {calls:.0f} operator calls a step; top by own time:")
            for event in sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: args.top]:
                share = event.self_cpu_time_total / total
                print(f"  {event.key:50} {share:6.1%}  {event.count / 3:5.0f} calls")


if __name__ == "__main__":
    main()
