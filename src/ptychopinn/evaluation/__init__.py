"""Evaluation of reconstructions against a reference (SPEC §7).

Pure numpy: registration (:mod:`.registration`), image metrics (:mod:`.metrics`), Fourier ring
correlation (:mod:`.frc`), quality against wall time of iterative snapshots (:mod:`.snapshots`)
and the ``compare`` writer (:mod:`.compare`, the only module that writes files). This
subpackage depends on no other part of ptychopinn.
"""

from __future__ import annotations

from ptychopinn.evaluation.compare import (
    CANONICAL_MODEL_NAMES,
    canonical_model_name,
    compare_reconstructions,
)
from ptychopinn.evaluation.frc import FRC_HALF, FRC_ONE_SEVENTH, frc, frc_crossing
from ptychopinn.evaluation.metrics import (
    METRIC_NAMES,
    PARTS,
    evaluate,
    evaluate_aligned,
    mae,
    ms_ssim,
    mse,
    part_images,
    psnr,
    psnr255,
    ssim,
)
from ptychopinn.evaluation.registration import (
    AlignedPair,
    align_to_reference,
    register_translation,
    remove_phase_offset,
    scale_amplitude,
    scanned_region,
    shift_image,
)
from ptychopinn.evaluation.snapshots import Trajectory, load_snapshots, time_to_reach, trajectory

__all__ = [
    "CANONICAL_MODEL_NAMES",
    "FRC_HALF",
    "FRC_ONE_SEVENTH",
    "METRIC_NAMES",
    "PARTS",
    "AlignedPair",
    "Trajectory",
    "align_to_reference",
    "canonical_model_name",
    "compare_reconstructions",
    "evaluate",
    "evaluate_aligned",
    "frc",
    "frc_crossing",
    "load_snapshots",
    "mae",
    "ms_ssim",
    "mse",
    "part_images",
    "psnr",
    "psnr255",
    "register_translation",
    "remove_phase_offset",
    "scale_amplitude",
    "scanned_region",
    "shift_image",
    "ssim",
    "time_to_reach",
    "trajectory",
]
