r"""Supervised training on image pairs: CARE and Noise2Noise are one scheme.

* **CARE** (Weigert et al. 2018): the target is a clean (high-exposure) acquisition of the scene.
* **Noise2Noise** (Lehtinen et al. 2018): the target is a *second noisy* acquisition. Because the
  noise is zero-mean and independent of the input's noise, :math:`\mathrm{E}[(f(x) - y')^2]
  = \mathrm{E}[(f(x) - s)^2] + \mathrm{Var}[n']`, so minimising the MSE to noisy targets has the
  same minimiser as minimising it to the clean signal :math:`s`.

Both prepare the batch unchanged and score every pixel; they differ only in the data the user
provides, which is why they share this one class.

References
----------
M. Weigert et al., "Content-aware image restoration: pushing the limits of fluorescence
microscopy", Nature Methods 15, 1090–1097 (2018).

J. Lehtinen et al., "Noise2Noise: Learning image restoration without clean data", ICML 2018.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor

from infocus._errors import InfocusInputError
from infocus.methods._base import SCHEMES, Batch, LossKind, check_batch_tensor, masked_loss

__all__ = ["Supervised"]

_TARGET_KIND = {"care": "a clean (high-exposure) image", "n2n": "a second noisy acquisition"}


@dataclass(frozen=True)
class Supervised:
    """Supervised scheme: the network maps the noisy batch to a given target.

    Parameters
    ----------
    name : {"care", "n2n"}
        CARE (clean targets) or Noise2Noise (second noisy acquisitions as targets); the
        computation is the same, the name only says what the target is.
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


@SCHEMES.register("care")
def _care(*, loss: LossKind = "mse") -> Supervised:
    """CARE: supervised on (noisy, clean) pairs."""
    return Supervised("care", loss)


@SCHEMES.register("n2n")
def _n2n(*, loss: LossKind = "mse") -> Supervised:
    """Noise2Noise: supervised on (noisy, second noisy) pairs."""
    return Supervised("n2n", loss)
