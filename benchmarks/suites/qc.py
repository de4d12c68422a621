"""``infocus qc`` measured: its PSNR estimates against the truth, its flags against planted defects.

* **Simulated estimates**: spot scenes (256², Poisson–Gaussian camera of the other suites) at
  5/20/100 photons; denoisers Gaussian (σ 1 and 2), BM3D, N2V and CARE (trained with the
  profile's ``qc_steps``); each output's SURE estimate (the denoiser re-run) and output-only
  bounds against the true PSNR; pairwise ranking of the denoisers of one image; the SURE
  estimate again with the camera's true noise model, and the error that the drawn noise's own
  sum of squares alone would cause (:func:`noise_term_error_db`); part ``simulated_large``
  the same on 512² scenes.
* **FMD estimates**: every test_mix capture (central 256² crop), Gaussian σ 1 and BM3D; the
  estimate from the image alone (SURE) and with the other three captures of the view (those
  whose brightness agrees with the image's); the truth both against the ground-truth file and
  against the capture's own noise-free image (:func:`scene_truth`).
* **Planted defects**: on a good output (a 0.7-pixel blur of the truth, or BM3D's output) a
  spot added, an object erased or an object's brightness scaled by 1.2–1.5; whether the flags
  cover the defect, flags elsewhere, and flags on the untouched good outputs; per defect also
  whether the measurement can show it at all (:func:`oracle_z`).
* **Good outputs' intensities** (part ``good_outputs``): what those good outputs truly do to
  the total intensity, against the clean image, and whether the change exceeds the noise of
  the measured total (a flag on them is then a finding).
* **``--method auto``**: :func:`infocus.qc.choose_denoiser` on crops of the embedded sample
  under the simulated camera at several photon levels, and on FMD test_mix captures (one per
  configuration, central crop); how often it keeps the truly best candidate, and the PSNR it
  gives up against that candidate (and what always using one method would give up).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from itertools import combinations
from typing import Any

import numpy as np
from scipy import ndimage

from benchmarks.suites import _data
from benchmarks.suites._data import CAMERA

SHAPE = (256, 256)
DEFECTS = ("added", "erased", "scaled")
GOOD = ("blur", "bm3d")
#: Flags farther than this from a defect (half the largest test window) count as elsewhere.
ELSEWHERE = 15


def spot_scene(photons: float, seed: int, n: int = 40,
               shape: tuple[int, int] = SHAPE) -> dict[str, Any]:
    """Gaussian spots (widths 1.5–12 px) on a dim background under the simulated camera;
    ``n`` spots per 256² (a larger ``shape`` holds as many per area)."""
    from infocus.noise import simulate_poisson_gaussian

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    objects = []
    for _ in range(round(n * shape[0] * shape[1] / (SHAPE[0] * SHAPE[1]))):
        cy, cx, width = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(1.5, 12)
        objects.append(rng.uniform(0.3, 1.0)
                       * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2)))
    clean = 0.05 + sum(objects)
    peak = clean.max()
    scale = photons * CAMERA["gain"] / peak
    noisy, _ = simulate_poisson_gaussian(clean / peak, photons=photons, rng=seed, **CAMERA)
    return {"noisy": noisy.astype(np.float64), "clean": clean * scale + CAMERA["offset"],
            "objects": [o * scale for o in objects], "rng": rng}


def _psnr(output: np.ndarray, clean: np.ndarray) -> float:
    peak = float(clean.max() - clean.min())
    return 10 * math.log10(peak**2 / float(np.mean((output - clean) ** 2)))


def _classical(name: str, **options: Any):
    from infocus.classical import get_denoiser

    function = get_denoiser(name)
    return lambda image, noise=None: function(np.asarray(image, np.float32), axes="YX",
                                             noise=noise, **options)


def _estimate(noisy: np.ndarray, output: np.ndarray, peak: float, denoiser: Any,
              captures: list[np.ndarray] | None = None, noise: Any = None) -> dict[str, Any]:
    """``infocus qc``'s estimate as a user gets it: the noise model estimated by the check
    itself (the same estimate the denoisers were given), its error in the interval; with
    ``noise``, the estimate of a user whose camera is calibrated."""
    from infocus.qc import quality_check

    report = quality_check(noisy, output, denoiser=denoiser, captures=captures or (),
                           data_range=peak, noise=noise)
    psnr, low, high = report.psnr
    return {"estimate": psnr, "low": low, "high": high, "method": report.risk.method,
            "note": report.risk.note, "flagged": report.flagged}


def simulated_estimates(context: Any, shape: tuple[int, int] = SHAPE,
                        photon_levels: tuple[float, ...] | None = None) -> dict[str, Any]:
    from infocus.noise import estimate_noise

    profile = context.profile
    images = profile.qc_images
    result: dict[str, Any] = {}
    for photons in profile.photon_levels if photon_levels is None else photon_levels:
        scenes = [spot_scene(photons, seed, shape=shape) for seed in range(images)]
        trained = _trained_denoisers(photons, profile.qc_steps, images, shape)
        rows = []
        for index, scene in enumerate(scenes):
            noisy, clean = scene["noisy"], scene["clean"]
            noise = estimate_noise(noisy)
            denoisers = {"gaussian 1": _classical("gaussian", sigma=1.0),
                         "gaussian 2": _classical("gaussian", sigma=2.0),
                         "bm3d": _classical("bm3d")}
            for name, function in denoisers.items():
                rows.append(_row(index, name, noisy, clean,
                                 lambda x, f=function, n=noise: f(x, n)))
            for name, model in trained.items():
                rows.append(_row(index, name, noisy, clean,
                                 lambda x, m=model: m.denoise(x, axes="YX")))
        result[str(photons)] = _summarise(rows)
        context.log(f"simulated {shape[0]}x{shape[1]}, {photons:g} photons: "
                    f"{result[str(photons)]['within_1db']:.0%} "
                    f"within 1 dB, ranking {result[str(photons)]['ranking']:.0%}")
    return result


def _row(index: int, name: str, noisy: np.ndarray, clean: np.ndarray, denoiser: Any
         ) -> dict[str, Any]:
    from infocus.noise import NoiseParams

    output = np.asarray(denoiser(noisy), np.float64)
    true = _psnr(output, clean)
    peak = float(clean.max() - clean.min())
    sure = _estimate(noisy, output, peak, denoiser)
    bounds = _estimate(noisy, output, peak, None)
    calibrated = _estimate(noisy, output, peak, denoiser, noise=NoiseParams.from_camera(**CAMERA))
    return {"image": index, "denoiser": name, "true": true, "sure": sure, "bounds": bounds,
            "sure_calibrated": calibrated,
            "noise_term_db": noise_term_error_db(noisy, clean, output)}


def noise_term_error_db(noisy: np.ndarray, clean: np.ndarray, output: np.ndarray) -> float:
    r"""The PSNR error of an estimate whose only error is the noise's own sum of squares.

    Every estimate of :math:`\frac1N\lVert f - \theta\rVert^2` from the image (SURE, and
    the Noise2Noise identity with the capture's noise in its place) contains
    :math:`\frac1N\lVert f - y\rVert^2 - \bar v`, hence the term
    :math:`e = \frac1N\sum_i (n_i^2 - v_i)`, with :math:`n = y - \theta` the noise actually
    drawn. Its mean is zero and its standard deviation about :math:`\sqrt{2\,\overline{v^2}
    / N}` whatever the denoiser; against a small MSE it is a large error. SURE adds
    :math:`\frac2N(\sum_i v_i \partial_i f_i - \langle n, f - \theta\rangle)`, which moves
    with :math:`e` only through the output's dependence on each pixel's own noise: for a
    denoiser with divergence :math:`D` per pixel it cancels about :math:`2D` of :math:`e`.
    Returned: the error in dB of the estimate :math:`\mathrm{MSE} + e`, an estimate whose
    only error is this term; an infinite PSNR when :math:`\mathrm{MSE} + e \le 0`.
    """
    variance = CAMERA["gain"] * (clean - CAMERA["offset"]) + CAMERA["read_noise"] ** 2
    term = float(np.mean((noisy - clean) ** 2 - variance))
    mse = float(np.mean((output - clean) ** 2))
    return math.inf if mse + term <= 0 else 10 * math.log10(mse / (mse + term))


def _trained_denoisers(photons: float, steps: int, images: int,
                       shape: tuple[int, int] = SHAPE) -> dict[str, Any]:
    """N2V trained on the evaluation images themselves (self-supervised), CARE on other
    scenes of the same kind with their clean targets."""
    import infocus
    from infocus.methods.config import default_config

    noisy = np.stack([spot_scene(photons, seed, shape=shape)["noisy"] for seed in range(images)])
    training = [spot_scene(photons, 1000 + seed, shape=shape) for seed in range(max(images, 4))]
    models = {}
    for method, inputs, targets in (
        ("n2v", noisy, None),
        ("care", np.stack([s["noisy"] for s in training]),
         np.stack([s["clean"] for s in training])),
    ):
        config = default_config(method).with_updates(steps=steps)
        models[method] = infocus.train(inputs.astype(np.float32), method=method, axes="SYX",
                                       targets=None if targets is None else
                                       targets.astype(np.float32),
                                       config=config, progress=False, log=lambda _: None)
    return models


def _summarise(rows: list[dict[str, Any]], truth: str = "true") -> dict[str, Any]:
    """Accuracy of the estimates of ``rows`` against their ``truth`` (the key of the true
    PSNR), and, where the rows have them, of the calibrated camera's estimates and of the
    noise term alone (:func:`noise_term_error_db`)."""
    errors = [r["sure"]["estimate"] - r[truth] for r in rows]
    covered = [r["sure"]["low"] <= r[truth] <= r["sure"]["high"] for r in rows]
    bounds = [r["bounds"]["low"] <= r[truth] <= r["bounds"]["high"] for r in rows]
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_image[row["image"]].append(row)
    agree = [(a[truth] > b[truth]) == (a["sure"]["estimate"] > b["sure"]["estimate"])
             for group in by_image.values() for a, b in combinations(group, 2)]
    per_denoiser: dict[str, list[float]] = defaultdict(list)
    for row, error in zip(rows, errors, strict=True):
        per_denoiser[row["denoiser"]].append(error)
    return {
        "cases": len(rows),
        "within_1db": float(np.mean(np.abs(errors) < 1.0)),
        "median_abs_error_db": float(np.median(np.abs(errors))),
        "interval_coverage": float(np.mean(covered)),
        "ranking": float(np.mean(agree)),
        "pairs": len(agree),
        "bounds_coverage": float(np.mean(bounds)),
        "bounds_low_gap_db": float(np.median([r[truth] - r["bounds"]["estimate"]
                                              for r in rows])),
        "false_flags": float(np.mean([r["sure"]["flagged"] for r in rows])),
        "median_error_db": {k: float(np.median(v)) for k, v in per_denoiser.items()},
        **_calibrated_summary(rows, truth),
        "rows": rows,
    }


def _calibrated_summary(rows: list[dict[str, Any]], truth: str) -> dict[str, Any]:
    if not rows or "sure_calibrated" not in rows[0]:
        return {}
    calibrated = [r["sure_calibrated"]["estimate"] - r[truth] for r in rows]
    return {"within_1db_calibrated": float(np.mean(np.abs(calibrated) < 1.0)),
            "median_abs_error_calibrated_db": float(np.median(np.abs(calibrated))),
            "within_1db_noise_term": float(np.mean([abs(r["noise_term_db"]) < 1.0
                                                    for r in rows])),
            "median_abs_noise_term_db": float(np.median([abs(r["noise_term_db"])
                                                         for r in rows]))}


def fmd_estimates(context: Any) -> dict[str, Any]:
    from infocus.noise import estimate_pixel_noise

    data = _data.fmd(context.profile, context.profile.qc_fmd_configurations)
    configs = _data.fmd_configurations(data.names)
    noisy_all = _data.crop(data.noisy.astype(np.float64), 256)
    clean_all = _data.crop(data.clean.astype(np.float64), 256)
    rows_single, rows_captures = [], []
    for index, (config, noisy, clean) in enumerate(zip(configs, noisy_all, clean_all,
                                                       strict=True)):
        others = _distinct([noisy_all[j] for j, c in enumerate(configs)
                            if c == config and j != index], noisy)
        # the noise model the classical denoisers estimate for themselves
        noise = estimate_pixel_noise(noisy)
        for name, function in (("gaussian 1", _classical("gaussian", sigma=1.0)),
                               ("bm3d", _classical("bm3d"))):
            def denoiser(x, f=function, n=noise):
                return f(x, n)

            output = np.asarray(denoiser(noisy), np.float64)
            true = 10 * math.log10(255.0**2 / float(np.mean((output - clean) ** 2)))
            scene = scene_truth(output, clean, noisy, denoiser)
            truths = {"true": true, "true_scene": scene["psnr"], "truth_correction": scene}
            single = _estimate(noisy, output, 255.0, denoiser)
            rows_single.append({"image": index, "denoiser": name, **truths, "sure": single,
                                "bounds": _estimate(noisy, output, 255.0, None),
                                "config": config})
            if others:
                # the denoiser too: where no capture agrees with the image, SURE stands in
                with_captures = _estimate(noisy, output, 255.0, denoiser, captures=others)
                rows_captures.append({"image": index, "denoiser": name, **truths,
                                      "sure": with_captures, "bounds": with_captures,
                                      "config": config})
    # The rows are stored once, with the summaries against the scene: those against the
    # file differ only in the truth they read from the same rows.
    result = {"single": _summarise(rows_single, "true_scene"),
              "captures": _summarise(rows_captures, "true_scene"),
              "single_file": _without_rows(_summarise(rows_single)),
              "captures_file": _without_rows(_summarise(rows_captures)),
              "averaged_captures": FMD_AVERAGED,
              "captures_used": _captures_used(rows_captures, "true_scene")}
    context.log(f"fmd: {result['single']['within_1db']:.0%} within 1 dB alone, "
                f"{result['captures']['within_1db']:.0%} with the other captures "
                f"(against the ground-truth file: {result['single_file']['within_1db']:.0%}, "
                f"{result['captures_file']['within_1db']:.0%})")
    return result


def _without_rows(summary: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in summary.items() if key != "rows"}


def _captures_used(rows: list[dict[str, Any]], truth: str) -> dict[str, Any]:
    """How many estimates used captures (the others left every capture out: their scene's
    brightness differed), and their accuracy alone."""
    used = [r for r in rows if r["sure"]["method"] == "second capture"]
    errors = [abs(r["sure"]["estimate"] - r[truth]) for r in used]
    return {"cases": len(used), "of": len(rows),
            "some_left_out": sum(bool(r["sure"]["note"]) for r in used),
            "within_1db": float(np.mean(np.array(errors) < 1.0)) if used else None,
            "median_abs_error_db": float(np.median(errors)) if used else None}


#: FMD's ground truth of a view is the mean of this many raw captures, the test captures
#: among them (FMD, Zhang et al. 2019).
FMD_AVERAGED = 50


def scene_truth(output: np.ndarray, ground_truth: np.ndarray, noisy: np.ndarray,
                denoiser: Any) -> dict[str, float]:
    r"""The output's PSNR against the capture's own noise-free image, from a ground truth that
    is the mean of :data:`FMD_AVERAGED` captures, the noisy one among them, stored as 8-bit
    integers.

    Two things separate the file :math:`g` from what the estimators of ``infocus qc`` aim at,
    the expected value :math:`\theta_1` of the noisy capture. (1) The mean holds the captures'
    noise: :math:`g = \bar\theta + \frac1K\sum_k n_k + q` (:math:`K` captures, the noisy
    one's :math:`n_1` among them, :math:`q` the rounding, variance 1/12). (2) The captures of
    confocal and two-photon views differ in brightness (laser power, bleaching): a capture is
    modelled as :math:`\theta_1 = a\bar\theta + b`, :math:`a, b` fitted by least squares of
    the capture on :math:`g` (two numbers from all pixels; the fit's own noise is negligible).
    Then with :math:`h = a g + b`

    .. math::
        \mathrm{E}\lVert f - \theta_1\rVert^2 = \mathrm{E}\lVert f - h\rVert^2
            - a^2 N\big(\tfrac{\bar v}{K} + \tfrac1{12}\big)
            + \tfrac{2a}{K}\textstyle\sum_i v_i D_i,

    with :math:`D_i = \partial f_i / \partial y_i` (Stein's identity:
    :math:`\mathrm{E}[n_{1,i} (f_i - \theta_{1,i})] = v_i \mathrm{E}[D_i]`),
    :math:`\sum_i v_i D_i \approx N \bar v \bar D`, :math:`\bar D` from one Monte-Carlo
    probe of the denoiser and :math:`\bar v` from the capture's distance to :math:`h`,
    :math:`\mathrm{E}\,\overline{(y - h)^2} = \bar v (1 - \frac{2a}{K} + \frac{a^2}{K}) +
    \frac{a^2}{12}` (no noise model). Against :math:`g` as stored the error of a good output
    is overstated by :math:`\bar v / K` (2–21 % of it on FMD, median 7 %) and by the brightness
    difference (up to 20 % of the signal for some captures). What stays: a scene that changed
    between the captures other than in brightness (drift).
    """
    design = np.stack([ground_truth.ravel(), np.ones(ground_truth.size)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(design, noisy.ravel(), rcond=None)
    matched = scale * ground_truth + shift
    averaged = FMD_AVERAGED
    variance = (float(np.mean((noisy - matched) ** 2)) - scale**2 / 12) / (
        1 - 2 * scale / averaged + scale**2 / averaged)
    probe = np.random.default_rng(0).choice(np.array([-1.0, 1.0]), size=noisy.shape)
    epsilon = 0.01 * math.sqrt(max(variance, 1e-12))
    divergence = float(np.mean(probe * (np.asarray(denoiser(noisy + epsilon * probe),
                                                   np.float64) - output))) / epsilon
    against_matched = float(np.mean((output - matched) ** 2))
    correction = (scale**2 * (variance / averaged + 1 / 12)
                  - 2 * scale * variance * divergence / averaged)
    mse = against_matched - correction
    return {"psnr": 10 * math.log10(255.0**2 / mse),
            "mse_against_file": float(np.mean((output - ground_truth) ** 2)),
            "mse_against_matched": against_matched, "correction": float(correction),
            "scale": float(scale), "shift": float(shift), "noise_variance": float(variance),
            "divergence": divergence}


def _distinct(captures: list[np.ndarray], noisy: np.ndarray) -> list[np.ndarray]:
    """The captures that differ from ``noisy`` and from each other: FMD test_mix holds
    WideField_BPAE_B_1 and _2 as byte-identical files, which ``infocus qc`` refuses as
    captures (no noise between them)."""
    kept: list[np.ndarray] = []
    for capture in captures:
        if not any(np.array_equal(capture, seen) for seen in (noisy, *kept)):
            kept.append(capture)
    return kept


def planted_defects(context: Any) -> dict[str, Any]:
    """Flags on good outputs and on outputs with a defect planted (module docstring); per
    defect also how visible the measurement makes it (:func:`oracle_z`)."""
    from infocus.qc import quality_check

    profile = context.profile
    result: dict[str, Any] = {"power_margin": POWER_MARGIN}
    for photons in profile.photon_levels:
        counts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for seed in range(profile.qc_defect_seeds):
            scene = spot_scene(photons, seed)
            rng = scene["rng"]
            outputs = {"blur": ndimage.gaussian_filter(scene["clean"], 0.7),
                       "bm3d": _classical("bm3d")(scene["noisy"]).astype(np.float64)}
            for name, output in outputs.items():
                counts[f"good {name}"].append(
                    {"hit": quality_check(scene["noisy"], output).flagged, "elsewhere": False})
            base = outputs[GOOD[seed % len(GOOD)]]
            for kind in DEFECTS:
                change = _defect(kind, scene, rng)
                report = quality_check(scene["noisy"], base + change)
                counts[kind].append(_defect_case(report, change, scene["clean"]))
        result[str(photons)] = {kind: _defect_summary(values) for kind, values in counts.items()}
        context.log(f"planted {photons:g} photons: " + ", ".join(
            f"{k} {v['rate']:.0%}" for k, v in result[str(photons)].items()))
    return result


#: A defect is *visible* when its :func:`oracle_z` exceeds the map's threshold by this much:
#: the matched test would then find it with 95 % probability (the one-sided normal quantile).
POWER_MARGIN = 1.645


def oracle_z(change: np.ndarray, clean: np.ndarray) -> float:
    r"""How many noise standard deviations the measurement holds against a planted change
    :math:`d`: :math:`\sqrt{\sum_i d_i^2 / v_i}` with :math:`v` the true noise variance.

    It is the mean of the matched-filter statistic :math:`\sum_i d_i r_i / v_i \,/\,
    \sqrt{\sum_i d_i^2 / v_i}` of the residual :math:`r = y - (\theta + d)`, the most
    powerful test of that one change (Neyman–Pearson) for a test that knew where the defect
    lies and what it looks like. At a threshold :math:`t` that test finds the defect with 95 %
    probability only when this exceeds :math:`t` + :data:`POWER_MARGIN`; a test that scans
    the whole image, as the consistency map must, cannot do better.
    """
    variance = CAMERA["gain"] * np.maximum(clean - CAMERA["offset"], 0.0) + CAMERA["read_noise"] ** 2
    return float(np.sqrt(np.sum(change**2 / variance)))


def _defect_case(report: Any, change: np.ndarray, clean: np.ndarray) -> dict[str, Any]:
    """Found (a flag touches the defect), a flag elsewhere (a connected flagged region wholly
    farther than :data:`ELSEWHERE` px from it: an object the intensity check flags because it
    holds the defect is the defect's flag, however far it reaches), and the defect's
    :func:`oracle_z` against the consistency map's threshold."""
    region = np.abs(change) > 0.1 * np.abs(change).max()
    near = ndimage.binary_dilation(region, np.ones((2 * ELSEWHERE + 1,) * 2, bool))
    flags = report.flags > 0
    components, count = ndimage.label(flags, np.ones((3, 3), bool))
    touching = np.unique(components[near & flags])
    z = oracle_z(change, clean)
    return {"hit": bool(flags[region].any()),
            "elsewhere": bool(count > len(touching)),
            "oracle_z": z, "threshold": float(report.consistency.threshold),
            "visible": bool(z >= report.consistency.threshold + POWER_MARGIN)}


def _defect_summary(values: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"rate": float(np.mean([v["hit"] for v in values])),
                               "elsewhere": float(np.mean([v["elsewhere"] for v in values])),
                               "cases": len(values)}
    if "oracle_z" in values[0]:
        visible = [v["hit"] for v in values if v["visible"]]
        summary.update(visible=len(visible), visible_found=int(sum(visible)),
                       threshold=float(np.median([v["threshold"] for v in values])),
                       oracle_z=[round(v["oracle_z"], 2) for v in values],
                       found=[v["hit"] for v in values])
    return summary


#: A total intensity changed by more than this many noise standard errors of the measured
#: total is a change the measurement shows (about the intensity check's family-wise threshold).
VISIBLE_Z = 3.2


def good_outputs(context: Any) -> dict[str, Any]:
    r"""What the planted part's good outputs truly do to the total intensity: their change of
    the summed signal against the clean image's, and that change in noise standard errors of
    the measured total, :math:`\sum (f - \theta) / \sqrt{\sum v(\theta)}`. An output
    beyond :data:`VISIBLE_Z` changed the intensities by more than the measurement's noise
    explains, so a flag on it is a finding, not a false alarm."""
    profile = context.profile
    offset = CAMERA["offset"]
    result: dict[str, Any] = {"visible_z": VISIBLE_Z}
    for photons in profile.photon_levels:
        rows: dict[str, list[dict[str, float]]] = defaultdict(list)
        for seed in range(profile.qc_defect_seeds):
            scene = spot_scene(photons, seed)
            clean, noisy = scene["clean"], scene["noisy"]
            variance = CAMERA["gain"] * (clean - offset) + CAMERA["read_noise"] ** 2
            signal = float(np.sum(clean - offset))
            outputs = {"blur": ndimage.gaussian_filter(clean, 0.7),
                       "bm3d": _classical("bm3d")(noisy).astype(np.float64),
                       "noisy": noisy}
            for name, output in outputs.items():
                rows[name].append({
                    "relative_change": float(np.sum(output - offset)) / signal - 1.0,
                    "z": float(np.sum(output - clean)) / math.sqrt(float(np.sum(variance)))})
        result[str(photons)] = {
            name: {"median_relative_change": float(np.median([r["relative_change"]
                                                              for r in values])),
                   "beyond_noise": int(sum(abs(r["z"]) > VISIBLE_Z for r in values)),
                   "cases": len(values), "rows": values}
            for name, values in rows.items()}
        context.log(f"good outputs {photons:g} photons: " + ", ".join(
            f"{k} {100 * v['median_relative_change']:+.1f} % ({v['beyond_noise']} beyond noise)"
            for k, v in result[str(photons)].items()))
    return result


def _defect(kind: str, scene: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """The change planted in a good output (camera units)."""
    objects = scene["objects"]
    if kind == "added":
        yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]].astype(np.float64)
        cy, cx = rng.uniform(20, SHAPE[0] - 20), rng.uniform(20, SHAPE[1] - 20)
        width = rng.uniform(1.5, 4.0)
        amplitude = rng.uniform(0.3, 1.0) * max(o.max() for o in objects)
        return amplitude * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
    target = objects[int(rng.integers(len(objects)))]
    blurred = ndimage.gaussian_filter(target, 0.7)
    if kind == "erased":
        return -blurred
    return (rng.uniform(1.2, 1.5) - 1.0) * blurred


def report_page(context: Any) -> dict[str, Any]:
    """The report of a planted-defect example, rendered by headless Chromium (when installed)
    into a screenshot the docs show."""
    import shutil
    import subprocess

    from infocus.qc import quality_check
    from infocus.qc.page import write_report

    scene = spot_scene(20.0, 3)
    rng = np.random.default_rng(3)
    output = ndimage.gaussian_filter(scene["clean"], 0.7)
    output = output + _defect("added", scene, rng) + _defect("erased", scene, rng)
    report = quality_check(scene["noisy"], output, ground_truth=scene["clean"])
    folder = context.artifacts / "qc-report"
    write_report(report, scene["noisy"], output, folder, ground_truth=scene["clean"],
                 overwrite=True, title="A good output with a spot added and an object erased")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return {"report": folder.name, "screenshot": None,
                "skipped": "no Chromium on this machine (Debian package chromium)"}
    screenshot = context.artifacts / "qc-report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={context.artifacts / '.chromium'}",
                    "--hide-scrollbars", "--window-size=1280,1400",
                    f"--screenshot={screenshot}", (folder / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    shutil.rmtree(context.artifacts / ".chromium", ignore_errors=True)
    return {"report": folder.name, "screenshot": screenshot.name}


def auto_choice(context: Any, done: dict[str, Any] | None = None,
                save: Any = lambda: None) -> dict[str, Any]:
    """``--method auto`` against the truth: the embedded sample simulated, then FMD.

    Each image's row goes into ``done`` (keyed by its case) and ``save()`` is called, so an
    interrupted run resumes at the next image instead of measuring the part again.
    """
    from benchmarks.datasets import DatasetMissing
    from infocus.demo import load_sample
    from infocus.noise import simulate_poisson_gaussian

    done = {} if done is None else done
    profile = context.profile
    size = profile.qc_auto_crop

    def measured(key: str, case: Any) -> dict[str, Any]:
        if key not in done:
            done[key] = case()
            save()
        return done[key]

    sample = load_sample().astype(np.float64)
    corners = _crop_corners(sample.shape, size, profile.qc_auto_scenes)
    rows = []
    for photons in profile.qc_auto_photon_levels:
        for index, (top, left) in enumerate(corners):
            def case(top: int = top, left: int = left, index: int = index,
                     photons: float = photons) -> dict[str, Any]:
                image = sample[top:top + size, left:left + size]
                seed = 100 * index + int(photons)
                noisy, _ = simulate_poisson_gaussian(image, photons=photons, rng=seed, **CAMERA)
                clean = image / image.max() * photons * CAMERA["gain"] + CAMERA["offset"]
                return {"photons": photons, "crop": [top, left],
                        **_auto_case(noisy, clean, float(clean.max() - clean.min()), profile)}

            rows.append(measured(f"sample {photons:g} {top} {left}", case))
    result: dict[str, Any] = {"budget_seconds": profile.qc_auto_budget_seconds, "crop": size,
                              "simulated": {f"{photons:g}": _auto_summary(
                                  [r for r in rows if r["photons"] == photons])
                                  for photons in profile.qc_auto_photon_levels}}
    for level, summary in result["simulated"].items():
        context.log(f"auto, {level} photons: best kept in {summary['picked_best']:.0%}, "
                    f"{summary['mean_given_up_db']:.2f} dB given up on average")
    try:
        data = _data.fmd(profile, (), captures=1)
    except DatasetMissing as missing:
        result["fmd"] = {"skipped": str(missing)}
        return result
    rows = []
    for name, noisy, clean in list(zip(data.names, data.noisy, data.clean,
                                       strict=True))[: profile.qc_auto_fmd_images]:
        def fmd_case(name: str = name, noisy: np.ndarray = noisy,
                     clean: np.ndarray = clean) -> dict[str, Any]:
            cropped, truth = (_data.crop(a.astype(np.float64), size) for a in (noisy, clean))
            return {"image": name, **_auto_case(cropped, truth, 255.0, profile)}

        rows.append(measured(f"fmd {name}", fmd_case))
    result["fmd"] = _auto_summary(rows)
    context.log(f"auto, fmd: best kept in {result['fmd']['picked_best']:.0%}, "
                f"{result['fmd']['mean_given_up_db']:.2f} dB given up on average")
    return result


def _crop_corners(shape: tuple[int, ...], size: int, count: int) -> list[tuple[int, int]]:
    """Top-left corners of ``count`` crops: the four corners of the image, then its centre."""
    far_y, far_x = shape[0] - size, shape[1] - size
    corners = [(0, 0), (0, far_x), (far_y, 0), (far_y, far_x), (far_y // 2, far_x // 2)]
    return corners[:count]


def _auto_case(noisy: np.ndarray, clean: np.ndarray, peak: float, profile: Any
               ) -> dict[str, Any]:
    """One image: every candidate's estimated and true PSNR, the one kept, the truly best."""
    import time

    from infocus.qc import choose_denoiser

    truth: dict[str, float] = {}

    def score(method: str, output: np.ndarray) -> None:
        truth[method] = 10 * math.log10(peak**2 / float(np.mean((output - clean) ** 2)))

    started = time.perf_counter()
    choice = choose_denoiser(noisy, budget=profile.qc_auto_budget_seconds, on_output=score)
    best = max(truth, key=truth.__getitem__)
    # The estimates against the truth's peak (the choice uses the noisy image's own).
    shift = 20 * math.log10(peak / choice.data_range)
    return {"kept": choice.method, "best": best, "given_up_db": truth[best] - truth[choice.method],
            "true": truth, "estimate": {r.method: r.psnr + shift for r in choice.ranking},
            "estimator": {r.method: r.estimator for r in choice.ranking},
            "skipped": {s.method: s.reason for s in choice.skipped},
            "seconds": time.perf_counter() - started}


def _auto_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    given_up = [r["given_up_db"] for r in rows]
    methods = list(dict.fromkeys(m for r in rows for m in r["true"]))
    always = {m: float(np.mean([max(r["true"].values()) - r["true"][m] for r in rows]))
              for m in methods if all(m in r["true"] for r in rows)}
    return {
        "cases": len(rows),
        "picked_best": float(np.mean([r["kept"] == r["best"] for r in rows])),
        "mean_given_up_db": float(np.mean(given_up)),
        "median_given_up_db": float(np.median(given_up)),
        "max_given_up_db": float(np.max(given_up)),
        "kept": dict(Counter(r["kept"] for r in rows)),
        "best": dict(Counter(r["best"] for r in rows)),
        "always_given_up_db": always,
        "mean_seconds": float(np.mean([r["seconds"] for r in rows])),
        "rows": rows,
    }


#: Edge of the larger simulated images (part ``simulated_large``): how the estimates sharpen
#: with the image's size.
LARGE = (512, 512)


def large_estimates(context: Any) -> dict[str, Any]:
    """The simulated estimates again on 512² scenes (as many spots per area), at the
    profile's ``qc_large_photon_levels``."""
    return simulated_estimates(context, LARGE, context.profile.qc_large_photon_levels)


PARTS = {"planted": planted_defects, "simulated": simulated_estimates, "fmd": fmd_estimates,
         "page": report_page, "auto": auto_choice, "good_outputs": good_outputs,
         "simulated_large": large_estimates}


def run(context: Any) -> dict[str, Any]:
    from benchmarks.datasets import DatasetMissing

    result = dict(context.previous)
    result["budget"] = {"trained_steps": context.profile.qc_steps,
                        "images_per_level": context.profile.qc_images,
                        "defect_seeds": context.profile.qc_defect_seeds}
    for part in context.profile.qc_parts:
        if part in result:
            continue
        context.log(f"{part} ...")
        try:
            if part == "auto":
                # resumable image by image: the rows measured so far are kept until it is done
                done = result.setdefault("auto_rows", {})
                result[part] = auto_choice(context, done, lambda: context.save(result))
                del result["auto_rows"]
            else:
                result[part] = PARTS[part](context)
        except DatasetMissing as missing:
            context.log(f"skipped: {missing}")
            result[part] = {"skipped": str(missing)}
        context.save(result)
    return result
