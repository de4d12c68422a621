"""Benchmark profiles: how much of each dataset, which methods and what training budget.

* ``tiny``: seconds; a test runs it so the runner cannot rot (numbers mean nothing).
* ``quick``: ``make bench``, under 30 minutes on 2 CPU cores; subsets of every dataset, a
  quarter of the shipped training budget (300 steps) on three FMD configurations, one photon
  level, short peer runs.
* ``full``: ``make bench-full``, every image and method, shipped defaults, several hours on
  2 CPU cores; the noise-model methods see three FMD configurations (one per microscope,
  those where N2V trails BM3D most), since all twelve take six more hours.

A suite reads only the fields it needs; every figure in the results JSON carries the budget
it was measured with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CLASSICAL_2D = ("gaussian", "median", "nl_means", "tv", "wavelet", "bm3d")
LEARNED = ("n2v", "n2v2", "n2s", "n2n", "care", "care-split")


@dataclass(frozen=True)
class Profile:
    """Sizes and budgets of one benchmark run (see the module docstring)."""

    name: str
    #: Central crop edge applied to every image (None: whole images).
    crop: int | None = None
    # --- classical ------------------------------------------------------------------------
    classical_methods: tuple[str, ...] = CLASSICAL_2D
    #: FMD captures per configuration (1..4) and which configurations (empty: all 12).
    fmd_captures: int = 4
    fmd_configurations: tuple[str, ...] = ()
    bsd68_images: int | None = None
    w2s_images: int | None = None
    photon_levels: tuple[float, ...] = (5.0, 20.0, 100.0)
    # --- learned --------------------------------------------------------------------------
    learned_methods: tuple[str, ...] = LEARNED
    #: Optimizer steps per training run (None: the shipped defaults).
    learned_steps: int | None = None
    #: FMD configurations trained on (empty: all 12), and datasets beyond FMD.
    learned_fmd_configurations: tuple[str, ...] = ()
    learned_datasets: tuple[str, ...] = ("fmd", "simulated", "convallaria", "bsd68", "w2s",
                                         "fmd-halves")
    #: Configurations of the FMD held-out-half comparison (every method trained per
    #: configuration on the top halves of the captures, scored on the bottom halves).
    learned_fmd_halves_configurations: tuple[str, ...] = (
        "Confocal_BPAE_G", "Confocal_FISH", "TwoPhoton_BPAE_B", "WideField_BPAE_G")
    # --- probabilistic (noise-model methods beside N2V) -----------------------------------
    probabilistic_methods: tuple[str, ...] = ("n2v", "pn2v", "divnoising")
    probabilistic_steps: int | None = None
    probabilistic_datasets: tuple[str, ...] = ("defaults", "simulated", "emccd", "w2s", "fmd")
    #: FMD configurations of the probabilistic suite, in the order they run (empty: all 12).
    probabilistic_fmd_configurations: tuple[str, ...] = ()
    # --- qc (ground-truth-free estimates and flags) ----------------------------------------
    qc_parts: tuple[str, ...] = ("page", "planted", "simulated", "fmd", "auto", "good_outputs",
                                 "simulated_large")
    #: Photon levels of the estimates on 512² scenes (part "simulated_large").
    qc_large_photon_levels: tuple[float, ...] = (5.0, 100.0)
    #: Scenes per photon level for the estimates, and seeds per level for the planted defects.
    qc_images: int = 4
    qc_defect_seeds: int = 20
    #: Training steps of the N2V and CARE models whose estimates are checked.
    qc_steps: int = 400
    qc_fmd_configurations: tuple[str, ...] = ()
    #: ``--method auto`` measured (part "auto"): photon levels and crops of the embedded
    #: sample per level, crop edge, FMD captures (one per configuration, in order) and the
    #: time budget per image (0: classical candidates only).
    qc_auto_photon_levels: tuple[float, ...] = (5.0, 20.0, 100.0)
    qc_auto_scenes: int = 4
    qc_auto_crop: int = 256
    qc_auto_fmd_images: int = 12
    qc_auto_budget_seconds: float = 0.0
    # --- peers ----------------------------------------------------------------------------
    peer_methods: tuple[str, ...] = ("n2v", "n2v2", "care")
    peer_steps: int = 160
    # --- speed ----------------------------------------------------------------------------
    roofline_megapixels: float = 4.0
    #: Seconds per timed block and blocks per rate (best of), and whether to try torch.compile.
    timing_seconds: float = 1.5
    timing_repeats: int = 3
    roofline_compile: bool = True
    scaling_megapixels: tuple[float, ...] = (1.0, 4.0, 16.0, 64.0)
    #: Distributed prediction (dask): stack sizes and worker counts.
    scaling_workers_megapixels: tuple[float, ...] = (16.0, 64.0)
    #: Longest wait, before each distributed run, for the load left by the previous run's
    #: workers to fall below 1 (0: start at once).
    scaling_settle_seconds: float = 150.0
    scaling_workers: tuple[int, ...] = (1, 2, 4)
    #: Out-of-core stack: frames of 4096² uint16 (64 frames = 2 GiB) and the memory cap.
    out_of_core_frames: int = 64
    out_of_core_memory_gib: float = 1.5
    # --- context --------------------------------------------------------------------------
    #: Training steps of deepcad per FMD stack (None: the method's default) and which
    #: configurations (empty: all twelve); steps and scene speeds of the drift curve.
    context_steps: int | None = None
    context_configurations: tuple[str, ...] = ()
    #: Configurations on which deepcad's blind-spot variant is also measured (part
    #: ``captures_blind_spot``): one per microscope and the two weakest of the shipped variant.
    context_blind_spot_configurations: tuple[str, ...] = (
        "Confocal_BPAE_G", "TwoPhoton_BPAE_B", "WideField_BPAE_G", "Confocal_MICE")
    context_drift_steps: int | None = 400
    context_drift_speeds: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0)
    #: The drift curve's seed spread: more scenes (each its own noise draw and training seed;
    #: scene 0 is the curve's own) at these speeds, N2V and deepcad's default only.
    context_drift_seed_scenes: tuple[int, ...] = (1, 2)
    context_drift_seed_speeds: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0)
    #: Steps of the 3-D and plane-by-plane Noise2Void on simulated volumes (3-D steps are slow).
    context_volume_steps: int = 400
    #: Further training seeds of that comparison (seed 0 is its main row), for the spread.
    context_volume_seeds: tuple[int, ...] = (1, 2)
    #: TCZYX stacks whose prediction memory is measured: their time points, the edge of their
    #: planes (2 channels × 16 planes each), and the steps of the model that predicts them.
    context_spacetime_frames: tuple[int, ...] = (4, 8, 16, 32)
    context_spacetime_size: int = 128
    context_spacetime_steps: int = 20
    #: CARE with RCAN against CARE with the U-Net: steps per run, training seeds, and the edge
    #: of central crops of the sample's quadrants (None: the whole 256² quadrants).
    context_rcan_steps: int = 300
    context_rcan_seeds: tuple[int, ...] = (0, 1, 2)
    context_rcan_size: int | None = None
    #: The same in 3-D on the volume part's simulated Z-stacks: steps, seeds, plane crop edge.
    context_rcan3d_steps: int = 400
    context_rcan3d_seeds: tuple[int, ...] = (0, 1)
    context_rcan3d_size: int | None = None
    #: Rounds and steps per round of the interleaved timing of both networks, 2-D and 3-D.
    context_rcan_cost: dict[str, int] = field(default_factory=lambda: {"rounds": 5,
                                                                        "steps": 3})
    context_rcan3d_cost: dict[str, int] = field(default_factory=lambda: {"rounds": 3,
                                                                          "steps": 2})
    # --- transfer -------------------------------------------------------------------------
    #: Fine-tuning against training from scratch: (source, target) FMD configurations (another
    #: structure on the same microscope; the same kind of sample on another microscope; the
    #: first pair's target from the same structure on another microscope), the from-scratch
    #: steps (None: the method's default; fine-tuning takes its share of them), and the steps
    #: between two validations (the points of the curves).
    transfer_pairs: tuple[tuple[str, str], ...] = (("Confocal_BPAE_B", "Confocal_BPAE_G"),
                                                   ("Confocal_MICE", "TwoPhoton_MICE"),
                                                   ("TwoPhoton_BPAE_G", "Confocal_BPAE_G"))
    #: Pairs that are also fine-tuned (defaults otherwise) for as many steps as from scratch:
    #: when, if ever, the fine-tuned curve reaches the from-scratch result.
    transfer_long_pairs: tuple[tuple[str, str], ...] = (("TwoPhoton_BPAE_G", "Confocal_BPAE_G"),)
    transfer_steps: int | None = None
    transfer_epoch_steps: int = 50
    # --- precision ------------------------------------------------------------------------
    #: bfloat16 against float32 training: steps per run (None: each method's default) and the
    #: FMD configurations (one Noise2Void per configuration on its four captures).
    precision_steps: int | None = None
    precision_fmd_configurations: tuple[str, ...] = ("Confocal_MICE", "TwoPhoton_BPAE_R",
                                                     "WideField_BPAE_B")
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        crop=64,
        classical_methods=("gaussian", "median"),
        fmd_captures=1,
        fmd_configurations=("Confocal_BPAE_B", "WideField_BPAE_G"),
        bsd68_images=1,
        w2s_images=1,
        photon_levels=(20.0,),
        learned_methods=("n2v", "care"),
        learned_steps=4,
        learned_fmd_configurations=("Confocal_BPAE_B", "WideField_BPAE_G"),
        learned_datasets=("fmd", "simulated", "convallaria"),
        probabilistic_steps=4,
        probabilistic_datasets=("simulated", "emccd", "fmd"),
        probabilistic_fmd_configurations=("Confocal_BPAE_B",),
        qc_images=1,
        qc_defect_seeds=1,
        qc_steps=4,
        qc_large_photon_levels=(),
        qc_fmd_configurations=("Confocal_BPAE_B",),
        qc_auto_photon_levels=(20.0,),
        qc_auto_scenes=1,
        qc_auto_crop=64,
        qc_auto_fmd_images=1,
        peer_methods=("n2v",),
        peer_steps=2,
        roofline_megapixels=0.06,
        timing_seconds=0.1,
        timing_repeats=1,
        roofline_compile=False,
        scaling_megapixels=(0.06, 0.25),
        scaling_workers_megapixels=(0.25,),
        scaling_workers=(1, 2),
        scaling_settle_seconds=0.0,
        out_of_core_frames=2,
        out_of_core_memory_gib=1.5,
        context_steps=4,
        context_configurations=("Confocal_BPAE_B",),
        context_blind_spot_configurations=("WideField_BPAE_G",),
        context_drift_steps=4,
        context_drift_speeds=(1.0,),
        context_drift_seed_scenes=(1,),
        context_drift_seed_speeds=(1.0,),
        context_volume_steps=2,
        context_volume_seeds=(),
        context_spacetime_frames=(8,),
        context_spacetime_size=32,
        context_spacetime_steps=2,
        context_rcan_steps=2,
        context_rcan_seeds=(0,),
        context_rcan_size=96,
        context_rcan3d_steps=2,
        context_rcan3d_seeds=(0,),
        context_rcan3d_size=64,
        context_rcan_cost={"rounds": 1, "steps": 1},
        context_rcan3d_cost={"rounds": 1, "steps": 1},
        transfer_pairs=(("Confocal_BPAE_B", "WideField_BPAE_G"),),
        transfer_steps=8,
        transfer_long_pairs=(),
        transfer_epoch_steps=4,
        precision_steps=4,
        precision_fmd_configurations=("WideField_BPAE_B",),
    ),
    "quick": Profile(
        name="quick",
        fmd_captures=1,
        bsd68_images=8,
        w2s_images=6,
        photon_levels=(20.0,),
        learned_methods=("n2v", "care"),
        learned_steps=300,
        learned_fmd_configurations=("Confocal_MICE", "TwoPhoton_BPAE_R", "WideField_BPAE_B"),
        learned_datasets=("fmd", "simulated", "convallaria"),
        probabilistic_steps=300,
        probabilistic_datasets=("simulated", "emccd"),
        qc_auto_scenes=2,
        qc_auto_crop=128,
        qc_auto_fmd_images=6,
        peer_methods=("n2v",),
        peer_steps=40,
        roofline_megapixels=1.0,
        scaling_megapixels=(1.0, 4.0, 16.0),
        scaling_workers_megapixels=(16.0,),
        out_of_core_frames=8,
        context_steps=300,
        context_configurations=("Confocal_MICE", "TwoPhoton_BPAE_R", "WideField_BPAE_B"),
        context_blind_spot_configurations=("WideField_BPAE_B",),
        context_drift_steps=300,
        context_drift_speeds=(0.0, 2.0),
        context_drift_seed_scenes=(1,),
        context_drift_seed_speeds=(2.0,),
        context_volume_steps=100,
        context_volume_seeds=(),
        context_spacetime_frames=(4, 16),
        context_rcan_seeds=(0,),
        context_rcan3d_seeds=(0,),
        transfer_steps=400,
        transfer_long_pairs=(),
        precision_steps=100,
    ),
    "full": Profile(
        name="full",
        # N2V joins the candidates of --method auto when 4 minutes per image allow it.
        qc_auto_budget_seconds=240.0,
        # FMD first: it is saved configuration by configuration, W2S only as a whole.
        probabilistic_datasets=("defaults", "simulated", "emccd", "fmd", "w2s"),
        probabilistic_fmd_configurations=("Confocal_BPAE_B", "WideField_BPAE_G",
                                          "TwoPhoton_MICE"),
    ),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise SystemExit(f"Unknown profile {name!r}; choose {', '.join(PROFILES)}.") from None
