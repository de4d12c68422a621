"""Write docs/benchmarks.md (and its figures) from one results file.

Everything in the report is computed from the JSON written by :mod:`benchmarks.runner`: the
tables, the plots, the side-by-side ratios and the plain statements of where infocus loses
(to a classical method, to a peer, to a paper). The prose around them states protocols; it
does not carry numbers of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.published import PUBLISHED
from benchmarks.runner import RESULTS

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
LEARNED_ORDER = ("care", "care-split", "n2n", "n2v2", "n2v", "n2s")
LEARNED_NAMES = {"care": "CARE", "care-split": "CARE (same sample)", "n2n": "Noise2Noise",
                 "n2v": "N2V", "n2v2": "N2V2",
                 "n2s": "Noise2Self", "structn2v": "structN2V", "pn2v": "PN2V",
                 "divnoising": "DivNoising"}
PROBABILISTIC = ("pn2v", "divnoising")


#: Causes of FMD shortfalls, established by the experiments the report shows (the per-
#: configuration table, the correlated-noise notes, the held-out halves).
FMD_CAUSES = {
    "care": "CARE (main table) is scored on microscopes it was never trained on: its mapping "
            "carries the training configurations' noise levels and intensities (calibration "
            "removes much of the intensity part). The held-out halves table compares it with "
            "the same data as the others.",
    "care-split": "CARE (same sample) trains one model on all twelve configurations at once, "
                  "with the budget one per-configuration self-supervised model gets, and never "
                  "sees the scored pixels; the self-supervised methods train on the captures "
                  "they are scored on.",
    "n2v2": "N2V2's blur-pool U-Net without its top skip connection learns fine detail more "
            "slowly than the plain U-Net at the shipped budget.",
    "n2v": "On the widefield configurations the camera noise is spatially correlated, so N2V "
           "hides a 5×5 block around each blind spot and predicts from pixels further away; "
           "a blind-spot network also never sees the pixel it predicts, and four 512² captures "
           "with minutes of CPU training are little data.",
    "n2s": "Noise2Self keeps a one-pixel blind spot (it warns about correlated noise instead of "
           "widening it), so on the widefield configurations the network learns to reproduce "
           "the noise from its correlated neighbours.",
}


def newest_results(folder: Path = RESULTS) -> Path:
    """The newest ``<date>-full.json``, else the newest ``<date>-<profile>.json``."""
    candidates = sorted(p for p in folder.glob("????-??-??-*.json")
                        if p.stem.split("-", 3)[-1] in ("full", "quick", "tiny"))
    full = [p for p in candidates if p.stem.endswith("-full")]
    if full:
        return full[-1]
    if not candidates:
        raise SystemExit(f"No results in {folder}; run `python -m benchmarks run` first.")
    return candidates[-1]


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fmd_scales(rows: list[dict[str, Any]]) -> str:
    """The captures' fitted brightness against FMD's ground truth, in words."""
    by_config: dict[str, set[float]] = defaultdict(set)
    for row in rows:
        scale = (row.get("truth_correction") or {}).get("scale")
        if scale is not None:
            by_config[row["config"]].add(round(scale, 4))
    if not by_config:
        return "not measured"
    every = [scale for values in by_config.values() for scale in values]
    steady = sorted(c for c, values in by_config.items() if all(abs(v - 1) <= 0.02
                                                                 for v in values))
    return (f"fitted scale {min(every):.2f}–{max(every):.2f}; within 2 % for every capture "
            f"only in {', '.join(steady) or 'none'}")


def _interval_half_width(rows: list[dict[str, Any]]) -> str:
    """Median half-width in dB of the rows' 95 % intervals (an interval reaching an MSE of 0
    is infinitely wide on the dB scale)."""
    widths = [(r["sure"]["high"] - r["sure"]["low"]) / 2 for r in rows
              if r.get("sure") and r["sure"].get("high") is not None
              and r["sure"].get("low") is not None]
    if not widths:
        return "–"
    middle = float(np.median(widths))
    return "∞" if np.isinf(middle) else _f(middle)


def _f(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}{suffix}"


def _beats_both(count: str, seg: dict[str, Any]) -> str:
    """Whether DenoiSeg's AP beats both baselines' at ``count`` labelled images."""
    joint, alone, n2v = seg[count]["denoiseg"], seg[count]["segmentation_only"], seg.get(
        "n2v_watershed")
    ok = joint > alone and (n2v is None or joint > n2v)
    images = "image" if count == "1" else "images"
    return (f"- {'✓' if ok else '✗ **does not hold:**'} with {count} labelled {images} "
            f"DenoiSeg ({joint:.3f}) beats segmentation only ({alone:.3f}) and N2V + "
            f"watershed ({_f(n2v, 3)})")


def _repeats(suite: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    """The parts ``prefix1``, ``prefix2``, ... of a suite (repeats on other scenes), in order."""
    names = sorted((k for k in suite if k.startswith(prefix) and k[len(prefix):].isdigit()),
                   key=lambda k: int(k[len(prefix):]))
    return {name: _get(suite, name) or {} for name in names}


def _unmeasured_counts(seg: dict[str, Any], profile_name: str) -> list[str]:
    """The label counts of a DenoiSeg curve that hold no result yet: of the ``counts`` the part
    recorded (else the profile's curve), and of the ``unmeasured_counts`` an earlier run of the
    part listed."""
    from benchmarks.suites.joint import denoiseg_counts

    planned = [*(seg.get("counts") or map(str, denoiseg_counts(profile_name))),
               *(seg.get("unmeasured_counts") or [])]
    return sorted({k for k in planned if k not in seg}, key=int)


def _table(header: Iterable[str], rows: Iterable[Iterable[str]], align: str = "") -> list[str]:
    header = list(header)
    spec = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in spec]
    return (["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
            + ["| " + " | ".join(row) + " |" for row in rows] + [""])


def _pattern_name(pattern: list | None) -> str:
    if not pattern:
        return "1 pixel"
    reach_y = max(abs(o[0]) for o in pattern)
    reach_x = max(abs(o[1]) for o in pattern)
    return f"{2 * reach_y + 1}×{2 * reach_x + 1}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 60:.1f} min" if value >= 120 else f"{value:.0f} s"


#: Planted-defect kinds of the qc suite (the others in its table are good outputs).
DEFECT_KINDS = ("added", "erased", "scaled")


class Report:
    """Builds the markdown and the figures for one results file."""

    def __init__(self, results: dict[str, Any], results_path: Path, docs: Path) -> None:
        self.data = results
        self.path = results_path
        self.docs = docs
        self.images = docs.parent / "images"
        self.suites = {name: entry.get("result", {})
                       for name, entry in results.get("suites", {}).items()}
        _add_means(self.suites)
        self.lines: list[str] = []
        self.figures: list[Path] = []

    # ------------------------------------------------------------------------- helpers
    def suite_cpu(self, name: str) -> str | None:
        """The CPU the suite's last run measured on."""
        entry = self.data.get("suites", {}).get(name) or {}
        return entry.get("cpu") or _get(self.data, "machine", "cpu")

    def suite(self, name: str) -> dict[str, Any]:
        return self.suites.get(name) or {}

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def figure(self, name: str, draw: Callable[[Any], None], size: tuple[float, float],
               alt: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self.images.mkdir(parents=True, exist_ok=True)
        fig = plt.figure(figsize=size, layout="constrained")
        draw(fig)
        path = self.images / f"bench-{name}.png"
        _atomic_figure(fig, path)
        plt.close(fig)
        self.figures.append(path)
        self.add(f"![{alt}](images/{path.name})", "")

    # ------------------------------------------------------------------------- sections
    def header(self) -> None:
        machine = self.data.get("machine", {})
        profile = self.data.get("profile", {})
        versions = machine.get("versions", {})
        relative = os.path.relpath(self.path, self.docs.parent)
        self.add(
            "# Benchmarks", "",
            "<!-- Generated by `python -m benchmarks report`; edit benchmarks/report.py, "
            "not this file. -->", "",
            f"Measured on **{self.data.get('date', '?')}** with the **{profile.get('name', '?')}"
            f"** profile (`make bench` runs `quick`, `make bench-full` runs `full`); every number "
            f"below comes from [`{Path(relative).name}`]({relative}), which also holds the "
            "per-image values, seeds, budgets and training logs.", "",
            f"**Machine:** {machine.get('cpu', '?')}, {machine.get('cpu_count', '?')} CPU cores "
            f"({machine.get('torch_threads', '?')} PyTorch threads), "
            f"{machine.get('memory_gib', '?')} GiB, GPU: {machine.get('gpu') or 'none'}; "
            f"Python {machine.get('python', '?')}, infocus {versions.get('infocus', '?')}, "
            f"PyTorch {versions.get('torch', '?')}, NumPy {versions.get('numpy', '?')}.", "",
        )
        rows = []
        for name, entry in self.data.get("suites", {}).items():
            load = entry.get("load_average_start")
            rows.append([name, "yes" if entry.get("complete") else "**partial**",
                         _seconds(entry.get("wall_seconds")), _f(load, 1),
                         entry.get("updated", "–"), entry.get("cpu") or machine.get("cpu", "?")])
        self.add("Wall time per suite (the load average at its start shows whether other work "
                 "shared the cores; timings are upper bounds when it exceeds the core count) "
                 "and the CPU its last run measured on (a resumed file can gather suites from "
                 "different machines of the same size; a section re-measured in part says "
                 "which part):", "")
        self.add(*_table(["suite", "complete", "wall time", "load at start", "finished", "CPU"],
                         rows, "llrrll"))
        self.add("How the training defaults were chosen (PSNR against optimizer steps, mask "
                 "density, network width) is in [choosing-defaults.md](choosing-defaults.md).", "")

    def fmd(self) -> None:
        classical = _get(self.suite("classical"), "fmd") or {}
        learned = _get(self.suite("learned"), "fmd") or {}
        if not classical and not learned:
            return
        self.add("## FMD test_mix: real confocal, two-photon and widefield data", "",
                 "Raw 8-bit single captures against the average of 50 captures (12 microscope "
                 "configurations × 4 captures of one field of view). Predictions are clamped to "
                 "[0, 255]; PSNR and SSIM with peak 255, as in the FMD benchmark code. Classical "
                 "methods use their automatic parameters (noise model estimated from each raw "
                 "image). N2V, N2V2 and Noise2Self train one model per configuration on its four "
                 "noisy captures (the one-stack use of `infocus denoise -m n2v`); Noise2Noise "
                 "trains per configuration on pairs of captures (k → k+1); CARE is trained on "
                 "half of the configurations and scored on the other half (two folds), so it "
                 "never sees the field of view it is scored on; *CARE (same sample)* trains on "
                 "the top halves of all 48 captures and is scored on the bottom halves, and the "
                 "other way round (the usual CARE setting: pairs from the same microscope). The "
                 "best Gaussian filter picks "
                 "its σ per image with the ground truth, an oracle no user has."
                 + (" Classical rows: " + note + "."
                    if (note := _get(self.suite("classical"), "fmd_rerun_note")) else ""), "")
        rows = []
        for method, entry in classical.items():
            if not isinstance(entry, dict) or "psnr" not in entry:
                continue
            label = {"bm3d": "bm3d (VST)"}.get(method, method)
            rows.append((entry["psnr"], [label, _f(entry["psnr"]), _f(entry.get("ssim"), 4),
                                         _f(entry.get("seconds_per_megapixel"), 1), "–"]))
        for method in LEARNED_ORDER:
            entry = learned.get(method)
            if not isinstance(entry, dict) or "psnr" not in entry:
                continue
            rows.append((entry["psnr"], [f"**{LEARNED_NAMES[method]}**", _f(entry["psnr"]),
                                         _f(entry.get("ssim"), 4),
                                         _f(entry.get("predict_seconds_per_megapixel"), 1),
                                         _seconds(entry.get("train_seconds"))]))
        rows.sort(key=lambda r: -r[0])
        images = _get(classical, "noisy input", "n_images")
        self.add(f"Mean over {images or '?'} images (learned methods in bold; training time is "
                 "the sum over the models trained):", "")
        self.add(*_table(["method", "PSNR (dB)", "SSIM", "s / MP", "training"],
                         [r for _, r in rows]))
        self.fmd_per_configuration(classical, learned)
        self.calibration_effect(learned, "on FMD")
        self.fmd_checks(classical, learned)
        self.fmd_halves()
        self.fmd_figure()

    def calibration_effect(self, learned: dict, where: str) -> None:
        """What intensity calibration (default for CARE) changed, from the same models."""
        parts = []
        for method in ("care", "care-split"):
            entry = learned.get(method)
            if isinstance(entry, dict) and entry.get("psnr_uncalibrated") is not None:
                parts.append(f"{LEARNED_NAMES[method]} {entry['psnr_uncalibrated']:.2f} → "
                             f"{entry['psnr']:.2f} dB")
        if parts:
            self.add(f"Intensity calibration (`infocus.intensity.calibration`, on by default for "
                     f"CARE: one gain and offset per image so that the prediction's large-scale "
                     f"intensities match the measurement's) {where}, same models without → with: "
                     f"{'; '.join(parts)}.", "")

    def fmd_halves(self) -> None:
        halves = _get(self.suite("learned"), "fmd-halves") or {}
        methods = [m for m in ("care", "n2n", "n2v") if isinstance(halves.get(m), dict)
                   and halves[m].get("per_configuration_psnr")]
        if not methods:
            return
        configs = sorted({c for m in methods for c in halves[m]["per_configuration_psnr"]})
        rows = []
        for config in [*configs, None]:
            values = [halves[m]["psnr"] if config is None
                      else halves[m]["per_configuration_psnr"].get(config) for m in methods]
            best = max(v for v in values if v is not None)
            rows.append(["**mean**" if config is None else config,
                         *[f"**{_f(v)}**" if v == best else _f(v) for v in values]])
        self.add("### The same data for every method: held-out halves", "",
                 "In the table above N2V, N2V2, Noise2Self and Noise2Noise train on the very "
                 "captures they are scored on (their normal use: a microscopist denoises the "
                 "stack they have), while CARE never sees the scored field of view. Here each "
                 "method trains one model per configuration on the top halves of its four "
                 "captures (CARE with the 50-frame average as target, Noise2Noise on pairs of "
                 "captures) and is scored on the bottom halves, which none of them saw; same "
                 "steps for all.", "")
        self.add(*_table(["configuration", *[LEARNED_NAMES[m] for m in methods]], rows))
        if "care" in methods and "n2n" in methods:
            gap = halves["care"]["psnr"] - halves["n2n"]["psnr"]
            main = [_get(self.suite("learned"), "fmd", m, "psnr") for m in ("care", "n2n")]
            self.add(f"With the same data CARE is {abs(gap):.2f} dB "
                     f"{'above' if gap > 0 else 'below'} Noise2Noise"
                     + (f" (on the main table it was {main[0]:.2f} against {main[1]:.2f} dB)."
                        if None not in main else "."), "")

    def fmd_per_configuration(self, classical: dict, learned: dict) -> None:
        columns = [("noisy", _get(classical, "noisy input", "per_configuration_psnr")),
                   ("best Gaussian", _get(classical, "best Gaussian (oracle σ)",
                                          "per_configuration_psnr")),
                   ("BM3D-VST", _get(classical, "bm3d", "per_configuration_psnr"))]
        columns += [(LEARNED_NAMES[m], _get(learned, m, "per_configuration_psnr"))
                    for m in LEARNED_ORDER]
        columns = [(n, c) for n, c in columns if c]
        if len(columns) < 2:
            return
        configs = sorted({k for _, c in columns for k in c})
        blind: dict[str, str] = {}
        for method in ("n2v", "n2v2"):
            for config, run in (_get(learned, method, "runs") or {}).items():
                if run.get("blind_spot"):
                    said = [m for m in run.get("log", []) if m.startswith("Measured")]
                    blind.setdefault(config, said[0] if said else "")
        rows = []
        for config in configs:
            values = [c.get(config) for _, c in columns]
            best = max((v for v in values[1:] if v is not None), default=None)
            cells = [f"**{_f(v)}**" if v is not None and v == best else _f(v) for v in values]
            label = config + (" †" if config in blind else "")
            rows.append([label, *cells])
        self.add("Per configuration (PSNR, dB; best in bold):", "")
        self.add(*_table(["configuration", *[n for n, _ in columns]], rows))
        if blind:
            self.add("† N2V/N2V2 measured spatially correlated noise in these configurations "
                     "(`infocus.noise.estimate_noise_correlation`) and widened the blind spot; "
                     "a one-pixel blind spot cannot remove such noise, since the network "
                     "predicts it from the neighbours. What the training said:", "",
                     *[f"- {config}: {line}" for config, line in sorted(blind.items())], "")

    def fmd_checks(self, classical: dict, learned: dict) -> None:
        psnr = {m: _get(learned, m, "psnr") for m in LEARNED_ORDER}
        bm3d = _get(classical, "bm3d", "psnr")
        gaussian = _get(classical, "best Gaussian (oracle σ)", "psnr")
        checks = []

        def check(text: str, ok: bool | None) -> None:
            if ok is not None:
                checks.append(f"- {'✓' if ok else '✗ **does not hold:**'} {text}")

        def above(a: str, b: str, strict: bool) -> bool | None:
            if psnr.get(a) is None or psnr.get(b) is None:
                return None
            return psnr[a] > psnr[b] if strict else psnr[a] >= psnr[b] - 0.05

        check("CARE (trained on the other configurations) > Noise2Noise",
              above("care", "n2n", True))
        check("CARE trained on the same configurations (other half of each view) > Noise2Noise",
              above("care-split", "n2n", True))
        check("Noise2Noise ≥ N2V2", above("n2n", "n2v2", False))
        check("N2V2 ≥ N2V", above("n2v2", "n2v", False))
        for method in LEARNED_ORDER:
            if psnr.get(method) is not None and gaussian is not None:
                check(f"{LEARNED_NAMES[method]} ({psnr[method]:.2f}) beats the best Gaussian "
                      f"filter ({gaussian:.2f})", psnr[method] > gaussian)
        if psnr.get("n2v") is not None and bm3d is not None:
            check(f"N2V ({psnr['n2v']:.2f}) within 1 dB of BM3D-VST ({bm3d:.2f}) or better",
                  psnr["n2v"] >= bm3d - 1.0)
        losses = [f"{LEARNED_NAMES[m]} by {bm3d - psnr[m]:.2f} dB" for m in LEARNED_ORDER
                  if psnr.get(m) is not None and bm3d is not None and psnr[m] < bm3d]
        if checks:
            self.add("What the issue expects on FMD, checked against the numbers above:", "",
                     *checks, "")
        if losses:
            self.add(f"**Where we lose:** BM3D-VST beats {', '.join(losses)} on the mean"
                     + self._trailing(learned, _get(classical, "bm3d", "per_configuration_psnr"))
                     + ".", "")
        under_oracle = [f"{LEARNED_NAMES[m]} ({psnr[m]:.2f})" for m in LEARNED_ORDER
                        if psnr.get(m) is not None and gaussian is not None
                        and psnr[m] < gaussian]
        if under_oracle:
            self.add(f"**Where we lose:** the Gaussian filter with its σ chosen per image from "
                     f"the ground truth ({gaussian:.2f} dB; no user can choose σ that way) beats "
                     f"{', '.join(under_oracle)}"
                     + self._trailing(learned, _get(classical, "best Gaussian (oracle σ)",
                                                    "per_configuration_psnr")) + ".", "")
        causes = [FMD_CAUSES[m] for m in LEARNED_ORDER
                  if m in FMD_CAUSES and psnr.get(m) is not None
                  and ((bm3d is not None and psnr[m] < bm3d)
                       or (gaussian is not None and psnr[m] < gaussian))]
        if causes:
            self.add("Why:", "", *[f"- {c}" for c in causes], "")

    @staticmethod
    def _trailing(learned: dict, reference: dict | None) -> str:
        """'; per configuration, X trails it on a of b configurations (…)' or ''."""
        detail = []
        for method in LEARNED_ORDER:
            theirs = _get(learned, method, "per_configuration_psnr") or {}
            behind = sorted(c for c in theirs if reference and c in reference
                            and theirs[c] < reference[c])
            if theirs and behind:
                detail.append(f"{LEARNED_NAMES[method]} trails it on {len(behind)} of "
                              f"{len(theirs)} configurations ({', '.join(behind)})")
        return f"; per configuration, {'; '.join(detail)}" if detail else ""

    def fmd_figure(self) -> None:
        crops = self.path.with_suffix("") / "fmd_crops.npz"
        if not crops.exists():
            return
        panels = dict(np.load(crops))
        name_file = crops.with_name("fmd_crops.txt")
        name = name_file.read_text().strip() if name_file.exists() else "FMD"
        order = ["noisy", "bm3d (VST)", *LEARNED_ORDER, "clean"]
        shown = [(k, panels[k]) for k in order if k in panels]
        if len(shown) < 3:
            return
        low, high = np.percentile(panels["clean"], [0.5, 99.8])

        def draw(fig: Any) -> None:
            axes = fig.subplots(1, len(shown))
            for ax, (key, image) in zip(np.atleast_1d(axes), shown, strict=True):
                ax.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
                ax.set_title(LEARNED_NAMES.get(key, key), fontsize=9)
                ax.axis("off")

        self.add(f"Before and after on `{name}` (central 160² crop, grey scale of the clean "
                 "image, so the noisy input saturates; the line across *CARE (same sample)* is "
                 "where its two models meet — each half is predicted by the model trained on the "
                 "other — not a tiling seam):", "")
        self.figure("fmd-crops", draw, (2.0 * len(shown), 2.3),
                    f"FMD {name}: noisy, denoised and ground truth")

    def simulated(self) -> None:
        classical = _get(self.suite("classical"), "simulated", "levels") or {}
        learned = _get(self.suite("learned"), "simulated") or {}
        if not classical and not learned:
            return
        levels = sorted(set(classical) | {level for m in learned.values() if isinstance(m, dict)
                                          for level in (m.get("levels") or {})}, key=float)
        self.add("## Simulated Poisson–Gaussian noise on real fluorescence images", "",
                 "Clean signal: `human_mitosis` (CC0) and the stardist DSB2018 nuclei image; "
                 "camera x = 2·Poisson(s) + 100 + N(0, 3²) with the image's maximum at the given "
                 "expected photon count; PSNR with the clean image's range (Laine et al. 2021, "
                 "Box 1), mean of the two images. Self-supervised methods train on the two noisy "
                 "images, Noise2Noise on a second independent noisy copy, CARE on the *other* "
                 "image (it is scored on content it never saw), *CARE (same sample)* on the other "
                 "half of both images (top ↔ bottom).", "")
        rows = []
        methods = sorted({m for level in classical.values() for m in level})
        for method in methods:
            values = [_get(classical, level, method, "psnr") for level in levels]
            label = {"bm3d": "bm3d (VST)"}.get(method, method)
            rows.append([label, *[_f(v) for v in values]])
        for method in LEARNED_ORDER:
            entry = learned.get(method)
            if not isinstance(entry, dict):
                continue
            values = [_get(entry, "levels", level, "psnr") for level in levels]
            rows.append([f"**{LEARNED_NAMES[method]}**", *[_f(v) for v in values]])
        self.add(*_table(["method", *[f"{float(level):g} photons" for level in levels]], rows))
        parts = []
        for method in ("care", "care-split"):
            for level in levels:
                entry = _get(learned, method, "levels", level) or {}
                if entry.get("psnr_uncalibrated") is not None:
                    parts.append(f"{LEARNED_NAMES[method]} at {float(level):g} photons "
                                 f"{entry['psnr_uncalibrated']:.2f} → {entry['psnr']:.2f}")
        if parts:
            self.add("Intensity calibration (on by default for CARE), same models without → "
                     f"with (dB): {'; '.join(parts)}.", "")

    def bsd68(self) -> None:
        classical = _get(self.suite("classical"), "bsd68") or {}
        learned = _get(self.suite("learned"), "bsd68") or {}
        if not classical and not learned:
            return
        self.add("## BSD68, Gaussian σ = 25 (the DnCNN / Noise2Void protocol)", "",
                 "Clean + N(0, 25²), not clipped or rounded, seed 0; σ given to the classical "
                 "methods; PSNR with peak 255. N2V and N2V2 train on the 68 noisy test images "
                 "themselves with the shipped budget (the published runs train far longer on the "
                 "400 BSD training images; see *Published numbers*).", "")
        rows = []
        for method, entry in classical.items():
            if isinstance(entry, dict) and "psnr" in entry:
                rows.append([method, _f(entry["psnr"]), _f(entry.get("ssim"), 4),
                             _f(entry.get("seconds_per_megapixel"), 1)])
        for method in LEARNED_ORDER:
            entry = learned.get(method)
            if isinstance(entry, dict) and "psnr" in entry:
                rows.append([f"**{LEARNED_NAMES[method]}**", _f(entry["psnr"]),
                             _f(entry.get("ssim"), 4), _seconds(entry.get("train_seconds"))
                             + " training"])
        self.add(*_table(["method", "PSNR (dB)", "SSIM", "s / MP"], rows))

    def w2s(self) -> None:
        classical = _get(self.suite("classical"), "w2s") or {}
        learned = _get(self.suite("learned"), "w2s") or {}
        if not classical and not learned:
            return
        self.add("## W2S (real widefield, 400-frame averages as ground truth)", "",
                 "The 8-bit copy stretched every file to 0–255 separately, so raw and ground "
                 "truth do not share a scale: scores are the scale-invariant PSNR (prediction "
                 "fitted affinely to the ground truth first). N2V trains one model per channel "
                 "on that channel's noisy images.", "")
        rows = []
        for method, entry in classical.items():
            if isinstance(entry, dict) and "si_psnr" in entry:
                rows.append([method, _f(entry["si_psnr"]),
                             _f(entry.get("seconds_per_megapixel"), 1)])
        for method in LEARNED_ORDER:
            entry = learned.get(method)
            if isinstance(entry, dict) and "si_psnr" in entry:
                rows.append([f"**{LEARNED_NAMES[method]}**", _f(entry["si_psnr"]),
                             _seconds(entry.get("train_seconds")) + " training"])
        self.add(*_table(["method", "SI-PSNR (dB)", "s / MP"], rows))

    def convallaria(self) -> None:
        learned = _get(self.suite("learned"), "convallaria") or {}
        methods = [m for m in LEARNED_ORDER if isinstance(learned.get(m), dict)]
        if not methods:
            return
        self.add("## Convallaria (real EMCCD frame, no ground truth)", "",
                 "One 1024×1024 raw frame of the PN2V Convallaria stack; each method trains on "
                 "the frame itself with the shipped defaults. Without ground truth the measures "
                 "are speed and the ground-truth-free validation loss (masked loss on held-out "
                 "noisy pixels, in normalised units; comparable between N2V and N2V2, not with "
                 "Noise2Self's differently masked loss).", "")
        rows = []
        for method in methods:
            entry = learned[method]
            rows.append([LEARNED_NAMES[method], _seconds(entry.get("train_seconds")),
                         _f(entry.get("train_steps_per_second")),
                         _f(entry.get("predict_megapixels_per_second")),
                         _f(entry.get("final_validation_loss"), 4),
                         _pattern_name(entry.get("blind_spot")) if method in ("n2v", "n2v2")
                         else "1 pixel" if method == "n2s"
                         else "–"])
        self.add(*_table(["method", "training", "steps/s", "predict MP/s", "validation loss",
                          "blind spot"], rows))
        crops = self.path.with_suffix("") / "convallaria.npz"
        if crops.exists():
            panels = dict(np.load(crops))
            order = [("raw", "raw EMCCD frame")] + [(m, LEARNED_NAMES[m]) for m in methods]
            shown = [(title, panels[key]) for key, title in order if key in panels]
            low, high = np.percentile(panels["raw"], [1, 99.7])

            def draw(fig: Any) -> None:
                axes = fig.subplots(1, len(shown))
                for ax, (title, image) in zip(np.atleast_1d(axes), shown, strict=True):
                    ax.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
                    ax.set_title(title, fontsize=10)
                    ax.axis("off")

            self.add("Before and after (256² crop, same grey scale):", "")
            self.figure("convallaria", draw, (3.2 * len(shown), 3.5),
                        "Convallaria raw frame and denoised crops")
        widened = [m for m in ("n2v", "n2v2") if isinstance(learned.get(m), dict)
                   and learned[m].get("blind_spot")]
        if widened:
            said = [line for line in learned[widened[0]].get("log", [])
                    if line.startswith("Measured")]
            self.add(f"**Where we lose:** {' and '.join(LEARNED_NAMES[m] for m in widened)} "
                     "widened the blind spot here (" + (said[0].rstrip(".") if said else
                     "measured correlated noise") + "). The frame is densely structured and the "
                     "correlation estimator, which measures on a central 256² crop, reads part "
                     "of that structure as noise correlation; the widened blind spot leaves a "
                     "checkerboard texture in the crops above, which the one-pixel Noise2Self "
                     "does not show. `--blind-spot pixel` is the workaround until the estimator "
                     "measures on larger areas and corrects for structure.", "")

    # ------------------------------------------------------------------------- precision
    def precision(self) -> None:
        suite = self.suite("precision")
        parts = {name: suite.get(name) or {} for name in ("fmd", "simulated", "bsd68", "w2s")}
        rows = [(name, key, row) for name, part in parts.items()
                for key, row in (part.get("rows") or {}).items()
                if isinstance(row, dict) and "difference" in row]
        if not rows:
            return
        native = suite.get("native_bfloat16")
        cpu = suite.get("cpu") or _get(self.data, "machine", "cpu") or "this CPU"
        self.add("## Training in bfloat16 against float32", "",
                 "`precision=\"auto\"` (the default of `infocus train`, `--precision`) trains "
                 "the network in bfloat16 mixed precision where the hardware computes it "
                 "natively (a CPU with AMX tiles, a CUDA GPU) and in float32 elsewhere; weights, "
                 "optimizer and loss stay float32, and prediction is float32. Each row trains "
                 "the same method on the same data with the same seed and steps twice, back to "
                 "back, and both models predict the same images. FMD: four test_mix captures "
                 "of one configuration, clamped, peak 255; simulated: the two fluorescence "
                 "images at 20 photons (CARE trained on their top halves, scored on the bottom "
                 f"halves); BSD68: σ = 25, peak 255, central {parts['bsd68'].get('crop', '–')}² "
                 f"crops; W2S: scale-invariant PSNR, {parts['w2s'].get('images', '–')} images. "
                 "Convallaria has no ground truth and is left out. "
                 f"Measured on {cpu}, which "
                 f"{'has' if native else 'has no'} bfloat16 units (AMX).", "")
        from benchmarks.suites.precision import EXTRA_SEEDS, TOLERANCE_DB

        self.add(f"A row whose seed-0 difference exceeds the tolerance ({TOLERANCE_DB} dB) is "
                 f"trained with seeds {', '.join(map(str, EXTRA_SEEDS))} too, in both "
                 "precisions: its figures are then means over the three seeds (each seed's in "
                 "the last column), since one training seed can differ from another by more "
                 "than the tolerance. Training seconds and the speed-up are seed 0's.", "")
        body = []
        for name, key, row in rows:
            low, full = row["bfloat16"], row["float32"]
            means = row.get("mean") or {"float32": full["score"], "bfloat16": low["score"]}
            label = {"fmd": f"FMD {key}", "simulated": f"simulated, {key}",
                     "bsd68": "BSD68", "w2s": "W2S"}[name]
            seeds = row.get("seeds") or {}
            each = "; ".join(f"{seed}: {v['float32']:.2f} / {v['bfloat16']:.2f}"
                             for seed, v in seeds.items()) if len(seeds) > 1 else "0"
            body.append([label, row["method"], str(row["steps"]), _f(means["float32"]),
                         _f(means["bfloat16"]), f"{row['difference']:+.3f}",
                         _seconds(full["train_seconds"]), _seconds(low["train_seconds"]),
                         f"{row['speed_ratio']:.2f}×",
                         f"{full['load_average']:.1f} / {low['load_average']:.1f}", each])
        self.add(*_table(["data", "method", "steps", "float32 (dB)", "bfloat16 (dB)",
                          "Δ (dB)", "float32 train", "bfloat16 train", "speed-up",
                          "load at start", "seeds (float32 / bfloat16)"], body))
        ratios = [row["speed_ratio"] for _, _, row in rows]
        loads = [row[p]["load_average"] for _, _, row in rows for p in ("float32", "bfloat16")]
        cores = _get(self.data, "machine", "cpu_count") or 2
        verdicts = []
        for name, key, row in rows:
            if row["difference"] >= -TOLERANCE_DB:
                continue
            label = {"fmd": f"FMD {key}", "simulated": f"simulated {key}"}.get(name, name)
            error = _difference_error(row)
            if error is not None and abs(row["difference"]) < 2 * error:
                verdicts.append(f"{label} {row['difference']:+.2f} dB, within two standard "
                                f"errors of its seeds (±{2 * error:.2f} dB): there the seeds "
                                "differ far more than the precisions, and this data cannot "
                                "resolve the tolerance")
            else:
                verdicts.append(f"{label} {row['difference']:+.2f} dB, **outside** the "
                                "tolerance")
        self.add((f"Within the stated tolerance of {TOLERANCE_DB} dB on every row except "
                  + "; ".join(verdicts) + "." if verdicts else
                  f"Every row is within the stated tolerance of {TOLERANCE_DB} dB.")
                 + f" Training speed-up {min(ratios):.2f}–{max(ratios):.2f}× (median "
                 f"{np.median(ratios):.2f}×)"
                 + (f"; these runs shared the {cores} cores with other jobs (loads at start "
                    f"up to {max(loads):.1f}), so the speed-ups are not a measure: the "
                    "CAREamics section times both precisions on an idle machine."
                    if loads and max(loads) >= cores else "."), "")

    def peers(self) -> None:
        peers = self.suite("peers")
        if not peers:
            return
        self.add("## Side by side with CAREamics", "")
        if "skipped" in peers:
            self.add(f"Not measured in this run: {peers['skipped']}.", "")
            return
        from benchmarks.peers.compare import markdown

        p = peers.get("protocol", {})
        self.add("Same run, same machine, same data (eight 256² crops of the two fluorescence "
                 "images at 30 peak photons), same network size (U-Net depth 2, 32 filters on "
                 f"both sides), same budget ({p.get('steps')} optimizer steps of "
                 f"{p.get('batch_size')} patches of {p.get('patch_size')}²), exact step counts "
                 "verified on both sides. Each tool keeps its own normalisation, masking, "
                 "learning-rate schedule, augmentation and prediction path (infocus's "
                 "defaults: for these 0.5 MP inputs PyTorch, pixel fusion for N2V/N2V2 with "
                 "the training images' noise model wherever it agrees with an image's noise, "
                 "intensity calibration for CARE; the JSON records what ran). Peak memory is "
                 "the whole process's maximum resident set (`/usr/bin/time -v`).", "",
                 markdown(peers), "")
        timing = []
        for method, entry in (peers.get("methods") or {}).items():
            ours = entry.get("infocus") or {}
            if ours.get("predict_seconds_each"):
                timing.append(f"{method}: {len(ours['predict_seconds_each'])} calls")
        precisions = sorted({(entry.get("infocus") or {}).get("training_precision") or "float32"
                             for entry in (peers.get("methods") or {}).values()})
        if timing:
            self.add("Prediction seconds are the median of several calls on the same input by "
                     f"each tool ({', '.join(timing)}; the first call of each tool, which also "
                     "builds its prediction set-up, is in the JSON). infocus trained in "
                     f"{' and '.join(precisions)} (its `precision=\"auto\"` default on this "
                     "CPU); CAREamics in float32, its default.", "")
        goal = []
        for method, entry in (peers.get("methods") or {}).items():
            q = entry.get("ratios", {})
            for key, what in (("predict_megapixels_per_second", "prediction"),
                              ("train_steps_per_second", "training")):
                if q.get(key) is not None:
                    reached = "reached" if q[key] >= 2 else "not reached"
                    goal.append(f"{method} {what} {q[key]:.2f}× ({reached})")
        if goal:
            self.add("**Against the goal of twice CAREamics' speed** (prediction MP/s and "
                     "training steps/s, this run): " + ", ".join(goal) + ".", "")
        full = peers.get("infocus_float32") or {}
        if full:
            self.add("Without bfloat16 (infocus trained with `--precision float32`, as it does "
                     "on a CPU without AMX; infocus alone, run on the same idle machine minutes "
                     "after the runs above, against their CAREamics figures): training steps/s "
                     + ", ".join(f"{m} {r['train_steps_per_second_ratio']:.2f}×"
                                 for m, r in full.items())
                     + " CAREamics', ΔPSNR "
                     + ", ".join(f"{m} {r['psnr_difference_db']:+.2f} dB"
                                 for m, r in full.items())
                     + (". Twice CAREamics' training speed holds in float32 too."
                        if all(r["train_steps_per_second_ratio"] >= 2 for r in full.values())
                        else ". In float32 the training falls short of twice CAREamics' "
                        "speed; the bfloat16 units make the difference."), "")
        losses = []
        for method, entry in (peers.get("methods") or {}).items():
            q = entry.get("ratios", {})
            if q.get("psnr_difference_db", 0) < 0:
                losses.append(f"{method} PSNR ({q['psnr_difference_db']:+.2f} dB)")
            if q.get("train_steps_per_second", 2) < 1:
                losses.append(f"{method} training speed ({q['train_steps_per_second']:.2f}×)")
            if q.get("predict_megapixels_per_second", 2) < 1:
                losses.append(f"{method} prediction speed "
                              f"({q['predict_megapixels_per_second']:.2f}×)")
            if q.get("peak_rss", 0) > 1:
                losses.append(f"{method} peak memory ({q['peak_rss']:.2f}×)")
        self.add("**Where we lose to CAREamics:** " + (", ".join(losses) if losses else
                 "nowhere in this run.") + "", "")

    def published(self) -> None:
        rows = []
        for entry in PUBLISHED:
            ours = _get(self.suites, *entry.ours)
            if ours is None:
                continue
            rows.append([entry.benchmark, f"{entry.method} {entry.tag}", _f(entry.value),
                         f"{entry.our_method}: {_f(ours)}", _f(ours - entry.value, 2, " dB"),
                         entry.difference])
        if not rows:
            return
        self.add("## Published numbers", "",
                 "From `../shared/peers/published.md`, with its evidence tags ([P] paper or "
                 "README, [P-run] the authors' executed notebook, [S] quoted by a third party, "
                 "[U] recalled, unverified). The last column says how each protocol differs "
                 "from ours; where it differs, the difference is context, not a ranking.", "")
        self.add(*_table(["benchmark", "published", "value", "ours", "ours − published",
                          "protocol difference"], rows, "llrrrl"))

    def roofline(self) -> None:
        roof = self.suite("roofline")
        if not roof or "variants" not in roof:
            return
        peak = roof.get("peak_flops", {})
        work = roof.get("flops_per_pixel")
        self.add("## Prediction speed against the hardware limit", "",
                 f"Peak measured in the same run with {roof.get('matmul_size', 2048)}² matrix "
                 "products on "
                 f"{roof.get('threads')} threads: **{_f((peak.get('float32') or 0) / 1e9, 1)} "
                 f"GFLOP/s** float32, {_f((peak.get('bfloat16') or 0) / 1e9, 1)} GFLOP/s "
                 f"bfloat16. The default network ({roof['network'].get('name')}, "
                 f"{roof['network'].get('base_filters')} filters, "
                 f"{roof['network'].get('parameters')} parameters) costs **{_f(work / 1e3, 1)} "
                 "kFLOP per pixel** (counted by `torch.utils.flop_counter`, a multiply-add = 2). "
                 f"Throughput of the bare network on a batch {roof.get('batch')}; ΔPSNR on a "
                 "held-out simulated image against the float32 PyTorch output.", "")
        rows = []
        for name, entry in roof["variants"].items():
            if "skipped" in entry:
                rows.append([name, "–", "–", "–", entry["skipped"]])
                continue
            rate = entry["megapixels_per_second"]
            rows.append([name, _f(rate), _f(rate * work / 1e3, 1),
                         f"{entry['fraction_of_float32_peak']:.0%}",
                         _f(entry.get("psnr_change_db"), 4, " dB")])
        self.add(*_table(["variant", "MP/s", "GFLOP/s", "of float32 peak", "ΔPSNR"], rows,
                         "lrrrl"))
        end = roof.get("denoise_megapixels_per_second", {})
        if end:
            bare = roof["variants"].get("PyTorch float32, channels-last (before)", {}).get(
                "megapixels_per_second")
            against = (f" PyTorch end to end takes **{bare / end['torch']:.2f}×** the bare "
                       "network's time." if bare and end.get("torch") else "")
            self.add("End to end (`model.denoise` on a "
                     f"{'×'.join(map(str, roof.get('denoise_image', [])))} image: normalisation, "
                     "tiling with blended overlaps, network, pixel fusion): "
                     + ", ".join(f"{k} **{_f(v)} MP/s**" for k, v in end.items()) + "."
                     + against, "")
        measured = {name: entry["megapixels_per_second"]
                    for name, entry in roof["variants"].items() if "megapixels_per_second" in entry}
        if measured:
            fastest = max(measured, key=measured.get)
            shipped = next((n for n in measured if "shipped" in n), None)
            before = next((n for n in measured if "before" in n), None)
            sentence = f"Fastest here: **{fastest}** ({_f(measured[fastest])} MP/s)"
            if shipped and before:
                sentence += (f"; the shipped path runs at {measured[shipped] / measured[before]:.2f}× "
                             "the previous PyTorch path")
            if shipped and fastest != shipped:
                sentence += (f". **{fastest}** is not shipped: it rounds activations to fewer "
                             "significant bits, its ΔPSNR above comes from one simulated image, "
                             "and its speed depends on the CPU having native instructions for "
                             "it, so it needs wider validation (data, CPUs) before it can be the "
                             "default")
            self.add(sentence + ". `infocus predict` uses ONNX Runtime on the CPU for inputs of "
                     "2 MP and more when it is installed (`infocus[onnx]`, which `make` "
                     "installs); a fraction of peak above 100 % means the kernels do fewer "
                     "multiplications than the direct count (Winograd-style 3×3 convolutions).",
                     "")

    def scaling(self) -> None:
        scaling = self.suite("scaling")
        if not scaling or "growing" not in scaling:
            return
        self.add("## Scaling: time and memory for growing inputs", "",
                 "`infocus predict` with the default network on stacks of 1024² frames, one "
                 "process per run, peak resident memory from `/usr/bin/time -v`. *Streamed*: "
                 "Zarr in, Zarr out, written block by block. *In memory*: `.npy` in and out (the "
                 "whole input and result are held).", "")
        rows = []
        for row in scaling["growing"]:
            s, m = row["streamed"], row["in_memory"]
            rows.append([_f(row["megapixels"], 0 if row["megapixels"] >= 1 else 2),
                         _f(s["seconds"], 1),
                         _f(s.get("megapixels_per_second")), _f(s["peak_rss_mib"], 0),
                         _f(m["seconds"], 1), _f(m.get("megapixels_per_second")),
                         _f(m["peak_rss_mib"], 0)])
        self.add(*_table(["MP", "streamed s", "MP/s", "peak MiB", "in memory s", "MP/s",
                          "peak MiB"], rows))
        growing = scaling["growing"]

        def draw(fig: Any) -> None:
            left, right = fig.subplots(1, 2)
            mp = [r["megapixels"] for r in growing]
            for key, label in (("streamed", "streamed (Zarr)"), ("in_memory", "in memory")):
                left.plot(mp, [r[key]["seconds"] for r in growing], "o-", label=label)
                right.plot(mp, [r[key]["peak_rss_mib"] for r in growing], "o-", label=label)
            left.set(xlabel="megapixels", ylabel="seconds", title="time", xscale="log",
                     yscale="log")
            right.set(xlabel="megapixels", ylabel="peak resident MiB", title="memory",
                      xscale="log")
            left.legend()
            right.set_ylim(bottom=0)

        self.figure("scaling", draw, (8.5, 3.2), "prediction time and peak memory")
        big = scaling.get("out_of_core")
        if big:
            state = ("enforced by a cgroup memory limit (the kernel would have killed the "
                     "process above it)" if big.get("cap_enforced") else
                     "not enforced on this machine (no writable memory cgroup), only measured")
            outcome = ("finished" if big.get("exit_status") == 0 else
                       f"**failed** (exit {big.get('exit_status')})")
            self.add(f"**Larger than its memory:** a {_f(big['stack_gib'], 2)} GiB uint16 Zarr "
                     f"stack ({big['frames']} frames of {big['frame']}²) predicted to a uint16 "
                     f"Zarr under a {big['memory_cap_gib']} GiB cap, {state}: {outcome} in "
                     f"{_seconds(big['seconds'])} ({_f(big.get('megapixels_per_second'))} MP/s), "
                     f"peak resident memory **{_f((big.get('peak_rss_mib') or 0) / 1024, 2)} "
                     "GiB**" + (f" (measured on {big['cpu']})" if big.get("cpu") and
                                big["cpu"] != self.suite_cpu("scaling") else "") + ".", "")
        self._scaling_workers(scaling.get("workers") or [])

    def _scaling_workers(self, rows: list[dict[str, Any]]) -> None:
        rows = [r for r in rows if r.get("exit_status") == 0]
        if not rows:
            return
        cores = _get(self.data, "machine", "cpu_count") or "?"
        reference = {r["megapixels"]: r for r in rows if r["workers"] == 0}
        loads = [r["load_average"] for r in rows if r.get("load_average") is not None]
        rows_w = [r for r in rows if r["workers"] > 0]
        self.add("### Distributed prediction (dask)", "",
                 "`infocus predict --workers W` (a local dask.distributed cluster of W worker "
                 "processes, one block per task) on uint16 Zarr stacks of 1024² frames, on the "
                 f"{cores}-core machine above; *largest process*: the peak resident memory of "
                 "the largest process (a worker or the client), and *CPU seconds*: user + "
                 "system time of all its processes, from `/usr/bin/time -v` (wall time depends "
                 "on what else ran on the shared machine"
                 + (f", load average {_f(min(loads), 1)} to {_f(max(loads), 1)} as these runs "
                    "ended" if loads else "") + "; CPU time much less)."
                 + (" Workers *0* is the reference measured beside them: one process streaming "
                    "the same stack (prediction only, as the distributed command skips the "
                    "quality summary)." if reference else ""), "")
        self.add(*_table(["MP", "input GiB", "workers", "seconds", "CPU seconds", "MP/s",
                          "largest process MiB"],
                         [[_f(r["megapixels"], 0), _f(r["input_gib"], 2), str(r["workers"]),
                           _f(r["seconds"], 1), _f(r.get("cpu_seconds"), 1),
                           _f(r["megapixels_per_second"]), _f(r["peak_rss_mib"], 0)]
                          for r in rows]))
        sizes = sorted({r["megapixels"] for r in rows_w})
        by = {(r["megapixels"], r["workers"]): r for r in rows_w}
        workers = sorted({r["workers"] for r in rows_w})
        small, large = sizes[0], sizes[-1]
        facts = []
        if large in reference and (large, 1) in by:
            one, streamed = by[large, 1], reference[large]
            facts.append(f"at {_f(large, 0)} MP one worker takes "
                         f"{_f(one['seconds'] / streamed['seconds'], 1)}× the time of the "
                         "streamed process" + (
                             f" and {_f(one['cpu_seconds'] / streamed['cpu_seconds'], 1)}× its "
                             "CPU time" if one.get("cpu_seconds") and streamed.get("cpu_seconds")
                             else ""))
        if (large, 1) in by and (large, 2) in by:
            facts.append(f"two workers take "
                         f"{_f(by[large, 2]['seconds'] / by[large, 1]['seconds'], 2)}× the time "
                         "of one")
        if large > small and (small, 1) in by and (large, 1) in by:
            facts.append(f"the largest process of one worker, which predicts every frame, "
                         f"goes from {_f(by[small, 1]['peak_rss_mib'], 0)} MiB at "
                         f"{_f(small, 0)} MP to {_f(by[large, 1]['peak_rss_mib'], 0)} MiB at "
                         f"{_f(large, 0)} MP")
        if large in reference:
            peak = max(r["peak_rss_mib"] for r in rows_w if r["megapixels"] == large)
            facts.append(f"the largest process of any run there is "
                         f"{_f(peak / reference[large]['peak_rss_mib'], 2)}× the streamed "
                         "process's peak")
        if facts:
            self.add("On this machine " + "; ".join(facts) + ".", "")
        fits = {}
        for w in workers:
            if large > small and (small, w) in by and (large, w) in by:
                seconds = by[small, w]["seconds"], by[large, w]["seconds"]
                rate = (large - small) / max(seconds[1] - seconds[0], 1e-9)
                fits[w] = (seconds[0] - small / rate, rate)
        if not fits:
            return
        cores = _get(self.data, "machine", "cpu_count") or 0
        # The load before each run shows other jobs; at its end it also counts the run's own
        # workers (older results only have that one).
        before = all("load_average_before" in r for r in rows_w)
        load = max((r.get("load_average_before" if before else "load_average") or 0.0)
                   for r in rows_w)
        if cores and load >= cores:
            self.add(f"Not extrapolated: these runs shared the machine with other jobs (load "
                     f"average up to {_f(load, 1)} on {cores} cores "
                     f"{'before a run started' if before else 'as a run ended'}), so rates "
                     "fitted to their wall times would measure the other jobs as much as the "
                     "workers.", "")
            return
        per_gib = 2**30 / 2 / 1e6  # megapixels in a GiB of uint16
        model = [[f"{gib} GiB", *(_seconds(start + gib * per_gib / rate)
                                  for start, rate in fits.values())] for gib in (1, 8, 64)]
        self.add("Extrapolated with *time = start-up + megapixels / rate(W)*, both fitted to "
                 f"the {_f(small, 0)} and {_f(large, 0)} MP stacks (start-up "
                 + ", ".join(f"{_f(start, 0)} s" for start, _ in fits.values()) + "; rate "
                 + ", ".join(f"{_f(rate)} MP/s" for _, rate in fits.values())
                 + " for " + ", ".join(f"{w}" for w in fits) + " worker(s)); every block is "
                 "independent, so time is linear in the frames:", "")
        self.add(*_table(["input", *[f"{w} worker(s)" for w in fits]], model))
        peaks = [r["peak_rss_mib"] for r in rows_w if r.get("peak_rss_mib")]
        if peaks:
            self.add(f"Memory per worker: the largest process of any distributed run stayed "
                     f"between {_f(min(peaks), 0)} and {_f(max(peaks), 0)} MiB from "
                     f"{_f(small, 0)} to {_f(large, 0)} MP (each worker holds one block and its "
                     "halo at a time), so the model takes it as constant for any input size.",
                     "")

    def overview_figure(self) -> None:
        """PSNR per method and dataset, and quality against time on FMD."""
        classical = self.suite("classical")
        learned = self.suite("learned")
        datasets: dict[str, dict[str, float]] = {}
        fmd_c = _get(classical, "fmd") or {}
        fmd_l = _get(learned, "fmd") or {}
        for name, block, key in (("FMD", fmd_c, "psnr"),
                                 ("BSD68", _get(classical, "bsd68") or {}, "psnr"),
                                 ("W2S (SI)", _get(classical, "w2s") or {}, "si_psnr")):
            values = {m: e[key] for m, e in block.items() if isinstance(e, dict) and key in e}
            if values:
                datasets[name] = values
        for name, block, key in (("FMD", fmd_l, "psnr"),
                                 ("BSD68", _get(learned, "bsd68") or {}, "psnr"),
                                 ("W2S (SI)", _get(learned, "w2s") or {}, "si_psnr")):
            for method, entry in block.items():
                if isinstance(entry, dict) and key in entry:
                    datasets.setdefault(name, {})[LEARNED_NAMES.get(method, method)] = entry[key]
        levels = _get(classical, "simulated", "levels") or {}
        for level, block in levels.items():
            name = f"sim. {float(level):g} ph"
            datasets[name] = {m: e["psnr"] for m, e in block.items() if "psnr" in e}
            for method, entry in (_get(learned, "simulated") or {}).items():
                value = _get(entry, "levels", level, "psnr")
                if value is not None:
                    datasets[name][LEARNED_NAMES.get(method, method)] = value
        if not datasets:
            return
        methods = sorted({m for d in datasets.values() for m in d} - {"noisy input"},
                         key=lambda m: (m in LEARNED_NAMES.values(), m))

        def draw(fig: Any) -> None:
            ax = fig.subplots()
            width = 0.8 / max(1, len(methods))
            for i, method in enumerate(methods):
                xs, ys = [], []
                for j, values in enumerate(datasets.values()):
                    base = values.get("noisy input")
                    if method in values and base is not None:
                        xs.append(j + i * width)
                        ys.append(values[method] - base)
                ax.bar(xs, ys, width, label=method)
            ax.set_xticks(np.arange(len(datasets)) + 0.4 - width / 2, list(datasets))
            ax.set_ylabel("PSNR gain over the noisy input (dB)")
            ax.legend(ncol=4, fontsize=7)

        self.add("## Overview", "")
        self.figure("psnr", draw, (10, 4), "PSNR gain per method and dataset")
        points = []
        for method, entry in fmd_c.items():
            if isinstance(entry, dict) and entry.get("seconds_per_megapixel"):
                points.append((method, entry["seconds_per_megapixel"], entry["psnr"], False))
        images_mp = sum(r.get("megapixels", 0.0)
                        for r in _get(fmd_c, "noisy input", "per_image") or []) or None
        for method, entry in fmd_l.items():
            if isinstance(entry, dict) and "psnr" in entry and images_mp:
                seconds = (entry.get("train_seconds", 0.0)
                           + entry.get("predict_seconds_per_megapixel", 0.0) * images_mp)
                points.append((LEARNED_NAMES.get(method, method), seconds / images_mp,
                               entry["psnr"], True))
        if points:
            def scatter(fig: Any) -> None:
                ax = fig.subplots()
                for label, seconds, value, trained in points:
                    ax.scatter(seconds, value, marker="o" if trained else "s")
                    ax.annotate(label, (seconds, value), fontsize=8, xytext=(4, 2),
                                textcoords="offset points")
                ax.set(xscale="log", xlabel="CPU seconds per megapixel (learned: training + "
                       "prediction)", ylabel="PSNR (dB)", title="FMD test_mix: quality vs time")

            self.figure("fmd-quality-time", scatter, (7, 4), "FMD quality against time")

    # ------------------------------------------------------------- noise-model methods
    def probabilistic(self) -> None:
        suite = self.suite("probabilistic")
        if not suite:
            return
        steps = _get(suite, "budget", "steps")
        budget = f"{steps} steps" if isinstance(steps, int) else "each method's default steps"
        self.add("## Noise-model methods: PN2V and DivNoising beside N2V", "",
                 "Probabilistic Noise2Void and DivNoising train through a noise model p(x|s), "
                 "bootstrapped by default from a Noise2Void prediction of the same data (so "
                 "their training time includes that Noise2Void's). Every method uses its "
                 f"shipped defaults ({budget} unless stated; N2V 1200 steps, its "
                 "prediction fused with the noisy pixel where the noise is white); PN2V "
                 "reports its MMSE estimate (and, for comparison, its prior mean), DivNoising "
                 "the mean of 100 posterior samples.", "")
        self._probabilistic_defaults(_get(suite, "defaults") or {})
        self._probabilistic_simulated(suite)
        self._probabilistic_fmd(_get(suite, "fmd") or {})
        self._probabilistic_w2s(_get(suite, "w2s") or {})
        self._probabilistic_calibration(suite)
        self._probabilistic_samples()
        self._probabilistic_why()

    def _probabilistic_why(self) -> None:
        self.add(
            "### Why the gains over N2V are small here", "",
            "* **Our N2V already uses the noisy pixel.** The papers compare PN2V with a Noise2Void "
            "that ignores the pixel it was blind to; infocus's N2V fuses its prediction with "
            "that pixel by the linear MMSE weight of the estimated noise model (on FMD "
            "Confocal_BPAE_B this alone took N2V from 37.07 to 37.76 dB). That is most of what "
            "PN2V's posterior adds; what remains is its non-Gaussian likelihood and a prior "
            "whose width varies per pixel, which pay most at few photons and on EMCCD data.",
            "* **DivNoising is under-trained at this budget.** To fit the 10-minute goal on two "
            "CPU cores it trains a 16-filter VAE for 3000 steps; on the 20-photon images it "
            "gained 31.89 → 32.60 → 32.81 dB at 1200/2400/3600 steps and had not converged "
            "(docs/choosing-defaults.md), while the paper trains far larger networks for hours "
            "on a GPU. With more steps (`--steps`) it closes part of the gap; its value here "
            "is the posterior samples and the uncertainty, not a higher PSNR.",
            "* **Bootstrapped noise models.** Both methods learn p(x|s) from N2V's own "
            "prediction, so the noise model also holds N2V's error; with calibration captures "
            "(`infocus noise-model fit --calibration`) it describes the camera alone.", "")

    def _probabilistic_defaults(self, defaults: dict[str, Any]) -> None:
        rows = [[LEARNED_NAMES.get(m, m), _seconds(e.get("train_seconds")), _f(e.get("psnr")),
                 str(e.get("steps"))]
                for m, e in defaults.items() if isinstance(e, dict) and "train_seconds" in e]
        if not rows:
            return
        self.add("### Shipped defaults on eight 256² images", "",
                 "`infocus.train` with no budget options on eight 256² crops (30 photons, the "
                 "simulated camera); the goal is under 10 minutes each on this machine.", "")
        self.add(*_table(["method", "training", "PSNR (dB)", "steps"], rows))
        if defaults.get("note"):
            self.add(f"Note: {defaults['note']}", "")

    def _probabilistic_simulated(self, suite: dict[str, Any]) -> None:
        columns: dict[str, dict[str, Any]] = {}
        for level, block in (_get(suite, "simulated", "levels") or {}).items():
            columns[f"{float(level):g} photons"] = block
        emccd = _get(suite, "emccd") or {}
        if any(isinstance(v, dict) and "psnr" in v for v in emccd.values()):
            columns["EMCCD, 5 photons"] = emccd
        if not columns:
            return
        self.add("### Simulated data: Poisson–Gaussian and EMCCD", "",
                 "The two fluorescence images of the simulated benchmark; every method trains "
                 "on the two noisy images and predicts them. EMCCD: 5 photons at the peak, "
                 "gamma-amplified (EM gain 50), read noise 10 ADU. PSNR (dB) with the clean "
                 "image's range; training time in brackets, measured while other jobs could share the two "
                 "cores (upper bounds; the defaults table above is the timing measurement).", "")
        methods = [m for m in ("n2v", *PROBABILISTIC)
                   if any(m in block for block in columns.values())]
        rows = []
        for method in methods:
            row = [LEARNED_NAMES.get(method, method)]
            for block in columns.values():
                entry = block.get(method) or {}
                row.append(f"{_f(entry.get('psnr'))} ({_seconds(entry.get('train_seconds'))})"
                           if "psnr" in entry else "–")
            rows.append(row)
            if method == "pn2v":
                rows.append(["PN2V prior mean"] + [_f((block.get(method) or {}).get("prior_psnr"))
                                                   for block in columns.values()])
        self.add(*_table(["method", *columns], rows))
        gains = []
        for name, block in columns.items():
            base = _get(block, "n2v", "psnr")
            for method in PROBABILISTIC:
                value = _get(block, method, "psnr")
                if base is not None and value is not None:
                    gains.append(f"{LEARNED_NAMES[method]} {value - base:+.2f} dB at {name}")
        if gains:
            self.add("Against N2V at the same budget: " + "; ".join(gains) + ".", "")

    def _probabilistic_fmd(self, fmd: dict[str, Any]) -> None:
        methods = [m for m in PROBABILISTIC if _get(fmd, m, "per_configuration")]
        if not methods:
            return
        n2v = _get(self.suite("learned"), "fmd", "n2v", "per_configuration_psnr") or {}
        bm3d = _get(self.suite("classical"), "fmd", "bm3d", "per_configuration_psnr") or {}
        configs = sorted({c for m in methods for c in fmd[m]["per_configuration"]})
        self.add("### FMD test_mix per configuration", "",
                 "Each method trains on the four captures of one configuration and predicts "
                 "them (N2V's protocol in the learned suite, whose N2V column is quoted: same "
                 "data, budget and code path); BM3D-VST from the classical suite. Peak 255.",
                 "")
        rows = []
        for config in configs:
            row = [config, _f(bm3d.get(config)), _f(n2v.get(config))]
            for method in methods:
                row.append(_f(_get(fmd, method, "per_configuration", config, "psnr")))
            rows.append(row)
        means = ["**mean**", _f(np.mean([bm3d[c] for c in configs if c in bm3d]))
                 if all(c in bm3d for c in configs) else "–",
                 _f(np.mean([n2v[c] for c in configs if c in n2v]))
                 if all(c in n2v for c in configs) else "–"]
        for method in methods:
            values = [_get(fmd, method, "per_configuration", c, "psnr") for c in configs]
            means.append(_f(np.mean(values)) if all(v is not None for v in values) else "–")
        rows.append(means)
        names = [LEARNED_NAMES[m] for m in methods]
        self.add(*_table(["configuration", "BM3D-VST", "N2V", *names], rows))
        for method in methods:
            closed = [c for c in configs if c in bm3d and c in n2v and n2v[c] < bm3d[c]
                      and (_get(fmd, method, "per_configuration", c, "psnr") or -1) >= bm3d[c]]
            trailing = [c for c in configs if c in bm3d and c in n2v and n2v[c] < bm3d[c]
                        and _get(fmd, method, "per_configuration", c, "psnr") is not None]
            if trailing:
                self.add(f"Where N2V trails BM3D-VST ({', '.join(trailing)}), "
                         f"{LEARNED_NAMES[method]} reaches or passes it in "
                         f"{len(closed)} of {len(trailing)}"
                         + (f": {', '.join(closed)}." if closed else "."), "")

    def _probabilistic_w2s(self, w2s: dict[str, Any]) -> None:
        methods = [m for m in PROBABILISTIC if _get(w2s, m, "si_psnr") is not None]
        if not methods:
            return
        rows = [["BM3D-VST", _f(_get(self.suite("classical"), "w2s", "bm3d", "si_psnr"))],
                ["N2V", _f(_get(self.suite("learned"), "w2s", "n2v", "si_psnr"))]]
        rows += [[LEARNED_NAMES[m], _f(w2s[m]["si_psnr"])] for m in methods]
        self.add("### W2S (scale-invariant PSNR)", "",
                 "One model per channel on that channel's ten images, as N2V.", "")
        self.add(*_table(["method", "SI-PSNR (dB)"], rows))

    def _probabilistic_calibration(self, suite: dict[str, Any]) -> None:
        curves: dict[str, dict[str, Any]] = {}
        for level, block in (_get(suite, "simulated", "levels") or {}).items():
            for method in PROBABILISTIC:
                curve = _get(block, method, "calibration")
                if curve:
                    curves[f"{LEARNED_NAMES[method]}, {float(level):g} ph"] = curve
        for method in PROBABILISTIC:
            curve = _get(suite, "emccd", method, "calibration")
            if curve:
                curves[f"{LEARNED_NAMES[method]}, EMCCD"] = curve
        if not curves:
            return
        self.add("### Is the uncertainty calibrated?", "",
                 "Pixels binned by their predicted standard deviation (deciles); per bin the "
                 "root-mean-square error against the ground truth. On the diagonal the "
                 "uncertainty means what it says. PN2V scales its standard deviation by one "
                 "factor fitted after training without ground truth: the model denoises a "
                 "noisy image it draws from its own noise model around its own estimate, and "
                 "the factor makes its predicted spread match the error it makes there. "
                 "DivNoising's spread is the spread of its posterior samples, not rescaled: "
                 "the same self-simulation misjudged its scale (it asked for 0.65–0.72 where "
                 "the ground truth asked for 1.23). "
                 "Ratio = overall RMSE / root-mean-square predicted std (1: calibrated).", "")

        def draw(fig: Any) -> None:
            ax = fig.subplots()
            top = 0.0
            for label, curve in curves.items():
                xs = [b["predicted_std"] for b in curve["bins"]]
                ys = [b["rmse"] for b in curve["bins"]]
                top = max(top, *xs, *ys)
                ax.plot(xs, ys, "o-", ms=3, label=label)
            ax.plot([0, top], [0, top], "k--", lw=0.8, label="calibrated")
            ax.set(xscale="log", yscale="log", xlabel="predicted standard deviation",
                   ylabel="RMSE against ground truth")
            ax.legend(fontsize=7)

        self.figure("uncertainty-calibration", draw, (6.5, 4.5),
                    "Uncertainty calibration: predicted std against actual error")
        rows = [[label, _f(c["rms_predicted_std"], 3), _f(c["rmse"], 3), _f(c["ratio"], 2)]
                for label, c in curves.items()]
        self.add(*_table(["method, data", "RMS predicted std", "RMSE", "ratio"], rows))

    def _probabilistic_samples(self) -> None:
        path = self.path.with_suffix("") / "divnoising_samples.npz"
        if not path.exists():
            return
        crops = dict(np.load(path))

        def draw(fig: Any) -> None:
            panels = [("noisy", crops["noisy"]), ("clean", crops["clean"]),
                      ("MMSE (100 samples)", crops["mmse"])]
            panels += [(f"sample {k + 1}", s) for k, s in enumerate(crops["samples"][:3])]
            panels.append(("posterior std", crops["std"]))
            axes = fig.subplots(1, len(panels))
            low, high = np.percentile(crops["clean"], [0.5, 99.8])
            for ax, (title, image) in zip(axes, panels, strict=True):
                cmap = "viridis" if title == "posterior std" else "magma"
                limits = {} if title == "posterior std" else {"vmin": low, "vmax": high}
                ax.imshow(image, cmap=cmap, interpolation="nearest", **limits)
                ax.set_title(title, fontsize=8)
                ax.axis("off")

        self.add("### DivNoising's posterior samples", "",
                 "A 128² crop of the simulated data at 20 photons: posterior samples "
                 "(`infocus sample`) differ where the data leave the structure open; their "
                 "mean is the MMSE estimate and their spread the uncertainty.", "")
        self.figure("divnoising-samples", draw, (13, 2.4), "DivNoising posterior samples")

    # ------------------------------------------------------------------------- qc
    def qc(self) -> None:
        suite = self.suite("qc")
        if not any(_get(suite, part) for part in ("planted", "simulated", "fmd", "auto")):
            return
        budget = suite.get("budget", {})
        self.add("## Trust without ground truth: `infocus qc`", "",
                 "How well `infocus qc` estimates an output's PSNR without the clean image, "
                 "and whether its flags find defects planted in good outputs "
                 f"({budget.get('images_per_level', '?')} scenes per photon level for the "
                 f"estimates, {budget.get('defect_seeds', '?')} per level for the defects; "
                 f"N2V and CARE trained {budget.get('trained_steps', '?')} steps). Simulated "
                 "scenes: Gaussian spots of 1.5–12 px, 256², the simulated camera of the "
                 "other tables.", "")
        self._qc_page(_get(suite, "page") or {})
        self._qc_planted(_get(suite, "planted") or {})
        self._qc_good_outputs(_get(suite, "good_outputs") or {})
        self._qc_estimates(_get(suite, "simulated") or {}, _get(suite, "fmd") or {},
                           _get(suite, "simulated_large") or {})
        self._qc_auto(_get(suite, "auto") or {})

    def _qc_page(self, page: dict[str, Any]) -> None:
        screenshot = page.get("screenshot")
        source = self.path.with_suffix("") / screenshot if screenshot else None
        if source is None or not source.is_file():
            return
        self.images.mkdir(parents=True, exist_ok=True)
        target = self.images / "bench-qc-report.png"
        shutil.copyfile(source, target)
        self.figures.append(target)
        self.add("The report page of `infocus qc` for a good output (a 0.7 px blur of the truth) "
                 "into which a spot was added (top left) and an object erased (top), rendered "
                 "by headless Chromium:", "",
                 f"![infocus qc report page](images/{target.name})", "")

    def _qc_planted(self, planted: dict[str, Any]) -> None:
        levels = [k for k, v in planted.items() if isinstance(v, dict) and "added" in v]
        if not levels:
            return
        kinds = [("added", "spot added"), ("erased", "object erased"),
                 ("scaled", "object ×1.2–1.5"), ("good blur", "good: 0.7 px blur of truth"),
                 ("good bm3d", "good: BM3D output")]
        rows = []
        for key, label in kinds:
            cells = []
            for level in levels:
                entry = planted[level].get(key, {})
                cells.append(f"{_f(100 * entry['rate'], 0)} %" if entry else "–")
            elsewhere = [planted[level].get(key, {}).get("elsewhere") for level in levels]
            extra = (" / ".join(f"{_f(100 * e, 0)} %" for e in elsewhere)
                     if key in DEFECT_KINDS else "")
            rows.append([label, *cells, extra])
        self.add("### Planted defects", "",
                 "A defect counts as found when a flag (consistency map or object intensity) "
                 "touches it; *elsewhere* is how often a flagged region lies wholly more than "
                 "15 px away from it (half the largest test window; an object the intensity "
                 "check flags because it holds the defect is the defect's flag, however far "
                 "it reaches). For good outputs the rate is the share flagged (the issue asks "
                 "≥ 90 % found, ≤ 10 % false; whether a flag on a good output is false, the "
                 "table after next says).", "")
        self.add(*_table(["case", *[f"{float(level):g} photons" for level in levels],
                          "flags elsewhere (" + " / ".join(f"{float(level):g}" for level in levels)
                          + " photons)"], rows))
        self._qc_visible(planted, levels)

    def _qc_visible(self, planted: dict[str, Any], levels: list[str]) -> None:
        """Found among the defects the measurement can show (oracle z beyond the map's
        threshold plus the power margin)."""
        if not any("visible" in planted[level].get(kind, {})
                   for level in levels for kind in DEFECT_KINDS):
            return
        rows = []
        for key, label in (("added", "spot added"), ("erased", "object erased"),
                           ("scaled", "object ×1.2–1.5")):
            cells = []
            for level in levels:
                entry = planted[level].get(key, {})
                cells.append("–" if "visible" not in entry else
                             f"{entry['visible_found']} of {entry['visible']}")
            rows.append([label, *cells])
        margin = planted.get("power_margin", 1.645)
        thresholds = [planted[level][kind]["threshold"] for level in levels
                      for kind in DEFECT_KINDS if "threshold" in planted[level].get(kind, {})]
        self.add("Can the measurement show the defect at all? Per defect, the *oracle z* "
                 "√(Σ d²/v) (d the planted change, v the true noise variance) is the mean "
                 "z-score of the most powerful test of that one change, a test that knew where "
                 "the defect lies and its shape; a defect is *visible* when the oracle z "
                 "exceeds the consistency map's threshold (median "
                 f"{_f(float(np.median(thresholds)), 2)} on 256²) by {margin:g}, "
                 "where that test would find it 95 % of the time. Found among the visible "
                 "defects:", "")
        self.add(*_table(["case", *[f"{float(level):g} photons" for level in levels]], rows))

    def _qc_good_outputs(self, part: dict[str, Any]) -> None:
        """What the good outputs truly do to the total intensity: a flag is a finding where
        the change exceeds the measured total's noise."""
        levels = [k for k, v in part.items() if isinstance(v, dict) and "bm3d" in v]
        if not levels:
            return
        labels = [("noisy", "the noisy image itself"), ("blur", "0.7 px blur of truth"),
                  ("bm3d", "BM3D output")]
        rows = []
        for key, label in labels:
            cells = []
            for level in levels:
                entry = part[level].get(key)
                cells.append("–" if not entry else
                             f"{100 * entry['median_relative_change']:+.1f} % "
                             f"({entry['beyond_noise']} of {entry['cases']})")
            rows.append([label, *cells])
        self.add("Are the good outputs good? Their true change of the total intensity (the "
                 "summed signal above the camera offset, against the clean image's; median "
                 "over the scenes), and in how many scenes that change exceeds "
                 f"{_f(part.get('visible_z'), 1)} noise standard errors of the measured total, "
                 "so that the measurement itself shows it. On those outputs a flag of the "
                 "intensity check is a finding, not a false alarm.", "")
        self.add(*_table(["output", *[f"{float(level):g} photons" for level in levels]], rows))

    def _qc_estimates(self, simulated: dict[str, Any], fmd: dict[str, Any],
                      large: dict[str, Any] | None = None) -> None:
        """The PSNR estimates' accuracy per data set, then their median error per denoiser."""
        blocks = [(f"simulated{size}, {float(level):g} photons", block)
                  for size, part in (("", simulated), (" 512²", large or {}))
                  for level, block in part.items() if isinstance(block, dict)
                  and "within_1db" in block]
        captures = "with the other captures (3; 2 where one is a copy)"
        file = ", against the ground-truth file as stored"
        # The summaries against the file share the rows of those against the scene.
        blocks += [(label, {"rows": (fmd.get(key.removesuffix("_file")) or {}).get("rows"),
                            **fmd[key]}) for key, label in
                   (("single", "FMD test_mix, image alone"),
                    ("captures", f"FMD test_mix, {captures}"),
                    ("single_file", f"FMD test_mix, image alone{file}"),
                    ("captures_file", f"FMD test_mix, {captures}{file}"))
                   if isinstance(fmd.get(key), dict) and fmd[key].get("cases")]
        if not blocks:
            return
        rows = [[label, str(b["cases"]), f"{_f(100 * b['within_1db'], 0)} %",
                 _f(b["median_abs_error_db"]), _interval_half_width(b.get("rows") or []),
                 f"{_f(100 * b['interval_coverage'], 0)} %",
                 f"{_f(100 * b['ranking'], 0)} %",
                 *([f"{_f(100 * b['bounds_coverage'], 0)} %", _f(b["bounds_low_gap_db"])]
                   if "captures" not in label else ["–", "–"])] for label, b in blocks]
        self.add("### PSNR estimates against the truth", "",
                 "Per output: the estimate with the denoiser re-run (SURE), or with the "
                 "other captures (Noise2Noise identity, the noise variance measured from the "
                 "captures' differences); *ranking* is the share of denoiser pairs of one "
                 "image ordered as the truth orders them; *bounds* is the output-only interval "
                 "(no denoiser, no capture) and how far its lower end lies below the truth. "
                 "Simulated scenes are 256² unless marked 512² (as many spots per area, the "
                 "same denoisers and training budget); FMD images are central 256² crops. "
                 "The noise model is estimated from each "
                 "image by the check itself, as a user without a calibrated camera gets it, "
                 "and SURE's interval also holds the error of that estimate (the covariance of "
                 "its parameters). The interval's half-width is the "
                 "estimate's own uncertainty: where it exceeds 1 dB, no single estimate can be "
                 "trusted to 1 dB, whatever its bias.", "")
        if "single_file" in fmd:
            fmd_rows = fmd["single"].get("rows") or []
            scales = _fmd_scales(fmd_rows)
            shares = [r["truth_correction"]["correction"]
                      / r["truth_correction"]["mse_against_matched"]
                      for r in fmd_rows if r.get("truth_correction")]
            share = (f"{_f(100 * min(shares), 0)}–{_f(100 * max(shares), 0)} % of the "
                     f"outputs' error here (median {_f(100 * float(np.median(shares)), 0)} %)"
                     if shares else "not measured here")
            self.add("FMD's ground truth is the mean of its 50 captures of the view, the test "
                     "captures among them, rounded to 8 bits: it holds noise of variance "
                     f"v/50 + 1/12, {share}, and each "
                     f"capture's brightness differs from the mean's ({scales}). What "
                     "the estimators aim at is the capture's own noise-free image. The FMD rows "
                     "compare with that (the file matched to the capture's brightness by a "
                     "least-squares scale and offset, less the mean's noise, the noise variance "
                     "and the denoiser's own share of it measured: "
                     "`benchmarks.suites.qc.scene_truth`); the rows *as stored* compare with "
                     "the file as it is. A scene that changed between the captures other than "
                     "in brightness stays in both.", "")
        used = fmd.get("captures_used")
        if isinstance(used, dict) and used.get("of"):
            self.add(f"Since the captures of one view differ in brightness (laser power, "
                     f"bleaching), `infocus qc` leaves "
                     f"out a capture whose brightness differs from the image's beyond noise "
                     f"(`infocus.qc.risk.agreeing_captures`), and where none agrees the "
                     f"estimate from the image alone (SURE) stands in. Captures were used in "
                     f"{used['cases']} of {used['of']} estimates ({used['some_left_out']} of "
                     f"them left some out); those alone: "
                     f"{_f(100 * (used['within_1db'] or 0), 0)} % within 1 dB, median "
                     f"abs. error {_f(used['median_abs_error_db'])} dB.", "")
        self.add(*_table(["data", "outputs", "within 1 dB", "median abs. error (dB)",
                          "95 % interval half-width, median (dB)",
                          "95 % interval holds truth", "ranking", "bounds hold truth",
                          "bounds: truth − lower end (dB)"], rows))
        names = list(dict.fromkeys(n for _, b in blocks for n in b.get("median_error_db", {})))
        self.add("Median error (estimate − truth, dB) per denoiser; a positive error is an "
                 "optimistic estimate:", "")
        self.add(*_table(["data", *names],
                         [[label, *(_f(b.get("median_error_db", {}).get(n)) for n in names)]
                          for label, b in blocks]))
        self._qc_estimate_floor([(label, b) for label, b in blocks
                                 if "within_1db_calibrated" in b])

    def _qc_estimate_floor(self, blocks: list[tuple[str, dict[str, Any]]]) -> None:
        """How much of the simulated estimates' error the noise model's estimate causes, and
        how much the noise's own draw, which no estimate from the image removes."""
        if not blocks:
            return
        self.add("Where the simulated estimates' error comes from: the same estimates with "
                 "the camera's true noise model (a calibrated camera), and the error an "
                 "estimate would make if its only error were the drawn noise's own sum of "
                 "squares, (1/N) Σ (n² − v) (`benchmarks.suites.qc.noise_term_error_db`). "
                 "Every estimate from one image holds that term (SURE through ‖f − y‖², the "
                 "Noise2Noise identity through the capture's noise); its standard deviation is "
                 "about √(2·mean(v²)/N), a fixed amount however good the output, so the "
                 "better the output the larger it is in dB. SURE's divergence term cancels a "
                 "share 2D of it, D the output's dependence on each pixel's own value (a "
                 "Gaussian of width 1: D = 0.16).", "")
        self.add(*_table(
            ["data", "within 1 dB, noise model estimated", "within 1 dB, calibrated camera",
             "median abs. error, calibrated (dB)", "within 1 dB, noise term alone",
             "median abs. noise term (dB)"],
            [[label, f"{_f(100 * b['within_1db'], 0)} %",
              f"{_f(100 * b['within_1db_calibrated'], 0)} %",
              _f(b["median_abs_error_calibrated_db"]),
              f"{_f(100 * b['within_1db_noise_term'], 0)} %",
              _f(b["median_abs_noise_term_db"])] for label, b in blocks]))

    def _qc_auto(self, auto: dict[str, Any]) -> None:
        blocks = [(f"embedded sample, {level} photons", block)
                  for level, block in (auto.get("simulated") or {}).items()
                  if isinstance(block, dict) and block.get("cases")]
        fmd = auto.get("fmd") or {}
        if fmd.get("cases"):
            blocks.append(("FMD test_mix, one capture per configuration", fmd))
        if not blocks:
            return
        budget = auto.get("budget_seconds") or 0
        crop = auto.get("crop", "?")
        self.add("### Letting the estimate choose: `infocus denoise --method auto`", "",
                 "Every candidate runs on the image, its PSNR is estimated without the clean "
                 "image (SURE, the candidate re-run), and the highest estimate is kept. "
                 "*Best kept* is how often that is the candidate with the highest true PSNR; "
                 "*given up* is the true PSNR of that candidate minus the one kept; the last "
                 "column is what always using the single method best on average here would "
                 f"give up. Crops of {crop}² (the embedded sample, simulated camera; FMD "
                 "central crops), budget "
                 + (f"{_seconds(budget)} per image." if budget else
                    "0 s (classical candidates only).")
                 + (" FMD skipped: " + fmd["skipped"] if fmd.get("skipped") else "")
                 + (" FMD: the images whose noise reads correlated between pixels were "
                    "measured again after the per-pixel noise correction "
                    "(`infocus.noise.correct_for_correlation`); for the others neither the "
                    "noise model nor the scores changed, and their rows are from the run "
                    "before." if fmd.get("rerun_note") else ""), "")
        rows = []
        for label, b in blocks:
            always = b.get("always_given_up_db") or {}
            steady = min(always, key=always.get) if always else None
            rows.append([label, str(b["cases"]), f"{_f(100 * b['picked_best'], 0)} %",
                         _f(b["mean_given_up_db"]), _f(b["max_given_up_db"]),
                         ", ".join(f"{k} {v}" for k, v in sorted(b.get("kept", {}).items())),
                         ", ".join(f"{k} {v}" for k, v in sorted(b.get("best", {}).items())),
                         f"{steady} {_f(always[steady])}" if steady else "–",
                         _seconds(b.get("mean_seconds"))])
        self.add(*_table(["data", "images", "best kept", "given up, mean (dB)",
                          "given up, worst (dB)", "kept", "truly best",
                          "always one method: given up (dB)", "time per image"], rows))
        errors = [(label, r) for label, b in blocks for r in b.get("rows", [])]
        names = list(dict.fromkeys(m for _, r in errors for m in r.get("estimate", {})))
        if names:
            self.add("Median error of the estimates that ranked them (estimate − truth, dB; "
                     "positive is optimistic; an error estimated at or below zero, an infinite "
                     "PSNR, is left out):", "")
            self.add(*_table(["data", *names], [
                [label, *(_f(float(np.median(values))) if (values := [
                    r["estimate"][n] - r["true"][n] for r in b.get("rows", [])
                    if n in r.get("estimate", {}) and np.isfinite(r["estimate"][n])]) else "–"
                    for n in names)] for label, b in blocks]))

    # ----------------------------------------------------------------------------- context
    def context(self) -> None:
        suite = self.suite("context") or {}
        self._captures(_get(suite, "captures") or {})
        self._drift(_get(suite, "drift") or {})
        self._drift_seeds(_get(suite, "drift") or {}, _get(suite, "drift_seeds") or {})
        self._volume(_get(suite, "volume") or {})
        self._spacetime(_get(suite, "spacetime") or {})
        self._ratio(_get(suite, "ratio") or {})
        self._rcan(_get(suite, "rcan") or {})

    def _spacetime(self, part: dict[str, Any]) -> None:
        rows = part.get("frames") or {}
        kinds = [("tif", "TIFF"), ("zarr", "OME-Zarr (streamed)")]
        measured = {t: r for t, r in rows.items() if any(k in r for k, _ in kinds)}
        if not measured:
            return
        shape = "×".join(map(str, part.get("shape", ())))
        self.add("## Context: memory of 3-D + time prediction", "",
                 f"TCZYX stacks of T time points of {shape} (C×Z×Y×X, float32), predicted by "
                 "`infocus predict MODEL STACK -o OUT` with a Noise2Void model trained with "
                 "`--context T` (a 3-D network over T, Y, X), each run in its own process: "
                 "peak resident memory and wall time. TIFF: the output is collected in memory "
                 "and written at the end; OME-Zarr: read and written block by block. The "
                 "process that only imports infocus and loads the model peaks at "
                 f"{_f(part.get('model_only_mib'), 0)} MiB.", "")
        body = []
        for frames, row in sorted(measured.items(), key=lambda item: int(item[0])):
            cells = [frames, _f(row.get("input_mib"), 0)]
            for key, _ in kinds:
                entry = row.get(key) or {}
                cells += [_f(entry.get("peak_rss_mib"), 0), _f(entry.get("seconds"), 0)]
            body.append(cells)
        header = ["T", "input (MiB)"]
        for _, label in kinds:
            header += [f"{label}: peak RSS (MiB)", f"{label}: seconds"]
        self.add(*_table(header, body))

    def _reference_caveat(self, part: dict[str, Any], factor: str) -> None:
        """Say so where a part's PSNRs were measured against the earlier, mis-scaled reference
        (benchmarks.suites.context.REFERENCE)."""
        if part.get("reference"):
            return
        self.add("", "**Caveat:** these PSNRs were measured against a clean reference scaled by "
                 "the clean image's maximum before its background was added, not as the "
                 f"simulation scales it (up to {factor}× too bright in the signal), so they are "
                 "biased low. Every column shares that reference, so the comparison between "
                 "columns stands; the absolute values await a re-run of this part.", "")

    def _volume(self, part: dict[str, Any]) -> None:
        if "ZYX" not in part or "YX" not in part:
            return
        volumes = part.get("training_volumes", 2)
        self.add("## Context: a 3-D network against plane by plane", "",
                 "Simulated Z-stacks (32×128×128, blobs spread over about three planes, 8 peak "
                 f"photons, the simulated camera): Noise2Void trained on {volumes} volumes with "
                 "a 3-D network, and with a 2-D network on their planes, "
                 f"{part['ZYX'].get('steps')} steps each with the same pixels per step (one "
                 "16×64×64 patch against sixteen 64×64 ones) and each with its default masked "
                 "fraction; the engine holds out 10 % of the data for validation in both. A "
                 f"further volume scored (noisy: {_f(part.get('noisy'))} dB).", "")
        rows = []
        for label, key in (("3-D (ZYX)", "ZYX"), ("2-D, plane by plane", "YX")):
            row = part[key]
            rows.append([label, str(row.get("batch_size", "–")),
                         _f(row.get("pixels_per_step"), 0), _f(row.get("masked_fraction"), 2),
                         _f(row["psnr"]), _f(row["train_seconds"], 0)])
        self.add(*_table(["network", "batch", "pixels per step", "masked fraction", "PSNR (dB)",
                          "training (s)"], rows))
        # The earlier run (before the corrected reference) trained the 3-D network while other
        # benchmarks shared the machine; the re-run trained both on a quiet one.
        if not part.get("reference"):
            self.add("", "The two trainings ran at different loads of the shared machine (the "
                     "3-D one while other benchmarks ran), so their seconds are not the cost "
                     "ratio of the two networks.")
        self._reference_caveat(part, "1.05")
        self._volume_seeds(part)

    def _volume_seeds(self, part: dict[str, Any]) -> None:
        """Every training seed's 3-D and plane-by-plane PSNR, and the spread of the gain."""
        runs = {"0": {k: part[k] for k in ("ZYX", "YX")}, **(part.get("seeds") or {})}
        complete = {s: r for s, r in runs.items() if "ZYX" in r and "YX" in r}
        if len(complete) < 2:
            return
        gains = [r["ZYX"]["psnr"] - r["YX"]["psnr"] for r in complete.values()]
        self.add("Training seeds (initial weights and patch draws), same data:", "")
        self.add(*_table(["seed", "3-D (dB)", "plane by plane (dB)", "3-D − plane by plane"],
                         [[s, _f(r["ZYX"]["psnr"]), _f(r["YX"]["psnr"]),
                           _f(r["ZYX"]["psnr"] - r["YX"]["psnr"], suffix=" dB")]
                          for s, r in sorted(complete.items(), key=lambda i: int(i[0]))]))
        verdict = "✓" if min(gains) > 0 else "✗ **does not hold on every seed:**"
        self.add(f"- {verdict} the 3-D network beats plane by plane: "
                 f"{np.mean(gains):+.2f} dB on the mean of {len(gains)} seeds (seed SD of the "
                 f"difference {np.std(gains, ddof=1):.2f} dB, smallest {min(gains):+.2f} dB).",
                 "")

    def _ratio(self, part: dict[str, Any]) -> None:
        names = {"independent": "independent", "joint": "joint",
                 "joint_without_large_scales": "joint, network's large scales"}
        modes = [m for m in names if m in part]
        if not modes:
            return
        self.add("## Context: channel ratios, independent against joint channels", "",
                 "Simulated two-channel images (256², round objects with their own true ratio "
                 "of channel 1 to channel 0 between 0.4 and 1.6, 15 peak photons in channel 0, "
                 "the simulated camera). Noise2Void trained on 6 images with the channels as "
                 "separate images, and once with both channels through one network, "
                 f"{part.get('steps') or 'default'} steps each; 4 other images scored. Per "
                 "object found by the ratio check: the true relative error of the output's "
                 "ratio; the change the check reports without ground truth (output ratio "
                 "against the measured one); the check's standard error of the measured ratio "
                 "(noise model, delta method) and how often the true error fell inside the "
                 "reported interval, change ± 1.96 standard errors (nominal "
                 f"{100 * part.get('nominal_coverage', 0.95):.0f} %); the slope of the true "
                 "relative error against the true ratio (negative: ratios pulled towards "
                 "their mean). Joint channels as shipped give each channel the measurement's "
                 "large scales back (a 4-pixel blur of the residual added, "
                 "`infocus.intensity.restore_large_scales`; the blur was chosen on four other "
                 "images); the last column is the same network without that step.", "")
        rows = [("objects scored", "objects", 0),
                ("true relative ratio error, RMS", "rms_true_relative_error", 3),
                ("true relative ratio error, mean (bias)", "mean_true_relative_error", 3),
                ("reported relative change, RMS", "rms_reported_relative_change", 3),
                ("reported relative change, mean", "mean_reported_relative_change", 3),
                ("correlation of reported and true, per object", "correlation", 2),
                ("reported standard error, RMS (relative)", "rms_relative_standard_error", 3),
                ("true error inside the reported interval", "coverage", 2),
                ("slope of true error against true ratio", "shrinkage_slope", 3),
                ("PSNR (dB)", "psnr", 2)]
        self.add(*_table(["", *(names[m] for m in modes)],
                         [[label, *(_f(part[m].get(key), digits) for m in modes)]
                          for label, key, digits in rows]))
        self._reference_caveat(part, "1.6")  # the ratios themselves do not depend on the scale
        checks = []
        independent, joint = part.get("independent") or {}, part.get("joint") or {}
        if "rms_true_relative_error" in independent and "rms_true_relative_error" in joint:
            ok = joint["rms_true_relative_error"] <= independent["rms_true_relative_error"]
            checks.append(f"- {'✓' if ok else '✗ **does not hold:**'} joint channels keep "
                          f"the ratios at least as well as independent ones (true error RMS "
                          f"{_f(joint['rms_true_relative_error'], 3)} against "
                          f"{_f(independent['rms_true_relative_error'], 3)})")
        nominal = part.get("nominal_coverage", 0.95)
        for mode in ("independent", "joint"):
            figures = part.get(mode) or {}
            if "coverage" not in figures or not figures.get("objects"):
                continue
            # Two binomial standard deviations of a share over this many objects.
            spread = 2 * np.sqrt(nominal * (1 - nominal) / figures["objects"])
            ok = abs(figures["coverage"] - nominal) <= spread
            close = abs(figures["rms_relative_standard_error"]
                        / figures["rms_true_relative_error"] - 1) <= 0.2
            checks.append(f"- {'✓' if ok and close else '✗ **does not hold:**'} {mode}: the "
                          f"reported interval held the true error for "
                          f"{100 * figures['coverage']:.0f} % of objects (nominal "
                          f"{100 * nominal:.0f} % ± {100 * spread:.0f}), and the reported "
                          f"standard error (RMS {_f(figures['rms_relative_standard_error'], 3)})"
                          f" is within 20 % of the true error (RMS "
                          f"{_f(figures['rms_true_relative_error'], 3)})")
        if checks:
            self.add("What the issue expects, checked against the numbers above:", "", *checks,
                     "")

    def _rcan(self, part: dict[str, Any]) -> None:
        runs = part.get("runs") or {}
        if not any(runs.values()):
            return
        size = part.get("size") or 256
        self.add("## Context: 3D-RCAN against CARE's U-Net", "",
                 "Supervised CARE (`-m care`, its defaults: 16 patches of 64² per step, cosine "
                 "schedule) with only the network changed: the default U-Net (16 first-level "
                 "filters) or 3D-RCAN's residual channel-attention network with its defaults "
                 "(`--network rcan`: 3 groups of 2 blocks, 32 channels, attention over a local "
                 f"window), {part.get('steps')} steps each, for training seeds "
                 f"{', '.join(map(str, part.get('seeds') or sorted(runs, key=int)))} (initial "
                 "weights and patch draws). Data: "
                 f"the embedded sample's four quadrants ({size}²) under the simulated camera at "
                 f"{_f(part.get('photons'), 0)} peak photons; three train, the bottom-right one "
                 f"is scored (noisy: {_f(part.get('psnr_noisy'))} dB). Both networks of one "
                 "seed ran back to back, yet the load of the shared 2-core machine changed "
                 "between and during runs (the 1-minute load average at the start and the end "
                 "of each run is given): the seconds hold only at that load, and the timing in "
                 "alternation after the table, where both networks see the same load, is the "
                 "fairer cost ratio. Steps per second are the whole training call (validation "
                 "included) divided by the steps, prediction the best of three `denoise` calls "
                 f"on the {size}² quadrant (the whole call, not only the network).", "")
        self._network_pairs(part)
        volume = _get(self.suite("context"), "rcan3d") or {}
        if not any((volume.get("runs") or {}).values()):
            return
        shape = "×".join(map(str, volume.get("shape", ())))
        self.add("### In 3-D", "",
                 f"The same comparison with the 3-D networks on simulated Z-stacks ({shape}, "
                 f"blobs over about three planes, {_f(volume.get('photons'), 0)} peak photons, "
                 f"the simulated camera; the volumes of the 3-D Noise2Void section): CARE "
                 f"trained on {volume.get('training_volumes')} volumes, a further one scored "
                 f"(noisy: {_f(volume.get('psnr_noisy'))} dB), {volume.get('steps')} steps of "
                 "one 16×64×64 patch (the 2-D runs' pixels per step), prediction timed on the "
                 "scored volume. A modest budget, since 3-D steps are slow on 2 cores: it ranks "
                 "the networks at this budget only.", "")
        self._network_pairs(volume)
        self._shorter_budget(_get(self.suite("context"), "rcan3d_short") or {})
        self._reference_caveat(volume, "1.05")

    def _shorter_budget(self, part: dict[str, Any]) -> None:
        """The 3-D pair at an earlier, shorter budget: how the gap moves with the steps."""
        pairs = [(row["unet"]["psnr"], row["rcan"]["psnr"])
                 for row in (part.get("runs") or {}).values()
                 if "psnr" in row.get("unet", {}) and "psnr" in row.get("rcan", {})]
        if not pairs:
            return
        unet, rcan = (float(np.mean(v)) for v in zip(*pairs, strict=True))
        self.add(f"At a shorter budget ({part.get('steps')} steps, {len(pairs)} seeds, an "
                 "earlier run against the earlier clean reference, which biases both columns "
                 f"alike) the U-Net reached {_f(unet)} dB and RCAN {_f(rcan)} dB "
                 f"({_f(rcan - unet)} dB).", "")

    def _network_pairs(self, part: dict[str, Any]) -> None:
        """Per-seed table of the U-Net and RCAN runs of ``part``, the spread and the cost."""
        runs = part.get("runs") or {}
        reference, other = "unet", "rcan"
        seeds = sorted(runs, key=int)
        body, pairs = [], []
        for seed in seeds:
            row = runs[seed]
            u, r = row.get(reference) or {}, row.get(other) or {}
            both = "psnr" in u and "psnr" in r
            if both:
                pairs.append((u, r))
            body.append([seed, _f(u.get("psnr")), _f(r.get("psnr")),
                         _f(r["psnr"] - u["psnr"]) if both else "–",
                         _f(u.get("steps_per_second")), _f(r.get("steps_per_second")),
                         _f(u.get("predict_seconds"), 3), _f(r.get("predict_seconds"), 3),
                         _load(u), _load(r)])
        if len(pairs) > 1:
            for label, reduce in (("mean", np.mean), ("SD", lambda v: np.std(v, ddof=1))):
                columns = [[p[0]["psnr"] for p in pairs], [p[1]["psnr"] for p in pairs],
                           [p[1]["psnr"] - p[0]["psnr"] for p in pairs]]
                body.append([f"**{label}**", *(f"**{_f(float(reduce(c)))}**" for c in columns),
                             *[""] * 6])
        self.add(*_table(["seed", "U-Net PSNR (dB)", "RCAN PSNR (dB)", "RCAN − U-Net (dB)",
                          "U-Net steps/s", "RCAN steps/s", "U-Net predict (s)",
                          "RCAN predict (s)", "load, U-Net run", "load, RCAN run"], body))
        sizes = {name: next((row[name].get("parameters") for row in runs.values()
                             if name in row), None) for name in (reference, other)}
        precisions = sorted({str(row[name]["precision"]) for row in runs.values()
                             for name in (reference, other)
                             if row.get(name, {}).get("precision")})
        trained_in = (f" Training ran in {', '.join(precisions)} (the machine's default)."
                      if precisions else "")
        self.add(f"Parameters: U-Net {_f(sizes[reference], 0)}, RCAN {_f(sizes[other], 0)}."
                 + trained_in, "")
        missing = [str(seed) for seed in part.get("seeds", seeds)
                   if not all(n in (runs.get(str(seed)) or {}) for n in (reference, other))]
        if missing:
            self.add(f"Not measured yet: seed {', '.join(missing)}.", "")
        if not pairs:
            return
        speed = [p[1]["steps_per_second"] / p[0]["steps_per_second"] for p in pairs]
        predict = [p[1]["predict_seconds"] / p[0]["predict_seconds"] for p in pairs]
        cost = (f"- Cost, each pair run back to back: RCAN trains at {_f(float(np.mean(speed)))}× "
                f"the U-Net's steps per second (per seed {', '.join(_f(v) for v in speed)}) "
                f"and takes {_f(float(np.mean(predict)), 1)}× its prediction time (per seed "
                f"{', '.join(_f(v, 1) for v in predict)}), with "
                f"{_f(sizes[other] / sizes[reference], 1)}× its parameters.")
        interleaved = part.get("interleaved") or {}
        if "step_time_ratio" in interleaved:
            shape = "×".join(map(str, interleaved.get("predict_shape", ())))
            batch = "×".join(map(str, interleaved.get("batch", ())))
            cost += (f" Timed in alternation instead ({interleaved.get('rounds')} rounds of "
                     f"{interleaved.get('steps_per_round')} steps of each network in turn, so "
                     "both see the same load; load "
                     f"{_load(interleaved)}): one training step (forward, backward and Adam "
                     f"on a {batch} batch in float32; no data sampling or validation) takes "
                     f"{_f(interleaved['step_time_ratio'], 1)}× the U-Net's time, one forward "
                     f"pass on {shape} {_f(interleaved['predict_time_ratio'], 1)}× (medians of "
                     "the per-round ratios; U-Net "
                     f"{_f(float(np.median(interleaved['unet']['step_seconds'])), 3)} s per "
                     "step, RCAN "
                     f"{_f(float(np.median(interleaved['rcan']['step_seconds'])), 3)} s). The "
                     "whole-call ratios above include what these leave out: the validation "
                     "passes of training, and all that `denoise` does beyond one forward pass.")
        if len(pairs) < 2:
            self.add("One seed per network: no seed spread to compare with.", "", cost, "")
            return
        unet = np.array([p[0]["psnr"] for p in pairs])
        rcan = np.array([p[1]["psnr"] for p in pairs])
        difference = float(rcan.mean() - unet.mean())
        spread = float(np.std(unet, ddof=1))
        # The standard error of the difference of the two means over independent seeds.
        error = float(np.sqrt(np.var(unet, ddof=1) / len(unet)
                              + np.var(rcan, ddof=1) / len(rcan)))
        ok = difference >= -spread
        verdict = ("better than the U-Net" if difference > 0 else
                   "within the U-Net's seed spread") if ok else "below the U-Net's seed spread"
        self.add("What the issue expects, checked against the numbers above:", "",
                 f"- {'✓' if ok else '✗ **does not hold:**'} RCAN within the U-Net's seed "
                 f"spread or better: the mean of RCAN ({_f(float(rcan.mean()))} dB) minus the "
                 f"mean of the U-Net ({_f(float(unet.mean()))} dB) is {_f(difference)} dB "
                 f"against the U-Net's seed standard deviation of {_f(spread)} dB "
                 f"({len(pairs)} seeds; standard error of the difference {_f(error)} dB): "
                 f"{verdict}.", cost, "")

    def _captures(self, part: dict[str, Any]) -> None:
        rows = part.get("configurations") or {}
        if not rows:
            return
        columns = [("noisy (1 capture)", "noisy"), ("mean of 4", "mean_of_captures"),
                   ("BM3D on the mean", "bm3d_on_mean"),
                   ("deepcad: network alone", "deepcad_network_only"),
                   ("+ fusion", "deepcad_no_averaging"), ("+ averaging", "deepcad_no_fusion"),
                   ("**deepcad** (both)", "deepcad"), ("train (s)", "train_seconds"),
                   ("predict (s)", "predict_seconds")]
        steps = sorted({int(r.get("steps", 0)) for r in rows.values()})
        self.add("## Context: four captures of one view as a 4-frame stack", "",
                 "FMD test_mix: each configuration's four noisy captures form one stack "
                 f"(TYX, 4×{_shape_text(part)}); `deepcad` trains on that stack alone with its "
                 f"defaults ({'/'.join(map(str, steps))} steps; `infocus denoise stack.tif --axes "
                 "TYX -m deepcad`) and gives one output per capture, scored against the ground "
                 "truth (peak 255, clamped). Every method in the table sees the same four "
                 "captures: their mean, BM3D on the mean (σ from the captures' sample variance "
                 "/ 4), and deepcad's network alone, with the pixel fusion only, with the frame "
                 "averaging only and with both (the default) are measured in the same run. The "
                 "published four-capture anchor is Noise2Noise trained on FMD's training set "
                 "and applied to 4-capture averages: 37.06 dB over the 48 test_mix outputs "
                 "(docs/benchmarks.md, published numbers).", "")
        body = [[name, *(_f(r.get(key), 1 if "seconds" in key else 2) for _, key in columns)]
                for name, r in rows.items()]
        means = [_f(float(np.mean([r[key] for r in rows.values() if key in r])),
                    1 if "seconds" in key else 2) for _, key in columns]
        body.append([f"**mean over {len(rows)} configurations**", *means])
        self.add(*_table(["configuration", *(label for label, _ in columns)], body))
        self._captures_blind_spot(rows)

    def _captures_blind_spot(self, shipped: dict[str, Any]) -> None:
        probe = (_get(self.suite("context"), "captures_blind_spot", "configurations") or {})
        rows = [[name, _f(shipped.get(name, {}).get("deepcad")), _f(r.get("blind_spot")),
                 _f(r["blind_spot"] - shipped[name]["deepcad"])
                 if "deepcad" in shipped.get(name, {}) else "–",
                 _f(shipped.get(name, {}).get("noisy"))] for name, r in probe.items()]
        if not rows:
            return
        from infocus.noise.correlation import describe_pattern

        widened = {name: describe_pattern(r["hidden_pattern"]) for name, r in probe.items()
                   if r.get("hidden_pattern")}
        unmeasured = [name for name, r in probe.items() if "hidden_pattern" not in r]
        self.add("", "The same stacks with the variant that also sees the frame through blind "
                 "spots (`-p own_frame=blind_spot`, defaults otherwise), on some "
                 "configurations: which variant static repeated captures want. "
                 + ("Where the noise is correlated between neighbouring pixels the blind spots "
                    "hide the correlated neighbours too, as `n2v`'s do ("
                    + ", ".join(f"{name}: {what}" for name, what in widened.items()) + "). "
                    if widened else "")
                 + (f"{', '.join(unmeasured)}: measured before the blind spots could widen "
                    "(one-pixel blind spots). " if unmeasured else "")
                 + "".join(f"{name} was re-measured later ({r.get('cpu', 'another CPU')}, "
                           f"training in {r['precision']}) beside the shipped column of the "
                           "first run. " for name, r in probe.items()
                           if r.get("precision") not in (None, "float32")), "")
        self.add(*_table(["configuration", "deepcad (shipped)", "deepcad, own frame with blind "
                          "spots", "difference", "noisy"], rows))

    def _drift(self, part: dict[str, Any]) -> None:
        speeds = part.get("speeds") or {}
        if not speeds:
            return
        self.add("## Context: a moving scene", "",
                 "Simulated time-lapses (12 frames of 128², blobs moving diagonally at a fixed "
                 "speed, 8 peak photons, the simulated camera). `deepcad` (each frame from its "
                 "four nearest frames, `-p own_frame=hidden`; with the frame itself seen through "
                 "blind spots, `-p own_frame=blind_spot`; and the default, `own_frame=auto`, "
                 "which picks one of the two, or the frame alone through blind spots "
                 "(`-p own_frame=alone`, Noise2Void frame by frame), from the motion it measures "
                 "at fit time: the decorrelation 1 − C₂/C₁ of frames two and one apart, with its "
                 "standard error; the frame hidden while the scene reads static (at most 0.1, or "
                 "its interval of two standard errors reaching 0), seen through blind spots "
                 "once it changes measurably, seen alone above 0.7) "
                 "against Noise2Void frame by frame (one model for all frames, each denoised "
                 "alone), same steps and patches "
                 f"({part.get('steps') or 'default'} steps), all trained on the stack itself; "
                 "PSNR (dB) against the clean frames (the noisy stack's expectation, its "
                 "brightest pixel at 8 photons).", "")

        def measured(v: dict[str, Any]) -> str:
            error = v.get("decorrelation_error")
            return _f(v.get("decorrelation")) + (f" ± {error:.2f}" if error else "")

        self.add(*_table(["motion (px/frame)", "noisy", "N2V, frame by frame",
                          "deepcad, frame hidden", "deepcad, own frame with blind spots",
                          "deepcad, auto (default)", "measured decorrelation", "auto chose"],
                         [[k, _f(v.get("noisy")), _f(v.get("n2v")), _f(v.get("deepcad")),
                           _f(v.get("deepcad_blind_spot")), _f(v.get("deepcad_auto")),
                           measured(v), v.get("auto_choice") or "–"]
                          for k, v in sorted(speeds.items(), key=lambda kv: float(kv[0]))]))

    def _drift_seeds(self, curve: dict[str, Any], part: dict[str, Any]) -> None:
        """auto − N2V per speed over the curve's scene and the seed spread's scenes."""
        scenes: dict[str, dict[str, Any]] = {}
        if curve.get("steps") == part.get("steps"):
            # the curve is scene 0, trained with the same steps and seed 0
            scenes["0"] = curve.get("speeds") or {}
        scenes.update(part.get("scenes") or {})
        speeds = sorted({k for rows in list(scenes.values())[1:] for k in rows}, key=float)
        if len(scenes) < 2 or not speeds:
            return
        self.add("### Over scenes and seeds", "",
                 "The curve's methods on more scenes drifting at the "
                 "same speeds (scene seeds "
                 f"{', '.join(k for k in scenes if k != '0')}; each its own scene, noise draw "
                 "and training seed; scene 0 is the curve above), same steps "
                 f"({part.get('steps') or 'default'}). Difference auto − N2V in dB per scene, "
                 "its mean over the scenes ± their standard deviation, and whether auto holds "
                 "N2V's level (≥ 0) on the mean and in each scene.", "")
        names = list(scenes)
        body = []
        for speed in speeds:
            rows = {name: scenes[name].get(speed) or {} for name in names}
            gaps = {name: r["deepcad_auto"] - r["n2v"] for name, r in rows.items()
                    if "deepcad_auto" in r and "n2v" in r}
            values = list(gaps.values())
            mean = float(np.mean(values)) if values else None
            spread = f" ± {np.std(values, ddof=1):.2f}" if len(values) > 1 else ""
            held = sum(v >= 0 for v in values)
            verdict = "–" if mean is None else (
                f"{'yes' if mean >= 0 else '**no**'} on the mean; {held} of {len(values)} "
                "scenes")
            choices = sorted({r["auto_choice"] for r in rows.values() if r.get("auto_choice")})
            body.append([speed, *(_f(gaps.get(name), 2) for name in names),
                         (_f(mean) + spread) if mean is not None else "–", verdict,
                         ", ".join(choices) or "–"])
        self.add(*_table(["motion (px/frame)", *(f"scene {name}" for name in names),
                          "mean ± sd", "auto ≥ N2V", "auto chose"], body))
        self._drift_means(scenes, speeds)

    def _drift_means(self, scenes: dict[str, dict[str, Any]], speeds: list[str]) -> None:
        """Each method's PSNR averaged over the scenes that measured all of them."""
        labels = [("n2v", "N2V, frame by frame"), ("deepcad", "deepcad, frame hidden"),
                  ("deepcad_blind_spot", "deepcad, own frame with blind spots"),
                  ("deepcad_auto", "deepcad, auto (default)")]
        body = []
        for speed in speeds:
            rows = [scene[speed] for scene in scenes.values()
                    if all(key in scene.get(speed, {}) for key, _ in labels)]
            if len(rows) < 2:
                continue
            means = {key: float(np.mean([row[key] for row in rows])) for key, _ in labels}
            best = max(("deepcad", "deepcad_blind_spot"), key=means.__getitem__)
            body.append([speed, str(len(rows)), *(_f(means[key]) for key, _ in labels),
                         f"{means['deepcad_auto'] - means[best]:+.2f}"])
        if not body:
            return
        self.add("Each method's PSNR (dB) averaged over the scenes that measured all four; "
                 "the last column is auto against the better of the two neighbour variants "
                 "(negative: auto's choice cost that much on average).", "")
        self.add(*_table(["motion (px/frame)", "scenes", *(name for _, name in labels),
                          "auto − better variant"], body))

    # ------------------------------------------------------------------------- transfer
    def transfer(self) -> None:
        part = _get(self.suite("transfer"), "fine_tune") or {}
        pairs = {k: v for k, v in (part.get("pairs") or {}).items()
                 if isinstance(v.get("scratch"), dict) and isinstance(v.get("fine_tuned"), dict)}
        if not pairs:
            return
        steps = part.get("steps")
        self.add("## Fine-tuning a trained model against training from scratch", "",
                 "A Noise2Void model trained with the defaults on one FMD configuration's four "
                 "test_mix captures (the *source*) is fine-tuned on another configuration's four "
                 "captures (the *target*) with the fine-tuning defaults (`infocus train n2v "
                 "TARGET --init MODEL`: a quarter of the steps at a tenth of the learning rate), "
                 "with and without `--freeze encoder`, and the same steps at the method's "
                 "own learning rate, beside Noise2Void trained on the target "
                 f"from scratch ({steps or 'default'} steps) and the source model applied as it "
                 "is (zero-shot). All self-supervised on the noisy captures; the ground truth "
                 "only scores. Final PSNR: FMD's protocol (clamped, peak 255), mean over the "
                 "four captures. Curves: the full prediction's PSNR (range of the ground truth) "
                 f"at every validation, every {part.get('epoch_steps')} steps.", "")
        body = []
        for name, row in pairs.items():
            scratch, tuned = row["scratch"], row["fine_tuned"]
            frozen = row.get("fine_tuned_frozen") or {}
            full_rate = row.get("fine_tuned_full_rate") or {}
            body.append([name.replace(" -> ", " → "), _f(row.get("noisy")),
                         _f(row.get("zero_shot")),
                         f"{_f(scratch.get('psnr'))} ({scratch.get('steps')} steps, "
                         f"{_seconds(scratch.get('train_seconds'))})",
                         f"{_f(tuned.get('psnr'))} ({tuned.get('steps')} steps, "
                         f"{_seconds(tuned.get('train_seconds'))})",
                         _reached(tuned.get("reaches_scratch_at"), scratch.get("steps")),
                         _f(frozen.get("psnr")) if frozen else "–",
                         _reached(frozen.get("reaches_scratch_at"), scratch.get("steps"))
                         if frozen else "–",
                         _f(full_rate.get("psnr")) if full_rate else "–",
                         _reached(full_rate.get("reaches_scratch_at"), scratch.get("steps"))
                         if full_rate else "–"])
        self.add(*_table(["source → target", "noisy", "zero-shot", "from scratch",
                          "fine-tuned", "fine-tuned reaches scratch's final PSNR at",
                          "fine-tuned, encoder frozen", "frozen reaches it at",
                          "fine-tuned at the method's learning rate", "that reaches it at"],
                         body))

        def draw(fig: Any) -> None:
            axes = fig.subplots(1, len(pairs), squeeze=False)[0]
            for ax, (name, row) in zip(axes, pairs.items(), strict=True):
                for label, key in (("from scratch", "scratch"), ("fine-tuned", "fine_tuned"),
                                   ("fine-tuned, encoder frozen", "fine_tuned_frozen"),
                                   ("fine-tuned, method's learning rate",
                                    "fine_tuned_full_rate"),
                                   ("fine-tuned, as many steps as scratch",
                                    "fine_tuned_long")):
                    curve = np.asarray((row.get(key) or {}).get("curve") or [], dtype=float)
                    if curve.size:
                        ax.plot(curve[:, 0], curve[:, 1], marker=".", label=label)
                ax.set(title=name.replace(" -> ", " → "), xlabel="training steps",
                       ylabel="PSNR (dB)")
                ax.legend(fontsize=8)

        self.figure("fine-tune", draw, (5.5 * len(pairs), 3.6),
                    "PSNR against training steps, fine-tuned and from scratch")
        for name, row in pairs.items():
            longer = row.get("fine_tuned_long")
            if isinstance(longer, dict):
                reached = longer.get("reaches_scratch_at")
                curve, scratch_curve = longer.get("curve") or [], row["scratch"].get("curve") or []
                best = max((v for _, v in curve), default=None)
                final = scratch_curve[-1][1] if scratch_curve else None
                self.add(f"{name.replace(' -> ', ' → ')}, fine-tuned with the defaults but as "
                         f"many steps as from scratch ({longer.get('steps')}): "
                         f"{_f(longer.get('psnr'))} dB against scratch's "
                         f"{_f(row['scratch'].get('psnr'))}; "
                         + (f"its curve reaches scratch's final PSNR at "
                            f"{_reached(reached, row['scratch'].get('steps'))}."
                            if reached is not None else
                            f"its curve never reaches scratch's final PSNR (at best "
                            f"{_f(best)} dB against {_f(final)})."), "")
        loads = [row[k].get("load_average") for row in pairs.values()
                 for k in ("scratch", "fine_tuned") if isinstance(row.get(k), dict)]
        loads = [v for v in loads if v is not None]
        if loads:
            self.add(f"Training seconds at machine loads {min(loads):.1f}–{max(loads):.1f} "
                     "(the 2 cores were shared with other jobs), so they are indicative; the "
                     "step counts are the cost measure.", "")

    # ------------------------------------------------------------------------- joint tasks
    def joint(self) -> None:
        suite = self.suite("joint") or {}
        deco = _get(suite, "deconoising") or {}
        self._deconoising(deco)
        self._deconoising_mean([deco, *_repeats(suite, "deconoising_seed").values()])
        repeats = _repeats(suite, "denoiseg_seed")
        self._denoiseg(_get(suite, "denoiseg") or {}, repeats or {"denoiseg_seed1": {}})
        self._denoiseg_real(_get(suite, "denoiseg_dsb") or {})

    def _denoiseg(self, seg: dict[str, Any], repeats: dict[str, dict[str, Any]]) -> None:
        counts = sorted((k for k in seg if k.isdigit()), key=int)
        if not counts:
            return
        profile_name = _get(self.data, "profile", "name") or ""
        unmeasured = _unmeasured_counts(seg, profile_name)
        options = seg.get("scheme_options") or {}
        sampling = ("" if not options else
                    f" DenoiSeg draws {options['labelled_fraction']:g} of every batch from the "
                    "labelled images (the rest from all images) and weighs its denoising term "
                    "back to the labelled share of the training pixels, and both networks "
                    f"weigh the border class {options['border_weight']:g}× in the "
                    "cross-entropy; objects are seeded at object probability "
                    f"{options['threshold']:g}.")
        self.add("## Joint tasks: DenoiSeg", "",
                 f"Simulated nuclei (128², touching ellipses of varied brightness, 8 photons at "
                 f"the brightest): {seg['train_images']} training images of which some carry "
                 f"instance masks, {seg['test_images']} test images no method trains on; every "
                 f"network trained {seg['steps']} steps. Average precision at IoU 0.5 on the "
                 "test images (TP / (TP + FP + FN)). *Segmentation only*: the same network "
                 "trained on the labelled images alone with the segmentation loss only; "
                 "*N2V + watershed*: Otsu threshold and distance-transform watershed on N2V's "
                 f"output, no labels used.{sampling}", "")
        self.add(*_table(["labelled images", "DenoiSeg", "segmentation only",
                          "N2V + watershed"],
                         [[k, _f(seg[k]["denoiseg"], 3), _f(seg[k]["segmentation_only"], 3),
                           _f(seg.get("n2v_watershed"), 3)] for k in counts]))
        self.add(*[_beats_both(k, seg) for k in counts], "")
        if unmeasured or seg.get("n2v_watershed_provenance"):
            missing = ", ".join(unmeasured)
            self.add(("Not measured with these settings yet: " + missing + " labelled images. "
                      if missing else "")
                     + (f"N2V + watershed comes from {seg['n2v_watershed_provenance']}."
                        if seg.get("n2v_watershed_provenance") else ""), "")
        for name, other in repeats.items():
            self._denoiseg_repeat(name, other, {*counts, *unmeasured}, profile_name)
        self._denoiseg_mean([seg, *repeats.values()])
        self._denoiseg_psnr([seg, *repeats.values()])

    def _denoiseg_real(self, seg: dict[str, Any]) -> None:
        """The curve on real nuclei (the DSB2018 tiles), or why it is missing."""
        if seg.get("skipped"):
            self.add(f"DenoiSeg on real nuclei was not measured: {seg['skipped']}", "")
            return
        counts = sorted((k for k in seg if k.isdigit()), key=int)
        if not counts:
            return
        self.add("The same curve on real nuclei: the stardist DSB2018 image with its "
                 f"instance masks, imaged by the simulated camera at {seg['photons']:g} "
                 "photons at the brightest pixel and cut into 16 tiles of 128², "
                 f"{seg['train_images']} for training and {seg['test_images']} for testing "
                 "(one image: a check on real shapes, not a spread):", "")
        self.add(*_table(["labelled tiles", "DenoiSeg", "segmentation only", "N2V + watershed",
                          "DenoiSeg denoised − N2V (dB)"],
                         [[k, _f(seg[k]["denoiseg"], 3), _f(seg[k]["segmentation_only"], 3),
                           _f(seg.get("n2v_watershed"), 3),
                           f"{seg[k]['denoiseg_psnr'] - seg['n2v_psnr']:+.2f}"
                           if "denoiseg_psnr" in seg[k] and "n2v_psnr" in seg else "–"]
                          for k in counts]))
        self.add(*[_beats_both(k, seg).replace(" image ", " tile ").replace(" images ",
                                                                            " tiles ")
                   for k in counts], "")

    def _denoiseg_psnr(self, curves: list[dict[str, Any]]) -> None:
        """DenoiSeg's denoised image against N2V's on the same test images, mean over the
        curves that scored both."""
        curves = [c for c in curves if c.get("n2v_psnr") is not None]
        counts = sorted({k for c in curves for k in c if k.isdigit()}, key=int)
        counts = [k for k in counts if all("denoiseg_psnr" in c.get(k, {}) for c in curves)]
        if not curves or not counts:
            return
        n2v = float(np.mean([c["n2v_psnr"] for c in curves]))
        self.add(f"The denoised image: PSNR (dB) on the test images against the noise-free "
                 f"image, mean over {len(curves)} curve(s); N2V trained on the same images "
                 "with the same steps:", "")
        self.add(*_table(["labelled images", "DenoiSeg", "N2V", "difference"],
                         [[k, _f(float(np.mean([c[k]["denoiseg_psnr"] for c in curves])), 2),
                           _f(n2v, 2),
                           f"{float(np.mean([c[k]['denoiseg_psnr'] for c in curves])) - n2v:+.2f}"]
                          for k in counts]))

    def _denoiseg_repeat(self, name: str, other: dict[str, Any], planned: set[str],
                         profile_name: str) -> None:
        """One repeat of the curve on other scenes and another training seed."""
        repeats = sorted((k for k in planned if k in other), key=int)
        if repeats:
            self.add("The same curve on other scenes (other training and test images) and "
                     f"another training seed ({other.get('seed')}), for the spread:", "")
            self.add(*_table(["labelled images", "DenoiSeg", "segmentation only",
                              "N2V + watershed"],
                             [[k, _f(other[k]["denoiseg"], 3),
                               _f(other[k]["segmentation_only"], 3),
                               _f(other.get("n2v_watershed"), 3)] for k in repeats]))
            self.add(*[_beats_both(k, other) for k in repeats], "")
        missing = sorted({*planned, *_unmeasured_counts(other, profile_name)} - set(repeats),
                         key=int)
        if missing:
            self.add("Not measured yet on other scenes and another training seed (part "
                     f"{name}): {', '.join(missing)} labelled images.", "")

    def _denoiseg_mean(self, curves: list[dict[str, Any]]) -> None:
        """The mean over every curve that holds a label count (and N2V + watershed): the
        verdict that does not hang on one draw of the labelled images."""
        curves = [c for c in curves if c.get("n2v_watershed") is not None]
        counts = sorted({k for c in curves for k in c if k.isdigit()}, key=int)
        counts = [k for k in counts if all(k in c for c in curves)]
        if len(curves) < 2 or not counts:
            return
        mean = {k: {"denoiseg": float(np.mean([c[k]["denoiseg"] for c in curves])),
                    "segmentation_only": float(np.mean([c[k]["segmentation_only"]
                                                        for c in curves]))} for k in counts}
        mean["n2v_watershed"] = float(np.mean([c["n2v_watershed"] for c in curves]))
        wins = {k: sum(c[k]["denoiseg"] > max(c[k]["segmentation_only"], c["n2v_watershed"])
                       for c in curves) for k in counts}
        self.add(f"Mean over the {len(curves)} curves (each its own scenes and training "
                 "seed), and in how many of them DenoiSeg beats both baselines:", "")
        self.add(*_table(["labelled images", "DenoiSeg", "segmentation only",
                          "N2V + watershed", "DenoiSeg beats both"],
                         [[k, _f(mean[k]["denoiseg"], 3), _f(mean[k]["segmentation_only"], 3),
                           _f(mean["n2v_watershed"], 3), f"{wins[k]} of {len(curves)}"]
                          for k in counts]))
        self.add(*[_beats_both(k, mean).replace("with ", "on the mean, with ", 1)
                   for k in counts], "")

    def _deconoising(self, deco: dict[str, Any]) -> None:
        if not deco or not deco.get("levels"):
            return
        optics = deco.get("optics", {})
        self.add("## Joint tasks: DecoNoising", "",
                 "Simulated widefield scenes (256², isolated beads of FWHM 1.65 px and thin "
                 "filaments) blurred by a known PSF (Gaussian approximation for NA "
                 f"{optics.get('na')}, {optics.get('wavelength'):g} nm, "
                 f"{1000 * optics.get('pixel_size', 0):g} nm pixels: FWHM 4.3 px) and imaged "
                 f"by the simulated camera; {deco['images']} scenes per photon level, N2V and "
                 f"DecoNoising trained {deco['steps']} steps each on the noisy scenes "
                 "themselves. Richardson–Lucy (scikit-image) runs on N2V's output with the "
                 "same PSF, with 10/30/100 iterations and with the count that is best against "
                 "the truth (an oracle: a user has no truth to pick it). FWHM: median over the "
                 "beads of a fitted Gaussian, in pixels.", "")
        levels = deco["levels"]
        header = ["", *[f"{float(k):g} photons" for k in levels]]
        rows = [
            ("**deconvolution**, PSNR vs unblurred truth (dB)", None),
            ("DecoNoising, deconvolved output, predicted once", "deconv_psnr_deconoising"),
            ("N2V + RL 10 iterations", "deconv_psnr_n2v_rl10"),
            ("N2V + RL 30 iterations", "deconv_psnr_n2v_rl30"),
            ("N2V + RL 100 iterations", "deconv_psnr_n2v_rl100"),
            ("N2V + RL, oracle iterations", "deconv_psnr_n2v_rl_oracle"),
            ("**bead FWHM** (px; truth 1.65, blurred 4.59)", None),
            ("DecoNoising, deconvolved output, predicted once", "fwhm_deconoising"),
            ("N2V (not deconvolved)", "fwhm_n2v"),
            ("N2V + RL 30 iterations", "fwhm_n2v_rl30"),
            ("N2V + RL 100 iterations", "fwhm_n2v_rl100"),
            ("N2V + RL, oracle iterations", "fwhm_n2v_rl_oracle"),
            ("**denoising**, PSNR vs blurred truth (dB)", None),
            ("noisy input", "denoise_psnr_noisy"),
            ("N2V", "denoise_psnr_n2v"),
            ("DecoNoising, re-blurred output", "denoise_psnr_deconoising"),
        ]
        if any("deconv_psnr_deconoising_tta" in level for level in levels.values()):
            rows += [
                ("**with test-time augmentation** (mean over 8 flips/rotations; "
                 "DecoNoising's default)", None),
                ("DecoNoising deconvolved, PSNR", "deconv_psnr_deconoising_tta"),
                ("N2V + RL 30 iterations, PSNR", "deconv_psnr_n2v_rl30_tta"),
                ("N2V + RL oracle iterations, PSNR", "deconv_psnr_n2v_rl_oracle_tta"),
                ("DecoNoising deconvolved, FWHM", "fwhm_deconoising_tta"),
                ("N2V + RL 30 iterations, FWHM", "fwhm_n2v_rl30_tta"),
                ("N2V, denoising PSNR", "denoise_psnr_n2v_tta"),
                ("DecoNoising re-blurred, denoising PSNR", "denoise_psnr_deconoising_tta"),
            ]
        self.add(*_table(header, [[label, *(_f(levels[k].get(key)) if key else ""
                                            for k in levels)] for label, key in rows]))

    def _deconoising_mean(self, parts: list[dict[str, Any]]) -> None:
        """The mean over the scene sets that hold every photon level, and in how many sets
        DecoNoising's deconvolved output beats N2V + RL with 30 and with the oracle's
        iterations."""
        parts = [p for p in parts if p.get("levels")]
        photons = sorted({k for p in parts for k in p["levels"]}, key=float)
        photons = [k for k in photons if all(k in p["levels"] for p in parts)]
        if len(parts) < 2 or not photons:
            return

        def mean(level: str, key: str) -> float | None:
            values = [p["levels"][level].get(key) for p in parts]
            return None if None in values else float(np.mean(values))

        def wins(level: str, ours: str, theirs: str, lower: bool = False) -> str:
            pairs = [(p["levels"][level].get(ours), p["levels"][level].get(theirs))
                     for p in parts]
            if any(None in pair for pair in pairs):
                return "–"
            return str(sum((a < b) if lower else (a > b) for a, b in pairs))

        rows = [("deconvolved PSNR (dB): DecoNoising", "deconv_psnr_deconoising"),
                ("N2V + RL 30 iterations", "deconv_psnr_n2v_rl30"),
                ("N2V + RL, oracle iterations", "deconv_psnr_n2v_rl_oracle"),
                ("bead FWHM (px): DecoNoising", "fwhm_deconoising"),
                ("N2V + RL 30 iterations", "fwhm_n2v_rl30"),
                ("denoising PSNR (dB): DecoNoising re-blurred", "denoise_psnr_deconoising"),
                ("N2V", "denoise_psnr_n2v")]
        header = ["", *(f"{float(k):g} photons{tag}" for k in photons
                        for tag in ("", ", TTA"))]
        table = [[label, *(_f(mean(k, key + tag)) for k in photons for tag in ("", "_tta"))]
                 for label, key in rows]
        table += [[f"DecoNoising better than {name}, sets of {len(parts)}",
                   *(wins(k, ours + tag, theirs + tag, lower) for k in photons
                     for tag in ("", "_tta"))]
                  for name, ours, theirs, lower in (
                      ("N2V + RL 30 (PSNR)", "deconv_psnr_deconoising",
                       "deconv_psnr_n2v_rl30", False),
                      ("N2V + RL oracle (PSNR)", "deconv_psnr_deconoising",
                       "deconv_psnr_n2v_rl_oracle", False),
                      ("N2V + RL 30 (FWHM)", "fwhm_deconoising", "fwhm_n2v_rl30", True),
                      ("N2V (denoising PSNR)", "denoise_psnr_deconoising", "denoise_psnr_n2v",
                       False))]
        self.add(f"Mean over {len(parts)} scene sets ({parts[0].get('images')} scenes each; "
                 "each set its own scenes and training seed), without and with test-time "
                 "augmentation (TTA: both networks averaged over the 8 flips and rotations, "
                 "Richardson–Lucy on N2V's averaged output; DecoNoising predicts so by "
                 "default, `--no-tta` predicts once):", "")
        self.add(*_table(header, table))

        def gap(level: str, ours: str, theirs: str) -> float | None:
            a, b = mean(level, ours), mean(level, theirs)
            return None if a is None or b is None else a - b

        lines = []
        for k in photons:
            psnr_30 = gap(k, "deconv_psnr_deconoising_tta", "deconv_psnr_n2v_rl30_tta")
            psnr_best = gap(k, "deconv_psnr_deconoising_tta", "deconv_psnr_n2v_rl_oracle_tta")
            fwhm = gap(k, "fwhm_deconoising_tta", "fwhm_n2v_rl30_tta")
            if None in (psnr_30, psnr_best, fwhm):
                continue
            ok = psnr_30 > 0 and psnr_best > 0 and fwhm < 0
            lines.append(
                f"- {'✓' if ok else '✗ **does not hold:**'} at {float(k):g} photons "
                f"DecoNoising's default output is closer to the truth than N2V + RL: PSNR "
                f"{psnr_30:+.2f} dB against 30 iterations, {psnr_best:+.2f} dB against the "
                f"oracle's count; bead FWHM {fwhm:+.2f} px against 30 iterations")
        self.add(*lines, "")

    def build(self) -> str:
        self.header()
        self.overview_figure()
        for section in (self.fmd, self.simulated, self.bsd68, self.w2s, self.convallaria,
                        self.probabilistic, self.qc, self.joint, self.context, self.transfer,
                        self.precision,
                        self.peers,
                        self.published,
                        self.roofline,
                        self.scaling):
            section()
        return "\n".join(self.lines).rstrip() + "\n"


def _add_means(suites: dict[str, Any]) -> None:
    """Means over the rows of per-configuration tables, where the published numbers are means
    (context captures: over the 12 FMD configurations, i.e. the 48 outputs)."""
    rows = _get(suites, "context", "captures", "configurations") or {}
    if rows:
        keys = {k for r in rows.values() for k, v in r.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
        suites["context"]["captures"]["mean"] = {
            k: float(np.mean([r[k] for r in rows.values() if k in r])) for k in sorted(keys)}


def _difference_error(row: dict[str, Any]) -> float | None:
    """Standard error of a precision row's difference of means over its seeds (None: one)."""
    seeds = list((row.get("seeds") or {}).values())
    if len(seeds) < 2:
        return None
    spread = [float(np.var([s[p] for s in seeds], ddof=1)) for p in ("float32", "bfloat16")]
    return float(np.sqrt(sum(spread) / len(seeds)))


def _load(run: dict[str, Any]) -> str:
    """The 1-minute load average at the start and the end of a run, as ``start–end``."""
    if "load_average_before" not in run:
        return "–"
    after = run.get("load_average_after")
    return _f(run["load_average_before"], 1) + ("" if after is None else f"–{after:.1f}")


def _reached(step: int | None, scratch_steps: int | None) -> str:
    """When a fine-tuned curve first reached the from-scratch final PSNR, as a share of the
    from-scratch steps."""
    if step is None:
        return "not within its steps"
    share = f" ({step / scratch_steps:.0%} of scratch's steps)" if scratch_steps else ""
    return f"step {step}{share}"


def _shape_text(part: dict[str, Any]) -> str:
    shape = part.get("shape")
    return "×".join(map(str, shape)) if shape else "512×512"


def _atomic_figure(fig: Any, path: Path) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(handle)
    try:
        fig.savefig(temporary, dpi=90)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write(results_path: Path, docs: Path | None = None) -> Path:
    """Render ``results_path`` into ``docs`` (default docs/benchmarks.md), atomically."""
    docs = docs or DOCS
    results = json.loads(Path(results_path).read_text())
    text = Report(results, Path(results_path).resolve(), docs.resolve()).build()
    docs.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=docs.parent, prefix=f".{docs.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.replace(temporary, docs)
    return docs
