r"""Deep-learning training schemes: small data transforms around one shared training loop.

Every scheme turns a batch of noisy patches (and, for supervised schemes, targets) into what the
network sees and what its output is scored against::

    scheme = create_scheme("n2v")                       # or "n2v2", "structn2v", "n2s", "care", "n2n"
    batch = scheme.prepare(noisy, target, generator)    # Batch(input, target, mask)
    loss = scheme.loss(model(batch.input), batch)

========== ====================================================== ============ ===========
name       idea                                                   needs target blind spot
========== ====================================================== ============ ===========
care       supervised on (noisy, clean) pairs (Weigert 2018)      yes          no
n2n        supervised on (noisy, noisy) pairs (Lehtinen 2018)     yes          no
n2v        random-neighbour blind spots (Krull 2019)              no           yes
n2v2       median blind spots, centre excluded (Höck 2022)        no           yes
structn2v  n2v + hidden line for correlated noise (Broaddus 2020) no           yes
n2s        J-invariant grid blind spots (Batson & Royer 2019)     no           yes
========== ====================================================== ============ ===========

Tensors are ``(B, C, Y, X)`` or ``(B, C, Z, Y, X)``; all randomness comes from the
``torch.Generator`` passed to ``prepare``, so a seeded generator reproduces every mask.

Examples
--------
>>> import torch
>>> from infocus.methods import create_scheme
>>> scheme = create_scheme("n2v", fraction=0.01)
>>> batch = scheme.prepare(torch.rand(2, 1, 32, 32), None, torch.Generator().manual_seed(0))
>>> batch.input.shape, batch.mask.dtype
(torch.Size([2, 1, 32, 32]), torch.bool)
"""

from __future__ import annotations

from infocus.methods._base import (
    SCHEMES,
    Batch,
    ChannelMode,
    LossKind,
    TrainingScheme,
    create_scheme,
    list_schemes,
    masked_loss,
)
from infocus.methods.blind_spot import (
    Noise2Void,
    StructFill,
    StructPattern,
    apply_struct_mask,
    replace_median,
    replace_uniform,
    stratified_mask,
)
from infocus.methods.noise2self import NeighbourMean, Noise2Self, grid_mask, replace_neighbour_mean
from infocus.methods.supervised import Supervised

__all__ = [
    "SCHEMES",
    "Batch",
    "ChannelMode",
    "LossKind",
    "NeighbourMean",
    "Noise2Self",
    "Noise2Void",
    "StructFill",
    "StructPattern",
    "Supervised",
    "TrainingScheme",
    "apply_struct_mask",
    "create_scheme",
    "grid_mask",
    "list_schemes",
    "masked_loss",
    "replace_median",
    "replace_neighbour_mean",
    "replace_uniform",
    "stratified_mask",
]
