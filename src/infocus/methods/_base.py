r"""What every method shares: the :class:`TrainingScheme` base class, the :class:`Batch`, the
masked loss and the registry.

A method is one file. Its scheme class owns everything particular to it, and the engine asks
the scheme instead of testing the method's name:

=============================== ================================================================
hook                            what the scheme decides
=============================== ================================================================
``summary``, ``needs_target``,  what ``infocus methods`` and ``infocus train`` say and ask for
``target_help``
``defaults_for(ndim)``          options that depend on 2-D or 3-D (e.g. the masked fraction)
``default_network``,            the network it needs, built from :mod:`infocus.nets`; another
``network_kind``,               registered network of its ``network_kind`` may replace it
``network_options(channels)``
``patch_shape``                 the training patch, when it differs from the engine's
``fit(data)``                   what it measures on the training data first (noise correlation,
                                a noise model, a photometric relation); returns the resolved
                                options and the state stored in the model file
``bind(state, normalizer)``     the scheme ready for the loss and prediction with that state
``prepare``, ``loss``           the training batch and the (possibly structured) loss
``prediction_network``          what runs on each tile at prediction (the network, or the
                                network plus a posterior computation or sampling)
``after_training``              what it measures once trained (e.g. its uncertainty's scale)
``finish``                      how the tiles' output becomes the result (denormalisation,
                                pixel fusion, calibration, MMSE, uncertainty)
``prediction_options``,         the prediction options and outputs it offers
``outputs``
=============================== ================================================================

One generic loop trains every scheme::

    batch = scheme.prepare(noisy, target, generator)   # identity (CARE, N2N) or blind-spot masking
    output = model(batch.input)
    loss = scheme.loss(output, batch)                   # a tensor, or a dict with "loss" + terms

Tensors are ``(B, C, Y, X)`` or ``(B, C, Z, Y, X)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from infocus._errors import InfocusInputError
from infocus._registry import Registry

if TYPE_CHECKING:
    from infocus.intensity import Normalizer

__all__ = [
    "SCHEMES",
    "Batch",
    "ChannelMode",
    "FitData",
    "Fitted",
    "LossKind",
    "PredictionContext",
    "PredictionRequest",
    "TrainingScheme",
    "check_batch_tensor",
    "create_scheme",
    "has_labels",
    "list_schemes",
    "masked_loss",
    "scheme_options",
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
    target : Tensor
        What the prediction should match (the noisy batch itself for Noise2Void/Noise2Self).
    mask : Tensor or None
        Bool (or 0/1 float) tensor of ``target``'s shape marking the pixels the loss counts;
        ``None`` means every pixel.
    """

    input: Tensor
    target: Tensor
    mask: Tensor | None = None
    #: Per-pixel classes a scheme that also segments scores (-1 where unlabelled).
    labels: Tensor | None = None

    def __post_init__(self) -> None:
        if self.mask is not None and self.mask.shape != self.target.shape:
            raise InfocusInputError(
                f"The loss mask has shape {tuple(self.mask.shape)} but the target has shape "
                f"{tuple(self.target.shape)}; build the mask with the target's shape."
            )

    def to(self, device: torch.device | str) -> Batch:
        """The same batch with every tensor moved to ``device``."""
        mask = None if self.mask is None else self.mask.to(device)
        labels = None if self.labels is None else self.labels.to(device)
        return Batch(self.input.to(device), self.target.to(device), mask, labels)


@dataclass
class FitData:
    """What a scheme may look at before training (:meth:`TrainingScheme.fit`).

    Attributes
    ----------
    inputs, targets :
        The training blocks ``(C, *spatial)`` (lazy arrays are never read whole); ``targets``
        is None for self-supervised methods.
    ndim : int
        Spatial dimensionality (2 or 3).
    spatial : str
        The spatial axes (``"YX"``, ``"ZYX"``, ``"TYX"``).
    options : dict
        The scheme options as the user gave them (before :meth:`~TrainingScheme.fit`
        resolves any, e.g. ``blind_spot="auto"``).
    seed : int
        The run's seed, for anything random the fit does.
    say : callable
        Logs one line for the user.
    planes : callable
        ``planes(role="inputs", size=256, max_planes=32)``: central YX crops of evenly chosen
        planes, ``(C, P, h, w)`` float64 (only the crops are read).
    pretrain : callable or None
        ``pretrain(method, steps=None, **options)`` trains another registered method on the
        same data with its defaults (at most ``steps`` steps, and never more than this run) and
        returns the trained model (an object with ``denoise(image, axes=)``); e.g. for
        bootstrapping a noise model from Noise2Void predictions.
    """

    inputs: Sequence[Any]
    targets: Sequence[Any] | None
    ndim: int
    spatial: str
    options: dict[str, Any]
    seed: int
    say: Callable[[str], None]
    planes: Callable[..., np.ndarray]
    pretrain: Callable[..., Any] | None = None


@dataclass(frozen=True)
class Fitted:
    """What :meth:`TrainingScheme.fit` measured.

    Attributes
    ----------
    options : dict
        Scheme options it resolved (merged into the training configuration, so the saved model
        and a resumed run use the same ones), e.g. the measured blind-spot offsets.
    state : dict
        JSON-able state the prediction needs, stored in the model file (a noise model, the
        photometric relation of targets to inputs, the measured noise correlation).
    """

    options: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictionRequest:
    """What the caller wants from one prediction.

    Attributes
    ----------
    options : dict
        The method's prediction options (:attr:`TrainingScheme.prediction_options`) as passed;
        a missing one means "the method's default".
    uncertainty : bool
        Also return the per-pixel posterior standard deviation.
    samples : int or None
        Return this many posterior samples instead of the estimate.
    """

    options: dict[str, Any] = field(default_factory=dict)
    uncertainty: bool = False
    samples: int | None = None


@dataclass
class PredictionContext:
    """What :meth:`TrainingScheme.finish` gets besides the network output and the noisy block.

    Attributes
    ----------
    state : dict
        The fitted state stored with the model.
    input_norm, target_norm : Normalizer
        How the network's inputs were normalised and how its outputs are denormalised.
    spatial : str
        Spatial axes of the block.
    request : PredictionRequest
        What the caller asked for.
    notes : list
        Where ``finish`` records what the user should hear (e.g. intensity fits); read back
        through :meth:`TrainingScheme.report`.
    """

    state: dict[str, Any]
    input_norm: Normalizer
    target_norm: Normalizer
    spatial: str
    request: PredictionRequest
    notes: list[Any] = field(default_factory=list)


class TrainingScheme:
    """Base class of every method: a data transform plus what the method needs around it.

    Subclasses (frozen dataclasses) set the class attributes and override the hooks they need;
    the defaults describe a plain regression network (CARE, Noise2Noise).

    Attributes
    ----------
    name : str
        The registry name.
    summary : str
        One line for ``infocus methods``: the idea and the paper.
    needs_target : bool
        True when training needs a target per input (clean images, second noisy captures).
    target_help : str
        What the targets are, for messages ("clean (high-exposure) images").
    blind_spot : bool
        True when the network never sees the pixels it is scored on.
    default_network : str
        Registered network (:mod:`infocus.nets`) built unless the configuration says otherwise.
    network_kind : str
        The kind of network it trains (:func:`infocus.nets.network_kind`):
        ``"image-to-image"`` for a method that only sets the network's ``ndim``,
        ``in_channels`` and ``out_channels`` (:meth:`network_options`), so any such network
        can replace the default one (``infocus train --network``); ``"vae"`` for DivNoising.
    default_network_options : dict
        Its constructor arguments unless the configuration says otherwise. The U-Net default
        is 16 first-level filters: 2.5-3.7x faster per step than 32 on a 2-core CPU for the
        same PSNR per step (docs/benchmarks.md); ``{"base_filters": 32}`` is the CARE size.
    default_training : dict
        :class:`~infocus.methods.config.TrainingConfig` fields whose default differs for this
        method (e.g. its number of steps).
    separate_target_normalization : bool
        Targets get their own normalisation (CARE: another exposure, other units).
    exportable : bool
        Whether its prediction network may run in ONNX Runtime and be exported
        (:mod:`infocus.export`).
    not_exportable_because : str
        For a method that is not exportable, why (what its prediction does besides a network).
    citation : dict
        The paper to cite: ``{"text": ..., "doi": ...}`` or ``{"text": ..., "url": ...}``;
        written into exported packages.
    prediction_options : tuple of str
        Keyword options of :meth:`infocus.predict.TrainedModel.denoise` that this method takes.
    outputs : frozenset of str
        What a prediction can give besides ``"denoised"``: ``"uncertainty"`` (per-pixel
        posterior standard deviation), ``"samples"`` (posterior samples), or further images
        by name (``"deconvolved"``), asked for with ``predict(..., also=(name,))``.
    context_axis : str or None
        The axis along which the method reads neighbouring images (``"T"``: it predicts each
        frame from other frames); the data must have it.
    labels : bool
        The targets are instance-label images, given for some inputs only (``None`` for the
        others); :meth:`encode_labels` turns each into what the loss scores.
    required_options : dict
        Options the method cannot train without, with an example value each (a PSF for
        DecoNoising); ``infocus methods`` shows them, and registry-wide tests use them.
    mixed_precision : bool
        Whether its network may train in bfloat16 (:mod:`infocus.nets.precision`); False for a
        method whose network computes more than an image (DivNoising's variances and samples),
        so ``precision="auto"`` trains it in float32.
    prediction_tta : bool
        Whether prediction averages over the flips and rotations of the image
        (test-time augmentation) unless the caller says otherwise; True for a method whose
        output holds content that the data do not fix and the network sets by orientation
        (DecoNoising's deconvolved image).
    """

    name: str
    summary: ClassVar[str] = ""
    needs_target: ClassVar[bool] = False
    target_help: ClassVar[str] = ""
    blind_spot: ClassVar[bool] = False
    default_network: ClassVar[str] = "unet"
    network_kind: ClassVar[str] = "image-to-image"
    default_network_options: ClassVar[dict[str, Any]] = {"base_filters": 16}
    default_training: ClassVar[dict[str, Any]] = {}
    separate_target_normalization: ClassVar[bool] = False
    exportable: ClassVar[bool] = True
    not_exportable_because: ClassVar[str] = ""
    citation: ClassVar[dict[str, str]] = {}
    prediction_options: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[frozenset[str]] = frozenset({"denoised"})
    required_options: ClassVar[dict[str, Any]] = {}
    labels: ClassVar[bool] = False
    context_axis: ClassVar[str | None] = None
    mixed_precision: ClassVar[bool] = True
    prediction_tta: ClassVar[bool] = False

    # ------------------------------------------------------------------------------ training
    @property
    def rotation_invariant(self) -> bool:
        """Whether patches may be turned by 90° in training (and at test-time augmentation)."""
        return True

    def defaults_for(self, ndim: int) -> dict[str, Any]:
        """Scheme options that depend on the data's dimensionality (user options override)."""
        return {}

    def network_options(self, channels: int) -> dict[str, Any]:
        """Constructor arguments of the network that depend on the data's channel count."""
        return {"in_channels": channels, "out_channels": channels}

    def patch_shape(self, proposed: tuple[int, ...], shortest: tuple[int, ...]
                    ) -> tuple[int, ...]:
        """The training patch shape, given the engine's ``proposed`` one and the smallest
        block size per spatial axis (default: the proposed one)."""
        return proposed

    def fit(self, data: FitData) -> Fitted:
        """Measure what the method needs on the training data before training (default: nothing)."""
        return Fitted()

    def bind(self, state: dict[str, Any], normalizer: Normalizer) -> TrainingScheme:
        """This scheme, ready to compute its loss and predictions with the fitted ``state``
        for inputs normalised by ``normalizer`` (default: nothing to bind)."""
        return self

    def after_training(self, network: nn.Module, patches: Tensor, generator: torch.Generator
                       ) -> dict[str, Any]:
        """What to measure once the network is trained, e.g. a calibration factor of its
        uncertainty, from normalised validation ``patches`` ``(N, C, *patch)`` (no ground
        truth); merged into the model's state. Default: nothing."""
        return {}

    def check_state(self, state: dict[str, Any], source: str) -> None:
        """Raise a clear error when a loaded model's ``state`` lacks what prediction needs."""

    def check_input(self, noisy: np.ndarray, state: dict[str, Any]) -> None:
        """Raise a clear error, before any tile is computed, for a block ``(C, *spatial)`` in
        camera units that this model cannot predict (e.g. intensities its noise model does not
        cover)."""

    def encode_labels(self, labels: np.ndarray) -> np.ndarray:
        """A label block ``(C, *spatial)`` (instance ids, -1 where unlabelled) as the classes
        the loss scores (only for :attr:`labels` schemes)."""
        return labels

    def labelled_share(self) -> float | None:
        """Share of each training batch drawn from the images that carry labels, when only
        some do (only for :attr:`labels` schemes); ``None`` draws every patch from all
        images alike, so a few labelled images are seen in few patches."""
        return None

    def prepare(self, noisy: Tensor, target: Tensor | None, generator: torch.Generator) -> Batch:
        """Build the batch from noisy patches ``(B, C, [Z,] Y, X)`` and an optional target."""
        raise NotImplementedError

    def loss(self, prediction: Any, batch: Batch) -> Tensor | dict[str, Tensor]:
        """The loss of the network output for ``batch``: a scalar, or a dict whose ``"loss"``
        is the scalar to minimise and whose other entries are logged per epoch."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------- prediction
    def prediction_network(self, network: nn.Module, request: PredictionRequest) -> nn.Module:
        """What runs on each normalised tile; its output channels go to :meth:`finish`."""
        return network

    def finish(
        self, outputs: np.ndarray, noisy: np.ndarray, context: PredictionContext
    ) -> dict[str, np.ndarray]:
        """Turn the stitched output ``(C_out, *spatial)`` for the noisy block ``(C, *spatial)``
        (camera units) into ``{"denoised": (C, *spatial), ...}`` in camera units.

        By convention the first ``C`` output channels, denormalised, are the denoised image
        before any step that needs the noisy block (further outputs follow them); exported
        graphs (:mod:`infocus.export`) rely on it."""
        return {"denoised": context.target_norm.denormalize(outputs, channel_axis=0)}

    def report(self, notes: Sequence[Any]) -> list[str]:
        """Sentences for the user about the notes :meth:`finish` recorded (default: none)."""
        return []

    def export_limits(self, state: dict[str, Any]) -> list[str]:
        """What an exported graph (normalisation, :meth:`prediction_network`, the first
        ``C`` output channels, denormalisation) leaves out of this method's default prediction
        for a model with the fitted ``state``, in sentences for the user (default: nothing)."""
        return []


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


def has_labels(target: Any) -> bool:
    """Whether a training target of a labelled method carries labels anywhere (unlabelled
    pixels, and images without labels throughout, hold -1)."""
    return bool(np.any(np.asarray(target) >= 0))


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
SCHEMES: Registry[Callable[..., TrainingScheme]] = Registry("method")


def scheme_options(name: str) -> dict[str, Any]:
    """The training options that method ``name`` accepts, with their defaults.

    Examples
    --------
    >>> scheme_options("care")
    {'loss': 'mse'}
    """
    factory = SCHEMES.get(name)
    return {
        p.name: p.default for p in inspect.signature(factory).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def create_scheme(name: str, **options: object) -> TrainingScheme:
    """Build the method registered under ``name`` with the given training options.

    Parameters
    ----------
    name : str
        One of :func:`list_schemes` (case-insensitive).
    **options
        The method's keyword options, e.g. ``fraction=0.01`` for ``"n2v"``.

    Raises
    ------
    InfocusInputError
        For an unknown name or an option the method does not accept (the message lists the
        accepted ones).

    Examples
    --------
    >>> create_scheme("n2v2", radius=3).radius
    3
    """
    accepted = list(scheme_options(name))
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InfocusInputError(
            f"Method {name!r} has no option(s) {', '.join(map(repr, unknown))}; "
            f"it accepts: {', '.join(accepted) or 'none'}."
        )
    return SCHEMES.get(name)(**options)


def list_schemes() -> list[str]:
    """Names of all registered methods, sorted.

    Examples
    --------
    >>> {"care", "n2v", "n2s"} <= set(list_schemes())
    True
    """
    return SCHEMES.names()
