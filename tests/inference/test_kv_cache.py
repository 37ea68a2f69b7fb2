"""The in-place key/value cache keeps exactly what concatenation would."""

from __future__ import annotations

import torch

from inference.kv_cache import MIN_ROOM, RoomyLayer


def columns(count: int, start: int) -> torch.Tensor:
    """[rows=2, heads=3, count, dim=4], every value distinct and traceable."""
    return torch.arange(start, start + 2 * 3 * count * 4, dtype=torch.float64).reshape(2, 3, count, 4)


def test_updates_hold_what_concatenation_would_and_write_in_place() -> None:
    layer = RoomyLayer()
    expected_keys = columns(5, 0)
    keys, values = layer.update(expected_keys, -expected_keys)
    assert torch.equal(keys, expected_keys)
    assert torch.equal(values, -expected_keys)
    start = keys.data_ptr()
    moved = 0
    for step in range(MIN_ROOM + 20):  # past the first buffer's room
        new = columns(1, 10_000 * (step + 1))
        expected_keys = torch.cat([expected_keys, new], dim=-2)
        keys, values = layer.update(new, -new)
        assert torch.equal(keys, expected_keys)
        assert torch.equal(values, -expected_keys)
        if keys.data_ptr() != start:
            moved += 1
            start = keys.data_ptr()
    assert moved == 1  # one bigger buffer, not a copy per step


def test_keys_replaced_from_outside_are_taken_up() -> None:
    """The engine drops rows and padding columns by replacing keys and values."""
    layer = RoomyLayer()
    layer.update(columns(6, 0), columns(6, 0))
    assert layer.keys is not None
    assert layer.values is not None
    kept_keys = layer.keys.index_select(0, torch.tensor([1]))[:, :, 2:]
    kept_values = layer.values.index_select(0, torch.tensor([1]))[:, :, 2:]
    layer.keys, layer.values = kept_keys, kept_values
    new = columns(1, 50_000)[:1]
    keys, values = layer.update(new, new)
    assert torch.equal(keys, torch.cat([kept_keys, new], dim=-2))
    assert torch.equal(values, torch.cat([kept_values, new], dim=-2))
