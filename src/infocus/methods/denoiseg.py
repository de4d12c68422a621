r"""DenoiSeg: one network learns to denoise from all images and to segment from the few that
have labels.

The network has the input's channels plus three: logits of background, foreground (object
interior) and border. Every batch is masked as for Noise2Void; the loss is

.. math:: \mathcal L = \alpha\, \mathcal L_{\text{N2V}} + (1 - \alpha)\,
          \frac{1}{|L|} \sum_{i \in L} w_{c_i}\, \mathrm{CE}\big(\mathrm{softmax}(z_i),\, c_i\big),

the blind-spot MSE over the masked pixels plus the cross-entropy over the pixels :math:`L`
that carry a label (class :math:`c_i`, weighted by :math:`w` = 1, 1 and ``border_weight``
for background, foreground and border; unlabelled images contribute nothing to the second
term). When only some images are labelled, ``labelled_fraction`` of every batch is drawn
from them and the rest from all images (:class:`infocus.training.LabelledShareSampler`), so
each batch carries both losses however few the labels: drawing patches uniformly from 1
labelled image among 20 would leave the segmentation loss one patch in 20. The denoising term
is then averaged as if the batch had been drawn from all images: its labelled and unlabelled
patches weigh :math:`q` and :math:`1 - q`, the labelled share of the training pixels (stored
in the model as ``labelled_pixel_share``), so that the denoiser does not learn mostly from
the few labelled images. Instance masks are turned into the three classes once, before
training: the inner boundary of each object (:func:`skimage.segmentation.find_boundaries`,
``mode="inner"``) is border, the rest of it foreground. Sharing the network lets the denoising
task, which sees every image, shape the features the segmentation uses: the paper's point is
that this helps most when labels are few.

At prediction, objects are the connected components of the foreground probability above
one half; each grows into the pixels that are foreground or border (watershed on the
foreground probability), so touching objects are split along the border class. The instance
labels and the foreground probability are extra outputs (``infocus predict --labels-out``).

References
----------
T.-O. Buchholz, M. Prakash, D. Schmidt, A. Krull, F. Jug, "DenoiSeg: joint denoising and
segmentation", ECCV 2020 Workshops (BioImage Computing), arXiv:2005.02987.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infocus._errors import InfocusInputError
from infocus.methods._base import (
    SCHEMES,
    Batch,
    ChannelMode,
    FitData,
    Fitted,
    PredictionContext,
    PredictionRequest,
    has_labels,
    masked_loss,
)
from infocus.methods.blind_spot import (
    _MEASURED_FILL,
    Noise2Void,
    _pattern,
    radius_for_pattern,
)

__all__ = ["DenoiSeg", "instances_from_classes", "three_classes"]

BACKGROUND, FOREGROUND, BORDER = 0, 1, 2

#: Said at training when one image among unlabelled ones carries labels. Measured on simulated
#: nuclei (docs/benchmarks.md, 1000 steps, four scene sets): with one labelled image the average
#: precision on new images ranged 0.58-0.73 (with five, 0.68-0.81); on the mean it beat a
#: network trained on the labelled image alone, but not in every trial.
ONE_LABEL_WARNING = (
    "Only one training image carries labels: the segmentation learns what an object is from "
    "that image alone (on simulated nuclei its average precision on new images ranged from "
    "0.58 to 0.73 over four trials); check it on an image you did not label, or label a few "
    "more."
)


def three_classes(labels: np.ndarray) -> np.ndarray:
    """Instance ids ``(C, *spatial)`` (0 background, -1 unlabelled) -> classes 0/1/2, -1 kept."""
    from skimage.segmentation import find_boundaries

    from infocus.metrics.segmentation import check_label_image

    labels = np.asarray(labels)
    unlabelled = labels < 0
    if unlabelled.all():
        return np.full(labels.shape, -1, dtype=np.float32)
    if unlabelled.any() and not (labels == -1).all(where=unlabelled):
        raise InfocusInputError("Label images must not hold negative values; use 0 for "
                                "background and 1, 2, ... for the objects.")
    ids = check_label_image(np.where(unlabelled, 0, labels))
    classes = np.where(ids > 0, FOREGROUND, BACKGROUND)
    for c in range(ids.shape[0]):
        classes[c][find_boundaries(ids[c], mode="inner") & (ids[c] > 0)] = BORDER
    return np.where(unlabelled, -1, classes).astype(np.float32)


def instances_from_classes(probabilities: np.ndarray, threshold: float = 0.5,
                           min_size: int = 4) -> np.ndarray:
    """Instance labels from per-pixel (background, foreground, border) probabilities
    ``(3, *spatial)`` (module docstring); objects under ``min_size`` pixels are dropped."""
    from scipy import ndimage
    from skimage.segmentation import watershed

    foreground, border = probabilities[FOREGROUND], probabilities[BORDER]
    seeds, _ = ndimage.label(foreground > threshold)
    sizes = np.bincount(seeds.ravel())
    seeds[(sizes < min_size)[seeds] & (seeds > 0)] = 0
    grown = watershed(-foreground, markers=seeds, mask=(foreground + border) > threshold)
    return grown.astype(np.uint32)


@dataclass(frozen=True)
class DenoiSeg(Noise2Void):
    """DenoiSeg (module docstring): N2V's blind spots plus three segmentation channels.

    Parameters
    ----------
    alpha : float
        Weight of the denoising loss (the paper's default 0.5); ``1 - alpha`` weighs the
        segmentation loss.
    threshold : float
        Foreground probability above which a pixel seeds an object at prediction.
    labelled_fraction : float
        Share of each training batch drawn from the labelled images when only some images
        are labelled (the rest from all images); without it a batch would carry labels only
        as often as labelled pixels occur in the data (module docstring). The default 0.9
        keeps the segmentation from drifting on images it has no labels for: at 0.5, with one
        labelled image among 20 simulated ones, the background of the other images read an
        object probability of 0.15 on average in one trial (0.004 on the labelled image) and
        the average precision on new images fell to 0.28; at 0.9 the background stayed at
        0.003-0.005 in that trial and two others, and the precision rose to 0.73
        (docs/benchmarks.md). The denoising term is weighed back to the data's own share of
        labelled pixels (:meth:`_denoising_loss`): without that, with one labelled image, the
        denoised image lost 1.8 dB on a simulated set (26.65 dB at 0.9 against 28.45 at 0.5;
        29.02 with the weights).
    border_weight : float
        Weight of the border class in the cross-entropy (background and foreground weigh 1):
        borders are thin, so unweighted they are easily lost, and with them the split
        between touching objects (the paper's relative weights are 1, 1, 5).
    """

    alpha: float = 0.5
    threshold: float = 0.5
    labelled_fraction: float = 0.9
    border_weight: float = 5.0

    labels: ClassVar[bool] = True
    prediction_options: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[frozenset[str]] = frozenset({"denoised", "labels", "foreground"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise InfocusInputError(f"alpha must lie in [0, 1] (got {self.alpha!r}).")
        if not 0.0 < float(self.threshold) < 1.0:
            raise InfocusInputError(f"threshold must lie in (0, 1) (got {self.threshold!r}).")
        if not 0.0 <= float(self.labelled_fraction) <= 1.0:
            raise InfocusInputError(
                f"labelled_fraction must lie in [0, 1] (got {self.labelled_fraction!r}); 0.5 "
                "draws half of every batch from the labelled images.")
        if not float(self.border_weight) > 0.0:
            raise InfocusInputError(
                f"border_weight must be positive (got {self.border_weight!r}); 1 weighs the "
                "border class like the others.")

    @property
    def summary(self) -> str:  # type: ignore[override]
        return ("DenoiSeg: Noise2Void plus a segmentation learned from a few labelled images; "
                "instance masks (Buchholz et al. 2020).")

    @property
    def citation(self) -> dict[str, str]:  # type: ignore[override]
        return {"text": "Buchholz, Prakash, Schmidt, Krull, Jug. DenoiSeg: joint denoising and "
                        "segmentation. ECCV Workshops 2020.", "doi": "10.48550/arXiv.2005.02987"}

    def export_limits(self, state: dict[str, Any]) -> list[str]:
        """The segmentation (the graph's output is the denoised image)."""
        return ["The segmentation is left out: the exported model gives the denoised image, "
                "not the foreground probability or the instance labels; predict with infocus "
                "for --labels-out."]

    def network_options(self, channels: int) -> dict[str, Any]:
        return {"in_channels": channels, "out_channels": channels + 3}

    def encode_labels(self, labels: np.ndarray) -> np.ndarray:
        return three_classes(labels)

    def labelled_share(self) -> float:
        return float(self.labelled_fraction)

    # ------------------------------------------------------------------------------ training
    def fit(self, data: FitData) -> Fitted:
        """Noise2Void's measurements, the labelled share of the training pixels (state
        ``labelled_pixel_share``, which weighs the denoising term) and a warning when a single
        image among unlabelled ones carries labels (:data:`ONE_LABEL_WARNING`)."""
        fitted = super().fit(data)
        if data.targets is None:
            return fitted
        marks = [has_labels(t) for t in data.targets]
        if self.alpha > 0 and sum(marks) == 1 and len(marks) > 1:
            data.say(ONE_LABEL_WARNING)
        sizes = [int(np.prod(block.shape[1:])) for block in data.inputs]
        share = sum(n for n, m in zip(sizes, marks, strict=True) if m) / max(sum(sizes), 1)
        return Fitted(options=fitted.options,
                      state={**fitted.state, "labelled_pixel_share": float(share)})

    def bind(self, state: dict[str, Any], normalizer: Any) -> DenoiSeg:
        """Noise2Void's binding, plus the labelled share of the training pixels that
        weighs the denoising term (:meth:`loss`; absent from models of older versions)."""
        bound = super().bind(state, normalizer)
        share = state.get("labelled_pixel_share")
        if share is not None:
            bound = dataclasses.replace(bound)
            object.__setattr__(bound, "_labelled_pixel_share", float(share))
        return bound

    def prepare(self, noisy: Tensor, target: Tensor | None, generator: torch.Generator) -> Batch:
        """N2V masking of ``noisy``; ``target`` holds the classes (-1 where unlabelled)."""
        batch = super().prepare(noisy, None, generator)
        if target is not None and target.shape[1] != 1:
            raise InfocusInputError(
                "DenoiSeg segments one image per block; give single-channel images (or "
                "train with joint channels).")
        return Batch(batch.input, batch.target, batch.mask, labels=target)

    def loss(self, prediction: Tensor, batch: Batch) -> dict[str, Tensor]:
        channels = batch.target.shape[1]
        denoise = self._denoising_loss(prediction[:, :channels], batch)
        logits = prediction[:, channels : channels + 3]
        if batch.labels is None:
            segment = logits.sum() * 0.0
        else:
            classes = batch.labels[:, 0].long()
            known = classes >= 0
            weights = logits.new_tensor([1.0, 1.0, float(self.border_weight)])
            per_pixel = F.cross_entropy(logits, classes.clamp_min(0), weight=weights,
                                        reduction="none")
            segment = (per_pixel * known).sum() / known.sum().clamp_min(1)
        loss = self.alpha * denoise + (1.0 - self.alpha) * segment
        return {"loss": loss, "denoise": denoise, "segment": segment}

    def _denoising_loss(self, denoised: Tensor, batch: Batch) -> Tensor:
        r"""N2V's masked MSE, with the labelled and unlabelled patches of a batch weighed
        :math:`q` and :math:`1 - q` (:math:`q` the labelled share of the training pixels):
        :math:`q\, L_{\text{labelled}} + (1 - q)\, L_{\text{unlabelled}}`. The sampler
        over-draws the labelled images for the segmentation; this keeps the denoising loss
        the average over all images that plain sampling would give. A batch with one kind of
        patch only, or a scheme without the share, takes the plain mean."""
        share = getattr(self, "_labelled_pixel_share", None)
        if batch.labels is None or share is None or not 0.0 < share < 1.0:
            return masked_loss(denoised, batch.target, batch.mask)
        labelled = (batch.labels >= 0).flatten(1).any(1)
        if bool(labelled.all()) or not bool(labelled.any()):
            return masked_loss(denoised, batch.target, batch.mask)
        parts = [masked_loss(denoised[rows], batch.target[rows],
                             None if batch.mask is None else batch.mask[rows])
                 for rows in (labelled, ~labelled)]
        return share * parts[0] + (1.0 - share) * parts[1]

    # ---------------------------------------------------------------------------- prediction
    def prediction_network(self, network: nn.Module, request: PredictionRequest) -> nn.Module:
        return _Probabilities(network)

    def finish(
        self, outputs: np.ndarray, noisy: np.ndarray, context: PredictionContext
    ) -> dict[str, np.ndarray]:
        """Denoised image, foreground probability and instance labels, per block."""
        channels = outputs.shape[0] - 3
        probabilities = outputs[channels:]
        labels = instances_from_classes(probabilities, self.threshold)
        return {"denoised": context.target_norm.denormalize(outputs[:channels], channel_axis=0),
                "foreground": probabilities[FOREGROUND][None].astype(np.float32),
                "labels": labels[None].astype(np.float32)}


class _Probabilities(nn.Module):
    """The network with its three class logits turned into probabilities."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.size_multiple = network.size_multiple

    def forward(self, x: Tensor) -> Tensor:
        output = self.network(x)
        channels = output.shape[1] - 3
        return torch.cat([output[:, :channels], torch.softmax(output[:, channels:], dim=1)], 1)


@SCHEMES.register("denoiseg")
def _denoiseg(
    *,
    alpha: float = 0.5,
    threshold: float = 0.5,
    labelled_fraction: float = 0.9,
    border_weight: float = 5.0,
    fraction: float = 0.002,
    radius: int = 2,
    channels: ChannelMode = "independent",
    blind_spot: Sequence[Sequence[int]] | str = "auto",
) -> DenoiSeg:
    """DenoiSeg; alpha weighs denoising against segmentation (0.5 as in the paper),
    labelled_fraction is the share of each batch drawn from the labelled images and
    border_weight the border class's weight in the cross-entropy (5 as in the paper)."""
    struct = _pattern(blind_spot)
    return DenoiSeg(
        fraction, radius_for_pattern(radius, struct), "uniform", struct, _MEASURED_FILL,
        channels=channels, name="denoiseg", measures_correlation=True, alpha=float(alpha),
        threshold=float(threshold), labelled_fraction=float(labelled_fraction),
        border_weight=float(border_weight),
    )
