"""Temperature and top-p (nucleus) sampling for every sampled row of a batch at once.

The nucleus of a row is its likeliest tokens, most likely first, up to the one that
brings their probability to ``top_p``. Finding it by sorting the whole vocabulary (49,152
tokens for SmolLM2) cost milliseconds a row on a CPU (docs/decisions.md), so 32 sampled chats spent more time
sorting than running the model. On real chat logits at the default temperature 0.7 and
top-p 0.95 the nucleus lay within the 256 likeliest tokens at 99.5% of positions, and
``topk`` finds those for a fraction of a sort; a row whose candidates hold less than
``top_p`` (a flatter distribution) looks at 4,096, then sorts the whole vocabulary, so the
result is exact in every case. A token is then picked by inverse CDF with one uniform
number per row, drawn from that request's own generator: a seeded request gets the same
answer in any batch.

Imported only when the engine first samples (it imports torch).
"""

from __future__ import annotations

import torch

# how many of the likeliest tokens are looked at for the nucleus, in turn, before a full sort
CANDIDATES = (256, 4096)


def sample(logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """One token id per row of ``logits`` [rows, vocab], from softmax(logits / temperature)
    restricted to the row's nucleus; ``temperature``, ``top_p`` and ``uniform`` (in [0, 1))
    have one value per row."""
    probs = torch.softmax(logits.float() / temperature[:, None], dim=-1)
    vocab = probs.shape[-1]
    chosen = torch.empty(len(probs), dtype=torch.long)
    # top_p = 1 keeps every token: no nucleus to find, and float rounding must not cut the tail
    whole = top_p >= 1
    if whole.any():
        rows = whole.nonzero().flatten()
        chosen[rows] = _pick(probs[rows], torch.full((len(rows),), float("inf")), uniform[rows])
    pending = (~whole).nonzero().flatten()
    for size in (*CANDIDATES, vocab):
        if not len(pending):
            break
        # topk is sorted; at the full size it is a sort of the whole vocabulary
        candidates, order = probs[pending].topk(min(size, vocab), dim=-1)
        covered = (candidates.sum(-1) >= top_p[pending]) | (size >= vocab)
        rows = pending[covered]
        picked = _pick(candidates[covered], top_p[rows], uniform[rows])
        chosen[rows] = order[covered].gather(1, picked[:, None]).squeeze(1)
        pending = pending[~covered]
    return chosen


def _pick(probs: torch.Tensor, limit: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Per row, the index drawn by inverse CDF among the leading entries of ``probs``
    whose preceding mass is below ``limit`` (the first entry always qualifies)."""
    keep = (probs.cumsum(-1) - probs) < limit[:, None]
    keep[:, 0] = True
    cdf = (probs * keep).cumsum(-1)
    target = uniform[:, None] * cdf[:, -1:]
    index = torch.searchsorted(cdf, target, right=True).squeeze(1)
    # u * total can round up to total: stay on the last kept entry
    return torch.minimum(index, keep.sum(-1) - 1)
