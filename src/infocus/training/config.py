"""What a training run needs to know, with defaults chosen per method."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from infocus._errors import InfocusInputError

__all__ = ["TrainingConfig", "default_config", "default_scheme_options"]

#: Network used by each training scheme unless told otherwise.
_DEFAULT_NETWORK = {"n2v2": "unet_n2v2"}


@dataclass(frozen=True)
class TrainingConfig:
    """All settings of a training run; stored with the model.

    Attributes
    ----------
    method : str
        Training scheme: ``care``, ``n2n``, ``n2v``, ``n2v2``, ``structn2v`` or ``n2s``.
    spatial : str
        Which axes the network sees as space: ``"YX"``, ``"ZYX"``, or ``"TYX"`` (time as a
        third dimension); ``"auto"`` picks ``ZYX`` when the data have ``Z``, else ``YX``.
    channels : str
        ``"independent"``: every channel is its own single-channel image (one network for all);
        ``"joint"``: channels go through the network together.
    network, network_options :
        Registered network name and its constructor arguments (``depth``, ``base_filters``...).
    scheme_options :
        Options of the training scheme (e.g. N2V's masked ``fraction``). N2V and N2V2 take
        ``blind_spot``: ``"auto"`` (default: measure the noise's spatial correlation and hide
        the correlated neighbours), ``"pixel"`` (the classic blind spot) or a list of
        ``[dy, dx]`` offsets; training stores the offsets it used.
    steps, steps_per_epoch :
        Optimizer steps in all, and how many make one epoch (validation, checkpoint, early stop).
    patch_size, batch_size, learning_rate :
        Edge of the square training patches (None: 64, or less when the images are small),
        patches per step, peak learning rate of Adam.
    schedule : ``"cosine"`` (linear warm-up, cosine decay to 1 % over ``steps``) or ``"plateau"``.
    patience : int or None
        Stop after this many epochs without a better validation loss (None: never).
    validation_fraction : float
        Share of the data held out for the validation loss (never trained on).
    seed : int
        Seeds patch sampling, masking and initial weights; CPU runs are bit-reproducible.
    """

    method: str
    spatial: str = "auto"
    channels: Literal["independent", "joint"] = "independent"
    network: str = "unet"
    network_options: dict[str, Any] = field(default_factory=dict)
    scheme_options: dict[str, Any] = field(default_factory=dict)
    steps: int = 1200
    steps_per_epoch: int = 100
    patch_size: int | None = None
    batch_size: int = 16
    learning_rate: float = 2e-3
    schedule: Literal["cosine", "plateau"] = "cosine"
    patience: int | None = None
    validation_fraction: float = 0.1
    validation_patches: int = 32
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "steps": self.steps,
            "steps_per_epoch": self.steps_per_epoch,
            "patch_size": 1 if self.patch_size is None else self.patch_size,
            "batch_size": self.batch_size,
        }
        for name, value in checks.items():
            if int(value) != value or value < 1:
                raise InfocusInputError(f"{name} must be a positive integer (got {value!r}).")
        if not self.learning_rate > 0:
            raise InfocusInputError(f"learning_rate must be positive (got {self.learning_rate!r}).")
        if not 0 < self.validation_fraction < 0.5:
            raise InfocusInputError(
                f"validation_fraction must lie in (0, 0.5) (got {self.validation_fraction!r})."
            )
        if self.channels not in ("independent", "joint"):
            raise InfocusInputError(
                f"channels must be 'independent' or 'joint' (got {self.channels!r})."
            )
        if self.spatial not in ("auto", "YX", "ZYX", "TYX"):
            raise InfocusInputError(
                f"spatial must be 'auto', 'YX', 'ZYX' or 'TYX' (got {self.spatial!r})."
            )
        if self.schedule not in ("cosine", "plateau"):
            raise InfocusInputError(f"schedule must be 'cosine' or 'plateau' (got {self.schedule!r}).")

    @property
    def epochs(self) -> int:
        """Number of epochs (the last one may be shorter)."""
        return -(-self.steps // self.steps_per_epoch)

    def with_updates(self, **changes: Any) -> TrainingConfig:
        """A copy with some settings changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a foreign or newer file)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InfocusInputError(
                f"Training configuration has unknown field(s) {', '.join(unknown)}; the model was "
                "written by a newer infocus or another tool."
            )
        return cls(**data)


#: Width of the default U-Net. 16 first-level filters trained 2.5-3.7x faster per step than 32
#: on a 2-core CPU and reached the same PSNR per step (docs/benchmarks.md); pass
#: ``network_options={"base_filters": 32}`` for the CARE/CAREamics size.
DEFAULT_BASE_FILTERS = 16


def default_config(method: str) -> TrainingConfig:
    """The defaults for ``method`` (see docs/benchmarks.md for how they were chosen).

    1200 steps of 16 patches of 64×64 with a 16-filter U-Net: a few minutes on a 2-core CPU,
    and past BM3D-VST quality on eight 256×256 images at 30 peak photons.
    """
    method = method.lower()
    return TrainingConfig(
        method=method,
        network=_DEFAULT_NETWORK.get(method, "unet"),
        network_options={"base_filters": DEFAULT_BASE_FILTERS},
    )


#: Share of pixels masked per patch by the blind-spot schemes, by spatial dimensionality.
#: Noise2Void used 0.2 %; masking more pixels gives more loss terms per step and converged
#: faster per CPU-second in our measurements (docs/benchmarks.md, "Choosing the defaults"),
#: up to the density at which masked pixels would sit inside each other's neighbourhood.
_MASKED_FRACTION = {
    "n2v": {2: 0.04, 3: 0.02},
    "n2v2": {2: 0.04, 3: 0.02},
    "structn2v": {2: 0.02, 3: 0.005},
}


def default_scheme_options(method: str, ndim: int) -> dict[str, Any]:
    """Scheme options that depend on the data's dimensionality (user options override them)."""
    fractions = _MASKED_FRACTION.get(method.lower())
    return {"fraction": fractions[ndim]} if fractions else {}
