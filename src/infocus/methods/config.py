"""What a training run needs to know, with defaults chosen per method.

It lives beside the methods (below both training and prediction) because a saved model
carries it: prediction reads it back without importing the training code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from infocus._errors import InfocusInputError

__all__ = ["TrainingConfig", "default_config"]


@dataclass(frozen=True)
class TrainingConfig:
    """All settings of a training run; stored with the model.

    Attributes
    ----------
    method : str
        A registered method (:func:`infocus.methods.list_schemes`).
    spatial : str
        Which axes the network sees as space: ``"YX"``, ``"ZYX"``, or ``"TYX"`` (time as a
        third dimension); ``"auto"`` picks ``ZYX`` when the data have ``Z``, else ``YX``.
    channels : str
        ``"independent"``: every channel is its own single-channel image (one network for all);
        ``"joint"``: channels go through the network together.
    network, network_options :
        Registered network name and its constructor arguments (``depth``, ``base_filters``...);
        :meth:`with_network` changes them. The method sets ``ndim``, ``in_channels`` and
        ``out_channels`` itself.
    scheme_options :
        Options of the method (e.g. N2V's masked ``fraction``); what the method resolves from
        the data before training (e.g. N2V's measured ``blind_spot`` offsets) is stored here.
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
        Seeds patch sampling, masking and initial weights; CPU runs are bit-reproducible (on
        one kind of CPU: ``precision="auto"`` resolves by the hardware).
    precision : ``"auto"``, ``"float32"`` or ``"bfloat16"``
        Arithmetic of the network's forward and backward passes
        (:mod:`infocus.nets.precision`): ``"auto"`` is bfloat16 mixed precision where the
        hardware computes it natively (a CPU with AMX, a CUDA GPU), float32 elsewhere; weights,
        optimizer and loss stay float32. Methods that need float32 throughout (DivNoising's
        sampling) resolve ``"auto"`` to float32.
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
    precision: Literal["auto", "float32", "bfloat16"] = "auto"

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
        if self.precision not in ("auto", "float32", "bfloat16"):
            raise InfocusInputError(
                f"precision must be 'auto', 'float32' or 'bfloat16' (got {self.precision!r}).")
        if self.schedule not in ("cosine", "plateau"):
            raise InfocusInputError(f"schedule must be 'cosine' or 'plateau' (got {self.schedule!r}).")

    @property
    def epochs(self) -> int:
        """Number of epochs (the last one may be shorter)."""
        return -(-self.steps // self.steps_per_epoch)

    def with_context(self, context: str | Sequence[str] | None) -> TrainingConfig:
        """A copy whose network sees neighbouring images along the ``context`` axes.

        ``T`` or ``Z``: time points or planes become the network's third axis (``TYX`` or
        ``ZYX`` blocks; a method that reads neighbouring frames takes them from that axis);
        ``C``: all channels go through one network together (``channels="joint"``). Empty or
        None changes nothing.

        Raises
        ------
        InfocusInputError
            For another letter, or T and Z together (no network sees both).

        Examples
        --------
        >>> TrainingConfig(method="n2v").with_context("TC").spatial
        'TYX'
        """
        letters = "".join(context or "").upper().replace(",", "")
        unknown = sorted(set(letters) - set("TZC"))
        if unknown:
            raise InfocusInputError(
                f"--context takes the axes T, Z and C (got {''.join(unknown)!r}): neighbouring "
                "time points, planes, or channels."
            )
        along = [a for a in "TZ" if a in letters]
        if len(along) > 1:
            raise InfocusInputError(
                "A network sees either neighbouring time points or neighbouring planes, not both "
                "(no 4-D network); give --context T or --context Z."
            )
        changes: dict[str, Any] = {}
        if along:
            changes["spatial"] = f"{along[0]}YX"
        if "C" in letters:
            changes["channels"] = "joint"
        return replace(self, **changes)

    def with_network(self, name: str | None = None, options: dict[str, Any] | None = None
                     ) -> TrainingConfig:
        """A copy that trains network ``name`` with the constructor ``options``.

        Another network than the configured one starts from its own defaults: the options
        the method chose for its default network (e.g. the U-Net's ``base_filters``) do not
        carry over. The same network (or ``name=None``) keeps its options, updated with
        ``options``. Names and options are checked when training starts
        (:func:`infocus.training.loop.train`), before any data is read.

        Examples
        --------
        >>> from infocus.methods.config import default_config
        >>> config = default_config("care").with_network("rcan", {"num_channels": 16})
        >>> config.network, config.network_options
        ('rcan', {'num_channels': 16})
        >>> default_config("care").with_network(options={"depth": 3}).network_options
        {'base_filters': 16, 'depth': 3}
        """
        options = dict(options or {})
        if name is None or name.lower() == self.network.lower():
            return replace(self, network_options={**self.network_options, **options})
        return replace(self, network=name.lower(), network_options=options)

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


def default_config(method: str) -> TrainingConfig:
    """The defaults for ``method`` (see docs/benchmarks.md for how they were chosen).

    The method chooses its network, the network's options and any training settings that
    differ from the engine's (:attr:`~infocus.methods.TrainingScheme.default_network_options`,
    :attr:`~infocus.methods.TrainingScheme.default_training`). The engine's: 1200 steps of 16
    patches of 64×64, a few minutes on a 2-core CPU for a 16-filter U-Net, and past BM3D-VST
    quality on eight 256×256 images at 30 peak photons.

    Examples
    --------
    >>> default_config("n2v2").network
    'unet_n2v2'
    """
    from infocus.methods._base import create_scheme

    scheme = create_scheme(method)
    return TrainingConfig(
        method=method.lower(),
        network=scheme.default_network,
        network_options=dict(scheme.default_network_options),
        **scheme.default_training,
    )
