"""Physics: patch extraction/placement, far-field propagation, forward model, noise."""

from __future__ import annotations

from ptychopinn.physics.forward import PtychoForward, forward_amplitude
from ptychopinn.physics.noise import amplitude_mae, poisson_nll, sample_poisson
from ptychopinn.physics.patches import extract_patches, place_patches, shift_image
from ptychopinn.physics.probe import normalize_probe, probe_norm_factor
from ptychopinn.physics.propagate import FarField, far_field, far_field_adjoint

__all__ = [
    "FarField",
    "PtychoForward",
    "amplitude_mae",
    "extract_patches",
    "far_field",
    "far_field_adjoint",
    "forward_amplitude",
    "normalize_probe",
    "place_patches",
    "poisson_nll",
    "probe_norm_factor",
    "sample_poisson",
    "shift_image",
]
