r"""What every training scheme shares: the :class:`Batch`, the :class:`TrainingScheme` protocol,
the masked loss and the registry.

A training scheme is a *data transform*, not a trainer. One generic loop trains every scheme::

    batch = scheme.prepare(noisy, target, generator)   # identity (CARE, N2N) or blind-spot masking
    prediction = model(batch.input)
    loss = scheme.loss(prediction, batch)               # (masked) MSE

so adding a scheme means writing ``prepare`` and ``loss``, nothing else. Tensors are
``(B, C, Y, X)`` or ``(B, C, Z, Y, X)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

from infocus._errors import InfocusInputError
from infocus._registry import Registry

__all__ = [
    "SCHEMES",
    "Batch",
    "ChannelMode",
    "LossKind",
    "TrainingScheme",
    "check_batch_tensor",
    "create_scheme",
    "list_schemes",
    "masked_loss",
]

#: ``"independent"``: every channel gets its own blind-spot mask (noise independent across
#: channels, the Noise2Void default); ``"joint"``: one mask shared by all channels.
ChannelMode = Literal["independent", "joint"]
#: Pixel-wise loss: squared error (``"mse"``) or absolute error (``"l1"``).
LossKind = Literal["mse", "l1"]


@dataclass(frozen=True, eq=False)
class Batch:
    """One prepared training batch: what the network sees and what its output is compared with.

    Parameters
    ----------
    input : Tensor, shape (B, C, [Z,] Y, X)
        The network input (the noisy batch, with blind spots filled in for self-supervised schemes).
    target : Tensor, same shape as the prediction
        What the prediction should match (the noisy batch itself for Noise2Void/Noise2Self).
    mask : Tensor or None
        Bool (or 0/1 float) tensor of ``target``'s shape marking the pixels the loss counts;
        ``None`` means every pixel.
    """

    input: Tensor
    target: Tensor
    mask: Tensor | None = None

    def __post_init__(self) -> None:
        if self.mask is not None and self.mask.shape != self.target.shape:
            raise InfocusInputError(
                f"The loss mask has shape {tuple(self.mask.shape)} but the target has shape "
                f"{tuple(self.target.shape)}; build the mask with the target's shape."
            )

    def to(self, device: torch.device | str) -> Batch:
        """The same batch with every tensor moved to ``device``."""
        mask = None if self.mask is None else self.mask.to(device)
        return Batch(self.input.to(device), self.target.to(device), mask)


@runtime_checkable
class TrainingScheme(Protocol):
    """A way to turn noisy (and possibly clean or second-noisy) patches into a training batch.

    Attributes
    ----------
    name : str
        The registry name ("care", "n2n", "n2v", "n2v2", "structn2v", "n2s").
    needs_target : bool
        True when ``prepare`` requires a target (CARE: clean images; N2N: a second noisy
        acquisition of the same scene).
    blind_spot : bool
        True when the network never sees the pixels it is scored on (Noise2Void family,
        Noise2Self); such networks are trained on the noisy images alone.
    """

    name: str
    needs_target: bool
    blind_spot: bool

    def prepare(self, noisy: Tensor, target: Tensor | None, generator: torch.Generator) -> Batch:
        """Build the batch from noisy patches ``(B, C, [Z,] Y, X)`` and an optional target."""
        ...

    def loss(self, prediction: Tensor, batch: Batch) -> Tensor:
        """Scalar loss of the network output for ``batch``."""
        ...


def check_batch_tensor(x: object, *, name: str = "noisy batch") -> Tensor:
    """Check that ``x`` is a floating-point tensor of shape ``(B, C, Y, X)`` or ``(B, C, Z, Y, X)``.

    Raises
    ------
    InfocusInputError
        For anything else; the message says what was received.
    """
    if not isinstance(x, Tensor):
        raise InfocusInputError(
            f"The {name} must be a torch.Tensor, got {type(x).__name__}; convert it with "
            "torch.from_numpy(array)."
        )
    if x.ndim not in (4, 5):
        raise InfocusInputError(
            f"The {name} has shape {tuple(x.shape)} but must be (B, C, Y, X) or (B, C, Z, Y, X); "
            "add the batch and channel axes (e.g. x[None, None])."
        )
    if not x.is_floating_point():
        raise InfocusInputError(
            f"The {name} has dtype {x.dtype} but must be floating point; convert it with x.float()."
        )
    return x


def masked_loss(
    prediction: Tensor, target: Tensor, mask: Tensor | None = None, *, kind: LossKind = "mse"
) -> Tensor:
    r"""Mean pixel loss over the pixels where ``mask`` is set.

    .. math::

        L = \frac{\sum_i m_i\, \ell(p_i - t_i)}{\max\left(\sum_i m_i,\ 1\right)},
        \qquad \ell(e) = e^2 \ (\text{mse}) \text{ or } |e| \ (\text{l1}),

    with :math:`m_i = 1` everywhere when ``mask`` is None. An empty mask gives a loss of 0 (with a
    zero gradient) instead of a division by zero.

    Parameters
    ----------
    prediction, target : Tensor
        Same shape.
    mask : Tensor or None
        Bool or 0/1 float tensor of the same shape; None counts every pixel.
    kind : {"mse", "l1"}
        Squared or absolute error.

    Returns
    -------
    Tensor
        A scalar.

    Examples
    --------
    >>> import torch
    >>> p, t = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    >>> m = torch.tensor([[[[True, False], [False, False]]]])
    >>> float(masked_loss(p, t, m))
    1.0
    """
    if prediction.shape != target.shape:
        raise InfocusInputError(
            f"The prediction has shape {tuple(prediction.shape)} but the target has shape "
            f"{tuple(target.shape)}; the network must return an output of its input's shape."
        )
    if kind not in ("mse", "l1"):
        raise InfocusInputError(f"Unknown loss {kind!r}; choose 'mse' or 'l1'.")
    error = prediction - target
    pointwise = error.square() if kind == "mse" else error.abs()
    if mask is None:
        return pointwise.mean()
    weights = mask.to(pointwise.dtype)
    return (weights * pointwise).sum() / weights.sum().clamp_min(1.0)


#: Name -> factory ``(**options) -> TrainingScheme``; every option is keyword-only.
SCHEMES: Registry[Callable[..., TrainingScheme]] = Registry("training scheme")


def create_scheme(name: str, **options: object) -> TrainingScheme:
    """Build the training scheme registered under ``name`` with the given options.

    Parameters
    ----------
    name : str
        One of :func:`list_schemes` (case-insensitive).
    **options
        The scheme's keyword options, e.g. ``fraction=0.01`` for ``"n2v"``.

    Raises
    ------
    InfocusInputError
        For an unknown name or an option the scheme does not accept (the message lists the
        accepted ones).

    Examples
    --------
    >>> create_scheme("n2v2", radius=3).radius
    3
    """
    factory = SCHEMES.get(name)
    accepted = list(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InfocusInputError(
            f"Training scheme {name!r} has no option(s) {', '.join(map(repr, unknown))}; "
            f"it accepts: {', '.join(accepted) or 'none'}."
        )
    return factory(**options)


def list_schemes() -> list[str]:
    """Names of all registered training schemes, sorted.

    Examples
    --------
    >>> list_schemes()
    ['care', 'n2n', 'n2s', 'n2v', 'n2v2', 'structn2v']
    """
    return SCHEMES.names()
