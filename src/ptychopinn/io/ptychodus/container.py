"""The Ptychodus product held in memory (:class:`PtychodusProduct`), validated on construction:
what :mod:`~ptychopinn.io.ptychodus.files` reads and writes through the ``ptychodus`` package."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ptychopinn.io.ptychodus import _keys as k

__all__ = ["PtychodusProduct"]


def empty_float() -> np.ndarray:
    """(0,) float64."""
    return np.zeros(0, dtype=np.float64)


def empty_int() -> np.ndarray:
    """(0,) int64."""
    return np.zeros(0, dtype=np.int64)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def as_int64(values: Any, key: str) -> np.ndarray:
    """``values`` as a read-only (n,) int64 copy; integral floats are accepted."""
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"{key!r}: expected a 1-D array, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)):
            raise ValueError(f"{key!r}: expected integers, got dtype {a.dtype}")
        if not np.all(a == np.round(a)):
            raise ValueError(f"{key!r}: expected integers, got non-integral values")
    return _frozen(np.array(a, dtype=np.int64, copy=True))


def as_float64(values: Any, key: str, *, ndim: int = 1) -> np.ndarray:
    """``values`` as a read-only finite float64 copy with ``ndim`` dimensions."""
    a = np.asarray(values)
    if a.ndim != ndim:
        raise ValueError(f"{key!r}: expected a {ndim}-D array, got shape {a.shape}")
    if a.size and not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{key!r}: expected real numbers, got dtype {a.dtype}")
    out = np.array(a, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{key!r}: {int(np.sum(~np.isfinite(out)))} NaN/Inf values")
    return _frozen(out)


def _as_complex64(values: Any, key: str, ndim_range: tuple[int, int], target_ndim: int
                  ) -> np.ndarray:
    a = np.asarray(values)
    if not np.iscomplexobj(a):
        raise ValueError(f"{key!r}: expected a complex array, got dtype {a.dtype}")
    if not ndim_range[0] <= a.ndim <= ndim_range[1]:
        raise ValueError(
            f"{key!r}: expected {ndim_range[0]} to {ndim_range[1]} dimensions, got shape {a.shape}"
        )
    out = np.array(a, dtype=np.complex64, copy=True)
    while out.ndim < target_ndim:
        out = out[np.newaxis]
    if 0 in out.shape:
        raise ValueError(f"{key!r}: empty array of shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{key!r}: {int(np.sum(~np.isfinite(out)))} NaN/Inf values")
    return _frozen(np.ascontiguousarray(out))


def finite(value: Any, key: str, *, positive: bool = False) -> float:
    """``value`` as a finite (and, with ``positive``, > 0) float, else one-line ValueError."""
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0.0):
        expected = "a finite positive number" if positive else "a finite number"
        raise ValueError(f"{key!r}: expected {expected}, got {v!r}")
    return v



@dataclass(frozen=True, eq=False)
class PtychodusProduct:
    """A Ptychodus data product (metadata, probe positions, probe, object, losses).

    Field names follow the Ptychodus >= 1.7 product HDF5 file. Arrays are validated, converted to
    the dtypes below and made read-only at construction.

    Attributes
    ----------
    name, comments : str
        Product name and free-text comments.
    detector_object_distance_m : float
        Sample-to-detector distance in metres.
    photon_energy_eV : float
        Photon energy in electronvolts.
    probe_photon_count : float
        Photons per exposure (0 when unknown).
    exposure_time_s : float
        Exposure time in seconds (0 when unknown).
    mass_attenuation_m2_per_kg : float
        Sample mass attenuation coefficient in m^2/kg (0 when unknown).
    tomography_angle_deg : float
        Rotation angle in degrees.
    probe_position_indexes : numpy.ndarray
        (P,) int64 scan indexes, paired with the diffraction file's ``indexes`` by value.
    probe_position_x_m, probe_position_y_m : numpy.ndarray
        (P,) float64 probe-centre positions in metres (x = column direction, y = row direction).
    probe : numpy.ndarray
        (opr, modes, h, w) complex64 probe: OPR (orthogonal probe relaxation) modes, then
        incoherent modes. 2-D and 3-D inputs get leading singleton axes.
    probe_pixel_width_m, probe_pixel_height_m : float
        Probe pixel size in metres.
    object : numpy.ndarray
        (layers, H, W) complex64 object transmission. A 2-D input gets a leading axis.
    object_center_x_m, object_center_y_m : float
        Physical position (metres) of the object array's geometric centre, pixel ((H-1)/2, (W-1)/2).
    object_pixel_width_m, object_pixel_height_m : float
        Object pixel size in metres.
    object_layer_spacing_m : numpy.ndarray
        (layers - 1,) float64 multislice layer spacings in metres (empty for one layer).
    loss_epochs, loss_values : numpy.ndarray
        (L,) int64 epochs and (L,) float64 loss values of the reconstruction history.
    focus_object_distance_m : float
        Focus-to-sample distance in metres (0: parallel beam).
    tilt_angle_deg : float
        Sample tilt in degrees.
    far_field : bool
        Whether the detector records the Fraunhofer pattern.
    polarization : str or None
        Ptychodus ``Polarization`` value, or None when not recorded.
    opr_weights : numpy.ndarray or None
        (P, opr) float64 OPR weights per position, or None.
    probe_photon_counts : numpy.ndarray or None
        (P,) float64 measured photons per position, or None.
    extra_attrs : Mapping[str, Any]
        Unrecognised root attributes, kept so that a read/write round trip preserves them.
    """

    name: str
    comments: str
    detector_object_distance_m: float
    photon_energy_eV: float  # noqa: N815 -- Ptychodus's spelling
    probe_photon_count: float
    exposure_time_s: float
    mass_attenuation_m2_per_kg: float
    tomography_angle_deg: float
    probe_position_indexes: np.ndarray
    probe_position_x_m: np.ndarray
    probe_position_y_m: np.ndarray
    probe: np.ndarray
    probe_pixel_width_m: float
    probe_pixel_height_m: float
    object: np.ndarray
    object_center_x_m: float
    object_center_y_m: float
    object_pixel_width_m: float
    object_pixel_height_m: float
    object_layer_spacing_m: np.ndarray = field(default_factory=empty_float)
    loss_epochs: np.ndarray = field(default_factory=empty_int)
    loss_values: np.ndarray = field(default_factory=empty_float)
    focus_object_distance_m: float = 0.0
    tilt_angle_deg: float = 0.0
    far_field: bool = True
    polarization: str | None = None
    opr_weights: np.ndarray | None = None
    probe_photon_counts: np.ndarray | None = None
    extra_attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def put(key: str, value: Any) -> None:
            object.__setattr__(self, key, value)

        put("name", str(self.name))
        put("comments", str(self.comments))
        for key in (
            "detector_object_distance_m",
            "photon_energy_eV",
            "probe_photon_count",
            "exposure_time_s",
            "mass_attenuation_m2_per_kg",
            "tomography_angle_deg",
            "object_center_x_m",
            "object_center_y_m",
            "focus_object_distance_m",
            "tilt_angle_deg",
        ):
            put(key, finite(getattr(self, key), key))
        for key in (
            "probe_pixel_width_m",
            "probe_pixel_height_m",
            "object_pixel_width_m",
            "object_pixel_height_m",
        ):
            put(key, finite(getattr(self, key), key, positive=True))
        put("far_field", bool(self.far_field))
        if self.polarization is not None:
            put("polarization", str(self.polarization))

        indexes = as_int64(self.probe_position_indexes, k.POSITION_INDEXES)
        x_m = as_float64(self.probe_position_x_m, k.POSITION_X)
        y_m = as_float64(self.probe_position_y_m, k.POSITION_Y)
        if not indexes.shape == x_m.shape == y_m.shape:
            raise ValueError(
                f"{k.POSITION_INDEXES!r}, {k.POSITION_X!r}, {k.POSITION_Y!r}: lengths differ "
                f"({indexes.size}, {x_m.size}, {y_m.size})"
            )
        put("probe_position_indexes", indexes)
        put("probe_position_x_m", x_m)
        put("probe_position_y_m", y_m)

        probe = _as_complex64(self.probe, k.PROBE, (2, 4), 4)
        obj = _as_complex64(self.object, k.OBJECT, (2, 3), 3)
        put("probe", probe)
        put("object", obj)

        spacing = as_float64(self.object_layer_spacing_m, k.LAYER_SPACING)
        if spacing.size != obj.shape[0] - 1:
            raise ValueError(
                f"{k.LAYER_SPACING!r}: expected {obj.shape[0] - 1} spacings for "
                f"{obj.shape[0]} object layers, got {spacing.size}"
            )
        put("object_layer_spacing_m", spacing)

        epochs = as_int64(self.loss_epochs, k.LOSS_EPOCHS)
        losses = as_float64(self.loss_values, k.LOSS_VALUES)
        if epochs.shape != losses.shape:
            raise ValueError(
                f"{k.LOSS_EPOCHS!r}, {k.LOSS_VALUES!r}: lengths differ "
                f"({epochs.size}, {losses.size})"
            )
        put("loss_epochs", epochs)
        put("loss_values", losses)

        if self.opr_weights is not None:
            weights = as_float64(self.opr_weights, k.OPR_WEIGHTS, ndim=2)
            if weights.shape[1] != probe.shape[0]:
                raise ValueError(
                    f"{k.OPR_WEIGHTS!r}: expected {probe.shape[0]} columns (one per OPR mode), "
                    f"got shape {weights.shape}"
                )
            put("opr_weights", weights)
        if self.probe_photon_counts is not None:
            counts = as_float64(self.probe_photon_counts, k.POSITION_PHOTON_COUNTS)
            if counts.shape != indexes.shape or np.any(counts < 0):
                raise ValueError(
                    f"{k.POSITION_PHOTON_COUNTS!r}: expected {indexes.size} non-negative values, "
                    f"got shape {counts.shape}"
                )
            put("probe_photon_counts", counts)

        extra = dict(self.extra_attrs)
        clash = sorted(set(extra) & k.KNOWN_ROOT_ATTRS)
        if clash:
            raise ValueError(f"extra_attrs: {clash} are product fields, not extra attributes")
        put("extra_attrs", extra)

    @property
    def num_positions(self) -> int:
        """Number of probe positions P."""
        return int(self.probe_position_indexes.size)

    @property
    def object_shape(self) -> tuple[int, int]:
        """Object array (H, W) in pixels."""
        return int(self.object.shape[-2]), int(self.object.shape[-1])

    @property
    def probe_shape(self) -> tuple[int, int]:
        """Probe array (h, w) in pixels."""
        return int(self.probe.shape[-2]), int(self.probe.shape[-1])
