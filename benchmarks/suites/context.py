"""Context: denoising with the neighbouring frames (temporal Noise2Noise, ``deepcad``), and
3D-RCAN against CARE's U-Net.

**Repeated captures** (part ``captures``): FMD test_mix holds four noisy captures of one field
of view per configuration with one ground truth (the average of 50 captures). Each
configuration's four captures are one 4-frame stack (``TYX``); ``deepcad`` trains on that stack
alone with its defaults (the one-command ``infocus denoise stack.tif --axes TYX -m deepcad``
path) and predicts one output per capture, 48 in all, scored against the ground truth (peak
255, clamped to [0, 255], as in FMD's code). Beside it, in the same run and on the same data:
the mean of the four captures, BM3D on that mean (Gaussian, σ from the captures' sample
variance / 4, the anchor of docs/benchmarks.md's published table), and ``deepcad`` without the
pixel fusion, without the frame averaging, and without either (the network's estimates). Wall-clock time of training and prediction per stack.

**Drift** (part ``drift``): simulated time-lapses in which the scene moves by a fixed number of
pixels per frame (0 to 8), 12 frames of 128² at 8 peak photons under the simulated camera;
the truth is the noisy stack's expectation (the simulation puts the stack's brightest pixel at
8 photons, so the truth is scaled the same way).
``deepcad`` (two variants: the frame hidden, and seen with blind spots beside its neighbours;
and the default ``own_frame="auto"``, which picks one of those or the frame alone from the
motion it measures, with that figure, its standard error and its choice) against
frame-by-frame Noise2Void (trained on all frames, each as its own image), same steps and
patches; PSNR against the clean frames.

**Drift over scenes** (part ``drift_seeds``): the drift curve's methods on more scenes (scene
seeds 1 and 2, each its own scene, noise draw and training seed; the curve itself is scene 0)
at every speed of the curve: the spread of auto − N2V over scenes and seeds, and each
variant's mean over the scenes.

**Volumes** (part ``volume``): simulated Z-stacks (32×128×128, blobs of σ 1.5 planes and 2 px,
8 peak photons, the simulated camera), ten for training and one scored. Noise2Void with a 3-D
network on the ZYX volumes against the same method with a 2-D network plane by plane, same
steps and the same pixels per step (one 16×64×64 patch against sixteen 64×64 patches); PSNR
against the clean volume; seed 0 is the main row, further training seeds give the spread.
Ten volumes, because the engine holds out whole blocks from five
on (one volume, or 32 of the 320 planes: 10 % for both), whereas with fewer it holds out a
patch-thick slab of each, half of a 32-plane volume for the 3-D network.

**3-D + time** (part ``spacetime``): memory of ``infocus predict MODEL STACK -o OUT`` on TCZYX
stacks of growing length (T = 4 to 32 time points of 2×16×128×128, float32, simulated blobs
under the simulated camera) with a Noise2Void model trained with ``--context T`` (the network
sees T, Y, X; a few steps: its weights do not change the work). Each prediction runs in its
own process; its peak resident memory (``getrusage``) and wall time, with TIFF in and out
(the output is collected in memory, then written) and with OME-Zarr in and out (streamed
block by block), beside the process that only loads the model.

**Channel ratios** (part ``ratio``): simulated two-channel images (256², separated round objects,
each with its own true ratio of channel 1 to channel 0 between 0.4 and 1.6, 15 peak photons in
channel 0, the simulated camera). Noise2Void trains once with the channels as separate images
(``channels="independent"``) and once with both through one network (``"joint"``), same steps,
on 6 images; 4 more are scored. Per object (the objects of :func:`infocus.qc.check_ratios`), the
true ratio error of the output (denoised ratio − true ratio, both background-subtracted sums)
and what the check reports without ground truth (denoised ratio − measured ratio): their
root-mean-square relative values and their correlation; the check's standard error of the
measured ratio (root-mean-square) and the share of objects whose true error lies in the
reported interval (nominal 95 %); the slope of the relative true error against the true ratio
(negative: ratios pulled towards their mean); PSNR. Joint channels are scored as shipped (the
measured large scales restored, :func:`infocus.intensity.restore_large_scales`) and without
that step. The blur of that step (4 pixels) was chosen on four other scenes (seeds 20–23),
never on the scored ones.

**3D-RCAN against CARE's U-Net** (part ``rcan``): supervised CARE (``method="care"`` with its
defaults: 16 patches of 64² per step, cosine schedule) with only the network changed, the
default U-Net (``unet``, 16 first-level filters) or ``rcan`` with its defaults, at the same
steps, for several training seeds (``config.seed``: initial weights and patch draws); both
networks of one seed run back to back, so their timings see a similar machine load. Data:
the embedded sample (``human_mitosis.tif``, 512²) cut into its four 256² quadrants under the
simulated camera at 30 peak photons (``simulate_poisson_gaussian(..., rng=0)``); three
quadrants train, the bottom-right one is scored (PSNR with the range of its clean image in
camera units, ``clean / max · 30 · 2 + 100``). Per run: parameters, training steps per second
(the whole ``train`` call, validation included, divided by the steps), prediction seconds of
the held-out quadrant (best of three calls after the scored one) and the 1-minute load
average before and after, since other jobs on a 2-core machine change the timings, not the
PSNR. Part ``rcan3d`` does the same in 3-D on the volume part's simulated Z-stacks (ten
trained on, an eleventh scored), with the 3-D U-Net and 3-D RCAN, one 16×64×64 patch per step
(the 2-D runs' pixels per step) and fewer steps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from benchmarks import datasets
from benchmarks.suites._data import CAMERA, crop
from infocus.metrics import psnr

DRIFT_FRAMES = 12
DRIFT_SHAPE = (128, 128)
DRIFT_PHOTONS = 8.0


def _psnr255(output: np.ndarray, clean: np.ndarray) -> float:
    """FMD's protocol: clamped to [0, 255], peak 255."""
    return psnr(np.clip(output, 0, 255), clean, data_range=255)


def _stacks() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Configuration -> (its captures ``(4, H, W)``, the ground truth)."""
    stacks: dict[str, tuple[list[np.ndarray], np.ndarray]] = {}
    for name, noisy, clean in datasets.fmd_test_mix():
        frames, _ = stacks.setdefault(datasets.fmd_configuration(name), ([], clean))
        frames.append(noisy)
    return {k: (np.stack(v).astype(np.float32), c) for k, (v, c) in stacks.items()}


def _bm3d_on_mean(captures: np.ndarray) -> np.ndarray:
    import bm3d

    sigma = float(np.sqrt(np.mean(np.var(captures, axis=0, ddof=1)) / len(captures)))
    return np.asarray(bm3d.bm3d(captures.mean(0), sigma_psd=sigma), dtype=np.float32)


def captures(context: Any, result: dict[str, Any], save: Any) -> None:
    """Per configuration: deepcad (with and without fusion), the mean, BM3D on the mean."""
    from infocus.methods.config import default_config
    from infocus.training.loop import train

    profile = context.profile
    steps, chosen = profile.context_steps, profile.context_configurations
    configurations = result.setdefault("configurations", {})
    for config_name, (stack, clean) in _stacks().items():
        if config_name in configurations or (chosen and config_name not in chosen):
            continue
        if profile.crop:
            stack, clean = crop(stack, profile.crop), crop(clean, profile.crop)
        result["shape"] = list(stack.shape[-2:])
        context.log(f"  {config_name}: training deepcad on its {len(stack)} captures")
        config = default_config("deepcad").with_updates(steps=steps)
        started = time.perf_counter()
        model = train(stack, method="deepcad", axes="TYX", config=config, progress=False,
                      log=lambda m: None)
        trained = time.perf_counter() - started
        started = time.perf_counter()
        fused = model.denoise(stack, axes="TYX")
        predicted = time.perf_counter() - started
        unfused = model.denoise(stack, axes="TYX", pixel_fusion=False)
        unaveraged = model.denoise(stack, axes="TYX", frame_averaging=False)
        network_only = model.denoise(stack, axes="TYX", pixel_fusion=False,
                                     frame_averaging=False)
        row = {
            "deepcad": float(np.mean([_psnr255(f, clean) for f in fused])),
            "deepcad_no_fusion": float(np.mean([_psnr255(f, clean) for f in unfused])),
            "deepcad_no_averaging": float(np.mean([_psnr255(f, clean) for f in unaveraged])),
            "deepcad_network_only": float(np.mean([_psnr255(f, clean) for f in network_only])),
            "mean_of_captures": _psnr255(stack.mean(0), clean),
            "bm3d_on_mean": _psnr255(_bm3d_on_mean(stack), clean),
            "noisy": float(np.mean([_psnr255(f, clean) for f in stack])),
            "train_seconds": trained, "predict_seconds": predicted,
            "steps": model.config.steps,
            # own_frame="auto" must keep the neighbours-only variant on static captures
            "own_frame": model.config.scheme_options.get("own_frame"),
        }
        configurations[config_name] = row
        context.log("    " + ", ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
        save()


def captures_blind_spot(context: Any, result: dict[str, Any], save: Any) -> None:
    """deepcad with ``own_frame="blind_spot"`` (defaults otherwise) on some configurations'
    four captures, beside the shipped variant of part ``captures``: which variant static
    repeated captures want."""
    from infocus.methods.config import default_config
    from infocus.training.loop import train

    profile = context.profile
    stacks = _stacks()
    configurations = result.setdefault("configurations", {})
    for name in profile.context_blind_spot_configurations:
        if name in configurations:
            continue
        stack, clean = stacks[name]
        if profile.crop:
            stack, clean = crop(stack, profile.crop), crop(clean, profile.crop)
        config = default_config("deepcad").with_updates(
            steps=profile.context_steps, scheme_options={"own_frame": "blind_spot"})
        started = time.perf_counter()
        model = train(stack, method="deepcad", axes="TYX", config=config, progress=False,
                      log=lambda m: None)
        fused = model.denoise(stack, axes="TYX")
        configurations[name] = {
            "blind_spot": float(np.mean([_psnr255(f, clean) for f in fused])),
            "seconds": time.perf_counter() - started, "load_average": os.getloadavg()[0],
            "hidden_pattern": model.config.scheme_options.get("blind_spot"),
            "precision": model.provenance.get("precision")}
        context.log(f"  {name}: blind_spot {configurations[name]['blind_spot']:.2f}")
        save()


def drifting_stack(speed: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A scene of blobs and filaments moving ``speed`` px/frame along a diagonal, imaged by
    the simulated camera: (noisy, clean) in camera units, ``(T, Y, X)``; ``clean`` is the
    noisy stack's expectation (the brightest pixel of the stack at 8 photons)."""
    from infocus.noise import scale_to_photons, simulate_poisson_gaussian

    rng = np.random.default_rng(seed)
    margin = int(np.ceil(speed * DRIFT_FRAMES)) + 8
    big = np.zeros((DRIFT_SHAPE[0] + 2 * margin, DRIFT_SHAPE[1] + 2 * margin))
    for _ in range(big.size // 300):
        y, x = rng.integers(0, big.shape[0]), rng.integers(0, big.shape[1])
        big[y, x] += rng.uniform(0.5, 1.0)
    big = ndimage.gaussian_filter(big, 2.0)
    big = big / big.max() + 0.05
    frames = []
    for t in range(DRIFT_FRAMES):
        moved = ndimage.shift(big, (speed * t * 0.6, speed * t * 0.8), order=3, mode="nearest")
        frames.append(moved[margin:-margin, margin:-margin])
    clean = np.clip(np.stack(frames), 0, None)
    noisy, _ = simulate_poisson_gaussian(clean, photons=DRIFT_PHOTONS, rng=seed, **CAMERA)
    # The simulation scales the stack's brightest pixel to DRIFT_PHOTONS; the crop rarely
    # holds the scene's maximum, so the truth must be scaled the same way, not by the scene's.
    expected = scale_to_photons(clean, DRIFT_PHOTONS) * CAMERA["gain"] + CAMERA["offset"]
    return noisy.astype(np.float32), expected.astype(np.float32)


#: The drift curve's methods: label -> (method, axes of the stack, its options).
DRIFT_METHODS = {
    "n2v": ("n2v", "SYX", {}),
    "deepcad": ("deepcad", "TYX", {"own_frame": "hidden"}),
    "deepcad_blind_spot": ("deepcad", "TYX", {"own_frame": "blind_spot"}),
    "deepcad_auto": ("deepcad", "TYX", {"own_frame": "auto"}),
}


def _drift_row(row: dict[str, Any], labels: list[str], speed: float, steps: int | None,
               seed: int, save: Any) -> None:
    """Train and score each of ``labels`` (:data:`DRIFT_METHODS`) missing from ``row`` on the
    scene of ``seed`` drifting ``speed`` px/frame; the training seed is the scene's."""
    from infocus.methods.config import default_config
    from infocus.training.loop import train

    noisy, clean = drifting_stack(speed, seed)
    row["noisy"] = psnr(noisy, clean)
    for label in labels:
        if label in row:
            continue
        method, axes, options = DRIFT_METHODS[label]
        config = default_config(method).with_updates(steps=steps, scheme_options=options,
                                                     seed=seed)
        model = train(noisy, method=method, axes=axes, config=config, progress=False,
                      log=lambda m: None)
        row[label] = psnr(model.denoise(noisy, axes=axes), clean)
        if "motion" in model.state:
            row["decorrelation"] = model.state["motion"]["decorrelation"]
            row["decorrelation_error"] = model.state["motion"].get("error")
            row["auto_choice"] = model.config.scheme_options["own_frame"]
        save()


def drift(context: Any, result: dict[str, Any], save: Any) -> None:
    """deepcad (both variants, and the automatic choice) against frame-by-frame N2V as the
    scene moves faster."""
    steps = context.profile.context_drift_steps
    result["steps"] = steps
    speeds = result.setdefault("speeds", {})
    for speed in context.profile.context_drift_speeds:
        row = speeds.setdefault(f"{speed:g}", {})
        if all(label in row for label in DRIFT_METHODS):
            continue
        _drift_row(row, list(DRIFT_METHODS), speed, steps, 0, save)
        context.log(f"  {speed:g} px/frame: " + ", ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))


#: The seed spread's methods: every variant of the curve, so the rule auto follows can be
#: checked against the variant that was best on each scene.
DRIFT_SEED_METHODS = tuple(DRIFT_METHODS)


def drift_seeds(context: Any, result: dict[str, Any], save: Any) -> None:
    """The drift curve's methods on more scenes, each scene its own noise draw and training
    seed: how far auto − N2V spreads per speed, and which variant each scene wanted."""
    steps = context.profile.context_drift_steps
    result["steps"] = steps
    scenes = result.setdefault("scenes", {})
    for scene in context.profile.context_drift_seed_scenes:
        speeds = scenes.setdefault(str(scene), {})
        for speed in context.profile.context_drift_seed_speeds:
            row = speeds.setdefault(f"{speed:g}", {})
            if all(label in row for label in DRIFT_SEED_METHODS):
                continue
            _drift_row(row, list(DRIFT_SEED_METHODS), speed, steps, scene, save)
            context.log(f"  scene {scene}, {speed:g} px/frame: " + ", ".join(
                f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))


#: How the simulated scenes' clean reference is scaled, recorded with the parts that use it:
#: the simulation's own scaling (the brightest pixel of the simulated image at the photon
#: level). Parts measured before it was recorded scaled the clean image by its maximum before
#: adding a constant background, which differs from the simulation's scaling wherever that
#: maximum is not 1.
REFERENCE = "photons at the brightest pixel"

VOLUME_SHAPE = (32, 128, 128)
VOLUME_TRAINING = 10
#: The engine's 3-D patch for these volumes and a 64-pixel edge (16 planes at most).
VOLUME_PATCH = (16, 64, 64)


def volume_scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) ``(Z, Y, X)`` in camera units: blobs spread over neighbouring planes."""
    from infocus.noise import scale_to_photons, simulate_poisson_gaussian

    rng = np.random.default_rng(seed)
    points = np.zeros(VOLUME_SHAPE)
    for _ in range(points.size // 400):
        points[tuple(rng.integers(0, n) for n in VOLUME_SHAPE)] += rng.uniform(0.5, 1.0)
    clean = ndimage.gaussian_filter(points, (1.5, 2.0, 2.0))
    clean = clean / clean.max() + 0.05
    noisy, _ = simulate_poisson_gaussian(clean, photons=DRIFT_PHOTONS, rng=seed, **CAMERA)
    camera = scale_to_photons(clean, DRIFT_PHOTONS) * CAMERA["gain"] + CAMERA["offset"]
    return noisy.astype(np.float32), camera.astype(np.float32)


def volume(context: Any, result: dict[str, Any], save: Any) -> None:
    """Noise2Void in 3-D against plane by plane, with the same pixels per step."""
    from infocus.methods import create_scheme
    from infocus.methods.config import default_config
    from infocus.training.loop import train

    steps = context.profile.context_volume_steps
    train_noisy = np.stack([volume_scene(seed)[0] for seed in range(VOLUME_TRAINING)])
    test_noisy, test_clean = volume_scene(VOLUME_TRAINING)
    result["noisy"] = psnr(test_noisy, test_clean)
    result["training_volumes"] = VOLUME_TRAINING
    result["reference"] = REFERENCE
    planar_batch = default_config("n2v").batch_size
    plane_pixels = VOLUME_PATCH[1] * VOLUME_PATCH[2]
    # The 2-D network's batch as the 3-D patches: its default batch of planes, as volumes.
    batches = {"ZYX": max(1, planar_batch // VOLUME_PATCH[0]), "YX": planar_batch}
    seeds = result.setdefault("seeds", {})
    for seed in (0, *context.profile.context_volume_seeds):
        # Seed 0 is the main row (result["ZYX"], result["YX"]); others go to result["seeds"].
        for spatial, batch in batches.items():
            if (spatial in result) if seed == 0 else (spatial in seeds.get(str(seed), {})):
                continue
            config = default_config("n2v").with_updates(
                steps=steps, spatial=spatial, batch_size=batch, patch_size=VOLUME_PATCH[-1],
                seed=seed)
            started = time.perf_counter()
            model = train(train_noisy, method="n2v", axes="SZYX", config=config,
                          progress=False, log=lambda m: None)
            seconds = time.perf_counter() - started
            depth = VOLUME_PATCH[0] if spatial == "ZYX" else 1
            row = {"psnr": psnr(model.denoise(test_noisy, axes="ZYX"), test_clean),
                   "train_seconds": seconds, "steps": model.config.steps, "batch_size": batch,
                   "pixels_per_step": batch * depth * plane_pixels,
                   "masked_fraction": create_scheme("n2v").defaults_for(
                       len(spatial))["fraction"]}
            if seed == 0:
                result[spatial] = row
            else:
                seeds.setdefault(str(seed), {})[spatial] = row
            context.log(f"  n2v {spatial}, seed {seed}: {row}")
            save()


#: Channels and planes of one time point (the profile sets the edge of the planes).
SPACETIME_CHANNELS, SPACETIME_PLANES = 2, 16
SPACETIME_FORMATS = ("zarr", "tif")


def spacetime_stack(frames: int, size: int = 128, seed: int = 0) -> np.ndarray:
    """A noisy ``(T, C, Z, Y, X)`` stack in camera units: blobs drifting 1 px per frame, the
    second channel a dimmer copy of the first."""
    from infocus.noise import simulate_poisson_gaussian

    rng = np.random.default_rng(seed)
    points = np.zeros((SPACETIME_PLANES, size, size))
    for _ in range(points.size // 400):
        points[tuple(rng.integers(0, n) for n in points.shape)] += rng.uniform(0.5, 1.0)
    volume = ndimage.gaussian_filter(points, (1.5, 2.0, 2.0))
    volume = volume / volume.max() + 0.05
    clean = np.stack([np.stack([np.roll(volume, t, axis=-1), 0.6 * np.roll(volume, t, axis=-1)])
                      for t in range(frames)])
    noisy, _ = simulate_poisson_gaussian(clean, photons=DRIFT_PHOTONS, rng=seed, **CAMERA)
    return noisy.astype(np.float32)


#: Runs ``sys.argv[2]`` (Python code, with ``sys.argv[3:]`` as its arguments) and writes the
#: process's peak resident memory at exit to ``sys.argv[1]``. The high-water mark is read from
#: /proc (``VmHWM``): getrusage's ``ru_maxrss`` of a child keeps the RSS of the forked parent.
_PEAK_WRAPPER = """
import atexit, sys
def _peak(path=sys.argv[1]):
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(path, "w").write(line.split()[1])
atexit.register(_peak)
code = sys.argv[2]
sys.argv = ["infocus", *sys.argv[3:]]
exec(code)
"""


def _peak_memory(code: str, *arguments: str) -> tuple[float, float]:
    """Peak resident memory (MiB) and wall seconds of Python ``code`` run with ``arguments``
    in a process of its own."""
    with tempfile.TemporaryDirectory() as folder:
        peak, said = Path(folder) / "peak", Path(folder) / "said"
        started = time.perf_counter()
        with open(said, "w") as stream:
            finished = subprocess.run([sys.executable, "-c", _PEAK_WRAPPER, str(peak), code,
                                       *arguments], stdout=stream, stderr=stream,
                                      env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
        seconds = time.perf_counter() - started
        if finished.returncode:
            raise RuntimeError(f"{code} {' '.join(arguments)} failed:\n"
                               f"{said.read_text()[-2000:]}")
        return int(peak.read_text()) / 1024, seconds  # /proc reports kB


def spacetime(context: Any, result: dict[str, Any], save: Any) -> None:
    """Peak memory of predicting TCZYX stacks of growing length, TIFF and streamed Zarr."""
    from infocus.io import Image, write_image
    from infocus.methods.config import default_config
    from infocus.training.loop import train

    profile = context.profile
    rows = result.setdefault("frames", {})
    size = profile.context_spacetime_size
    result["shape"] = [SPACETIME_CHANNELS, SPACETIME_PLANES, size, size]
    with tempfile.TemporaryDirectory(prefix="spacetime-") as folder:
        work = Path(folder)
        longest = spacetime_stack(max(profile.context_spacetime_frames), size)
        config = default_config("n2v").with_context("T").with_updates(
            steps=profile.context_spacetime_steps, batch_size=2)
        model = work / "model"
        train(longest[:8], method="n2v", axes="TCZYX", config=config, output=model,
              progress=False, log=lambda m: None)
        result["model_only_mib"], _ = _peak_memory(
            "import infocus, infocus.cli.app; infocus.load_model(sys.argv[1])", str(model))
        for frames in profile.context_spacetime_frames:
            row = rows.setdefault(str(frames), {})
            stack = longest[:frames]
            row["input_mib"] = stack.nbytes / 2**20
            for kind in SPACETIME_FORMATS:
                if kind in row:
                    continue
                source, output = work / f"in-{frames}.{kind}", work / f"out-{frames}.{kind}"
                write_image(source, Image(stack, "TCZYX"), overwrite=True)
                peak, seconds = _peak_memory(
                    "from infocus.cli import main; main()", "predict", str(model), str(source),
                    "-o", str(output), "--overwrite")
                row[kind] = {"peak_rss_mib": peak, "seconds": seconds}
                context.log(f"  T={frames} {kind}: {peak:.0f} MiB, {seconds:.0f} s")
                save()


RATIO_SHAPE = (256, 256)
RATIO_PHOTONS = 15.0


def two_channel_scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) ``(2, Y, X)`` in camera units: round objects with per-object ratios."""
    from infocus.noise import scale_to_photons, simulate_poisson_gaussian

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: RATIO_SHAPE[0], : RATIO_SHAPE[1]]
    first = np.zeros(RATIO_SHAPE)
    second = np.zeros(RATIO_SHAPE)
    centres: list[np.ndarray] = []
    while len(centres) < 14:
        centre = rng.uniform(20, RATIO_SHAPE[0] - 20, 2)
        if all(np.hypot(*(centre - c)) > 34 for c in centres):
            centres.append(centre)
    for centre in centres:
        radius, brightness, ratio = rng.uniform(6, 12), rng.uniform(0.4, 1.0), rng.uniform(0.4, 1.6)
        blob = np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * radius**2))
        first += brightness * blob
        second += brightness * ratio * blob
    clean = np.stack([first, second]) + 0.03
    noisy, _ = simulate_poisson_gaussian(clean, photons=RATIO_PHOTONS, rng=seed, **CAMERA)
    camera = scale_to_photons(clean, RATIO_PHOTONS) * CAMERA["gain"] + CAMERA["offset"]
    return noisy.astype(np.float32), camera.astype(np.float32)


def _object_ratios(labels: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Background-subtracted channel-1 / channel-0 sum over each object, as the check does."""
    index = np.arange(1, int(labels.max()) + 1)
    background = labels == 0
    sums = [ndimage.sum_labels(image[c] - np.median(image[c][background]), labels, index)
            for c in range(2)]
    return sums[1] / sums[0]


def _ratio_figures(scenes: list[tuple[np.ndarray, np.ndarray]], model: Any,
                   **options: Any) -> dict[str, float]:
    """What the check reports against the truth, over the objects of the scored scenes."""
    from infocus.qc.ratio import check_ratios

    true_errors, reported, standard_errors, inside, truths, scores = [], [], [], [], [], []
    for noisy, clean in scenes:
        denoised = model.denoise(noisy, axes="CYX", **options)
        scores.append(psnr(denoised, clean))
        variance = CAMERA["gain"] * np.maximum(denoised - CAMERA["offset"], 0) + (
            CAMERA["read_noise"] ** 2)
        check = check_ratios(noisy[:, None], denoised[:, None], variance[:, None])
        truth = _object_ratios(check.labels[0], clean)
        for change in check.changes:
            k = change["label"] - 1
            error = (change["denoised"] - truth[k]) / truth[k]
            true_errors.append(error)
            reported.append(change["relative_change"])
            standard_errors.append(change["relative_standard_error"])
            inside.append(change["error_low"] <= error <= change["error_high"])
            truths.append(truth[k])
    true_errors, reported = np.array(true_errors), np.array(reported)
    many = len(true_errors) > 2
    return {
        "objects": int(len(true_errors)),
        "rms_true_relative_error": float(np.sqrt(np.mean(true_errors**2))),
        "rms_reported_relative_change": float(np.sqrt(np.mean(reported**2))),
        "correlation": float(np.corrcoef(true_errors, reported)[0, 1]) if many
        else float("nan"),
        "mean_true_relative_error": float(np.mean(true_errors)),
        "mean_reported_relative_change": float(np.mean(reported)),
        # The noise model's standard error of the measured ratios, and how often the reported
        # interval (change ± 1.96 of them) held the true error.
        "rms_relative_standard_error": float(np.sqrt(np.mean(np.square(standard_errors)))),
        "coverage": float(np.mean(inside)),
        # Relative error against true ratio: negative when ratios are pulled to their mean.
        "shrinkage_slope": float(np.polyfit(truths, true_errors, 1)[0]) if many
        else float("nan"),
        "psnr": float(np.mean(scores)),
    }


def ratio(context: Any, result: dict[str, Any], save: Any) -> None:
    """Independent against joint channels: true ratio errors and the check's report."""
    from infocus.methods.config import default_config
    from infocus.training.loop import train

    steps = context.profile.context_drift_steps
    result["steps"] = steps
    result["nominal_coverage"] = 0.95
    result["reference"] = REFERENCE
    scenes = [two_channel_scene(seed) for seed in range(10)]
    train_noisy = np.stack([n for n, _ in scenes[:6]])
    for channels in ("independent", "joint"):
        if channels in result:
            continue
        config = default_config("n2v").with_updates(steps=steps, channels=channels)
        model = train(train_noisy, method="n2v", axes="SCYX", config=config, progress=False,
                      log=lambda m: None)
        scored = {channels: _ratio_figures(scenes[6:], model)}
        if channels == "joint":
            # The same network without the measured large scales restored (the earlier default).
            scored["joint_without_large_scales"] = _ratio_figures(scenes[6:], model,
                                                                  large_scales=False)
        for name, figures in scored.items():
            result[name] = figures
            context.log(f"  {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()))
        save()


#: Camera of the RCAN comparison: the brightest pixel of the four quadrants gets 30 photons.
RCAN_PHOTONS = 30.0
#: The networks compared, in the order they run for each seed (the first is the reference).
RCAN_NETWORKS = ("unet", "rcan")
#: Prediction timings per run after the scored call (the best one is kept).
RCAN_PREDICT_REPEATS = 3


def rcan_quadrants(size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) of the embedded sample's four 256² quadrants in camera units,
    ``(4, 256, 256)`` float32 each (central ``size``² crops of them when ``size`` is given).

    The bottom-right quadrant (index 3) is the held-out one.
    """
    from infocus.demo import load_sample
    from infocus.noise import simulate_poisson_gaussian

    sample = load_sample().astype(np.float64)
    clean = np.stack([sample[y:y + 256, x:x + 256] for y in (0, 256) for x in (0, 256)])
    clean = crop(clean, size)
    noisy, _ = simulate_poisson_gaussian(clean, photons=RCAN_PHOTONS, rng=0, **CAMERA)
    reference = clean / clean.max() * RCAN_PHOTONS * CAMERA["gain"] + CAMERA["offset"]
    return noisy.astype(np.float32), reference.astype(np.float32)


def _care_run(network: str, steps: int, seed: int, options: dict[str, Any] | None,
              train_pair: tuple[np.ndarray, np.ndarray], axes: str,
              test_pair: tuple[np.ndarray, np.ndarray], **updates: Any) -> dict[str, Any]:
    """Train CARE with ``network`` on ``train_pair`` (noisy, clean; ``axes``), score
    ``test_pair`` (one image, ``axes`` without S) and time training and prediction."""
    import torch

    from infocus.methods.config import default_config
    from infocus.nets import count_parameters
    from infocus.training.loop import train

    (noisy, clean), (test_noisy, test_clean) = train_pair, test_pair
    config = default_config("care").with_network(network, options or {}).with_updates(
        steps=steps, seed=seed, **updates)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    model = train(noisy, targets=clean, axes=axes, method="care", config=config,
                  progress=False, log=lambda m: None)
    seconds = time.perf_counter() - started
    test_axes = axes.replace("S", "")
    started = time.perf_counter()
    denoised = model.denoise(test_noisy, axes=test_axes)
    first_predict = time.perf_counter() - started
    timings = []
    for _ in range(RCAN_PREDICT_REPEATS):  # the first call also builds the tiling
        started = time.perf_counter()
        model.denoise(test_noisy, axes=test_axes)
        timings.append(time.perf_counter() - started)
    return {
        "network": network,
        "network_options": dict(model.config.network_options),
        "parameters": count_parameters(model.network),
        "steps": model.config.steps,
        "batch_size": model.config.batch_size,
        "seed": seed,
        "train_seconds": seconds,
        "steps_per_second": model.config.steps / seconds,
        "predict_seconds": min(timings),
        "predict_seconds_first": first_predict,
        "predict_shape": list(test_noisy.shape),
        "psnr": psnr(denoised, test_clean),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "threads": torch.get_num_threads(),
        "precision": model.provenance.get("precision"),
    }


def rcan_training_run(network: str, steps: int, seed: int = 0,
                      options: dict[str, Any] | None = None,
                      size: int | None = None) -> dict[str, Any]:
    """Train CARE with ``network`` (and its constructor ``options``) on three quadrants and
    score the fourth; returns the run's figures (see the module docstring, part ``rcan``)."""
    noisy, reference = rcan_quadrants(size)
    return _care_run(network, steps, seed, options, (noisy[:3], reference[:3]), "SYX",
                     (noisy[3], reference[3]))


def default_batch() -> int:
    """CARE's default patches per step."""
    from infocus.methods.config import default_config

    return default_config("care").batch_size


def rcan_volume_run(network: str, steps: int, seed: int = 0, size: int | None = None
                    ) -> dict[str, Any]:
    """CARE with a 3-D ``network`` on the volume part's simulated Z-stacks (``size``² central
    crops of their planes when given): trained on ten, the eleventh scored."""
    volumes = [volume_scene(k) for k in range(VOLUME_TRAINING + 1)]
    noisy = np.stack([crop(n, size) for n, _ in volumes])
    clean = np.stack([crop(c, size) for _, c in volumes])
    # The 2-D runs' 16 patches of 64² per step as one 16×64×64 block (the same pixels).
    batch = max(1, default_batch() // VOLUME_PATCH[0])
    return _care_run(network, steps, seed, None, (noisy[:-1], clean[:-1]), "SZYX",
                     (noisy[-1], clean[-1]), spatial="ZYX", batch_size=batch,
                     patch_size=VOLUME_PATCH[-1])


def interleaved_cost(ndim: int = 2, rounds: int = 5, steps: int = 3,
                     size: int | None = None) -> dict[str, Any]:
    """Seconds per training step and per prediction of the U-Net and RCAN networks as CARE
    builds them, timed in alternating rounds so both see the same machine load.

    A training step is the network's forward and backward pass and an Adam update on one
    batch of CARE's default size (16 patches of 64², or one 16×64×64 block in 3-D), a
    prediction one forward pass without gradients on a 256² plane (32×128×128 in 3-D; planes
    of ``size``² when given, as the parts' crops); data
    sampling, validation and tiling are left out; memory layouts (channels last) and the
    folded batch norm for prediction are the engine's. Each round times ``steps`` steps of each
    network in turn; the ratio RCAN / U-Net is taken per round, and its median kept.
    """
    import torch

    from infocus.methods import create_scheme
    from infocus.methods.config import default_config
    from infocus.nets import channels_last, create_network, fused_for_inference

    config, scheme = default_config("care"), create_scheme("care")
    batch = (default_batch(), 1, 64, 64) if ndim == 2 else (
        max(1, default_batch() // VOLUME_PATCH[0]), 1, *VOLUME_PATCH)
    edge = size or (256 if ndim == 2 else VOLUME_SHAPE[-1])
    whole = (1, 1, edge, edge) if ndim == 2 else (1, 1, VOLUME_SHAPE[0], edge, edge)
    generator = torch.Generator().manual_seed(0)
    # The layouts and folding of the training engine and of prediction.
    x, y, image = (channels_last(torch.randn(shape, generator=generator), ndim)
                   for shape in (batch, batch, whole))
    networks, predictors, optimizers = {}, {}, {}
    for name in RCAN_NETWORKS:
        options = {"ndim": ndim, **scheme.network_options(1)}
        if name == config.network:
            options.update(config.network_options)
        networks[name] = channels_last(create_network(name, **options), ndim)
        predictors[name] = channels_last(fused_for_inference(networks[name]), ndim)
        optimizers[name] = torch.optim.Adam(networks[name].parameters(), lr=1e-4)

    def step(name: str) -> float:
        network, optimizer = networks[name], optimizers[name]
        started = time.perf_counter()
        for _ in range(steps):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(network(x), y).backward()
            optimizer.step()
        return (time.perf_counter() - started) / steps

    def predict(name: str) -> float:
        network = predictors[name]
        started = time.perf_counter()
        with torch.inference_mode():
            network(image)
        return time.perf_counter() - started

    for name in RCAN_NETWORKS:  # warm-up: first calls allocate and pick kernels
        step(name), predict(name)
    timings: dict[str, dict[str, list[float]]] = {
        name: {"step_seconds": [], "predict_seconds": []} for name in RCAN_NETWORKS}
    load_before = os.getloadavg()[0]
    for _ in range(rounds):
        for name in RCAN_NETWORKS:
            timings[name]["step_seconds"].append(step(name))
            timings[name]["predict_seconds"].append(predict(name))
    reference, other = RCAN_NETWORKS
    ratios = {key: float(np.median([a / b for a, b in zip(
        timings[other][key], timings[reference][key], strict=True)]))
        for key in ("step_seconds", "predict_seconds")}
    return {**timings, "rounds": rounds, "steps_per_round": steps, "batch": list(batch),
            "predict_shape": list(whole[2:]), "step_time_ratio": ratios["step_seconds"],
            "predict_time_ratio": ratios["predict_seconds"], "load_average_before": load_before,
            "load_average_after": os.getloadavg()[0]}


def _refuse_other_budget(result: dict[str, Any], part: str, steps: int, size: int) -> None:
    """Stop rather than mix runs of another budget into a resumed part."""
    if result.get("steps", steps) != steps or result.get("size", size) != size:
        raise SystemExit(f"The stored {part} part was measured with other steps or size "
                         f"({result.get('steps')}, {result.get('size')}); remove it from the "
                         f"results file to measure it with {steps}, {size}.")


def _network_runs(context: Any, result: dict[str, Any], save: Any, seeds: Sequence[int],
                  run_one: Callable[[str, int], dict[str, Any]],
                  alternating: Callable[[], dict[str, Any]]) -> None:
    """Both networks of each seed back to back (each run saved at once), then their cost timed
    in alternation; what the stored result holds is not measured again."""
    runs = result.setdefault("runs", {})
    for seed in seeds:
        row = runs.setdefault(str(seed), {})
        for network in RCAN_NETWORKS:
            if network in row:
                continue
            row[network] = run_one(network, seed)
            context.log(f"  seed {seed} {network}: " + ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                for k, v in row[network].items()))
            save()
    if "interleaved" not in result:
        result["interleaved"] = alternating()
        context.log(f"  interleaved cost: {result['interleaved']}")
        save()


def rcan(context: Any, result: dict[str, Any], save: Any) -> None:
    """CARE with RCAN against CARE with the U-Net, seed by seed (each run saved at once)."""
    profile = context.profile
    steps, size = profile.context_rcan_steps, profile.context_rcan_size
    _refuse_other_budget(result, "rcan", steps, size)
    result.update(steps=steps, size=size, photons=RCAN_PHOTONS, networks=list(RCAN_NETWORKS),
                  seeds=list(profile.context_rcan_seeds))
    noisy, reference = rcan_quadrants(size)
    result["psnr_noisy"] = psnr(noisy[3], reference[3])
    _network_runs(context, result, save, profile.context_rcan_seeds,
                  lambda network, seed: rcan_training_run(network, steps, seed, size=size),
                  lambda: interleaved_cost(2, size=size, **profile.context_rcan_cost))


def rcan3d(context: Any, result: dict[str, Any], save: Any) -> None:
    """The same comparison in 3-D on simulated volumes (fewer steps: 3-D steps are slow)."""
    profile = context.profile
    steps, size = profile.context_rcan3d_steps, profile.context_rcan3d_size
    _refuse_other_budget(result, "rcan3d", steps, size)
    noisy, clean = volume_scene(VOLUME_TRAINING)
    noisy, clean = crop(noisy, size), crop(clean, size)
    result.update(steps=steps, size=size, shape=list(noisy.shape), photons=DRIFT_PHOTONS,
                  training_volumes=VOLUME_TRAINING, networks=list(RCAN_NETWORKS),
                  seeds=list(profile.context_rcan3d_seeds), psnr_noisy=psnr(noisy, clean),
                  reference=REFERENCE)
    _network_runs(context, result, save, profile.context_rcan3d_seeds,
                  lambda network, seed: rcan_volume_run(network, steps, seed, size),
                  lambda: interleaved_cost(3, size=size, **profile.context_rcan3d_cost))


PARTS = {"captures": captures, "captures_blind_spot": captures_blind_spot, "drift": drift, "drift_seeds": drift_seeds, "ratio": ratio,
         "volume": volume, "spacetime": spacetime, "rcan": rcan, "rcan3d": rcan3d}


def run(context: Any) -> dict[str, Any]:
    """Each part resumes where an interrupted run stopped (per configuration, per speed)."""
    from benchmarks.runner import run_parts

    return run_parts(context, PARTS)
