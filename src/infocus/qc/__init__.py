"""Trust without ground truth: how good a denoised image is, estimated from the measurement and
its noise model (``infocus.qc.risk``)."""

from infocus.qc.risk import RiskEstimate, estimate_mse, estimated_psnr

__all__ = ["RiskEstimate", "estimate_mse", "estimated_psnr"]
