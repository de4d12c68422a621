"""The report folder of ``infocus qc``: JSON summary, TIFF maps and an HTML page with figures.

Layout (all written under a temporary name, then renamed, so a failure leaves nothing)::

    REPORT_DIR/
        qc.json          the summary (QualityReport.to_dict)
        flags.tif        uint8, non-zero exactly where the output should not be trusted
                         (1: disagrees with the measurement, 2: object intensity changed,
                         4: channel ratio changed, 8: differs from the classical reference)
        consistency.tif  float32, the residual z-score map (negative: output brighter)
        disagreement.tif with a classical reference: float32, the z-score map of the output
                         against it (negative: output brighter; NaN: plane not compared)
        objects.tif      the objects of the intensity check (labels)
        overview.png     noisy, denoised, consistency map, objects, and the disagreement map
                         with a classical reference (error map with a GT)
        profile.png      with a ground truth: a line profile through the strongest disagreement
        report.html      the page a person reads
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from infocus.qc.figures import display_range
from infocus.qc.quality import DISAGREEMENT_BIT, QualityReport, channel_planes

__all__ = ["QC_MARKER", "write_report"]

#: The summary file that marks a folder as a qc report (so ``--overwrite`` may replace it).
QC_MARKER = "qc.json"


def write_report(
    report: QualityReport,
    noisy: np.ndarray,
    denoised: np.ndarray,
    folder: str | os.PathLike[str],
    *,
    ground_truth: np.ndarray | None = None,
    overwrite: bool = False,
    title: str = "Denoising quality check",
) -> Path:
    """Write the report folder of ``report`` (see the module notes) atomically.

    Parameters
    ----------
    report : QualityReport
        From :func:`~infocus.qc.quality_check` on ``noisy`` and ``denoised``.
    noisy, denoised : ndarray
        The images the report is about (shown in the figures).
    folder : path
        The folder to create.
    ground_truth : ndarray, optional
        Shown as an error map when given.
    overwrite : bool
        Replace an existing report folder.
    title : str
        Heading of the page (e.g. the file names).

    Returns
    -------
    Path
        The folder written.
    """
    from infocus.io import Image, write_image
    from infocus.io._atomic import atomic_output

    path = Path(folder)
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.mkdir()
        summary = report.to_dict()
        summary["files"] = {"flags": "flags.tif", "consistency": "consistency.tif",
                            "objects": "objects.tif", "page": "report.html",
                            "overview": "overview.png"}
        if ground_truth is not None:
            summary["files"]["profile"] = "profile.png"
        if report.disagreement is not None:
            summary["files"]["disagreement"] = "disagreement.tif"
        (tmp / QC_MARKER).write_text(json.dumps(summary, indent=2) + "\n")
        write_image(tmp / "flags.tif", Image(report.flags, report.axes), dtype="uint8")
        write_image(tmp / "consistency.tif", Image(report.consistency.z, report.axes))
        if report.disagreement is not None:
            write_image(tmp / "disagreement.tif", Image(report.disagreement.z, report.axes))
        labels = report.intensity.labels
        write_image(tmp / "objects.tif", Image(labels, report.axes),
                    dtype="uint16" if labels.max() < 2**16 else "float32")
        plane = _shown_plane(report)
        _overview_figure(report, noisy, denoised, ground_truth, plane, tmp / "overview.png")
        if ground_truth is not None:
            _profile_figure(report, noisy, denoised, ground_truth, plane, tmp / "profile.png")
        (tmp / "report.html").write_text(_page(report, summary, plane, title), encoding="utf-8")
    return path


def _shown_plane(report: QualityReport) -> int:
    """The YX plane the figures show: the one with the most flags, else the middle one of
    those compared with the classical reference (all planes without one)."""
    flags = channel_planes(report.flags, report.axes)
    counts = (flags > 0).sum(axis=(1, 2))
    if counts.any():
        return int(np.argmax(counts))
    candidates = np.arange(flags.shape[0])
    if report.disagreement is not None:
        compared = np.isfinite(channel_planes(report.disagreement.z, report.axes)).all(
            axis=(1, 2))
        candidates = candidates[compared]
    return int(candidates[len(candidates) // 2])


def _overview_figure(report: QualityReport, noisy: np.ndarray, denoised: np.ndarray,
                     truth: np.ndarray | None, plane: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    def show(array: np.ndarray) -> np.ndarray:
        return channel_planes(array, report.axes)[plane]

    y, f = show(noisy), show(denoised)
    low, high = display_range(f)
    z = show(report.consistency.z)
    flags = show(report.flags)
    labels = show(report.intensity.labels)
    disagreement = report.disagreement
    panels = 4 + (disagreement is not None) + (truth is not None)
    figure, axes = plt.subplots(1, panels, figsize=(4 * panels, 4.4), constrained_layout=True)
    axes[0].imshow(y, cmap="gray", vmin=low, vmax=high)
    axes[0].set_title("noisy")
    axes[1].imshow(f, cmap="gray", vmin=low, vmax=high)
    distrust = ndimage.binary_dilation(flags > 0, iterations=2)
    overlay = np.zeros(f.shape + (4,))
    overlay[distrust] = (1.0, 0.0, 1.0, 0.45)
    axes[1].imshow(overlay)
    axes[1].set_title("denoised (magenta: do not trust)" if distrust.any() else "denoised")
    limit = max(report.consistency.threshold * 1.5, 1.0)
    shown = axes[2].imshow(z, cmap="RdBu", vmin=-limit, vmax=limit)
    if (flags & 1).any():
        axes[2].contour(flags & 1, levels=[0.5], colors="black", linewidths=1.5)
    axes[2].set_title("consistency z (blue: output darker)")
    figure.colorbar(shown, ax=axes[2], shrink=0.8)
    axes[3].imshow(f, cmap="gray", vmin=low, vmax=high)
    if labels.any():
        axes[3].contour(labels > 0, levels=[0.5], colors="yellow", linewidths=0.6)
    if (flags & 2).any():
        axes[3].contour(flags & 2, levels=[0.5], colors="red", linewidths=1.2)
    axes[3].set_title("objects (red: intensity changed)")
    if disagreement is not None:
        _disagreement_panel(figure, axes[4], report, show(disagreement.z), flags)
    if truth is not None:
        error = f - show(truth)
        spread = float(np.percentile(np.abs(error), 99.5)) or 1.0
        shown = axes[-1].imshow(error, cmap="RdBu_r", vmin=-spread, vmax=spread)
        axes[-1].set_title("denoised − ground truth")
        figure.colorbar(shown, ax=axes[-1], shrink=0.8)
    for axis in axes:
        axis.set_axis_off()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _disagreement_panel(figure: Any, axis: Any, report: QualityReport, z: np.ndarray,
                        flags: np.ndarray) -> None:
    """The z-score map of the output against the classical reference, flags outlined."""
    name = _reference_method(report)
    if not np.isfinite(z).any():
        axis.text(0.5, 0.5, "plane not compared\n(the reference ran on a sample of planes)",
                  ha="center", va="center", transform=axis.transAxes)
        axis.set_title(f"against {name}")
        return
    limit = max(report.disagreement.threshold * 1.5, 1.0)
    shown = axis.imshow(z, cmap="RdBu", vmin=-limit, vmax=limit)
    if (flags & DISAGREEMENT_BIT).any():
        axis.contour(flags & DISAGREEMENT_BIT, levels=[0.5], colors="black", linewidths=1.5)
    axis.set_title(f"against {name}, z (blue: output darker)")
    figure.colorbar(shown, ax=axis, shrink=0.8)


def _reference_method(report: QualityReport) -> str:
    """The classical reference's name as the disagreement check recorded it."""
    check = next((c for c in report.checks if c.name == "disagreement"), None)
    method = check.figures.get("reference") if check is not None else None
    return method or "the classical reference"


def _profile_row(report: QualityReport, plane: int) -> int:
    """The row the line profile follows: through the strongest consistency z-score."""
    z = np.abs(channel_planes(report.consistency.z, report.axes)[plane])
    return int(np.unravel_index(np.argmax(z), z.shape)[0])


def _profile_figure(report: QualityReport, noisy: np.ndarray, denoised: np.ndarray,
                    truth: np.ndarray, plane: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    row = _profile_row(report, plane)
    figure, axis = plt.subplots(figsize=(12, 3), constrained_layout=True)
    for array, label, style in ((noisy, "noisy", dict(color="0.7", lw=0.8)),
                                (truth, "ground truth", dict(color="black", lw=1.2)),
                                (denoised, "denoised", dict(color="tab:red", lw=1.2))):
        axis.plot(channel_planes(array, report.axes)[plane][row], label=label, **style)
    axis.set(xlabel="column (pixels)", ylabel="intensity",
             title=f"line profile along row {row} (through the strongest disagreement)")
    axis.legend(fontsize=8)
    figure.savefig(path, dpi=90)
    plt.close(figure)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
.verdict { padding: 0.8em 1.2em; border-radius: 6px; font-size: 1.2em; }
.ok { background: #e3f4e1; } .bad { background: #fbe3e0; }
.psnr { font-size: 2.2em; font-weight: bold; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }
img { max-width: 100%; }
.small { color: #555; font-size: 0.9em; }
"""


def _page(report: QualityReport, summary: dict[str, Any], plane: int, title: str) -> str:
    psnr, low, high = report.psnr
    verdict = ("bad", "Do not trust everything: " + "; ".join(
        c.summary for c in report.checks if not c.passed) + ".") if report.flagged else (
        "ok", "No check failed: the output is consistent with the measurement.")
    rows = "".join(
        f"<tr><td>{html.escape(c.name)}</td><td>{'passed' if c.passed else 'FAILED'}</td>"
        f"<td>{html.escape(c.summary)}</td></tr>" for c in report.checks)
    truth = ""
    bounds = report.risk.method == "bounds"
    if report.truth is not None:
        truth = ("<h2>Against the ground truth</h2><table><tr><th></th><th>estimate</th>"
                 "<th>true</th></tr>"
                 f"<tr><td>PSNR (dB)</td><td>{'at least ' * bounds}{_number(psnr)}</td>"
                 f"<td>{_number(report.truth['psnr'])}</td></tr>"
                 f"<tr><td>MSE</td><td>{'at most ' * bounds}{_number(report.risk.mse)}</td>"
                 f"<td>{_number(report.truth['mse'])}</td></tr>"
                 f"<tr><td>SSIM</td><td></td><td>{report.truth['ssim']:.4f}</td></tr></table>"
                 '<img src="profile.png" alt="line profile: noisy, ground truth, denoised">')
    noise = "".join(f"<li>{html.escape(_noise_text(p))}</li>" for p in summary["noise"])
    if report.noise_correlation_share is not None:
        noise += ("<li>The noise is correlated between neighbouring pixels: the estimate "
                  f"measured {100 * report.noise_correlation_share:.0f} % of its variance "
                  "through high-pass filters and was corrected for that (it may still read "
                  "the variance somewhat low).</li>")
    flagged = report.intensity.flagged_objects[:20]
    objects = ""
    if flagged:
        objects = ("<h2>Objects whose intensity changed</h2><table><tr><th>object</th>"
                   "<th>pixels</th><th>measured</th><th>denoised</th><th>change</th>"
                   "<th>z</th></tr>" + "".join(
                       f"<tr><td>{o.label}</td><td>{o.pixels}</td><td>{o.measured:.4g}</td>"
                       f"<td>{o.denoised:.4g}</td><td>{100 * o.relative_change:+.1f} %</td>"
                       f"<td>{o.z:+.1f}</td></tr>" for o in flagged) + "</table>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="psnr">{"PSNR at least" if report.risk.method == "bounds" else "Estimated PSNR"} {_number(psnr)} dB</p>
<p>{"Between" if report.risk.method == "bounds" else "95 % interval"} {_number(low)} and {_number(high)} dB, from {html.escape(_method_text(report))}
(peak {report.data_range:.4g}).</p>
<p class="verdict {verdict[0]}">{html.escape(verdict[1])}</p>
<h2>Checks</h2><table><tr><th>check</th><th>result</th><th>finding</th></tr>{rows}</table>
<img src="overview.png" alt="{_overview_text(report)}">
<p class="small">Shown: YX plane {plane} of {report.axes} {tuple(report.flags.shape)}.
Consistency: the residual (noisy − denoised) averaged over windows of 3 to 31 pixels and divided
by its noise, a z-score; black outlines mark windows beyond {report.consistency.threshold:.2f}
(family-wise error {100 * _share(report):.3g} % over {report.consistency.tests} tests).
Objects: integrated intensity of each object in the output against the measurement, flagged
beyond the noise of the sum and by more than 5 %.</p>
{_disagreement_text(report)}{objects}{truth}
<h2>Noise model</h2><ul>{noise}</ul>
<p class="small">Files: qc.json (this summary), flags.tif (1: disagrees with the measurement,
2: object intensity changed, 4: channel ratio changed, 8: differs from the classical reference),
consistency.tif, objects.tif{", disagreement.tif" if report.disagreement is not None else ""}.</p>
</body></html>
"""


def _overview_text(report: QualityReport) -> str:
    """The overview figure's panels in words (its alt text)."""
    panels = ["noisy", "denoised", "consistency map", "objects"]
    if report.disagreement is not None:
        panels.append(f"disagreement map against {_reference_method(report)}")
    return html.escape(", ".join(panels[:-1]) + " and " + panels[-1])


def _share(report: QualityReport) -> float:
    """The family-wise error of each map-drawing test (they split ``alpha`` equally)."""
    return report.alpha / (2 + (report.ratio_flags is not None)
                           + (report.disagreement is not None))


def _disagreement_text(report: QualityReport) -> str:
    result = report.disagreement
    if result is None:
        return ""
    figures = next(c for c in report.checks if c.name == "disagreement").figures
    where = "of the image"
    if figures["planes_compared"] < figures["planes"]:
        where = (f"of the {figures['planes_compared']} of {figures['planes']} planes compared "
                 "(the reference ran on an evenly spaced sample; NaN in disagreement.tif)")
    return (f'<p class="small">Disagreement: the output minus '
            f"{html.escape(_reference_method(report))}'s output with automatic parameters, in "
            f"units of the noise, averaged over windows of 3 to 31 pixels and standardised by its "
            f"robust spread over the image (disagreement.tif, flags bit 8); windows beyond "
            f"{result.threshold:.2f} are flagged (family-wise error {100 * _share(report):.3g} % "
            f"over {result.tests} tests): {100 * result.flagged_fraction:.2g} % {where}. A "
            "flag says the two differ beyond chance, not which one is right.</p>\n")


def _method_text(report: QualityReport) -> str:
    text = {"sure": "SURE (the denoiser was run again)",
            "second capture": "other captures of the scene (Noise2Noise identity)",
            "bounds": "the output and the noise model alone (bounds; give the denoiser or "
                      "another capture for an estimate)"}.get(report.risk.method,
                                                                report.risk.method)
    return f"{text}; {report.risk.note}" if report.risk.note else text


def _noise_text(params: dict[str, Any]) -> str:
    intercept = params["variance_intercept"]
    sign = "−" if intercept < 0 else "+"
    return f"variance = {params['gain']:.4g} × signal {sign} {abs(intercept):.4g}"


def _number(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "∞"
