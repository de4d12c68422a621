"""Image-quality metrics (MSE, PSNR, SSIM, CARE's scale-invariant PSNR) and instance
segmentation scores (average precision at IoU thresholds)."""

from infocus.metrics.evaluate import METRICS, evaluate
from infocus.metrics.quality import affine_fit, mse, psnr, si_psnr, ssim
from infocus.metrics.segmentation import average_precision, iou_matrix

__all__ = ["METRICS", "affine_fit", "average_precision", "evaluate", "iou_matrix", "mse", "psnr",
           "si_psnr", "ssim"]
