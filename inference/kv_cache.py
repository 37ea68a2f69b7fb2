"""A key/value cache that grows in place.

transformers' ``DynamicLayer`` appends each decoding step's keys and values with
``torch.cat``, copying the whole cache of every row, in every layer, at every step: at
32 rows that copy was a sixth of a decoding step, and it grows with the context. A
``RoomyLayer`` keeps its keys and values in buffers with room to spare and writes the
new columns in place; ``keys`` and ``values`` are views of the used part.

The engine still replaces ``keys`` and ``values`` when rows join or leave the batch (a
pad and concatenation, an index select); an update then sees that they are no longer
views of its buffers and copies them into new ones, once.

The gain grows with the context (figures in docs/decisions.md, "A key/value cache that
grows in place").

Imported only when the engine first prefills (it imports torch and transformers).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

# room added when a buffer fills: half the used length, and at least this many columns
MIN_ROOM = 64


class RoomyLayer(DynamicLayer):
    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        used = self.keys.shape[-2] if self.keys is not None and self.keys.numel() else 0
        needed = used + key_states.shape[-2]
        key_buffer, value_buffer = self.reserve(needed, key_states, value_states)
        key_buffer[:, :, used:needed] = key_states
        value_buffer[:, :, used:needed] = value_states
        self.keys = key_buffer[:, :, :needed]
        self.values = value_buffer[:, :, :needed]
        return self.keys, self.values

    def reserve(
        self, needed: int, key_like: torch.Tensor | None = None, value_like: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Buffers whose first columns are the layer's keys and values, with room for ``needed``
        columns in all (``key_like``/``value_like``: the shape and dtype of new columns, by
        default the layer's own)."""
        keys, values = self.keys, self.values
        assert keys is not None
        assert values is not None
        key_like = keys if key_like is None else key_like
        value_like = values if value_like is None else value_like
        used = keys.shape[-2] if keys.numel() else 0
        buffers: tuple[torch.Tensor, torch.Tensor] | None = getattr(self, "_room", None)
        if buffers is None or not _views_of(keys, values, buffers, key_like.shape[0], needed):
            buffers = self._grow(keys, values, key_like, value_like, used, needed)
        return buffers

    def _grow(
        self,
        keys: torch.Tensor,
        values: torch.Tensor,
        key_states: torch.Tensor,
        value_states: torch.Tensor,
        used: int,
        needed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """New buffers with room to spare, holding the ``used`` columns the layer has so far."""
        capacity = needed + max(MIN_ROOM, needed // 2)
        rows, heads = key_states.shape[:2]
        key_buffer = key_states.new_empty((rows, heads, capacity, key_states.shape[-1]))
        value_buffer = value_states.new_empty((rows, heads, capacity, value_states.shape[-1]))
        if used:
            key_buffer[:, :, :used] = keys
            value_buffer[:, :, :used] = values
        self._room = (key_buffer, value_buffer)
        return self._room


def _views_of(
    keys: torch.Tensor, values: torch.Tensor, buffers: tuple[torch.Tensor, torch.Tensor], rows: int, needed: int
) -> bool:
    """Whether keys and values are still the start of these buffers, with room for ``needed``."""
    key_buffer, value_buffer = buffers
    return (
        keys.numel() > 0
        and keys.data_ptr() == key_buffer.data_ptr()
        and values.data_ptr() == value_buffer.data_ptr()
        and key_buffer.shape[0] == rows
        and needed <= key_buffer.shape[-2]
    )


def roomy_cache() -> Any:
    """An empty cache whose layers are RoomyLayers, for any decoder model."""
    cache = DynamicCache()
    cache.layer_class_to_replicate = RoomyLayer
    return cache
