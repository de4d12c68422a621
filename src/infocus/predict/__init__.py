"""Deep-learning prediction: tiling, blending and memory-bounded stitching."""

from __future__ import annotations

from infocus.predict.tiling import (
    Tile,
    auto_tile_shape,
    available_memory,
    blend_weights,
    padded_shape,
    plan_tiles,
    tiled_apply,
)

__all__ = [
    "Tile",
    "auto_tile_shape",
    "available_memory",
    "blend_weights",
    "padded_shape",
    "plan_tiles",
    "tiled_apply",
]
