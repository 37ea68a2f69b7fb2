"""Keys and values of finished requests, reused by later prompts that begin the same way.

A chat's next message is the whole conversation so far plus a few new tokens, every chat
starts with the same system prompt, and Regenerate sends the same prompt again; without
this, each of them prefills every token again, which on a CPU is most of the time to the
first token in a long conversation. When a request leaves the batch its tokens' keys and
values are kept here, within a budget in bytes, the least recently used going first; a
new prompt then starts from the longest kept prefix it shares, and only the rest of it is
prefilled. Entries are kept per scope (a user, say) and a prompt is matched only
against its own scope's.

A token's keys and values depend only on the tokens before it, so a reused prefix gives
what prefilling it again would (up to float rounding, as batching does).

Used under the engine's lock; holds torch tensors but does not import torch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# shorter shared prefixes are prefilled again: reusing them saves less than it costs
MIN_TOKENS = 16


@dataclass(frozen=True)
class Prefix:
    scope: str
    ids: tuple[int, ...]
    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]  # per layer: keys, values [1, heads, tokens, dim]
    nbytes: int


class PrefixCache:
    def __init__(self, budget_bytes: int, min_tokens: int = MIN_TOKENS) -> None:
        self.budget_bytes = budget_bytes
        self.min_tokens = min_tokens
        self._entries: OrderedDict[tuple[str, tuple[int, ...]], Prefix] = OrderedDict()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0

    def match(self, scope: str, ids: Sequence[int]) -> tuple[int, Prefix | None]:
        """How many leading tokens of ``ids`` are kept in ``scope``, and where; always leaves
        the last token to prefill, since its logits give the first new token."""
        wanted = tuple(ids)
        best, found = 0, None
        for entry in self._entries.values():
            if entry.scope != scope:
                continue
            shared = _common_prefix(entry.ids, wanted, len(wanted) - 1)
            if shared > best:
                best, found = shared, entry
        if found is None or best < self.min_tokens:
            return 0, None
        self._entries.move_to_end((scope, found.ids))
        return best, found

    def add(self, scope: str, ids: Sequence[int], layers: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Keep the keys and values of ``ids`` in ``scope``; an entry of the scope that is a
        prefix of them goes."""
        key = tuple(ids)
        nbytes = sum(k.nbytes + v.nbytes for k, v in layers)
        if len(key) < self.min_tokens or nbytes > self.budget_bytes:
            return
        for superseded in [(s, old) for s, old in self._entries if s == scope and key[: len(old)] == old]:
            self.nbytes -= self._entries.pop(superseded).nbytes
        self._entries[(scope, key)] = Prefix(scope=scope, ids=key, layers=tuple(layers), nbytes=nbytes)
        self.nbytes += nbytes
        while self.nbytes > self.budget_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.nbytes -= evicted.nbytes


def _common_prefix(a: tuple[int, ...], b: tuple[int, ...], limit: int) -> int:
    """Length of the common prefix of a and b, at most ``limit``: a binary search on
    slice equality, which compares in C, instead of a Python loop over the tokens."""
    low, high = 0, min(len(a), len(b), limit)
    if a[:high] == b[:high]:
        return high
    while high - low > 1:  # invariant: a[:low] == b[:low] and a[:high] != b[:high]
        middle = (low + high) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle
    return low
