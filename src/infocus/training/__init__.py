"""The training engine: lazy blocks, patch sampling and the one loop shared by every method."""

from __future__ import annotations

from infocus.training.data import (
    LAZY_READ_BYTES,
    LabelledShareSampler,
    LazyBlock,
    PatchSampler,
    fixed_validation_patches,
    load_inputs,
    split_validation,
    to_blocks,
)

__all__ = [
    "LAZY_READ_BYTES",
    "LabelledShareSampler",
    "LazyBlock",
    "PatchSampler",
    "fixed_validation_patches",
    "load_inputs",
    "split_validation",
    "to_blocks",
]
