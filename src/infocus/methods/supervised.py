r"""Supervised training on image pairs: CARE and Noise2Noise are one scheme.

* **CARE** (Weigert et al. 2018): the target is a clean (high-exposure) acquisition of the scene.
* **Noise2Noise** (Lehtinen et al. 2018): the target is a *second noisy* acquisition. Because the
  noise is zero-mean and independent of the input's noise, :math:`\mathrm{E}[(f(x) - y')^2]
  = \mathrm{E}[(f(x) - s)^2] + \mathrm{Var}[n']`, so minimising the MSE to noisy targets has the
  same minimiser as minimising it to the clean signal :math:`s`.

Both prepare the batch unchanged and score every pixel; they differ in the data the user
provides and in one consequence of it: CARE's targets may be in other units than its inputs
(another exposure, another camera), so CARE normalises its targets separately, measures how
target intensities relate to input intensities before training
(:func:`~infocus.intensity.photometric_relation`) and, at prediction, calibrates each image's
intensities against its measurement (:func:`~infocus.intensity.calibrate_intensity`), because a
supervised mapping carries its training domain's intensities with it.

References
----------
M. Weigert et al., "Content-aware image restoration: pushing the limits of fluorescence
microscopy", Nature Methods 15, 1090–1097 (2018).

J. Lehtinen et al., "Noise2Noise: Learning image restoration without clean data", ICML 2018.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from infocus._errors import InfocusInputError
from infocus.methods._base import (
    SCHEMES,
    Batch,
    FitData,
    Fitted,
    LossKind,
    PredictionContext,
    TrainingScheme,
    check_batch_tensor,
    masked_loss,
)

__all__ = ["Supervised"]

_TARGET_KIND = {"care": "a clean (high-exposure) image", "n2n": "a second noisy acquisition"}
_SUMMARY = {
    "care": "CARE: supervised on (low-SNR, high-SNR) pairs (Weigert et al. 2018).",
    "n2n": "Noise2Noise: pairs of independent noisy captures (Lehtinen et al. 2018).",
}

_CITATION = {
    "care": {"text": "Weigert et al. Content-aware image restoration: pushing the limits of "
                     "fluorescence microscopy. Nature Methods 15, 1090-1097 (2018).",
             "doi": "10.1038/s41592-018-0216-7"},
    "n2n": {"text": "Lehtinen et al. Noise2Noise: learning image restoration without clean "
                    "data. ICML 2018.", "doi": "10.48550/arXiv.1803.04189"},
}


@dataclass(frozen=True)
class Supervised(TrainingScheme):
    """Supervised scheme: the network maps the noisy batch to a given target.

    Parameters
    ----------
    name : {"care", "n2n"}
        CARE (clean targets) or Noise2Noise (second noisy acquisitions as targets); the
        network and loss are the same, CARE adds the photometric calibration.
    loss_kind : {"mse", "l1"}
        Pixel loss over every pixel (the registry option is called ``loss``).

    Examples
    --------
    >>> import torch
    >>> scheme = Supervised("n2n")
    >>> noisy, other = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    >>> batch = scheme.prepare(noisy, other, torch.Generator().manual_seed(0))
    >>> batch.input is noisy and batch.target is other and batch.mask is None
    True
    """

    name: Literal["care", "n2n"] = "care"
    loss_kind: LossKind = "mse"

    needs_target: ClassVar[bool] = True
    blind_spot: ClassVar[bool] = False

    @property
    def summary(self) -> str:  # type: ignore[override]
        return _SUMMARY.get(self.name, "")

    @property
    def citation(self) -> dict[str, str]:  # type: ignore[override]
        return _CITATION.get(self.name, {})

    @property
    def target_help(self) -> str:  # type: ignore[override]
        return _TARGET_KIND.get(self.name, "")

    @property
    def _calibrated(self) -> bool:
        """CARE's targets may be in other units: it measures and restores the photometric scale."""
        return self.name == "care"

    @property
    def separate_target_normalization(self) -> bool:  # type: ignore[override]
        return self._calibrated

    @property
    def prediction_options(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("calibrate",) if self._calibrated else ()

    def __post_init__(self) -> None:
        if self.name not in _TARGET_KIND:
            raise InfocusInputError(
                f"Unknown supervised scheme {self.name!r}; choose 'care' or 'n2n'."
            )
        if self.loss_kind not in ("mse", "l1"):
            raise InfocusInputError(f"Unknown loss {self.loss_kind!r}; choose 'mse' or 'l1'.")

    def prepare(self, noisy: Tensor, target: Tensor | None, generator: torch.Generator) -> Batch:
        """Return the pair unchanged (``generator`` is unused: nothing is random).

        Raises
        ------
        InfocusInputError
            When ``target`` is missing or its shape differs from ``noisy``'s.
        """
        noisy = check_batch_tensor(noisy)
        if target is None:
            raise InfocusInputError(
                f"Training scheme {self.name!r} needs --target images ({_TARGET_KIND[self.name]} "
                "of each input); pass them, or use a self-supervised scheme such as 'n2v'."
            )
        target = check_batch_tensor(target, name="target batch")
        if target.shape != noisy.shape:
            raise InfocusInputError(
                f"The target batch has shape {tuple(target.shape)} but the noisy batch has shape "
                f"{tuple(noisy.shape)}; pair each input with a target of the same shape."
            )
        return Batch(input=noisy, target=target, mask=None)

    def loss(self, prediction: Tensor, batch: Batch) -> Tensor:
        """Mean pixel loss (``loss_kind``) over every pixel."""
        return masked_loss(prediction, batch.target, batch.mask, kind=self.loss_kind)

    def fit(self, data: FitData) -> Fitted:
        """CARE: per channel, how target intensities relate to input intensities at large
        scales (:func:`~infocus.intensity.photometric_relation`), from sampled planes."""
        if not self._calibrated or data.targets is None:
            return Fitted()
        from infocus.intensity import photometric_relation

        x, t = data.planes("inputs"), data.planes("targets")
        relations = [photometric_relation(x[c], t[c]) for c in range(x.shape[0])]
        return Fitted(state={"photometric_relation": [
            {"alpha": alpha, "beta": beta} for alpha, beta in relations]})

    def finish(
        self, outputs: np.ndarray, noisy: np.ndarray, context: PredictionContext
    ) -> dict[str, np.ndarray]:
        """Denormalise; CARE then calibrates each channel against the measurement (on by
        default when the model knows how its targets relate to its inputs; models saved before
        that relation was stored do not, and are left as they are)."""
        from infocus.intensity import calibrate_intensity

        predicted = context.target_norm.denormalize(outputs, channel_axis=0)
        relations = context.state.get("photometric_relation") or []
        calibrate = context.request.options.get("calibrate")
        if calibrate is None:
            calibrate = self._calibrated and bool(relations)
        if calibrate:
            for c in range(predicted.shape[0]):
                predicted[c], fit = calibrate_intensity(
                    predicted[c], noisy[c], photometric_relation(relations, c))
                context.notes.append(fit)
        return {"denoised": predicted}

    def export_limits(self, state: dict[str, Any]) -> list[str]:
        """CARE's intensity calibration, when the model knows its photometric relation."""
        if not (self._calibrated and state.get("photometric_relation")):
            return []
        return ["Intensity calibration is left out: the exported model gives the network's "
                "intensities, without the per-image gain and offset that make large-scale "
                "intensities agree with the measurement (as infocus predict --no-calibrate "
                "does)."]

    def report(self, notes: Sequence[Any]) -> list[str]:
        """How far the network had moved the intensities, so distortion is never silent."""
        if not notes:
            return []
        gains = np.array([f.gain for f in notes])
        offsets = np.array([f.offset for f in notes])
        refused = sum(not f.applied for f in notes)
        lines = [
            f"Intensity calibration over {len(notes)} image(s): gain {gains.min():.3g}–"
            f"{gains.max():.3g}, offset {offsets.min():.3g}–{offsets.max():.3g} "
            "(1 and 0: the network kept the measurement's scale)."
        ]
        if refused:
            lines.append(
                f"Warning: {refused} image(s) were left uncalibrated: their fitted gain was "
                "outside 0.5–2, so the model is far from its training data there; check those "
                "results against the raw data."
            )
        return lines


def photometric_relation(relations: Sequence[dict[str, float]], channel: int = 0
                         ) -> tuple[float, float]:
    """``(alpha, beta)`` of ``channel`` from the stored relations (target ≈ alpha · input +
    beta at large scales); the identity when none is stored."""
    if not relations:
        return 1.0, 0.0
    chosen = relations[channel] if channel < len(relations) else relations[0]
    return float(chosen["alpha"]), float(chosen["beta"])


@SCHEMES.register("care")
def _care(*, loss: LossKind = "mse") -> Supervised:
    """CARE: supervised on (noisy, clean) pairs."""
    return Supervised("care", loss)


@SCHEMES.register("n2n")
def _n2n(*, loss: LossKind = "mse") -> Supervised:
    """Noise2Noise: supervised on (noisy, second noisy) pairs."""
    return Supervised("n2n", loss)
