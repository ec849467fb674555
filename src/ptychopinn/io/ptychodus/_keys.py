"""HDF5 names of the Ptychodus 1.7 product and diffraction files (``ProductFileKeys`` /
``DiffractionFileKeys``), for validation messages and to tell a product's unknown root
attributes apart, without importing ``ptychodus``."""

from __future__ import annotations

# --- HDF5 names (Ptychodus 1.7 ``ProductFileKeys`` / ``DiffractionFileKeys``) -------------------
NAME = "name"
COMMENTS = "comments"
DETECTOR_OBJECT_DISTANCE = "detector_object_distance_m"
PHOTON_ENERGY = "photon_energy_eV"
LEGACY_PHOTON_ENERGY = "probe_energy_eV"
PROBE_PHOTON_COUNT = "probe_photon_count"
EXPOSURE_TIME = "exposure_time_s"
MASS_ATTENUATION = "mass_attenuation_m2_per_kg"
TOMOGRAPHY_ANGLE = "tomography_angle_deg"
FOCUS_OBJECT_DISTANCE = "focus_object_distance_m"
TILT_ANGLE = "tilt_angle_deg"
FAR_FIELD = "far_field"
POLARIZATION = "polarization"
PROBE = "probe"
OPR_WEIGHTS = "opr_weights"
POSITION_INDEXES = "probe_position_indexes"
POSITION_X = "probe_position_x_m"
POSITION_Y = "probe_position_y_m"
POSITION_PHOTON_COUNTS = "probe_photon_counts"
OBJECT = "object"
LAYER_SPACING = "object_layer_spacing_m"
LOSS_EPOCHS = "loss_epochs"
LOSS_VALUES = "loss_values"

KNOWN_ROOT_ATTRS = frozenset(
    {
        NAME,
        COMMENTS,
        DETECTOR_OBJECT_DISTANCE,
        PHOTON_ENERGY,
        LEGACY_PHOTON_ENERGY,
        PROBE_PHOTON_COUNT,
        EXPOSURE_TIME,
        MASS_ATTENUATION,
        TOMOGRAPHY_ANGLE,
        FOCUS_OBJECT_DISTANCE,
        TILT_ANGLE,
        FAR_FIELD,
        POLARIZATION,
    }
)

PATTERNS = "patterns"
INDEXES = "indexes"
DETECTOR_PIXEL_WIDTH = "detector_pixel_width_m"
DETECTOR_PIXEL_HEIGHT = "detector_pixel_height_m"
