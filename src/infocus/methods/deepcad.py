r"""Temporal Noise2Noise (DeepCAD-RT's idea): every frame predicted from its neighbours in time.

In a time-lapse (or a series of repeated captures) the noise of one frame is independent of the
noise of the others, while the signal changes little from frame to frame. A network :math:`f`
that sees the :math:`n` frames nearest to frame :math:`t`, but never frame :math:`t` itself, and
is trained to reproduce the noisy frame :math:`x_t` minimises

.. math::

    \mathrm{E}\,\| f(x_{N(t)}) - x_t \|^2 = \mathrm{E}\,\| f(x_{N(t)}) - s_t \|^2
    + \mathrm{E}\,\| x_t - s_t \|^2 ,

because :math:`x_t - s_t` is zero-mean and independent of :math:`x_{N(t)}` (Lehtinen et al. 2018):
the noisy frame is as good a target as the clean one. Li et al. (2021, 2023) train DeepCAD and
DeepCAD-RT this way on the recording itself (a 3-D U-Net maps the odd frames of a stack to the
even ones). Here a 2-D U-Net takes the neighbouring frames as input channels, nearest first
(ties: the earlier one first), and predicts the frame between them; near the ends of the stack
the nearest frames all lie on one side. Every pixel of every frame is a training target, so a
short stack trains well: four repeated captures of a fixed sample are a four-frame time-lapse
with no motion.

Since the estimate :math:`\hat s_t = f(x_{N(t)})` never saw :math:`x_t`, its error is
independent of :math:`x_t`'s noise, and the two are fused per pixel under the noise model
(:func:`~infocus.intensity.fuse_with_noisy`), as for the blind-spot methods: the frame's own
photons are not wasted (prediction option ``pixel_fusion``, on by default unless the noise was
measured correlated between neighbouring pixels, which the noise model would read too low).

Each estimate saw only its neighbours; where the scene did not change, the estimates of nearby
frames are estimates of the same signal with partly independent errors, and averaging them
is what lets every output use every frame (for four repeated captures, all four). Where the
scene moved, averaging would blur the motion. :func:`average_unchanged` averages frame
:math:`t`'s estimate with a neighbour's, pixel by pixel, with the weight

.. math::

    w_{tt'}(p) = \operatorname{clip}\!\left(2 - \frac{\overline{(\hat s_t -
    \hat s_{t'})^2}(p)}{\beta_t \sigma^2_t(p) + \beta_{t'} \sigma^2_{t'}(p)},\ 0,\ 1\right),

where the bar is a local mean, :math:`\sigma^2_t(p) = a \hat s_t(p) + b` the noise variance
and :math:`\beta_t \sigma^2_t` the estimate's own error variance (its mean from the residual,
:math:`\overline{(x_t - \hat s_t)^2} - \overline{\sigma^2_t}`, which holds because
:math:`\hat s_t` never saw :math:`x_t`; spread over the image like the noise variance): two
estimates that differ by no more than their errors explain are averaged, ones that differ by
twice that or more (motion, or any change) are not. Averaging two estimates with error variance
:math:`e^2` and signal difference :math:`\delta` pays off while :math:`\delta^2 \lesssim
2 e^2`, which this rule approximates (prediction option ``frame_averaging``, on by default).

With ``own_frame="blind_spot"`` the network also sees frame :math:`t` itself, with Noise2Void's
blind spots (Krull et al. 2019): a few pixels of the frame are replaced by random neighbours
and only those pixels are scored, so the network learns from the frame's own surroundings as
well as from the other frames, which matters when the scene changes between frames. Its
training signal is sparser (4 % of the pixels per frame instead of all of them), and at
prediction it sees the whole frame, so the fusion weight is then conservative.

With ``own_frame="alone"`` the network sees the frame with blind spots and no neighbours: it is
Noise2Void frame by frame, trained on every frame of the stack, for a scene that moves so fast
that the neighbouring frames hold (almost) nothing of the frame. Every output still goes
through the pixel fusion and the frame averaging, which keeps the frames apart where they
differ.

With ``own_frame="auto"`` (the default) the fit measures how fast the scene changes and picks
one of the three (:func:`frame_decorrelation`). The noise of different frames is independent, so
the covariance of two frames over the pixels (each frame's mean removed),
:math:`C_k = \overline{x_t x_{t+k}}`, is the covariance of their signals, with no noise term
whatever the noise model or its correlation between pixels. A static scene has :math:`C_2 =
C_1`; a moving or changing one loses correlation with distance in time. The figure is
:math:`1 - C_2 / C_1`: 0 for a static scene; for a scene whose correlation decays by a factor
:math:`\rho` per frame, :math:`1 - \rho`; it reads 1 when consecutive frames share no
measurable structure.

The neighbours-only variant is kept for a scene measured static: the figure at most
:data:`MOTION_THRESHOLD` (0.1; static scenes read within ±0.1 at 5 to 1000 photons, FMD's
repeated captures within ±0.05), or its interval :math:`d \pm 2\sigma` reaching zero. Any
measurable change between frames is an error that variant cannot see, since it never sees the
frame, while the blind-spot variant can correct it from the frame's own pixels: on the
benchmark's drifting blobs at 1 px/frame (reading 0.15–0.18 ± 0.06) the neighbours-only
variant fell to frame-by-frame Noise2Void's level (29.60 against 29.63 dB; 29.62 against 29.70
and 29.65 against 29.88 on two other scenes) while the blind-spot variant gained 1.2–1.9 dB
over both. For a static scene the choice
is closer and depends on the data: on FMD's four-capture stacks the neighbours-only variant
wins (36.91 against 36.21 dB on Confocal_BPAE_G, 33.33 against 32.23 on TwoPhoton_BPAE_B; its
Noise2Noise loss scores every pixel, the blind spots 4 % of them), on 12 static frames of the
simulated blobs the blind-spot variant (35.08 against 33.75 dB); both are far above Noise2Void
frame by frame there (29.22). On FMD's widefield captures, whose noise is correlated between
neighbouring pixels, the blind-spot variant learned the noise (24.27 against 35.77 dB) until its
blind spots hid the correlated neighbours as Noise2Void's do (option ``blind_spot``, measured at
fit time): 35.50 dB since.

Above :data:`ALONE_THRESHOLD` (0.7) the frame is seen alone: there a neighbour keeps at most
:math:`\rho = 0.3` of the frame's correlation, so at the same pixel it explains at most
:math:`\rho^2 \approx 0.09` of the frame's signal variance and the second neighbours
:math:`\rho^4 < 0.01`; at 2 px/frame (0.56, :math:`\rho^2 \approx 0.19`) the neighbours
still add 0.9 dB to Noise2Void frame by frame, so the cut lies above that. The three variants
pass from one to the next: what the network sees of the frame grows, and what it sees of the
neighbours shrinks, as the motion grows.

Where consecutive frames share little, :math:`C_2 / C_1` is a ratio of two small, noisy
covariances and can read anything, a fast scene even as a static one. The figure's standard
error :math:`\sigma` (:func:`measure_decorrelation`, from block means) guards that: when the
interval :math:`d \pm 2\sigma` reaches both the static side (at most 0.1) and above 0.7, it
cannot tell a static scene from one whose neighbours share nothing, and the blind-spot
variant, which shows the network both the frame and its neighbours, is chosen. (Static
repeated captures, four frames of FMD, read :math:`\sigma \le 0.11`, their intervals within
the static side.)

The option ``neighbours`` (default 4: two frames on each side) is lowered to the frame count
minus one for short stacks; a model then needs stacks of at least ``neighbours + 1`` frames.

References
----------
X. Li et al., "Reinforcing neuron extraction and spike inference in calcium imaging using deep
self-supervised denoising", Nature Methods 18, 1395–1400 (2021) (DeepCAD).

X. Li et al., "Real-time denoising enables high-sensitivity fluorescence time-lapse imaging
beyond the shot-noise limit", Nature Biotechnology 41, 282–292 (2023) (DeepCAD-RT).

J. Lehtinen et al., "Noise2Noise: Learning image restoration without clean data", ICML 2018.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from infocus._errors import InfocusInputError
from infocus.methods._base import (
    SCHEMES,
    Batch,
    FitData,
    Fitted,
    LossKind,
    PredictionContext,
    PredictionRequest,
    TrainingScheme,
    check_batch_tensor,
    masked_loss,
)

__all__ = ["ALONE_THRESHOLD", "MOTION_THRESHOLD", "OwnFrame",
           "TemporalNoise2Noise", "average_unchanged", "frame_decorrelation",
           "measure_decorrelation", "neighbour_frames"]

#: What the network sees of the frame it predicts: nothing (``"hidden"``, temporal
#: Noise2Noise), the frame with Noise2Void's blind spots besides its neighbours
#: (``"blind_spot"``), that frame without the neighbours (``"alone"``, Noise2Void frame by
#: frame), or one of the three chosen from the motion measured at fit time (``"auto"``).
OwnFrame = Literal["auto", "hidden", "blind_spot", "alone"]
#: Decorrelation (:func:`frame_decorrelation`) at or below which ``own_frame="auto"`` counts the
#: scene as static and hides the frame (as it does when the figure's interval reaches zero);
#: above it, and measurably above zero, the network also sees the frame (module docstring).
MOTION_THRESHOLD = 0.1
#: Decorrelation above which ``own_frame="auto"`` shows the network the frame alone: a
#: neighbour then keeps at most 0.3 of the frame's correlation (module docstring).
ALONE_THRESHOLD = 0.7
#: The decorrelation's interval is this many standard errors either side.
_INTERVAL_Z = 2.0
#: Consecutive frames share structure when their covariance exceeds this many standard errors.
_SHARED_STRUCTURE_Z = 3.0
#: Side of the blocks whose means give the covariances' standard errors: larger than the
#: structures that correlate the products of nearby pixels.
_BLOCK = 16
#: The window the motion is measured on: central crops of at most this many pixels a side and
#: this many consecutive frames from the middle of each stack (read from lazy stacks alone).
_MOTION_CROP = 512
_MOTION_FRAMES = 32
#: Share of a frame's pixels hidden and scored per patch with ``own_frame="blind_spot"`` (N2V's
#: 2-D default, docs/choosing-defaults.md).
_BLIND_FRACTION = 0.04
_BLIND_RADIUS = 2

#: Frames along T per training patch, at most: enough for a frame in the middle to have all
#: its neighbours in the patch, and for frames near a patch end to train the stack-end case.
_PATCH_FRAMES_PER_NEIGHBOUR = 2


def neighbour_frames(frame: int, length: int, count: int) -> list[int]:
    """The ``count`` frames nearest to ``frame`` in a stack of ``length``, never ``frame`` itself.

    Ordered by distance, the earlier of two equally distant frames first; near the ends of the
    stack they all lie on one side.

    Raises
    ------
    InfocusInputError
        When the stack has fewer than ``count + 1`` frames, or ``frame`` is outside it.

    Examples
    --------
    >>> neighbour_frames(5, 10, 4)
    [4, 6, 3, 7]
    >>> neighbour_frames(0, 4, 3)
    [1, 2, 3]
    """
    if count < 1 or length < count + 1:
        raise InfocusInputError(
            f"A frame needs {count} neighbouring frame(s), but the stack has {length} frame(s) "
            f"along T; give a stack of at least {count + 1} frames."
        )
    if not 0 <= frame < length:
        raise InfocusInputError(f"Frame {frame} is outside a stack of {length} frames.")
    others = sorted((abs(j - frame), j) for j in range(length) if j != frame)
    return [j for _, j in others[:count]]


def _gather(frames: Tensor, centre: Sequence[int], count: int) -> Tensor:
    """For patches ``(B, C, T, Y, X)`` and one centre frame per patch: the neighbouring frames
    as channels, ``(B, C * count, Y, X)`` (channel-major: all neighbours of channel 0 first)."""
    length = frames.shape[2]
    rows = [frames[b, :, neighbour_frames(int(t), length, count)]
            for b, t in enumerate(centre)]
    stacked = torch.stack(rows)
    return stacked.reshape(stacked.shape[0], -1, *stacked.shape[-2:])


@dataclass(frozen=True)
class TemporalNoise2Noise(TrainingScheme):
    """Each frame predicted from its ``neighbours`` nearest frames; the noisy frame is the target.

    Parameters
    ----------
    neighbours : int
        Frames the network sees for each frame (the nearest ones, never the frame itself).
    own_frame : {"auto", "hidden", "blind_spot", "alone"}
        Whether the network also sees the frame it predicts, with blind spots, and whether it
        still sees the neighbours then (``"alone"``: not); ``"auto"`` chooses at :meth:`fit`
        from the measured motion (module docstring). Until then, and for a model file that
        predates the choice, the frame is hidden.
    loss_kind : {"mse", "l1"}
        Pixel loss over every pixel of the predicted frame (registry option ``loss``).
    blind_spot : "auto", "pixel" or a list of (dy, dx) offsets
        When the network sees its own frame: the pixels hidden around each blind spot besides
        itself. ``"auto"`` measures the noise's spatial correlation at :meth:`fit` and hides the
        correlated neighbours, as Noise2Void does (:mod:`infocus.methods.blind_spot`): with
        correlated noise a one-pixel blind spot lets the network read the hidden pixel's noise
        off its neighbours and learn the identity.

    Examples
    --------
    >>> import torch
    >>> scheme = TemporalNoise2Noise(neighbours=2)
    >>> batch = scheme.prepare(torch.rand(3, 1, 4, 8, 8), None, torch.Generator().manual_seed(0))
    >>> tuple(batch.input.shape), tuple(batch.target.shape)
    ((3, 2, 8, 8), (3, 1, 8, 8))
    """

    neighbours: int = 4
    loss_kind: LossKind = "mse"
    own_frame: OwnFrame = "auto"
    blind_spot: Any = "auto"
    name: str = "deepcad"

    summary: ClassVar[str] = (
        "Temporal Noise2Noise for time-lapses and repeated captures (--axes TYX): each frame "
        "from its neighbours in time (DeepCAD-RT, Li et al. 2021/2023).")
    default_training: ClassVar[dict[str, Any]] = {"spatial": "TYX"}
    context_axis: ClassVar[str | None] = "T"
    exportable: ClassVar[bool] = False
    not_exportable_because: ClassVar[str] = (
        "its prediction reads each frame's neighbours along T and averages the estimates of "
        "frames where the scene did not change, which a per-image graph cannot carry")
    citation: ClassVar[dict[str, str]] = {
        "text": "Li et al. Reinforcing neuron extraction and spike inference in calcium imaging "
                "using deep self-supervised denoising. Nature Methods 18, 1395-1400 (2021).",
        "doi": "10.1038/s41592-021-01225-0"}
    prediction_options: ClassVar[tuple[str, ...]] = ("pixel_fusion", "frame_averaging")

    def __post_init__(self) -> None:
        if isinstance(self.neighbours, bool) or not isinstance(self.neighbours, int) or (
                self.neighbours < 1):
            raise InfocusInputError(
                f"neighbours must be a positive integer (got {self.neighbours!r}); the default 4 "
                "shows the network two frames on each side."
            )
        if self.loss_kind not in ("mse", "l1"):
            raise InfocusInputError(f"Unknown loss {self.loss_kind!r}; choose 'mse' or 'l1'.")
        if self.own_frame not in ("auto", "hidden", "blind_spot", "alone"):
            raise InfocusInputError(
                f"Unknown own_frame {self.own_frame!r}; choose 'auto' (from the measured "
                "motion), 'hidden' (each frame from its neighbours only), 'blind_spot' (the "
                "frame too, with blind spots) or 'alone' (the frame with blind spots, no "
                "neighbours)."
            )
        from infocus.methods.blind_spot import _pattern

        _pattern(self.blind_spot)  # an unknown word or malformed offsets fail here

    @property
    def _struct(self) -> Any:
        """The pattern hidden around each blind spot (None: the blind spot is one pixel)."""
        from infocus.methods.blind_spot import _pattern

        return _pattern(self.blind_spot)

    @property
    def rotation_invariant(self) -> bool:
        """Whether a 90° turn maps the hidden pattern onto itself (else patches are not turned)."""
        struct = self._struct
        if struct is None:
            return True
        offsets = set(struct.for_ndim(2))
        return {(dx, dy) for dy, dx in offsets} == offsets

    @property
    def _sees_own_frame(self) -> bool:
        # "auto" is resolved by fit; an unresolved one is a model trained when the frame was
        # always hidden
        return self.own_frame in ("blind_spot", "alone")

    @property
    def _sees_neighbours(self) -> bool:
        return self.own_frame != "alone"

    # ------------------------------------------------------------------------------ training
    def fit(self, data: FitData) -> Fitted:
        """Check that the blocks run along time, lower ``neighbours`` for short stacks, and
        resolve ``own_frame="auto"`` from the measured motion (:func:`frame_decorrelation`,
        :data:`MOTION_THRESHOLD`, :data:`ALONE_THRESHOLD`)."""
        if data.spatial not in ("TYX", "ZYX"):
            raise InfocusInputError(
                f"Method {self.name!r} learns from neighbouring frames, so it needs a time axis "
                f"(or planes, with --context Z) and trains on TYX blocks (got {data.spatial}); "
                "pass --axes with a T (e.g. TYX)."
            )
        axis = data.spatial[0]
        frames = min(int(block.shape[1]) for block in data.inputs)
        if frames < 2:
            raise InfocusInputError(
                f"Method {self.name!r} needs at least 2 images along {axis} (a stack has "
                f"{frames}); give a time-lapse, repeated captures of the same view or a Z-stack."
            )
        if "neighbours" in data.options and self.neighbours > frames - 1:
            raise InfocusInputError(
                f"neighbours={self.neighbours} asks for more frames than the shortest stack "
                f"holds besides the predicted one ({frames - 1}); give -p neighbours="
                f"{frames - 1} or less, or leave it out to use what the stack has."
            )
        _warn_about_copies(data, axis)
        neighbours = min(self.neighbours, frames - 1)
        if neighbours < self.neighbours:
            data.say(f"The shortest stack has {frames} images along {axis}: each is predicted "
                     f"from the other {neighbours}.")
        from infocus.methods.blind_spot import measure_noise_correlation

        combined, _, correlation = measure_noise_correlation(data)
        if correlation["correlated"]:
            data.say("The noise is correlated between neighbouring pixels: the noise model "
                     "reads it too low, so the frames' own pixels are not fused in.")
        options: dict[str, Any] = {"neighbours": neighbours}
        state: dict[str, Any] = {"neighbours": neighbours, "noise_correlation": correlation}
        if data.options.get("own_frame", "auto") == "auto":
            options["own_frame"], state["motion"] = _choose_own_frame(data, axis)
        options["blind_spot"] = _resolved_blind_spot(
            data, data.options.get("blind_spot", "auto"), combined,
            seen=options.get("own_frame", self.own_frame) in ("blind_spot", "alone"))
        return Fitted(options=options, state=state)

    def network_options(self, channels: int) -> dict[str, Any]:
        """A 2-D network with the neighbouring frames of every channel as its input."""
        frames = self.neighbours * int(self._sees_neighbours) + int(self._sees_own_frame)
        return {"ndim": 2, "in_channels": channels * frames, "out_channels": channels}

    def patch_shape(self, proposed: tuple[int, ...], shortest: tuple[int, ...]
                    ) -> tuple[int, ...]:
        """Training patches span ``2 * neighbours + 1`` frames (fewer in a shorter stack); one
        frame when the network sees the frame alone."""
        frames = min(shortest[0], _PATCH_FRAMES_PER_NEIGHBOUR * self.neighbours + 1)
        if not self._sees_neighbours:
            frames = 1
        return (frames, *proposed[1:])

    def prepare(self, noisy: Tensor, target: Tensor | None, generator: torch.Generator) -> Batch:
        """Pick one frame per patch at random: its neighbours are the input, it the target."""
        noisy = check_batch_tensor(noisy)
        if noisy.ndim != 5:
            raise InfocusInputError(
                f"Method {self.name!r} takes patches (B, C, T, Y, X), got shape "
                f"{tuple(noisy.shape)}; train on TYX blocks."
            )
        centre = torch.randint(noisy.shape[2], (noisy.shape[0],), generator=generator)
        target_frames = noisy[torch.arange(noisy.shape[0]), :, centre]
        frames = _gather(noisy, centre.tolist(), self.neighbours) if self._sees_neighbours else (
            target_frames[:, :0])
        if not self._sees_own_frame:
            return Batch(input=frames, target=target_frames, mask=None)
        from infocus.methods.blind_spot import (
            _MEASURED_FILL,
            apply_struct_mask,
            max_fraction,
            radius_for_pattern,
            replace_uniform,
            stratified_mask,
        )

        struct = self._struct
        radius = radius_for_pattern(_BLIND_RADIUS, struct)
        fraction = min(_BLIND_FRACTION, max_fraction(radius, struct, 2))
        mask = stratified_mask(target_frames.shape[2:], fraction, generator, noisy.device,
                               radius=radius, struct=struct, batch_shape=target_frames.shape[:2])
        hidden = replace_uniform(target_frames, mask, radius, generator, struct=struct)
        if struct is not None:
            hidden = apply_struct_mask(hidden, mask, struct, generator, fill=_MEASURED_FILL)
        return Batch(input=torch.cat([hidden, frames], dim=1), target=target_frames, mask=mask)

    def loss(self, prediction: Tensor, batch: Batch) -> Tensor:
        """Mean pixel loss over every pixel of the predicted frame (over its blind spots only
        when the network sees the frame)."""
        return masked_loss(prediction, batch.target, batch.mask, kind=self.loss_kind)

    # ---------------------------------------------------------------------------- prediction
    def check_state(self, state: dict[str, Any], source: str) -> None:
        if "neighbours" not in state:
            raise InfocusInputError(
                f"Model {source} lacks the number of neighbouring frames it was trained with; "
                "retrain it with this version of infocus."
            )

    def check_input(self, noisy: np.ndarray, state: dict[str, Any]) -> None:
        """A stack needs more frames (or planes) than the model's neighbours, unless the
        network sees each frame alone."""
        neighbours = int(state.get("neighbours", self.neighbours))
        if self._sees_neighbours and noisy.shape[1] < neighbours + 1:
            raise InfocusInputError(
                f"This model predicts each frame from {neighbours} neighbouring frames, but the "
                f"stack has {noisy.shape[1]} along its context axis; give at least "
                f"{neighbours + 1} frames, or train a model on this stack."
            )

    def prediction_network(self, network: nn.Module, request: PredictionRequest) -> nn.Module:
        """The network run once per frame on that frame's neighbours."""
        return _EveryFrame(network, self.neighbours, self._sees_own_frame,
                           self._sees_neighbours)

    def finish(
        self, outputs: np.ndarray, noisy: np.ndarray, context: PredictionContext
    ) -> dict[str, np.ndarray]:
        """Denormalise; fuse each frame with its own noisy pixels (``pixel_fusion``), then
        average it with its neighbours' estimates where the scene did not change
        (``frame_averaging``). Both need the noise model, estimated per channel from the
        block; where it cannot be estimated (a tiny or flat block) the network's estimate is
        kept as it is."""
        from infocus.intensity import estimate_noise_or_none, fuse_with_noisy
        from infocus.methods.blind_spot import _central_crop

        estimates = context.target_norm.denormalize(outputs, channel_axis=0)
        from infocus.methods.blind_spot import _measured_correlated

        options = context.request.options
        fuse = options.get("pixel_fusion")
        if fuse is None:
            # the fusion weight needs the noise variance, which correlated noise hides
            fuse = not _measured_correlated(context.state)
        average = options.get("frame_averaging") is not False
        result = estimates.copy()
        for c in range(estimates.shape[0]):
            # a central crop of at most 16 frames measures the noise well and keeps it cheap
            sample = _central_crop(noisy[c][:16], 512)
            noise = estimate_noise_or_none(sample, context.spatial) if fuse or average else None
            if noise is None:
                continue
            if fuse:
                result[c], _ = fuse_with_noisy(noisy[c], estimates[c], context.spatial, noise)
            if average:
                result[c] = average_unchanged(result[c], estimates[c], noisy[c], noise,
                                              self.neighbours)
        return {"denoised": result}


def average_unchanged(
    frames: np.ndarray, estimates: np.ndarray, noisy: np.ndarray, noise: Any, neighbours: int,
    *, window: int = 7,
) -> np.ndarray:
    """Average each frame with its ``neighbours`` nearest frames where their estimates agree.

    Parameters
    ----------
    frames : ndarray, shape (T, Y, X)
        What is averaged (the fused estimates).
    estimates : ndarray, shape (T, Y, X)
        The network's estimates, each from the other frames only: their differences decide
        the weights (module docstring).
    noisy : ndarray, shape (T, Y, X)
        The measurement, camera units.
    noise : NoiseParams
        The noise model: variance ``gain * s + variance_intercept``.
    neighbours : int
        How many nearest frames each frame may be averaged with.
    window : int
        Side of the local mean of the squared difference, pixels.

    Returns
    -------
    ndarray, float32, shape (T, Y, X)
    """
    from scipy.ndimage import uniform_filter

    estimates = np.asarray(estimates, dtype=np.float64)
    length = estimates.shape[0]
    count = min(int(neighbours), length - 1)
    if count < 1:
        return np.asarray(frames, dtype=np.float32)
    variance = np.maximum(noise.gain * estimates + noise.variance_intercept, 1e-12)
    residual = np.mean((np.asarray(noisy, dtype=np.float64) - estimates) ** 2, axis=(1, 2))
    mean_variance = variance.mean(axis=(1, 2))
    # the estimate's error variance relative to the noise's (never exactly 0: a perfect-looking
    # estimate must still tolerate float differences)
    ratio = np.maximum(residual / mean_variance - 1.0, 1e-3)
    error = ratio[:, None, None] * variance
    total = np.asarray(frames, dtype=np.float64).copy()
    weights = np.ones(estimates.shape)
    for t in range(length):
        for other in neighbour_frames(t, length, count):
            difference = uniform_filter((estimates[t] - estimates[other]) ** 2, size=window)
            weight = np.clip(2.0 - difference / (error[t] + error[other]), 0.0, 1.0)
            total[t] += weight * frames[other]
            weights[t] += weight
    return (total / weights).astype(np.float32)


def frame_decorrelation(frames: np.ndarray) -> float:
    r"""How much of the signal changes between frames: :math:`1 - C_2 / C_1`.

    :math:`C_k` is the covariance over the pixels of frames :math:`k` apart (each frame's
    mean removed), averaged over the stack. The noise of different frames is independent, so
    :math:`C_k` carries no noise term, whatever the noise's level, its dependence on the signal
    or its correlation between neighbouring pixels: the figure needs no noise model.

    Parameters
    ----------
    frames : ndarray, shape (T, Y, X)
        Consecutive frames (or planes), T >= 3.

    Returns
    -------
    float
        About 0 for a static scene (repeated captures); :math:`1 - \rho` for a scene whose
        signal correlation decays by :math:`\rho` per frame (0.18, 0.56, 0.70 and 0.94 for blobs
        of 2 px drifting 1, 2, 3 and 4 px per frame); 1 when consecutive frames share no
        measurable structure (their covariance is within three standard errors of 0: a scene
        that changes completely from frame to frame, or one without structure).

    Raises
    ------
    InfocusInputError
        Fewer than 3 frames.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> scene = np.repeat(rng.uniform(0, 20, (1, 64, 64)), 6, axis=0)
    >>> bool(abs(frame_decorrelation(rng.poisson(scene))) < 0.1)
    True
    >>> bool(frame_decorrelation(rng.poisson(rng.uniform(0, 20, (6, 64, 64)))) == 1.0)
    True
    """
    return measure_decorrelation(frames)[0]


def measure_decorrelation(frames: np.ndarray) -> tuple[float, float]:
    r""":func:`frame_decorrelation` and its standard error.

    The products :math:`x_t x_{t+k}` of a scene with structure are correlated between nearby
    pixels, so their means are taken over blocks of :data:`_BLOCK` pixels a side and the
    standard errors of :math:`C_1` and :math:`C_2` come from the spread of the block means
    (the method of batch means); the figure's error follows from them to first order,
    :math:`\sqrt{\sigma_{C_2}^2 + (C_2 / C_1)^2 \sigma_{C_1}^2} / C_1`. It is large when
    consecutive frames share little: then :math:`C_2 / C_1` is a ratio of two small, noisy
    numbers.

    Parameters
    ----------
    frames : ndarray, shape (T, Y, X)
        Consecutive frames (or planes), T >= 3.

    Returns
    -------
    decorrelation, error : float
        The figure, and its standard error (0 when it reads 1 because consecutive frames share
        no measurable structure).

    Raises
    ------
    InfocusInputError
        Fewer than 3 frames.
    """
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] < 3:
        raise InfocusInputError(
            f"Measuring motion needs at least 3 frames (T, Y, X), got shape {x.shape}; give a "
            "longer stack."
        )
    x = x - x.mean(axis=(1, 2), keepdims=True)
    near, near_error = _block_mean(x[1:] * x[:-1])
    if not near > _SHARED_STRUCTURE_Z * near_error:
        return 1.0, 0.0
    far, far_error = _block_mean(x[2:] * x[:-2])
    ratio = far / near
    return 1.0 - ratio, math.hypot(far_error, ratio * near_error) / near


def _block_mean(products: np.ndarray) -> tuple[float, float]:
    """The mean of ``products`` ``(T, Y, X)`` and its standard error from the means of blocks
    of :data:`_BLOCK` pixels a side (the whole frame where it is smaller)."""
    height, width = products.shape[1:]
    by, bx = min(_BLOCK, height), min(_BLOCK, width)
    h, w = height // by * by, width // bx * bx
    blocks = products[:, :h, :w].reshape(len(products), h // by, by, w // bx, bx)
    means = blocks.mean(axis=(2, 4)).ravel()
    if means.size < 2:
        return float(means.mean()), math.inf
    return float(means.mean()), float(means.std(ddof=1)) / math.sqrt(means.size)


def _motion_window(block: Any) -> np.ndarray:
    """The consecutive frames (``(C, T, Y, X)``, float64) the motion is measured on: only this
    central window of a lazy block is read."""
    length, height, width = (int(n) for n in block.shape[1:4])
    frames = min(length, _MOTION_FRAMES)
    h, w = min(height, _MOTION_CROP), min(width, _MOTION_CROP)
    t, y, x = (length - frames) // 2, (height - h) // 2, (width - w) // 2
    return np.asarray(block[:, t : t + frames, y : y + h, x : x + w], dtype=np.float64)


def _resolved_blind_spot(data: FitData, choice: Any, correlation: Any, *, seen: bool
                         ) -> list[list[int]]:
    """The offsets hidden around each blind spot: ``choice``'s, or for ``"auto"`` those the
    measured noise correlation reaches (said to the user when the frame is seen)."""
    from infocus.methods.blind_spot import _pattern
    from infocus.noise.correlation import describe_pattern

    if not isinstance(choice, str):
        struct = _pattern(choice)
        return [list(o) for o in struct.offsets] if struct is not None else []
    if choice.lower() == "pixel":
        return []
    pattern = [list(o) for o in correlation.blind_pattern()]
    if pattern and seen:
        data.say(f"The frame's blind spots hide {describe_pattern(pattern)} around each, for the "
                 "correlated noise (pass -p blind_spot=pixel for one-pixel blind spots).")
    return pattern


def _choose_own_frame(data: FitData, axis: str) -> tuple[OwnFrame, dict[str, Any]]:
    """``own_frame="auto"``: the variant for the measured motion (said to the user), and what
    was measured. The median over stacks and channels decides."""
    frames = min(int(block.shape[1]) for block in data.inputs)
    if frames < 3:
        data.say(f"Motion needs 3 images along {axis} to be measured, a stack has {frames}: "
                 "each frame is predicted from its neighbours only (own_frame=hidden).")
        return "hidden", {"decorrelation": None, "error": None,
                          "threshold": MOTION_THRESHOLD, "alone_threshold": ALONE_THRESHOLD}
    measured = [measure_decorrelation(window[c])
                for window in map(_motion_window, data.inputs) for c in range(window.shape[0])]
    decorrelation = float(np.median([value for value, _ in measured]))
    error = float(np.median([error for _, error in measured]))
    motion = {"decorrelation": decorrelation, "error": error, "threshold": MOTION_THRESHOLD,
              "alone_threshold": ALONE_THRESHOLD}
    choice: OwnFrame
    low, high = decorrelation - _INTERVAL_Z * error, decorrelation + _INTERVAL_Z * error
    if low <= MOTION_THRESHOLD and high > ALONE_THRESHOLD:
        # a ratio of two small, noisy covariances: the frame and its neighbours are both shown,
        # and the network weighs them
        choice, reading = "blind_spot", (
            f"± {error:.2f}, too uncertain to tell a static scene from a fast one")
        verdict = "each frame is also seen through blind spots"
    elif decorrelation > ALONE_THRESHOLD:
        choice, reading = "alone", f"above {ALONE_THRESHOLD:g}, the neighbours hold little of it"
        verdict = "each frame is seen alone through blind spots"
    elif decorrelation > MOTION_THRESHOLD and low > 0:
        choice, reading = "blind_spot", f"± {error:.2f}, above {MOTION_THRESHOLD:g}, changing"
        verdict = "each frame is also seen through blind spots"
    else:
        choice, reading = "hidden", f"± {error:.2f}, static"
        verdict = "each frame is predicted from its neighbours only"
    data.say(f"Motion along {axis}: decorrelation {decorrelation:.2f} between images one and "
             f"two apart ({reading}): {verdict} (own_frame={choice}).")
    return choice, motion


class _EveryFrame(nn.Module):
    """Tiles ``(B, C, T, Y, X)`` in, the network's estimate of every frame out, each from its
    ``neighbours`` nearest frames. Along T it reaches ``neighbours`` frames and needs no
    alignment, so tiles along T are exact with an overlap of ``2 * neighbours + 1``."""

    def __init__(self, network: nn.Module, neighbours: int, own_frame: bool = False,
                 sees_neighbours: bool = True) -> None:
        super().__init__()
        self.network = network
        self.neighbours = int(neighbours)
        self.own_frame = bool(own_frame)
        self.sees_neighbours = bool(sees_neighbours)
        multiple = int(network.size_multiple)
        radius = int(getattr(network, "receptive_radius", network.receptive_field // 2 + 1))
        self.size_multiple = (1, multiple, multiple)
        self.receptive_radius = (self.neighbours, radius, radius)
        self.config = dict(getattr(network, "config", {}))

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, length = x.shape[:3]
        outputs = []
        for t in range(length):
            if not self.sees_neighbours:
                frames = x[:, :, t]
            elif self.own_frame:
                frames = torch.cat([x[:, :, t], _gather(x, [t] * batch, self.neighbours)], dim=1)
            else:
                frames = _gather(x, [t] * batch, self.neighbours)
            outputs.append(self.network(frames.contiguous(memory_format=torch.channels_last)))
        return torch.stack(outputs, dim=2)


@SCHEMES.register("deepcad")
def _deepcad(*, neighbours: int = 4, own_frame: OwnFrame = "auto", loss: LossKind = "mse",
             blind_spot: Sequence[Sequence[int]] | str = "auto") -> TemporalNoise2Noise:
    """Temporal Noise2Noise: each frame predicted from its nearest frames."""
    return TemporalNoise2Noise(neighbours=neighbours, loss_kind=loss, own_frame=own_frame,
                               blind_spot=blind_spot)


def _warn_about_copies(data: FitData, axis: str) -> None:
    """Say so when two of the sampled images along ``axis`` are the same image (a capture saved
    twice; FMD test_mix holds such a pair): predicting an image from its copy carries no noise
    between them, so the network learns to copy the noise there."""
    crops = data.planes(role="inputs", size=256, max_planes=32)
    images = [crops[:, p] for p in range(crops.shape[1])]
    if any(np.array_equal(images[p], images[q])
           for p in range(len(images)) for q in range(p + 1, len(images))):
        data.say(f"Two images along {axis} are identical (the same capture saved twice?): "
                 "an image predicted from its copy teaches the network to keep the noise; "
                 "remove the copy.")
