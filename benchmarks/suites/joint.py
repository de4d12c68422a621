"""Joint tasks: DecoNoising against Noise2Void followed by Richardson–Lucy, with the same PSF;
DenoiSeg against N2V + threshold + watershed and against a network trained on the labels alone.

Simulated widefield data with a known PSF (the Gaussian approximation for NA 1.0, 520 nm,
60 nm pixels: σ = 1.82 px, FWHM 4.3 px). Each 256² scene holds isolated sub-resolution beads
(a 0.7-px Gaussian, FWHM 1.65 px) and thin filaments; it is blurred by the PSF and imaged by the
simulated camera of the other suites (gain 2, offset 100, read noise 3) at a given peak photon
count. Both networks train self-supervised on the noisy scenes themselves, same steps and
patches.

* **Deconvolution**: DecoNoising's deconvolved output, and Richardson–Lucy (scikit-image,
  the same PSF) on N2V's denoised output in photon units, with 10, 30 and 100 iterations and
  with the iteration count that is best against the truth (an oracle the baseline would not
  have). PSNR against the unblurred truth; the median FWHM of Gaussians fitted to the beads.
* **Denoising**: DecoNoising's re-blurred output and N2V's, PSNR against the blurred truth.

Every output is also scored with test-time augmentation (the mean over the 8 flips and
rotations, ``tta=True``) for both networks, Richardson–Lucy then running on N2V's averaged
output. Parts ``deconoising_seed1`` to ``deconoising_seed3`` repeat both photon levels on other
scenes and another training seed each; the report gives the mean over the four.

**DenoiSeg** (part ``denoiseg``): simulated nuclei (128², 12–18 elliptical nuclei with semi-axes
of 4–10 px per image, many touching, each 35–100 % as bright as the brightest of 8 photons,
background 0.8 photons, the simulated camera), 20
training images of which 1, 2, 5 or 10 carry instance masks, and 10 test images that no
method trains on. Average precision at IoU 0.5 on the test images of

* DenoiSeg trained on all 20 noisy images with the labelled ones' masks;
* the same network trained on the labelled images alone with the segmentation loss only
  (``alpha=0``): what a segmentation network learns from the labels without the denoising task;
* N2V (trained on the 20 images) followed by an Otsu threshold and a distance-transform
  watershed, which needs no labels.

DenoiSeg and the segmentation-only network share the scheme's defaults (the border class's
weight in the cross-entropy; DenoiSeg's share of labelled patches per batch, which only
applies when some images are unlabelled); the result records them. Parts ``denoiseg_seed1``
to ``denoiseg_seed3`` repeat the curve on other scenes (training and test) and another
training seed each, to show the spread; the report gives the mean over all four curves.
Part ``denoiseg_dsb`` draws the same curve on real nuclei: the stardist DSB2018 image
(../shared/data) with its instance masks (benchmarks/data), imaged by the simulated camera at
30 photons at the brightest pixel (nuclei at about 8, background 2.7), cut into 16 tiles of
128², 12 for training (of which 1, 2, 5 or 10 carry their masks) and 4 for testing.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage, optimize

from benchmarks.suites._data import CAMERA

SHAPE = (256, 256)
DSB_MASKS = Path(__file__).resolve().parents[1] / "data" / "stardist_dsb2018_mask2d.tif"
DSB_PHOTONS = 30.0
OPTICS = {"psf_model": "gaussian", "na": 1.0, "wavelength": 520.0, "pixel_size": 0.06}
BEAD_SIGMA = 0.7
RL_ITERATIONS = (10, 30, 100)


def scene(photons: float, seed: int) -> dict[str, np.ndarray]:
    """Beads and filaments, blurred and imaged (camera units); bead centres."""
    from infocus.noise import simulate_poisson_gaussian
    from infocus.psf import simulate_psf

    rng = np.random.default_rng(seed)
    truth = np.zeros(SHAPE)
    for _ in range(6):  # filaments: random smooth curves
        start = rng.uniform(20, 236, 2)
        angle = rng.uniform(0, 2 * np.pi)
        for step in range(160):
            angle += rng.normal(0, 0.08)
            point = start + step * np.array([np.sin(angle), np.cos(angle)])
            y, x = np.round(point).astype(int)
            if 0 <= y < SHAPE[0] and 0 <= x < SHAPE[1]:
                truth[y, x] = 0.5
    beads = []
    while len(beads) < 25:
        candidate = rng.uniform(12, 244, 2)
        if all(np.hypot(*(candidate - b)) > 20 for b in beads) and truth[
                tuple(np.round(candidate).astype(int))] == 0:
            beads.append(candidate)
            truth[tuple(np.round(candidate).astype(int))] = 1.0
    truth = ndimage.gaussian_filter(truth, BEAD_SIGMA) / ndimage.gaussian_filter(
        np.pad([[1.0]], 5), BEAD_SIGMA).max() + 0.02
    psf = simulate_psf(ndim=2, model=OPTICS["psf_model"], na=OPTICS["na"],
                       wavelength=OPTICS["wavelength"], pixel_size=OPTICS["pixel_size"])
    blurred = ndimage.convolve(truth, psf, mode="mirror")
    peak = blurred.max()
    noisy, _ = simulate_poisson_gaussian(blurred / peak, photons=photons, rng=seed, **CAMERA)
    to_camera = photons * CAMERA["gain"] / peak
    return {"noisy": noisy.astype(np.float32),
            "truth": truth * to_camera + CAMERA["offset"],
            "blurred": blurred * to_camera + CAMERA["offset"],
            "beads": np.round(beads).astype(int), "psf": psf}


def _psnr(output: np.ndarray, clean: np.ndarray) -> float:
    peak = float(clean.max() - clean.min())
    return 10 * math.log10(peak**2 / float(np.mean((output - clean) ** 2)))


def bead_fwhm(image: np.ndarray, beads: np.ndarray, radius: int = 7) -> float:
    """Median FWHM (pixels) of isotropic Gaussians + background fitted around the beads."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    widths = []
    for y, x in beads:
        patch = image[y - radius : y + radius + 1, x - radius : x + radius + 1].astype(float)
        if patch.shape != yy.shape:
            continue

        def residual(p: np.ndarray, patch: np.ndarray = patch) -> np.ndarray:
            amplitude, cy, cx, sigma, background = p
            model = amplitude * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
            return (model + background - patch).ravel()

        start = [patch.max() - np.median(patch), 0.0, 0.0, 1.5, np.median(patch)]
        fit = optimize.least_squares(residual, start, bounds=(
            [0, -3, -3, 0.3, -np.inf], [np.inf, 3, 3, 8, np.inf]))
        if fit.success:
            widths.append(2.3548 * abs(fit.x[3]))
    return float(np.median(widths)) if widths else math.nan


def _train(method: str, noisy: np.ndarray, steps: int, options: dict[str, Any],
           seed: int | None = None) -> Any:
    from infocus.methods.config import default_config
    from infocus.training.loop import train

    defaults = default_config(method)
    config = defaults.with_updates(
        steps=steps, seed=defaults.seed if seed is None else seed,
        scheme_options={**defaults.scheme_options, **options})
    return train(noisy, axes="SYX", config=config, progress=False, log=lambda m: None)


def _richardson_lucy(denoised: np.ndarray, psf: np.ndarray, iterations: int) -> np.ndarray:
    """RL in photon units (non-negative), back to camera units."""
    from skimage.restoration import richardson_lucy

    photons = np.clip((denoised - CAMERA["offset"]) / CAMERA["gain"], 0, None)
    scale = max(float(photons.max()), 1e-6)
    restored = richardson_lucy(photons / scale, psf, num_iter=iterations, clip=False)
    return restored * scale * CAMERA["gain"] + CAMERA["offset"]


def deconoising(context: Any, result: dict[str, Any], save: Any, scenes: int = 0) -> None:
    """Both comparisons per photon level (module docstring); a level already in ``result`` is
    kept, and each level is saved as soon as it is measured. ``scenes`` > 0 draws other
    scenes and another training seed."""
    from infocus.methods.config import default_config

    profile = context.profile
    steps = int(profile.extra.get("joint_steps", 2000 if profile.name == "full" else
                                  300 if profile.name == "quick" else 4))
    images = int(profile.extra.get("joint_images", 4 if profile.name != "tiny" else 1))
    seed = default_config("n2v").seed + scenes
    result.update(steps=result.get("steps", steps), images=result.get("images", images),
                  optics=result.get("optics", OPTICS), scenes=scenes, seed=seed)
    levels = result.setdefault("levels", {})
    for photons in (10.0, 50.0):
        if f"{photons:g}" in levels:
            continue
        drawn = [scene(photons, 1000 * scenes + k) for k in range(images)]
        noisy = np.stack([s["noisy"] for s in drawn])
        context.log(f"  {photons:g} photons, scenes {scenes}: training n2v and deconoising "
                    f"({steps} steps)")
        n2v = _train("n2v", noisy, steps, {}, seed)
        deco = _train("deconoising", noisy, steps, OPTICS, seed)
        rows: dict[str, list[float]] = {}
        for s in drawn:
            for name, value in _deconvolution_scores(n2v, deco, s).items():
                rows.setdefault(name, []).append(value)
        levels[f"{photons:g}"] = {name: float(np.nanmean(values)) for name, values in rows.items()}
        context.log(f"  {photons:g} photons: " + ", ".join(
            f"{k} {v:.2f}" for k, v in levels[f"{photons:g}"].items()))
        save()


def _deconvolution_scores(n2v: Any, deco: Any, s: dict[str, np.ndarray]) -> dict[str, float]:
    """One scene's scores (module docstring), without and with test-time augmentation (keys
    ending in ``_tta``)."""
    scores = {"denoise_psnr_noisy": _psnr(s["noisy"], s["blurred"]),
              "fwhm_truth": bead_fwhm(s["truth"], s["beads"]),
              "fwhm_blurred": bead_fwhm(s["blurred"], s["beads"])}
    for tta, tag in ((False, ""), (True, "_tta")):
        denoised = n2v.denoise(s["noisy"], tta=tta)
        predicted = deco.predict(s["noisy"], also=("deconvolved",), tta=tta)
        deconvolved = predicted.extras["deconvolved"]
        scores[f"denoise_psnr_n2v{tag}"] = _psnr(denoised, s["blurred"])
        scores[f"denoise_psnr_deconoising{tag}"] = _psnr(predicted.denoised, s["blurred"])
        scores[f"deconv_psnr_deconoising{tag}"] = _psnr(deconvolved, s["truth"])
        scores[f"fwhm_deconoising{tag}"] = bead_fwhm(deconvolved, s["beads"])
        scores[f"fwhm_n2v{tag}"] = bead_fwhm(denoised, s["beads"])
        best = (-math.inf, 0, denoised)
        for iterations in (*RL_ITERATIONS, 3, 5, 20, 50, 200):
            restored = _richardson_lucy(denoised, s["psf"], iterations)
            score = _psnr(restored, s["truth"])
            if iterations in RL_ITERATIONS:
                scores[f"deconv_psnr_n2v_rl{iterations}{tag}"] = score
                scores[f"fwhm_n2v_rl{iterations}{tag}"] = bead_fwhm(restored, s["beads"])
            if score > best[0]:
                best = (score, iterations, restored)
        scores[f"deconv_psnr_n2v_rl_oracle{tag}"] = best[0]
        scores[f"rl_oracle_iterations{tag}"] = best[1]
        scores[f"fwhm_n2v_rl_oracle{tag}"] = bead_fwhm(best[2], s["beads"])
    return scores


def nuclei_scene(seed: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Instance masks of touching elliptical nuclei of varied brightness and their noisy image
    (camera units)."""
    labels, noisy, _ = _nuclei(seed, size)
    return labels, noisy


def _nuclei(seed: int, size: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`nuclei_scene` and the noise-free expected image in camera units."""
    from skimage.draw import ellipse

    from infocus.noise import scale_to_photons, simulate_poisson_gaussian

    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.uint16)
    brightness = np.zeros((size, size))
    for k in range(1, int(rng.integers(12, 19)) + 1):
        rr, cc = ellipse(*rng.uniform(10, size - 10, 2), *rng.uniform(4, 10, 2),
                         shape=labels.shape, rotation=rng.uniform(0, np.pi))
        free = labels[rr, cc] == 0
        labels[rr[free], cc[free]] = k
        brightness[rr[free], cc[free]] = rng.uniform(0.35, 1.0)
    clean = ndimage.gaussian_filter(np.maximum(brightness, 0.1), 1.0)
    noisy, noise = simulate_poisson_gaussian(clean, photons=8.0, rng=seed, **CAMERA)
    expected = noise.gain * scale_to_photons(clean, 8.0) + noise.offset
    return labels, noisy.astype(np.float32), expected


def dsb_tiles(seed: int = 0, tile: int = 128) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The DSB2018 nuclei image and its masks imaged at :data:`DSB_PHOTONS`, as ``(labels,
    noisy, expected)`` tiles in a fixed random order."""
    import tifffile

    from benchmarks.datasets import stardist_nuclei
    from infocus.noise import scale_to_photons, simulate_poisson_gaussian

    clean = stardist_nuclei().astype(np.float64)
    labels = tifffile.imread(DSB_MASKS)
    noisy, noise = simulate_poisson_gaussian(clean, photons=DSB_PHOTONS, rng=seed, **CAMERA)
    expected = noise.gain * scale_to_photons(clean, DSB_PHOTONS) + noise.offset
    corners = [(y, x) for y in range(0, clean.shape[0] - tile + 1, tile)
               for x in range(0, clean.shape[1] - tile + 1, tile)]
    order = np.random.default_rng(seed).permutation(len(corners))
    return [tuple(a[y : y + tile, x : x + tile] for a in (labels, noisy.astype(np.float32),
                                                          expected))
            for y, x in (corners[i] for i in order)]


def _watershed(denoised: np.ndarray) -> np.ndarray:
    """Otsu threshold, then split touching objects at the distance transform's saddles."""
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_otsu
    from skimage.segmentation import watershed

    mask = denoised > threshold_otsu(denoised)
    distance = ndimage.distance_transform_edt(mask)
    peaks = peak_local_max(distance, min_distance=4, labels=ndimage.label(mask)[0])
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=mask)


def denoiseg_counts(profile_name: str) -> tuple[int, ...]:
    """The numbers of labelled images on the DenoiSeg curve of a profile."""
    return (1,) if profile_name == "tiny" else (1, 2, 5, 10)


def denoiseg(context: Any, result: dict[str, Any], save: Any, scenes: int = 0,
             real: bool = False) -> None:
    """AP@0.5 over the number of labelled images (module docstring); ``scenes`` > 0 draws
    other scenes and another training seed; ``real`` uses the DSB2018 tiles instead of
    simulated scenes (skipped, saying why, without ../shared/data).

    What ``result`` already holds (N2V + watershed, a label count, or one network of a label
    count) is kept and not trained again; each is saved as soon as it is measured, so an
    interrupted run resumes at the next label count. ``counts`` records the whole curve, so
    the report can tell which counts are still missing.
    """
    from infocus.methods import scheme_options
    from infocus.methods.config import default_config
    from infocus.metrics import average_precision
    from infocus.training.loop import train

    profile = context.profile
    steps = int(profile.extra.get("denoiseg_steps", 1000 if profile.name == "full" else
                                  200 if profile.name == "quick" else 4))
    counts = denoiseg_counts(profile.name)
    if real:
        from benchmarks.datasets import DatasetMissing

        try:
            tiles = dsb_tiles()
        except DatasetMissing as missing:
            result["skipped"] = str(missing)
            return
        train_set, tests = [(labels, x) for labels, x, _ in tiles[:12]], tiles[12:]
        result.update(source="stardist DSB2018 image and masks", photons=DSB_PHOTONS)
    else:
        first = 100_000 * scenes
        train_set = [nuclei_scene(first + seed) for seed in range(20)]
        tests = [_nuclei(first + 1000 + seed)
                 for seed in range(10 if profile.name != "tiny" else 2)]
    test_set = [(labels, x) for labels, x, _ in tests]
    seed = default_config("denoiseg").seed + scenes
    noisy = [x for _, x in train_set]
    options = scheme_options("denoiseg")
    settings = {"steps": steps, "seed": seed, "scheme_options": {
        k: options[k] for k in ("labelled_fraction", "border_weight", "threshold")}}
    changed = [k for k, v in settings.items() if result.get(k, v) != v]
    if changed:
        # a curve is only comparable across label counts with one set of settings
        raise SystemExit(f"The stored denoiseg part (scenes {scenes}) was measured with other "
                         f"{', '.join(changed)} than now ({settings}); delete it from the "
                         "results file to measure it again.")

    def score(segment: Any) -> float:
        return float(np.mean([average_precision(segment(x), labels)[0.5]
                              for labels, x in test_set]))

    def fitted(alpha: float, inputs: list[np.ndarray], targets: list[Any]) -> Any:
        config = default_config("denoiseg").with_updates(
            steps=steps, seed=seed, scheme_options={"alpha": alpha})
        return train(inputs, targets=targets, method="denoiseg", axes="YX", config=config,
                     progress=False, log=lambda m: None)

    def denoised_psnr(model: Any) -> float:
        return float(np.mean([_psnr(model.denoise(x), clean) for _, x, clean in tests]))

    def segmenter(model: Any) -> Any:
        return lambda x: model.predict(x, also=("labels",)).extras["labels"].astype(int)

    result.update(settings, train_images=len(noisy), test_images=len(test_set), scenes=scenes,
                  counts=[str(count) for count in counts])
    # an earlier run's list of missing counts; the report now reads them from ``counts``
    result.pop("unmeasured_counts", None)
    if "n2v_watershed" not in result or "n2v_psnr" not in result:
        context.log(f"  n2v + watershed ({steps} steps)")
        n2v = train(np.stack(noisy), method="n2v", axes="SYX",
                    config=default_config("n2v").with_updates(steps=steps, seed=seed),
                    progress=False, log=lambda m: None)
        result["n2v_watershed"] = score(lambda x: _watershed(n2v.denoise(x)))
        result["n2v_psnr"] = denoised_psnr(n2v)
        result.pop("n2v_watershed_provenance", None)
        context.log(f"    n2v_watershed {result['n2v_watershed']:.4f}, "
                    f"denoised {result['n2v_psnr']:.2f} dB")
        save()
    for count in counts:
        entry = dict(result.get(str(count), {}))
        if {"denoiseg", "segmentation_only"} <= entry.keys():
            continue
        context.log(f"  {count} labelled image(s)")
        targets = [labels if i < count else None for i, (labels, _) in enumerate(train_set)]
        # One of the two may be stored (DenoiSeg deleted to measure a change of its own).
        if "denoiseg" not in entry:
            joint = fitted(0.5, noisy, targets)
            entry["denoiseg"] = score(segmenter(joint))
            entry["denoiseg_psnr"] = denoised_psnr(joint)
        if "segmentation_only" not in entry:
            entry["segmentation_only"] = score(segmenter(fitted(0.0, noisy[:count],
                                                                targets[:count])))
        result[str(count)] = entry
        context.log(f"    {result[str(count)]}")
        save()


PARTS = {"deconoising": deconoising, "denoiseg": denoiseg,
         **{f"denoiseg_seed{k}": partial(denoiseg, scenes=k) for k in (1, 2, 3)},
         "denoiseg_dsb": partial(denoiseg, real=True),
         **{f"deconoising_seed{k}": partial(deconoising, scenes=k) for k in (1, 2, 3)}}


def run(context: Any) -> dict[str, Any]:
    """Each part resumes where an interrupted run stopped (per photon level, per label count)."""
    from benchmarks.runner import run_parts

    return run_parts(context, PARTS)
