"""The decoding step's matrix products alone: which CPU kernel reads the weights fastest.

    python -m bench.linear_kernels [--rows 1 8 32] [--repeats 15] [--kernels ...]

One pass multiplies a batch of ``rows`` inputs by every weight matrix of the fused step
in its order (per layer: queries/keys/values joined, output, gate/up joined, down; then the
output head), the real model's weights, so they come from memory as in a step, not from a
cache. The kernels take turns pass by pass; prints the median milliseconds of a pass, the
gigabytes a second the weights were read at, and the ratio to ``linear`` (float32) or to
``int8`` (Parley's int8 layers as they are).

float32: ``linear`` (``F.linear``, what the step calls), ``mv`` (``torch.mv``, one row
only), ``transposed`` (``x @ w.T`` with the transpose stored contiguous), ``mkl`` (MKL's
packed GEMM for this batch size: ``torch.ops.mkl._mkl_linear``, what inductor's CPU
freezing uses for float32), ``mkldnn`` (oneDNN's packed linear).
int8: ``int8`` (per-token input scales, ``torch._int_mm``), ``int8_weight_only``
(``torch._weight_int8pack_mm``: float32 inputs, int8 weights with per-channel scales).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from bench.common import median, parser
from inference.config import InferenceConfig
from inference.models import load_chat_model

Kernel = tuple[Callable[[Any], Any], Callable[[Any, Any], Any]]  # prepare(weight), apply(x, prepared)


def kernels(rows: int) -> dict[str, Kernel]:
    import torch

    from inference.quantize import Int8Linear

    def int8_weights(weight: Any) -> tuple[Any, Any]:
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127
        return torch.round(weight / scale[:, None]).to(torch.int8).contiguous(), scale

    def int8_layer(weight: Any) -> Any:
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        linear.weight = torch.nn.Parameter(weight, requires_grad=False)
        return Int8Linear(linear)

    table: dict[str, Kernel] = {
        "linear": (lambda w: w, lambda x, w: torch.nn.functional.linear(x, w)),
        "transposed": (lambda w: w.t().contiguous(), lambda x, wt: x @ wt),
        "mkl": (
            lambda w: (torch.ops.mkl._mkl_reorder_linear_weight(w, rows), w),
            lambda x, p: torch.ops.mkl._mkl_linear(x, p[0], p[1], None, rows),
        ),
        "mkldnn": (
            lambda w: torch.ops.mkldnn._reorder_linear_weight(w, rows),
            lambda x, p: torch.ops.mkldnn._linear_pointwise(x, p, None, "none", [], ""),
        ),
        "int8": (int8_layer, lambda x, layer: layer(x)),
        "int8_weight_only": (int8_weights, lambda x, p: torch._weight_int8pack_mm(x, p[0], p[1])),
    }
    if rows == 1:
        table["mv"] = (lambda w: w, lambda x, w: torch.mv(w, x[0]))
    return table


def step_weights(model: Any) -> list[Any]:
    """The weight matrices a fused step multiplies by, in its order."""
    import torch

    weights = []
    for layer in model.model.layers:
        attention, mlp = layer.self_attn, layer.mlp
        weights.append(torch.cat([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight]))
        weights.append(attention.o_proj.weight)
        weights.append(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]))
        weights.append(mlp.down_proj.weight)
    weights.append(model.lm_head.weight)
    return [weight.detach().contiguous() for weight in weights]


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--rows", type=int, nargs="+", default=[1, 8, 32])
    arguments.add_argument("--repeats", type=int, default=15)
    arguments.add_argument("--kernels", nargs="+", help="the kernels to compare (default: all)")
    args = arguments.parse_args()
    import torch

    config = dataclasses.replace(InferenceConfig.from_env(), dtype="float32", chat_quantize="none")
    model, _ = load_chat_model(config)
    weights = step_weights(model)
    del model
    float_bytes = sum(w.numel() * 4 for w in weights)
    print(
        f"{len(weights)} matrices, {float_bytes / 1e6:.0f} MB in float32; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        flush=True,
    )
    with torch.inference_mode():
        for rows in args.rows:
            table = kernels(rows)
            names = [name for name in table if not args.kernels or name in args.kernels]
            prepared: dict[str, list[Any]] = {}
            for name in names:
                try:
                    prepared[name] = [table[name][0](w) for w in weights]
                    x = torch.randn(rows, weights[0].shape[1])
                    table[name][1](x, prepared[name][0])
                except (RuntimeError, NotImplementedError) as error:
                    print(f"{rows:2} rows: {name} unavailable: {str(error).splitlines()[0][:120]}")
                    prepared.pop(name, None)
            inputs = [torch.randn(rows, w.shape[1]) for w in weights]
            times: dict[str, list[float]] = {name: [] for name in prepared}
            for repeat in range(args.repeats + 1):  # the first pass of each is a warm-up
                order = list(prepared) if repeat % 2 == 0 else list(prepared)[::-1]
                for name in order:
                    apply = table[name][1]
                    started = time.perf_counter()
                    for x, w in zip(inputs, prepared[name], strict=True):
                        apply(x, w)
                    times[name].append(time.perf_counter() - started)
            ms = {name: 1000 * median(values[1:]) for name, values in times.items()}
            for name, value in ms.items():
                is_int8 = name.startswith("int8")
                baseline = ms.get("int8" if is_int8 else "linear")
                read = float_bytes / (4 if is_int8 else 1)
                ratio = f"{baseline / value:.2f}x" if baseline else "-"
                print(f"{rows:2} rows: {name:17} {value:7.1f} ms  {read / value / 1e6:5.1f} GB/s  {ratio}", flush=True)
            del prepared


if __name__ == "__main__":
    main()
