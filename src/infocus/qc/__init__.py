"""Trust without ground truth: how good a denoised image is, and where not to believe it.

:func:`quality_check` runs every check on one noisy image and one output and returns a
:class:`QualityReport` (its ``to_dict()`` is the JSON summary of ``infocus qc``);
:func:`write_report` writes the report folder (JSON, TIFF maps, an HTML page with figures).
The checks are also usable on their own: :func:`estimate_mse` (``infocus.qc.risk``),
:func:`check_consistency` (``infocus.qc.consistency``), :func:`check_disagreement`
(``infocus.qc.disagreement``: a trained model's output against a classical one) and
:func:`check_intensity` (``infocus.qc.intensity``). :func:`choose_denoiser` (``infocus.qc.choose``) runs several
denoisers and keeps the output with the best estimated PSNR (``infocus denoise --method auto``).
"""

from infocus.qc.choose import Choice, choose_denoiser, parse_budget
from infocus.qc.consistency import Consistency, check_consistency
from infocus.qc.disagreement import Disagreement, check_disagreement
from infocus.qc.intensity import IntensityCheck, check_intensity, segment_objects
from infocus.qc.quality import QC_FORMAT, Check, QualityReport, quality_check
from infocus.qc.risk import RiskEstimate, estimate_mse, estimated_psnr

__all__ = [
    "QC_FORMAT",
    "Check",
    "Choice",
    "Consistency",
    "Disagreement",
    "IntensityCheck",
    "QualityReport",
    "RiskEstimate",
    "check_consistency",
    "check_disagreement",
    "check_intensity",
    "choose_denoiser",
    "estimate_mse",
    "estimated_psnr",
    "parse_budget",
    "quality_check",
    "segment_objects",
]
