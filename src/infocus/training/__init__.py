"""Training data for the deep-learning denoisers: lazy blocks, patch sampling, normalisation."""

from __future__ import annotations

from infocus.training.data import (
    LAZY_READ_BYTES,
    LazyBlock,
    PatchSampler,
    fixed_validation_patches,
    load_inputs,
    split_validation,
    to_blocks,
)
from infocus.training.normalize import Normalizer

__all__ = [
    "LAZY_READ_BYTES",
    "LazyBlock",
    "Normalizer",
    "PatchSampler",
    "fixed_validation_patches",
    "load_inputs",
    "split_validation",
    "to_blocks",
]
