"""Perplexity of the held-out text as the engine decodes it: one token a step, one row.

    python -m bench.decoding_perplexity [--tokens 200]

``inference.quantize.perplexity`` reads the text in 512-token windows through the model's
forward; a lone answer is decoded one row a step through the fused step, with float32's
weights laid out for decoding (DecodingLinear) and int8's inputs quantized one token at a
time. This feeds the first ``--tokens`` tokens of tests/data/heldout_english.txt through
the fused decoding step one at a time, each predicted from the cache of those before it,
and prints the perplexity of float32 and of int8 (PARLEY_CHAT_QUANTIZE=int8), with the
change.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

from bench.common import PROJECT_DIR, parser
from inference.config import InferenceConfig
from inference.decoding_step import FusedLlamaStep
from inference.models import load_chat_model
from inference.quantize import quantize_int8


def decoded_perplexity(model: Any, ids: Any) -> float:
    import torch

    from inference.kv_cache import roomy_cache

    step = FusedLlamaStep(model)
    cache = roomy_cache()
    with torch.inference_mode():
        model(input_ids=ids[None, :1], cache=cache, use_cache=True)
        loss = 0.0
        for position in range(1, len(ids)):
            mask = torch.ones(1, position + 1, dtype=torch.long)
            logits = step(ids[None, position - 1 : position], mask, torch.tensor([[position - 1]]), cache)
            # the cache holds ``position`` tokens after this step; the logits predict ids[position]
            loss -= float(torch.log_softmax(logits[0].float(), -1)[ids[position]])
    return math.exp(loss / (len(ids) - 1))


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--tokens", type=int, default=200)
    args = arguments.parse_args()

    config = dataclasses.replace(InferenceConfig.from_env(), dtype="float32", chat_quantize="none")
    model, tokenizer = load_chat_model(config)
    text = (PROJECT_DIR / "tests" / "data" / "heldout_english.txt").read_text()
    ids = tokenizer(text, return_tensors="pt")["input_ids"][0][: args.tokens]
    int8 = copy.deepcopy(model)
    quantize_int8(int8)
    float32 = decoded_perplexity(model, ids)
    print(f"{len(ids)} tokens decoded one a step: float32 perplexity {float32:.2f}", flush=True)
    value = decoded_perplexity(int8, ids)
    print(f"int8: {value:.2f} ({value / float32 - 1:+.1%} against float32)", flush=True)


if __name__ == "__main__":
    main()
