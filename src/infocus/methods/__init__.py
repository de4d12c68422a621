r"""Denoising methods: one file each, found through the registry.

A method's scheme class owns everything particular to it (see :class:`TrainingScheme`): what it
measures on the data before training, the network it needs, how a batch is prepared and scored,
how a prediction is formed and what the command line must ask for. The training loop
(:mod:`infocus.training`), the prediction (:mod:`infocus.predict`) and the command line ask the
scheme; none of them names a method::

    scheme = create_scheme("n2v")                       # list_schemes() gives every name
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
pn2v       blind spots + a noise model: posterior per pixel       no           yes
           (Krull 2020; Prakash 2020)
deepcad    each frame from its nearest frames in time, the      no           no
           noisy frame as target (Li et al. 2021/2023)
divnoising a VAE whose decoder is the noise model: posterior      no           no
           samples and their MMSE (Prakash 2021)
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
    FitData,
    Fitted,
    LossKind,
    PredictionContext,
    PredictionRequest,
    TrainingScheme,
    create_scheme,
    list_schemes,
    masked_loss,
    scheme_options,
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
from infocus.methods.deconoising import DecoNoising
from infocus.methods.deepcad import TemporalNoise2Noise, neighbour_frames
from infocus.methods.denoiseg import DenoiSeg
from infocus.methods.divnoising import DivNoising
from infocus.methods.noise2self import NeighbourMean, Noise2Self, grid_mask, replace_neighbour_mean
from infocus.methods.pn2v import ProbabilisticNoise2Void
from infocus.methods.supervised import Supervised

#: The method :func:`infocus.train` uses unless told otherwise: self-supervised, so it needs
#: nothing but the noisy images, and it widens its blind spot for correlated noise.
DEFAULT_METHOD = "n2v"

__all__ = [
    "DEFAULT_METHOD",
    "SCHEMES",
    "Batch",
    "ChannelMode",
    "DecoNoising",
    "DenoiSeg",
    "DivNoising",
    "FitData",
    "Fitted",
    "LossKind",
    "NeighbourMean",
    "Noise2Self",
    "Noise2Void",
    "PredictionContext",
    "PredictionRequest",
    "ProbabilisticNoise2Void",
    "StructFill",
    "StructPattern",
    "Supervised",
    "TemporalNoise2Noise",
    "TrainingScheme",
    "apply_struct_mask",
    "create_scheme",
    "grid_mask",
    "list_schemes",
    "masked_loss",
    "neighbour_frames",
    "replace_median",
    "replace_neighbour_mean",
    "replace_uniform",
    "scheme_options",
    "stratified_mask",
]
