"""Image-quality metrics: MSE, PSNR, SSIM and CARE's scale-invariant PSNR."""

from infocus.metrics.evaluate import METRICS, evaluate
from infocus.metrics.quality import affine_fit, mse, psnr, si_psnr, ssim

__all__ = ["METRICS", "affine_fit", "evaluate", "mse", "psnr", "si_psnr", "ssim"]
