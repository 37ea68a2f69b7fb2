"""The running batch's key/value cache and attention mask, and the surgery on them.

The batch is one cache per layer, ``[rows, heads, columns, dim]``, and one mask
``[rows, columns]`` with 1 for a real token and 0 for padding. Rows are left-padded to
the longest, so every row's newest token is in the last column and a decoding step
appends one column for all. Padding is masked and positions count only real tokens, so
a row's output does not depend on the other rows.

- ``prefill_inputs`` lays out a group of new prompts for one prefill, each row
  ``[padding][kept prefix][padding][rest of the prompt]``;
- ``seeded_cache`` starts that prefill's cache with each row's kept prefix
  (prefix_cache.py), right-aligned;
- ``merge`` left-pads the batch and a newly prefilled group to one width and stacks them;
- ``drop_rows`` keeps the given rows and cuts the columns that became padding for all;
- ``row_layers`` copies one row's real tokens out, to be kept as a prefix.

The caller (the engine's scheduler thread) owns the tensors; the functions replace a
cache's layer tensors in place and return the new mask. torch is imported inside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from inference.prefix_cache import Prefix


def prefill_inputs(
    rows: Sequence[tuple[list[int], int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For rows of (prompt ids still to prefill, tokens taken from a kept prefix): the input
    ids, left-padded; the mask over kept prefixes and inputs, whose kept part is
    ``max(kept)`` columns wide; and the inputs' positions."""
    import torch

    kept = max(cached for _, cached in rows)
    longest = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), kept + longest), dtype=torch.long)
    for row, (ids, cached) in enumerate(rows):
        input_ids[row, longest - len(ids) :] = torch.tensor(ids)
        mask[row, kept - cached : kept] = 1
        mask[row, kept + longest - len(ids) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, kept:]
    return input_ids, mask, positions


def seeded_cache(prefixes: Sequence[tuple[Prefix | None, int]], width: int) -> Any:
    """A new cache holding each row's kept prefix (the prefix and how many of its tokens
    are used), right-aligned in ``width`` columns; empty when no row has one."""
    from inference.kv_cache import roomy_cache

    cache = roomy_cache()
    some = next((prefix for prefix, _ in prefixes if prefix), None)
    if some is None:
        return cache
    for index, (keys, values) in enumerate(some.layers):
        shape = (len(prefixes), keys.shape[1], width, keys.shape[3])
        layer_keys, layer_values = keys.new_zeros(shape), values.new_zeros(shape)
        for row, (prefix, cached) in enumerate(prefixes):
            if prefix:
                row_keys, row_values = prefix.layers[index]
                layer_keys[row, :, width - cached :] = row_keys[0, :, :cached]
                layer_values[row, :, width - cached :] = row_values[0, :, :cached]
        cache.update(layer_keys, layer_values, index)
    return cache


def merge(cache: Any, mask: torch.Tensor, new_cache: Any, new_mask: torch.Tensor) -> torch.Tensor:
    """Stack ``new_cache``'s rows under ``cache``'s, both left-padded to the wider; returns
    the stacked mask."""
    import torch

    width = max(mask.shape[1], new_mask.shape[1])
    for layer, new_layer in zip(cache.layers, new_cache.layers, strict=True):
        layer.keys = torch.cat([left_pad(layer.keys, width, dim=2), left_pad(new_layer.keys, width, dim=2)])
        layer.values = torch.cat([left_pad(layer.values, width, dim=2), left_pad(new_layer.values, width, dim=2)])
    return torch.cat([left_pad(mask, width, dim=1), left_pad(new_mask, width, dim=1)])


def drop_rows(cache: Any, mask: torch.Tensor, keep: list[int]) -> torch.Tensor:
    """Keep only the rows ``keep`` (at least one), cutting the columns that are padding for
    every one of them; returns their mask."""
    import torch

    index = torch.tensor(keep, device=mask.device)
    mask = mask.index_select(0, index)
    first_used = int(mask.any(dim=0).nonzero()[0])
    for layer in cache.layers:
        layer.keys = layer.keys.index_select(0, index)[:, :, first_used:]
        layer.values = layer.values.index_select(0, index)[:, :, first_used:]
    return mask[:, first_used:]


def grown(mask: torch.Tensor) -> torch.Tensor:
    """The mask with one more real column for every row: a decoding step's new tokens."""
    import torch

    return torch.cat([mask, torch.ones((mask.shape[0], 1), dtype=mask.dtype, device=mask.device)], 1)


def row_layers(cache: Any, mask: torch.Tensor, row: int, length: int) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """Per layer, the keys and values of the row's real tokens, ``[1, heads, length, dim]``;
    None when the mask does not hold ``length`` real tokens for it (not expected, and
    keeping such a prefix would be wrong)."""
    columns = mask[row].nonzero().squeeze(1)
    if len(columns) != length:
        return None
    return [(layer.keys[row : row + 1, :, columns], layer.values[row : row + 1, :, columns]) for layer in cache.layers]


def left_pad(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    import torch

    missing = width - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([torch.zeros(shape, dtype=tensor.dtype, device=tensor.device), tensor], dim=dim)
