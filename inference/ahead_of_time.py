"""The decoding step's one-row programs, compiled ahead of time by AOTInductor.

A lone answer's step is 31 calls of the same two functions (30 layers and the head).
Through ``torch.compile`` each call paid dynamo's guards and wrappers, about a third of a
millisecond, so a quarter of a 42 ms step went to calling compiled code (docs/decisions.md,
"The compiled decoding step"). Exported with ``torch.export`` and compiled by AOTInductor,
each runs behind one C++ entry point without guards: the step at one row comes out as fast
as llama.cpp's on the same weights. Several rows take the fused step uncompiled: oneDNN's
packed products dominate their step, and compiled by ``torch.compile`` around them it came
out slower than uncompiled (0.87x at 8 rows).

A program takes the layer's weights and key/value buffers as inputs (so one serves all
30 layers), with the context and the buffers' length as symbols. Programs are kept in
inductor's cache directory (``TORCHINDUCTOR_CACHE_DIR``; a worker's is under ``var/``)
under a name that changes with the model's shapes, this code, torch and the CPU's
instruction set: a restarted worker loads them in a second instead of compiling again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch._inductor.runtime.cache_dir_utils import cache_dir

from inference import decoding_step

logger = logging.getLogger(__name__)

# Example sizes for the symbols, primes that no other dimension of a model has: a size
# shared with another dimension would be assumed shared for good.
EXAMPLE_COLUMNS = 37
EXAMPLE_BUFFER = 53

# The programs are compiled for contiguous inputs (as the step passes them); the runtime
# checks each call's shapes and strides against that (microseconds), so an input laid out
# otherwise fails the step loudly instead of being read wrongly. Read at a program's first call.
os.environ.setdefault("AOTI_RUNTIME_CHECK_INPUTS", "1")


class Program:
    """One compiled program called as the uncompiled function it was exported from: the
    tensors as arguments, the constants it was compiled for as keywords (checked)."""

    def __init__(self, runner: Any, constants: dict[str, Any]) -> None:
        self.runner = runner
        self.constants = constants

    def __call__(self, *tensors: torch.Tensor, **constants: Any) -> torch.Tensor:
        if constants != self.constants:
            raise ValueError(f"compiled for {self.constants}, called with {constants}")
        return self.runner(*tensors)


def compile_one_row(step: decoding_step.FusedLlamaStep) -> bool:
    """Give ``step`` its one-row layer and head programs, loaded from the cache or compiled
    (tens of seconds); whether they were compiled now."""
    layer = step.layers[0]
    weights = step.embed.weight
    hidden, dim = weights.shape[1], step.head_dim
    like = {"dtype": weights.dtype, "device": weights.device}
    x = torch.zeros(1, 1, hidden, **like)
    rotary = torch.zeros(1, 1, 1, dim, **like)
    additive = torch.zeros(1, 1, 1, EXAMPLE_COLUMNS, **like)
    buffer = torch.zeros(1, step.kv_heads, EXAMPLE_BUFFER, dim, **like)
    layer_inputs = (
        x,
        rotary,
        rotary.clone(),
        additive,
        buffer,
        buffer.clone(),
        layer.input_norm,
        layer.post_attention_norm,
        *layer.projections(as_weights=True),
    )
    columns, room = torch.export.Dim("columns", min=2), torch.export.Dim("buffer", min=3)
    layer_shapes = (None, None, None, {3: columns}, {2: room}, {2: room}, *[None] * 6)
    layer_constants = {"eps": layer.eps, "heads": step.heads, "kv_heads": step.kv_heads, "scaling": step.scaling}
    head_inputs = (x, step.norm.weight, step.lm_head.weight)
    head_constants = {"eps": float(step.norm.variance_epsilon)}
    compiled_layer, layer_program = _program(
        decoding_step.layer_step, layer_inputs, layer_shapes, layer_constants, name="layer"
    )
    compiled_head, head_program = _program(decoding_step.head_step, head_inputs, None, head_constants, name="head")
    step.one_row = (layer_program, head_program)
    return compiled_layer or compiled_head


class _Exported(torch.nn.Module):
    def __init__(self, function: Any, constants: dict[str, Any]) -> None:
        super().__init__()
        self.function = function
        self.constants = constants

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.function(*tensors, **self.constants)


def _program(
    function: Any, inputs: tuple[torch.Tensor, ...], shapes: Any, constants: dict[str, Any], *, name: str
) -> tuple[bool, Program]:
    """``function``'s program for these inputs, from the cache or compiled and kept there;
    whether it was compiled now."""
    path = _cached_path(name, inputs, shapes, constants)
    if path.exists():
        try:
            return False, Program(_load(path), constants)
        except Exception as error:  # a damaged file: compiled again
            logger.warning(
                "the kept one-row %s program %s cannot be loaded (%s): compiling it again", name, path, error
            )
    with torch.inference_mode():
        # the forward's inputs are its *tensors: their shapes are given under that name
        dynamic = None if shapes is None else {"tensors": shapes}
        exported = torch.export.export(_Exported(function, constants), inputs, dynamic_shapes=dynamic, strict=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    # written beside and renamed, so that a worker stopped while compiling leaves no half file
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        written = torch._inductor.aoti_compile_and_package(exported, package_path=str(Path(scratch) / path.name))
        os.replace(written, path)
    return True, Program(_load(path), constants)


def _load(path: Path) -> Any:
    # one caller at a time (the engine's thread): no locking around each call
    return torch._inductor.aoti_load_package(str(path), run_single_threaded=True)


def _cached_path(name: str, inputs: tuple[torch.Tensor, ...], shapes: Any, constants: dict[str, Any]) -> Path:
    """Where the program of these inputs is kept: named by all that changes its code."""
    facts = [
        torch.__version__,
        str(torch.backends.cpu.get_cpu_capability()),
        repr([(tuple(tensor.shape), tensor.dtype) for tensor in inputs]),
        repr(shapes),
        repr(sorted(constants.items())),
    ]
    digest = hashlib.sha256("\n".join(facts).encode())
    for source in (decoding_step.__file__, __file__):
        digest.update(Path(source).read_bytes())
    return Path(cache_dir()) / "parley-one-row" / f"{name}-{digest.hexdigest()[:24]}.pt2"
