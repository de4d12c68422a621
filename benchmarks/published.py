"""Published numbers that our measurements are set beside, with their protocol and evidence.

Source: ``../shared/peers/published.md`` (tags: [P] paper/README, [P-run] the authors' executed
notebook or log, [S] quoted by a third party, [U] unverified). Each entry names where our
comparable number lives in a results file and how the protocols differ, so the report can
print them side by side without pretending they are the same experiment.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    benchmark: str
    method: str
    value: float
    tag: str
    source: str
    #: Path into the results JSON of our comparable figure: (suite, key, key, ...).
    ours: tuple[str, ...]
    our_method: str
    difference: str


PUBLISHED: tuple[Published, ...] = (
    Published(
        "FMD test_mix, 4 captures of a view used together, peak 255",
        "N2N U-Net on 4-capture averages", 37.06, "[P-run]",
        "ND-HowardGroup/Biophotonics_Congress_Conference_2020_code fig1_results_matlab_with_lr2.m",
        ("context", "captures", "mean", "deepcad"), "deepcad",
        "they train on FMD's training fields of view (all noise levels, GPU) and average 4 "
        "other captures of the 50; we train on each view's 4 test_mix captures alone (the "
        "shipped defaults, minutes on 2 CPU cores) and give one output per capture",
    ),
    Published(
        "BSD68 σ=25, peak 255", "BM3D", 28.57, "[P]", "cszn/DnCNN README",
        ("classical", "bsd68", "bm3d", "psnr"), "bm3d (σ given)",
        "same protocol (σ = 25 given, noisy data not clipped, peak 255)",
    ),
    Published(
        "BSD68 σ=25, peak 255", "N2V (authors' notebook)", 27.81, "[P-run]",
        "juglab/n2v BSD68_reproducibility.ipynb",
        ("learned", "bsd68", "n2v", "psnr"), "n2v",
        "they train 200 epochs × 400 steps × 128 patches on the 400 BSD training images (GPU, "
        "~6.5 h, 96-filter U-Net); we train the shipped 1200 steps × 16 patches on the 68 noisy "
        "test images themselves (minutes on 2 CPU cores, 16 filters)",
    ),
    Published(
        "BSD68 σ=25, peak 255", "N2V2 (authors' log, last weights)", 28.31, "[P-run]",
        "fmi-faim/N2V2_Experiments results_255_avg.csv",
        ("learned", "bsd68", "n2v2", "psnr"), "n2v2",
        "as for N2V above: their 80k steps on BSD400 vs our 1200 steps on the test images",
    ),
    Published(
        "FMD test_mix raw, peak 255", "noisy input", 27.22, "[S]",
        "FMD paper, quoted in MLI-lab/TTT_Denoising issue #1",
        ("classical", "fmd", "noisy input", "psnr"), "noisy input",
        "same 48 images and PSNR definition",
    ),
    Published(
        "FMD test_mix raw, peak 255", "VST+BM3D (roughly)", 32.5, "[U]",
        "FMD paper table, recalled (32–33 dB), not checked",
        ("classical", "fmd", "bm3d", "psnr"), "bm3d (VST, automatic)",
        "their noise parameters came from the dataset's calibration; ours are estimated from "
        "each image; the published value itself is unverified",
    ),
    Published(
        "FMD test_mix raw, peak 255", "DnCNN / N2N, supervised (roughly)", 36.0, "[U]",
        "FMD paper table, recalled (35.5–36.5 dB), not checked",
        ("learned", "fmd", "n2n", "psnr"), "n2n",
        "they train on FMD's training fields of view (19 per configuration, all noise levels, "
        "400 epochs on a GPU); our Noise2Noise trains per configuration on the 4 test captures "
        "only, with the shipped CPU budget; the published value is unverified",
    ),
    Published(
        "FMD Confocal_MICE raw, peak 255", "PN2V (calibrated noise model)", 38.18, "[P-run]",
        "juglab/pn2v examples/Mouse-3-Prediction.ipynb",
        ("learned", "fmd", "n2v", "per_configuration_psnr", "Confocal_MICE"), "n2v",
        "they test on the 50 captures of field of view 19 and train on 19 other fields of view "
        "with a noise model calibrated on raw/average pairs; we train on the 4 test_mix captures "
        "of one field of view, self-supervised",
    ),
)
