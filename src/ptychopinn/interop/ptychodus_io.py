"""Interoperability with the Ptychodus application (version >= 1.7), in plain numpy/h5py.

This module reads and writes the files Ptychodus exchanges with reconstruction back ends, without
importing ``ptychodus`` (it works whether or not Ptychodus is installed). The layouts were checked
against the ``ptychodus`` 1.7.0 sources (``ptychodus.api.io``):

Product HDF5 (``load_product`` / ``save_product``)
    A flat file. Root attributes ``name``, ``comments``, ``detector_object_distance_m``,
    ``photon_energy_eV`` (legacy spelling ``probe_energy_eV`` accepted on read),
    ``probe_photon_count``, ``exposure_time_s``, ``mass_attenuation_m2_per_kg``,
    ``tomography_angle_deg``, ``focus_object_distance_m``, ``tilt_angle_deg``, ``far_field``
    (bool) and, when set, ``polarization`` (str). Root datasets ``probe_position_indexes`` (P,)
    int, ``probe_position_x_m`` / ``probe_position_y_m`` (P,) float64, optional
    ``probe_photon_counts`` (P,) float64, ``probe`` complex (opr, modes, h, w) with attributes
    ``pixel_width_m`` / ``pixel_height_m``, optional ``opr_weights`` (P, opr) float, ``object``
    complex (layers, H, W) with attributes ``center_x_m``, ``center_y_m``, ``pixel_width_m``,
    ``pixel_height_m``, ``object_layer_spacing_m`` (layers - 1,) float64 -- written by Ptychodus
    even for a single layer, as an empty array -- and ``loss_epochs`` / ``loss_values``.

Assembled diffraction file ``diffraction.h5`` (``load_diffraction_data``)
    ``patterns`` (n, H, W) raw photon counts (detector dtype, DC at pixel (H//2, W//2) because the
    crop window starts at ``beam_center - size // 2``) with attributes ``detector_pixel_width_m`` /
    ``detector_pixel_height_m``; ``indexes`` (n,) scan indexes; ``bad_pixels`` (H, W) bool;
    optional ``probe_photon_counts`` (n,). Compressed with LZF by Ptychodus.

Batch input directory (``ModelCore.batch_mode_execute``, ``StandardFileLayout``)
    ``<dir>/diffraction.h5`` + ``<dir>/product.h5`` (+ optional ``settings.ini``,
    ``model<ext>``, ``fluorescence.h5``); the output directory receives ``product.h5``.
    Ptychodus releases before 1.7 used ``product-in.h5`` / ``product-out.h5``; the reader accepts
    ``product-in.h5`` as a fallback.

PtychoPINN training NPZ (``save_ptychopinn_training_data``)
    ``xcoords``, ``ycoords``, ``xcoords_start``, ``ycoords_start`` (object-pixel positions by the
    formula below), ``diff3d`` (n, H, W) **intensities** in the source dtype (bad pixels inpainted
    or zeroed), ``bad_pixels`` (H, W) bool, ``probeGuess`` (modes, h, w) complex,
    ``objectGuess`` (H, W) complex (layer 0), ``scan_index`` (n,) zeros. Nothing in the file says
    that ``diff3d`` holds intensities, hence :func:`read_ptychodus_npz` refuses to guess.

Position conventions
--------------------
Ptychodus stores probe positions in metres; a position is where the probe array's geometric
centre sits. Its object-pixel coordinate is
(``ObjectGeometry.map_probe_positions_to_object_x_px``)::

    x_px = (x_m - center_x_m) / pixel_width_m + (W - 1) / 2        (same for y with H)

and a probe of width ``w`` placed there covers object columns starting at
``x_px - (w - 1) / 2`` (``ProbeGeometry.resolve_patch_bounds``): the probe-array index
``(w - 1) / 2`` lands on ``x_px``.

ptychopinn's convention (SPEC section 2) is that a position is the object pixel under probe-array
index ``w // 2`` (the patch centre, like the DC pixel). For odd sizes both agree. For even sizes
they differ by half a pixel: the same patch (the same object pixels multiplied by the same probe
pixels) has ``ours = ptychodus + (w // 2 - (w - 1) / 2) = ptychodus + 0.5``. Every function here
that converts to or from ptychopinn positions (``*_rc``) takes the probe shape into account;
:func:`positions_m_to_px` / :func:`positions_px_to_m` apply the plain formula above unless given
``probe_shape``. Ptychodus's own PtychoPINN export applies no such shift.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ptychopinn.data.io import atomic_path

logger = logging.getLogger(__name__)

__all__ = [
    "DIFFRACTION_FILE_NAME",
    "LEGACY_PRODUCT_FILE_NAMES",
    "PRODUCT_FILE_NAME",
    "PtychodusProduct",
    "amplitudes_from_counts",
    "far_field_pixel_size_m",
    "positions_m_to_px",
    "positions_px_to_m",
    "probe_centre_offset",
    "product_from_reconstruction",
    "read_batch_directory",
    "read_diffraction_file",
    "read_product",
    "read_ptychodus_npz",
    "reconstruction_from_product",
    "write_batch_directory",
    "write_diffraction_file",
    "write_product",
]

#: File name of the assembled diffraction data in a Ptychodus batch directory.
DIFFRACTION_FILE_NAME = "diffraction.h5"
#: File name of the input (and output) product in a Ptychodus >= 1.7 batch directory.
PRODUCT_FILE_NAME = "product.h5"
#: Input product names used by Ptychodus releases before 1.7 (accepted on read only).
LEGACY_PRODUCT_FILE_NAMES = ("product-in.h5",)

# --- HDF5 names (Ptychodus 1.7 ``ProductFileKeys`` / ``DiffractionFileKeys``) -------------------
_NAME = "name"
_COMMENTS = "comments"
_DETECTOR_OBJECT_DISTANCE = "detector_object_distance_m"
_PHOTON_ENERGY = "photon_energy_eV"
_LEGACY_PHOTON_ENERGY = "probe_energy_eV"
_PROBE_PHOTON_COUNT = "probe_photon_count"
_EXPOSURE_TIME = "exposure_time_s"
_MASS_ATTENUATION = "mass_attenuation_m2_per_kg"
_TOMOGRAPHY_ANGLE = "tomography_angle_deg"
_FOCUS_OBJECT_DISTANCE = "focus_object_distance_m"
_TILT_ANGLE = "tilt_angle_deg"
_FAR_FIELD = "far_field"
_POLARIZATION = "polarization"
_PROBE = "probe"
_OPR_WEIGHTS = "opr_weights"
_PIXEL_WIDTH = "pixel_width_m"
_PIXEL_HEIGHT = "pixel_height_m"
_POSITION_INDEXES = "probe_position_indexes"
_POSITION_X = "probe_position_x_m"
_POSITION_Y = "probe_position_y_m"
_POSITION_PHOTON_COUNTS = "probe_photon_counts"
_OBJECT = "object"
_CENTER_X = "center_x_m"
_CENTER_Y = "center_y_m"
_LAYER_SPACING = "object_layer_spacing_m"
_LOSS_EPOCHS = "loss_epochs"
_LOSS_VALUES = "loss_values"

_KNOWN_ROOT_ATTRS = frozenset(
    {
        _NAME,
        _COMMENTS,
        _DETECTOR_OBJECT_DISTANCE,
        _PHOTON_ENERGY,
        _LEGACY_PHOTON_ENERGY,
        _PROBE_PHOTON_COUNT,
        _EXPOSURE_TIME,
        _MASS_ATTENUATION,
        _TOMOGRAPHY_ANGLE,
        _FOCUS_OBJECT_DISTANCE,
        _TILT_ANGLE,
        _FAR_FIELD,
        _POLARIZATION,
    }
)

_PATTERNS = "patterns"
_INDEXES = "indexes"
_BAD_PIXELS = "bad_pixels"
_DETECTOR_PIXEL_WIDTH = "detector_pixel_width_m"
_DETECTOR_PIXEL_HEIGHT = "detector_pixel_height_m"

ValuesKind = Literal["intensity", "amplitude"]


def _empty_float() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


def _empty_int() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _as_int64(values: Any, key: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"{key!r}: expected a 1-D array, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)):
            raise ValueError(f"{key!r}: expected integers, got dtype {a.dtype}")
        if not np.all(a == np.round(a)):
            raise ValueError(f"{key!r}: expected integers, got non-integral values")
    return _frozen(np.array(a, dtype=np.int64, copy=True))


def _as_float64(values: Any, key: str, *, ndim: int = 1) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != ndim:
        raise ValueError(f"{key!r}: expected a {ndim}-D array, got shape {a.shape}")
    if a.size and not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{key!r}: expected real numbers, got dtype {a.dtype}")
    out = np.array(a, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{key!r}: {int(np.sum(~np.isfinite(out)))} NaN/Inf values")
    return _frozen(out)


def _as_complex64(
    values: Any, key: str, ndim_range: tuple[int, int], target_ndim: int
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


def _finite(value: Any, key: str, *, positive: bool = False) -> float:
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
    object_layer_spacing_m: np.ndarray = field(default_factory=_empty_float)
    loss_epochs: np.ndarray = field(default_factory=_empty_int)
    loss_values: np.ndarray = field(default_factory=_empty_float)
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
            put(key, _finite(getattr(self, key), key))
        for key in (
            "probe_pixel_width_m",
            "probe_pixel_height_m",
            "object_pixel_width_m",
            "object_pixel_height_m",
        ):
            put(key, _finite(getattr(self, key), key, positive=True))
        put("far_field", bool(self.far_field))
        if self.polarization is not None:
            put("polarization", str(self.polarization))

        indexes = _as_int64(self.probe_position_indexes, _POSITION_INDEXES)
        x_m = _as_float64(self.probe_position_x_m, _POSITION_X)
        y_m = _as_float64(self.probe_position_y_m, _POSITION_Y)
        if not indexes.shape == x_m.shape == y_m.shape:
            raise ValueError(
                f"{_POSITION_INDEXES!r}, {_POSITION_X!r}, {_POSITION_Y!r}: lengths differ "
                f"({indexes.size}, {x_m.size}, {y_m.size})"
            )
        put("probe_position_indexes", indexes)
        put("probe_position_x_m", x_m)
        put("probe_position_y_m", y_m)

        probe = _as_complex64(self.probe, _PROBE, (2, 4), 4)
        obj = _as_complex64(self.object, _OBJECT, (2, 3), 3)
        put("probe", probe)
        put("object", obj)

        spacing = _as_float64(self.object_layer_spacing_m, _LAYER_SPACING)
        if spacing.size != obj.shape[0] - 1:
            raise ValueError(
                f"{_LAYER_SPACING!r}: expected {obj.shape[0] - 1} spacings for "
                f"{obj.shape[0]} object layers, got {spacing.size}"
            )
        put("object_layer_spacing_m", spacing)

        epochs = _as_int64(self.loss_epochs, _LOSS_EPOCHS)
        losses = _as_float64(self.loss_values, _LOSS_VALUES)
        if epochs.shape != losses.shape:
            raise ValueError(
                f"{_LOSS_EPOCHS!r}, {_LOSS_VALUES!r}: lengths differ ({epochs.size}, {losses.size})"
            )
        put("loss_epochs", epochs)
        put("loss_values", losses)

        if self.opr_weights is not None:
            weights = _as_float64(self.opr_weights, _OPR_WEIGHTS, ndim=2)
            if weights.shape[1] != probe.shape[0]:
                raise ValueError(
                    f"{_OPR_WEIGHTS!r}: expected {probe.shape[0]} columns (one per OPR mode), "
                    f"got shape {weights.shape}"
                )
            put("opr_weights", weights)
        if self.probe_photon_counts is not None:
            counts = _as_float64(self.probe_photon_counts, _POSITION_PHOTON_COUNTS)
            if counts.shape != indexes.shape or np.any(counts < 0):
                raise ValueError(
                    f"{_POSITION_PHOTON_COUNTS!r}: expected {indexes.size} non-negative values, "
                    f"got shape {counts.shape}"
                )
            put("probe_photon_counts", counts)

        extra = dict(self.extra_attrs)
        clash = sorted(set(extra) & _KNOWN_ROOT_ATTRS)
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


# --- small HDF5 helpers ---------------------------------------------------------------------------


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in ("S", "O") and value.ndim == 0:
        return _decode(value[()])
    return value


def _attr_scalar(attrs: Any, key: str, path: Path, where: str) -> float:
    value = _decode(attrs[key])
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{path}: {where} attribute {key!r} is {value!r}; expected a number"
        ) from None
    if a.size != 1:
        raise ValueError(
            f"{path}: {where} attribute {key!r} has shape {a.shape}; expected a scalar"
        )
    return float(a.reshape(-1)[0])


def _require_dataset(h5: Any, key: str, path: Path, expected: str) -> Any:
    import h5py

    if key not in h5:
        raise ValueError(f"{path}: Ptychodus file is missing dataset {key!r}; expected {expected}")
    node = h5[key]
    if not isinstance(node, h5py.Dataset):
        raise ValueError(f"{path}: {key!r} is a {type(node).__name__}; expected a dataset")
    return node


def _open_h5(path: Path) -> Any:
    import h5py

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None


# --- product --------------------------------------------------------------------------------------


def read_product(path: str | os.PathLike[str]) -> PtychodusProduct:
    """Read a Ptychodus product HDF5 file.

    Parameters
    ----------
    path : path-like
        A file written by Ptychodus (``ptychodus.api.io.save_product``) or by
        :func:`write_product`.

    Returns
    -------
    PtychodusProduct
        Probe and object are converted to complex64 (Ptychodus may store complex128); positions
        stay float64.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        One line naming the file and the key, for a missing or malformed attribute/dataset.

    Notes
    -----
    Required, as in Ptychodus's loader: root attributes ``detector_object_distance_m`` and
    ``photon_energy_eV`` (or the legacy ``probe_energy_eV``); datasets ``object`` (with
    ``center_x_m``, ``center_y_m``, ``pixel_width_m``, ``pixel_height_m``), ``probe`` and the three
    ``probe_position_*`` datasets. Other attributes default like Ptychodus (name ``"Unnamed"``,
    numbers 0, ``far_field`` True); missing probe pixel sizes default to the object's.
    """
    path = Path(path)
    with _open_h5(path) as h5:
        attrs = h5.attrs

        def root_float(key: str, default: float | None) -> float:
            if key in attrs:
                return _attr_scalar(attrs, key, path, "root")
            if default is None:
                raise ValueError(
                    f"{path}: Ptychodus product is missing root attribute {key!r}; "
                    "expected a number"
                )
            return default

        if _PHOTON_ENERGY in attrs:
            energy = _attr_scalar(attrs, _PHOTON_ENERGY, path, "root")
        elif _LEGACY_PHOTON_ENERGY in attrs:
            energy = _attr_scalar(attrs, _LEGACY_PHOTON_ENERGY, path, "root")
            logger.debug(
                "%s: photon energy read from legacy attribute %r", path, _LEGACY_PHOTON_ENERGY
            )
        else:
            raise ValueError(
                f"{path}: Ptychodus product is missing root attribute {_PHOTON_ENERGY!r} "
                f"(nor legacy {_LEGACY_PHOTON_ENERGY!r}); expected the photon energy in eV"
            )

        polarization = None
        if _POLARIZATION in attrs:
            polarization = str(_decode(attrs[_POLARIZATION]))
        far_field = True
        if _FAR_FIELD in attrs:
            far_field = bool(np.asarray(attrs[_FAR_FIELD]).reshape(-1)[0])
        extra = {key: _decode(attrs[key]) for key in attrs if key not in _KNOWN_ROOT_ATTRS}

        h5_object = _require_dataset(h5, _OBJECT, path, "complex (layers, H, W) object")
        obj_attrs = h5_object.attrs
        for key in (_CENTER_X, _CENTER_Y, _PIXEL_WIDTH, _PIXEL_HEIGHT):
            if key not in obj_attrs:
                raise ValueError(
                    f"{path}: Ptychodus product dataset 'object' is missing attribute {key!r}; "
                    "expected a number in metres"
                )
        h5_probe = _require_dataset(h5, _PROBE, path, "complex (opr, modes, h, w) probe")
        obj_pw = _attr_scalar(obj_attrs, _PIXEL_WIDTH, path, "'object'")
        obj_ph = _attr_scalar(obj_attrs, _PIXEL_HEIGHT, path, "'object'")
        probe_attrs = h5_probe.attrs
        probe_pw = (
            _attr_scalar(probe_attrs, _PIXEL_WIDTH, path, "'probe'")
            if _PIXEL_WIDTH in probe_attrs
            else obj_pw
        )
        probe_ph = (
            _attr_scalar(probe_attrs, _PIXEL_HEIGHT, path, "'probe'")
            if _PIXEL_HEIGHT in probe_attrs
            else obj_ph
        )

        indexes = _require_dataset(h5, _POSITION_INDEXES, path, "(P,) integer scan indexes")
        xs = _require_dataset(h5, _POSITION_X, path, "(P,) probe-centre x positions in metres")
        ys = _require_dataset(h5, _POSITION_Y, path, "(P,) probe-centre y positions in metres")

        def optional(key: str) -> np.ndarray | None:
            if key not in h5:
                return None
            return _require_dataset(h5, key, path, "")[()]

        spacing = optional(_LAYER_SPACING)
        epochs = optional(_LOSS_EPOCHS)
        values = optional(_LOSS_VALUES)
        if (epochs is None) != (values is None):
            raise ValueError(
                f"{path}: Ptychodus product has only one of {_LOSS_EPOCHS!r} and {_LOSS_VALUES!r}"
            )

        fields: dict[str, Any] = {
            "name": str(_decode(attrs.get(_NAME, "Unnamed"))),
            "comments": str(_decode(attrs.get(_COMMENTS, ""))),
            "detector_object_distance_m": root_float(_DETECTOR_OBJECT_DISTANCE, None),
            "photon_energy_eV": energy,
            "probe_photon_count": root_float(_PROBE_PHOTON_COUNT, 0.0),
            "exposure_time_s": root_float(_EXPOSURE_TIME, 0.0),
            "mass_attenuation_m2_per_kg": root_float(_MASS_ATTENUATION, 0.0),
            "tomography_angle_deg": root_float(_TOMOGRAPHY_ANGLE, 0.0),
            "focus_object_distance_m": root_float(_FOCUS_OBJECT_DISTANCE, 0.0),
            "tilt_angle_deg": root_float(_TILT_ANGLE, 0.0),
            "far_field": far_field,
            "polarization": polarization,
            "probe_position_indexes": indexes[()],
            "probe_position_x_m": xs[()],
            "probe_position_y_m": ys[()],
            "probe": h5_probe[()],
            "probe_pixel_width_m": probe_pw,
            "probe_pixel_height_m": probe_ph,
            "object": h5_object[()],
            "object_center_x_m": _attr_scalar(obj_attrs, _CENTER_X, path, "'object'"),
            "object_center_y_m": _attr_scalar(obj_attrs, _CENTER_Y, path, "'object'"),
            "object_pixel_width_m": obj_pw,
            "object_pixel_height_m": obj_ph,
            "object_layer_spacing_m": _empty_float() if spacing is None else spacing,
            "loss_epochs": _empty_int() if epochs is None else epochs,
            "loss_values": _empty_float() if values is None else values,
            "opr_weights": optional(_OPR_WEIGHTS),
            "probe_photon_counts": optional(_POSITION_PHOTON_COUNTS),
            "extra_attrs": extra,
        }
    for key in (_OBJECT, _PROBE):
        dtype = np.asarray(fields[key]).dtype
        if dtype == np.complex128:
            logger.info("%s: %r stored as complex128; read as complex64", path, key)
    try:
        return PtychodusProduct(**fields)
    except ValueError as exc:
        raise ValueError(f"{path}: invalid Ptychodus product: {exc}") from None


def write_product(product: PtychodusProduct, path: str | os.PathLike[str]) -> Path:
    """Write a product in the Ptychodus >= 1.7 HDF5 layout, atomically.

    The file is first written to a temporary file in the destination directory and then moved
    into place with :func:`os.replace`, so readers never see a partial file.

    Parameters
    ----------
    product : PtychodusProduct
        The product to write.
    path : path-like
        Destination (conventionally ``*.h5``); its directory must exist.

    Returns
    -------
    pathlib.Path
        ``path``.

    Notes
    -----
    Names, dtypes and the set of datasets mirror ``ptychodus.api.io.save_product`` 1.7:
    ``object_layer_spacing_m`` is written even for one layer (empty), ``loss_epochs`` /
    ``loss_values`` even when empty, ``polarization``, ``opr_weights`` and
    ``probe_photon_counts`` only when set. No compression (like Ptychodus).
    """
    import h5py

    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        attrs = h5.attrs
        attrs[_NAME] = product.name
        attrs[_COMMENTS] = product.comments
        attrs[_DETECTOR_OBJECT_DISTANCE] = product.detector_object_distance_m
        attrs[_PHOTON_ENERGY] = product.photon_energy_eV
        attrs[_PROBE_PHOTON_COUNT] = product.probe_photon_count
        attrs[_EXPOSURE_TIME] = product.exposure_time_s
        attrs[_MASS_ATTENUATION] = product.mass_attenuation_m2_per_kg
        attrs[_TOMOGRAPHY_ANGLE] = product.tomography_angle_deg
        attrs[_FOCUS_OBJECT_DISTANCE] = product.focus_object_distance_m
        attrs[_TILT_ANGLE] = product.tilt_angle_deg
        attrs[_FAR_FIELD] = product.far_field
        if product.polarization is not None:
            attrs[_POLARIZATION] = product.polarization
        for key, value in product.extra_attrs.items():
            attrs[key] = value

        h5.create_dataset(_POSITION_INDEXES, data=product.probe_position_indexes)
        h5.create_dataset(_POSITION_X, data=product.probe_position_x_m)
        h5.create_dataset(_POSITION_Y, data=product.probe_position_y_m)
        if product.probe_photon_counts is not None:
            h5.create_dataset(_POSITION_PHOTON_COUNTS, data=product.probe_photon_counts)

        h5_probe = h5.create_dataset(_PROBE, data=product.probe)
        if product.opr_weights is not None:
            h5.create_dataset(_OPR_WEIGHTS, data=product.opr_weights)
        h5_probe.attrs[_PIXEL_WIDTH] = product.probe_pixel_width_m
        h5_probe.attrs[_PIXEL_HEIGHT] = product.probe_pixel_height_m

        h5_object = h5.create_dataset(_OBJECT, data=product.object)
        h5_object.attrs[_CENTER_X] = product.object_center_x_m
        h5_object.attrs[_CENTER_Y] = product.object_center_y_m
        h5_object.attrs[_PIXEL_WIDTH] = product.object_pixel_width_m
        h5_object.attrs[_PIXEL_HEIGHT] = product.object_pixel_height_m
        h5.create_dataset(_LAYER_SPACING, data=product.object_layer_spacing_m)

        h5.create_dataset(_LOSS_EPOCHS, data=product.loss_epochs)
        h5.create_dataset(_LOSS_VALUES, data=product.loss_values)
    logger.info("wrote Ptychodus product %s (%d positions)", path, product.num_positions)
    return path


# --- diffraction file -----------------------------------------------------------------------------


def read_diffraction_file(
    path: str | os.PathLike[str], *, frames: slice | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Read Ptychodus's assembled diffraction file (``diffraction.h5``).

    Parameters
    ----------
    path : path-like
        File written by ``ptychodus.api.io.save_diffraction_data`` (or
        :func:`write_diffraction_file`).
    frames : slice, optional
        Read only these frames (HDF5 partial read); default all.

    Returns
    -------
    patterns : numpy.ndarray
        (n, H, W) raw photon counts in the stored dtype (not converted, not masked), DC at pixel
        (H // 2, W // 2).
    indexes : numpy.ndarray
        (n,) int64 scan indexes; pair with the product's ``probe_position_indexes`` by value.
    bad_pixels : numpy.ndarray or None
        (H, W) bool, True where the detector pixel is invalid; None if the file has none.
    attrs : dict
        ``detector_pixel_width_m`` / ``detector_pixel_height_m`` (float metres, or None when
        absent, as in files from Ptychodus < 1.7), ``probe_photon_counts`` ((n,) float64 or None)
        and any other attributes found on the ``patterns`` dataset or the root.

    Raises
    ------
    ValueError
        One line naming the file and key for a missing or inconsistent dataset.
    """
    path = Path(path)
    with _open_h5(path) as h5:
        h5_patterns = _require_dataset(h5, _PATTERNS, path, "(n, H, W) diffraction intensities")
        if h5_patterns.ndim != 3:
            raise ValueError(
                f"{path}: {_PATTERNS!r} has shape {h5_patterns.shape}; expected (n, H, W)"
            )
        if h5_patterns.dtype.kind not in "uif":
            raise ValueError(
                f"{path}: {_PATTERNS!r} has dtype {h5_patterns.dtype}; expected real photon counts"
            )
        sel = slice(None) if frames is None else frames
        patterns = h5_patterns[sel]
        h5_indexes = _require_dataset(h5, _INDEXES, path, "(n,) integer scan indexes")
        try:
            indexes = _as_int64(h5_indexes[()], _INDEXES)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        if indexes.size != h5_patterns.shape[0]:
            raise ValueError(
                f"{path}: {_INDEXES!r} has {indexes.size} entries for "
                f"{h5_patterns.shape[0]} patterns; expected one per pattern"
            )
        indexes = np.array(indexes[sel])  # writable copy
        bad_pixels = None
        if _BAD_PIXELS in h5:
            raw = _require_dataset(h5, _BAD_PIXELS, path, "")[()]
            if raw.shape != h5_patterns.shape[1:]:
                raise ValueError(
                    f"{path}: {_BAD_PIXELS!r} has shape {raw.shape}; expected "
                    f"{h5_patterns.shape[1:]} like one pattern"
                )
            bad_pixels = np.asarray(raw).astype(bool)
        attrs: dict[str, Any] = {key: _decode(h5.attrs[key]) for key in h5.attrs}
        for key in h5_patterns.attrs:
            attrs[key] = _decode(h5_patterns.attrs[key])
        for key in (_DETECTOR_PIXEL_WIDTH, _DETECTOR_PIXEL_HEIGHT):
            attrs[key] = (
                _attr_scalar(h5_patterns.attrs, key, path, "'patterns'")
                if key in h5_patterns.attrs
                else None
            )
        counts = None
        if _POSITION_PHOTON_COUNTS in h5:
            counts = np.asarray(
                _require_dataset(h5, _POSITION_PHOTON_COUNTS, path, "")[()], dtype=np.float64
            )[sel]
        attrs[_POSITION_PHOTON_COUNTS] = counts
    return patterns, indexes, bad_pixels, attrs


def write_diffraction_file(
    path: str | os.PathLike[str],
    patterns: np.ndarray,
    *,
    detector_pixel_width_m: float,
    detector_pixel_height_m: float,
    indexes: np.ndarray | None = None,
    bad_pixels: np.ndarray | None = None,
    probe_photon_counts: np.ndarray | None = None,
    compression: str | None = "lzf",
) -> Path:
    """Write an assembled diffraction file in the Ptychodus 1.7 layout, atomically.

    Parameters
    ----------
    path : path-like
        Destination, conventionally ``<batch dir>/diffraction.h5``.
    patterns : numpy.ndarray
        (n, H, W) photon counts (intensities, not amplitudes), DC at (H // 2, W // 2). Stored in
        the given dtype.
    detector_pixel_width_m, detector_pixel_height_m : float
        Detector pixel size in metres.
    indexes : numpy.ndarray, optional
        (n,) scan indexes; default ``arange(n)``.
    bad_pixels : numpy.ndarray, optional
        (H, W) bool mask; default all False (Ptychodus requires the dataset).
    probe_photon_counts : numpy.ndarray, optional
        (n,) measured photons per pattern.
    compression : str or None
        HDF5 filter ("lzf", like Ptychodus, or None).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import h5py

    path = Path(path)
    patterns = np.asarray(patterns)
    if patterns.ndim != 3 or patterns.dtype.kind not in "uif":
        raise ValueError(
            f"patterns: expected real (n, H, W) intensities, got {patterns.dtype} {patterns.shape}"
        )
    n = patterns.shape[0]
    indexes = np.arange(n, dtype=np.int64) if indexes is None else _as_int64(indexes, _INDEXES)
    if indexes.size != n:
        raise ValueError(f"indexes: expected {n} entries, got {indexes.size}")
    if bad_pixels is None:
        bad_pixels = np.zeros(patterns.shape[1:], dtype=bool)
    bad_pixels = np.asarray(bad_pixels, dtype=bool)
    if bad_pixels.shape != patterns.shape[1:]:
        raise ValueError(f"bad_pixels: expected shape {patterns.shape[1:]}, got {bad_pixels.shape}")
    width = _finite(detector_pixel_width_m, _DETECTOR_PIXEL_WIDTH, positive=True)
    height = _finite(detector_pixel_height_m, _DETECTOR_PIXEL_HEIGHT, positive=True)

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset(_INDEXES, data=indexes, compression=compression)
        h5_patterns = h5.create_dataset(_PATTERNS, data=patterns, compression=compression)
        h5_patterns.attrs[_DETECTOR_PIXEL_WIDTH] = width
        h5_patterns.attrs[_DETECTOR_PIXEL_HEIGHT] = height
        h5.create_dataset(_BAD_PIXELS, data=bad_pixels, compression=compression)
        if probe_photon_counts is not None:
            counts = _as_float64(probe_photon_counts, _POSITION_PHOTON_COUNTS)
            if counts.size != n:
                raise ValueError(f"probe_photon_counts: expected {n} entries, got {counts.size}")
            h5.create_dataset(_POSITION_PHOTON_COUNTS, data=counts, compression=compression)
    return path


# --- positions ------------------------------------------------------------------------------------


def probe_centre_offset(probe_shape: tuple[int, int]) -> tuple[float, float]:
    """Half-pixel offset between the ptychopinn and Ptychodus position conventions.

    Parameters
    ----------
    probe_shape : (int, int)
        Probe (h, w) in pixels.

    Returns
    -------
    (float, float)
        (d_row, d_col) = (h // 2 - (h - 1) / 2, w // 2 - (w - 1) / 2): 0.5 for an even size, 0
        for an odd one. ptychopinn position = Ptychodus object-pixel position + offset.
    """
    h, w = (int(s) for s in probe_shape)
    return h // 2 - (h - 1) / 2, w // 2 - (w - 1) / 2


def positions_m_to_px(
    x_m: np.ndarray,
    y_m: np.ndarray,
    *,
    center_x_m: float,
    center_y_m: float,
    pixel_width_m: float,
    pixel_height_m: float,
    object_shape: tuple[int, int],
    probe_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Convert Ptychodus probe positions (metres) to object-pixel (row, col).

    Parameters
    ----------
    x_m, y_m : numpy.ndarray
        (M,) probe-centre positions in metres.
    center_x_m, center_y_m : float
        Physical position of the object array centre (``object`` attrs ``center_x_m``/``_y_m``).
    pixel_width_m, pixel_height_m : float
        Object pixel size in metres.
    object_shape : (int, int)
        Object (H, W) in pixels.
    probe_shape : (int, int), optional
        Probe (h, w). Without it the result is Ptychodus's object-pixel coordinate of the probe
        array's geometric centre, ``(y_m - center_y_m) / pixel_height_m + (H - 1) / 2`` (likewise
        for columns). With it, :func:`probe_centre_offset` is added so that the result follows
        ptychopinn's patch-centre convention (probe index (h // 2, w // 2)).

    Returns
    -------
    numpy.ndarray
        (M, 2) float64 (row, col) in object pixels.
    """
    x = np.asarray(x_m, dtype=np.float64).reshape(-1)
    y = np.asarray(y_m, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"x_m and y_m lengths differ ({x.size}, {y.size})")
    height, width = (int(s) for s in object_shape)
    d_row, d_col = (0.0, 0.0) if probe_shape is None else probe_centre_offset(probe_shape)
    rows = (y - center_y_m) / pixel_height_m + (height - 1) / 2 + d_row
    cols = (x - center_x_m) / pixel_width_m + (width - 1) / 2 + d_col
    return np.stack([rows, cols], axis=1)


def positions_px_to_m(
    positions_rc: np.ndarray,
    *,
    center_x_m: float,
    center_y_m: float,
    pixel_width_m: float,
    pixel_height_m: float,
    object_shape: tuple[int, int],
    probe_shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`positions_m_to_px`: object-pixel (row, col) to metres.

    Parameters
    ----------
    positions_rc : numpy.ndarray
        (M, 2) (row, col) in object pixels; Ptychodus convention without ``probe_shape``,
        ptychopinn patch-centre convention with it.
    center_x_m, center_y_m, pixel_width_m, pixel_height_m, object_shape, probe_shape
        As in :func:`positions_m_to_px`.

    Returns
    -------
    x_m, y_m : numpy.ndarray
        (M,) float64 probe-centre positions in metres.
    """
    rc = np.asarray(positions_rc, dtype=np.float64)
    if rc.ndim != 2 or rc.shape[1] != 2:
        raise ValueError(f"positions_rc: expected shape (M, 2), got {rc.shape}")
    height, width = (int(s) for s in object_shape)
    d_row, d_col = (0.0, 0.0) if probe_shape is None else probe_centre_offset(probe_shape)
    y_m = center_y_m + (rc[:, 0] - d_row - (height - 1) / 2) * pixel_height_m
    x_m = center_x_m + (rc[:, 1] - d_col - (width - 1) / 2) * pixel_width_m
    return x_m, y_m


# Ptychodus 1.7 ``ptychodus.api.constants`` (CODATA exact values)
_ELECTRON_VOLT_J = 1.602176634e-19
_LIGHT_SPEED_M_PER_S = 299792458
_PLANCK_CONSTANT_J_PER_HZ = 6.62607015e-34


def far_field_pixel_size_m(
    photon_energy_eV: float,  # noqa: N803
    detector_object_distance_m: float,
    detector_pixel_size_m: float,
    n_pixels: int,
) -> float:
    """Object-plane pixel size that Ptychodus derives for a far-field geometry.

    Ptychodus (>= 1.7) recomputes the object-plane sampling from the photon energy, detector
    distance and detector pixels (``compute_product_geometry``) and warns that a product whose
    object pixel size differs by more than 1e-9 (relative) "will reconstruct at the wrong
    scale". Use this value as ``pixel_size_m`` in :func:`product_from_reconstruction` for a
    product that Ptychodus will pair with a diffraction file. Same constants and operation
    order as Ptychodus, so the result agrees bit for bit.

    Parameters
    ----------
    photon_energy_eV : float
        Photon energy in eV.
    detector_object_distance_m : float
        Sample-detector distance in metres (a focusing optic does not change the result).
    detector_pixel_size_m : float
        Detector pixel size (one axis) in metres.
    n_pixels : int
        Pattern size along that axis, in pixels.

    Returns
    -------
    float
        ``lambda * |z| / (n_pixels * detector_pixel_size_m)`` in metres, with
        ``lambda = h c / (E e)``.
    """
    hc_jm = _PLANCK_CONSTANT_J_PER_HZ * _LIGHT_SPEED_M_PER_S
    wavelength_m = hc_jm / (float(photon_energy_eV) * _ELECTRON_VOLT_J)
    numerator_m2 = wavelength_m * abs(float(detector_object_distance_m))
    return numerator_m2 / (int(n_pixels) * float(detector_pixel_size_m))


# --- conversions to and from ptychopinn arrays ----------------------------------------------------


def product_from_reconstruction(
    object: np.ndarray,  # noqa: A002 -- matches the product field name
    probe: np.ndarray,
    positions_rc: np.ndarray,
    *,
    pixel_size_m: float | tuple[float, float],
    photon_energy_eV: float,  # noqa: N803
    detector_object_distance_m: float,
    name: str = "ptychopinn",
    comments: str = "",
    center_x_m: float = 0.0,
    center_y_m: float = 0.0,
    indexes: np.ndarray | None = None,
    probe_photon_count: float = 0.0,
    exposure_time_s: float = 0.0,
    mass_attenuation_m2_per_kg: float = 0.0,
    tomography_angle_deg: float = 0.0,
    loss_epochs: np.ndarray | None = None,
    loss_values: np.ndarray | None = None,
    far_field: bool = True,
) -> PtychodusProduct:
    """Build a Ptychodus product from a ptychopinn reconstruction.

    Parameters
    ----------
    object : numpy.ndarray
        (H, W) complex object on the object-pixel grid.
    probe : numpy.ndarray
        (N, N) complex probe on the same grid (its pixel size is the object's).
    positions_rc : numpy.ndarray
        (M, 2) ptychopinn positions (row, col): object pixel under probe index (N // 2, N // 2).
    pixel_size_m : float or (float, float)
        Object pixel size in metres, or (height_m, width_m). For a product Ptychodus will pair
        with diffraction data, use :func:`far_field_pixel_size_m` so the sampling agrees.
    photon_energy_eV : float
        Photon energy in eV.
    detector_object_distance_m : float
        Sample-detector distance in metres.
    name, comments : str
        Product name and comments.
    center_x_m, center_y_m : float
        Physical position of the object array centre (default 0: positions relative to it).
    indexes : numpy.ndarray, optional
        (M,) scan indexes; default ``arange(M)``.
    probe_photon_count, exposure_time_s, mass_attenuation_m2_per_kg, tomography_angle_deg : float
        Product metadata (0 when unknown).
    loss_epochs, loss_values : numpy.ndarray, optional
        Training/reconstruction history.
    far_field : bool
        Propagation regime flag.

    Returns
    -------
    PtychodusProduct
        One OPR mode, one incoherent mode, one object layer. Positions in metres such that
        :func:`reconstruction_from_product` returns ``positions_rc`` to float precision.
    """
    if np.ndim(pixel_size_m) == 0:
        pixel_h = pixel_w = float(pixel_size_m)  # type: ignore[arg-type]
    else:
        pixel_h, pixel_w = (float(v) for v in pixel_size_m)  # type: ignore[union-attr]
    obj = np.asarray(object)
    prb = np.asarray(probe)
    if obj.ndim != 2:
        raise ValueError(f"object: expected a complex (H, W) array, got shape {obj.shape}")
    if prb.ndim != 2:
        raise ValueError(f"probe: expected a complex (N, N) array, got shape {prb.shape}")
    rc = np.asarray(positions_rc, dtype=np.float64)
    if rc.ndim != 2 or rc.shape[1] != 2 or not np.all(np.isfinite(rc)):
        raise ValueError(f"positions_rc: expected finite (M, 2) (row, col), got shape {rc.shape}")
    x_m, y_m = positions_px_to_m(
        rc,
        center_x_m=center_x_m,
        center_y_m=center_y_m,
        pixel_width_m=pixel_w,
        pixel_height_m=pixel_h,
        object_shape=obj.shape,
        probe_shape=prb.shape,
    )
    if indexes is None:
        indexes = np.arange(rc.shape[0], dtype=np.int64)
    return PtychodusProduct(
        name=name,
        comments=comments,
        detector_object_distance_m=detector_object_distance_m,
        photon_energy_eV=photon_energy_eV,
        probe_photon_count=probe_photon_count,
        exposure_time_s=exposure_time_s,
        mass_attenuation_m2_per_kg=mass_attenuation_m2_per_kg,
        tomography_angle_deg=tomography_angle_deg,
        probe_position_indexes=indexes,
        probe_position_x_m=x_m,
        probe_position_y_m=y_m,
        probe=prb,
        probe_pixel_width_m=pixel_w,
        probe_pixel_height_m=pixel_h,
        object=obj,
        object_center_x_m=center_x_m,
        object_center_y_m=center_y_m,
        object_pixel_width_m=pixel_w,
        object_pixel_height_m=pixel_h,
        loss_epochs=_empty_int() if loss_epochs is None else loss_epochs,
        loss_values=_empty_float() if loss_values is None else loss_values,
        far_field=far_field,
    )


def _check_probe_on_object_grid(product: PtychodusProduct) -> None:
    for probe_px, obj_px, what in (
        (product.probe_pixel_width_m, product.object_pixel_width_m, "width"),
        (product.probe_pixel_height_m, product.object_pixel_height_m, "height"),
    ):
        if not math.isclose(probe_px, obj_px, rel_tol=1e-6):
            raise ValueError(
                f"probe pixel {what} {probe_px:.6g} m differs from object pixel {what} "
                f"{obj_px:.6g} m; ptychopinn needs the probe on the object pixel grid"
            )


def reconstruction_from_product(
    product: PtychodusProduct,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Extract ptychopinn arrays from a Ptychodus product.

    Parameters
    ----------
    product : PtychodusProduct
        Product whose probe is sampled on the object pixel grid.

    Returns
    -------
    object2d : numpy.ndarray
        (H, W) complex64, the first object layer (copy).
    probe2d : numpy.ndarray
        (h, w) complex64, the first OPR mode's first incoherent mode (copy); OPR weights are
        ignored.
    positions_rc : numpy.ndarray
        (P, 2) float64 ptychopinn positions (row, col) in object pixels, in the order of the
        product's positions (:func:`positions_m_to_px` with ``probe_shape``).

    Raises
    ------
    ValueError
        If the probe and object pixel sizes differ (relative tolerance 1e-6).
    """
    _check_probe_on_object_grid(product)
    if product.object.shape[0] > 1:
        logger.warning("product has %d object layers; using layer 0", product.object.shape[0])
    if product.probe.shape[0] > 1 or product.probe.shape[1] > 1:
        logger.warning(
            "product probe has %d OPR x %d incoherent modes; using mode (0, 0)",
            product.probe.shape[0],
            product.probe.shape[1],
        )
    positions_rc = positions_m_to_px(
        product.probe_position_x_m,
        product.probe_position_y_m,
        center_x_m=product.object_center_x_m,
        center_y_m=product.object_center_y_m,
        pixel_width_m=product.object_pixel_width_m,
        pixel_height_m=product.object_pixel_height_m,
        object_shape=product.object_shape,
        probe_shape=product.probe_shape,
    )
    return product.object[0].copy(), product.probe[0, 0].copy(), positions_rc


# --- batch directories ----------------------------------------------------------------------------


def _pair_positions(
    pattern_indexes: np.ndarray, product: PtychodusProduct
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Pair patterns with positions by scan index, like ``prepare_reconstruct_input`` 1.7.

    Duplicate position indexes are averaged; pattern indexes inside the position-index range
    without a position are linearly interpolated; pattern indexes outside it are dropped.
    Returns (kept pattern rows, x_m, y_m, counts).
    """
    pos_idx = product.probe_position_indexes
    if pos_idx.size == 0:
        raise ValueError("product has no probe positions")
    unique, inverse = np.unique(pos_idx, return_inverse=True)
    counts = np.bincount(inverse)
    mean_x = np.bincount(inverse, weights=product.probe_position_x_m) / counts
    mean_y = np.bincount(inverse, weights=product.probe_position_y_m) / counts
    keep = (pattern_indexes >= unique[0]) & (pattern_indexes <= unique[-1])
    rows = np.flatnonzero(keep)
    kept = pattern_indexes[rows]
    x_m = np.interp(kept, unique, mean_x)
    y_m = np.interp(kept, unique, mean_y)
    stats = {
        "n_dropped": int(pattern_indexes.size - rows.size),
        "n_interpolated": int(np.sum(~np.isin(kept, unique))),
        "n_averaged": int(pos_idx.size - unique.size),
    }
    return rows, x_m, y_m, stats


def _check_counts(intensities: np.ndarray, bad_pixels: np.ndarray | None, where: Any) -> None:
    """Refuse NaN/Inf or negative photon counts at good pixels (one line naming ``where``)."""
    good = np.ones(intensities.shape[1:], dtype=bool) if bad_pixels is None else ~bad_pixels
    values = intensities[:, good]
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{where}: 'patterns' has NaN/Inf at good pixels; expected photon counts")
    if values.size and float(values.min()) < 0:
        raise ValueError(
            f"{where}: 'patterns' has negative values (min {float(values.min()):.3g}) "
            "at good pixels; expected non-negative photon counts"
        )


def amplitudes_from_counts(
    intensities: np.ndarray, bad_pixels: np.ndarray | None = None, *, where: Any = "patterns"
) -> np.ndarray:
    """Ptychodus photon counts -> ptychopinn amplitudes, bad pixels zeroed.

    Parameters
    ----------
    intensities : numpy.ndarray
        (n, H, W) photon counts (any real dtype), DC at (H // 2, W // 2) -- as in
        ``diffraction.h5`` and ``ReconstructInput.diffraction_patterns`` (no shift needed).
    bad_pixels : numpy.ndarray, optional
        (H, W) bool, True where the detector pixel is invalid; those pixels become 0.
    where : str or path-like
        Named in error messages (the file or the input).

    Returns
    -------
    numpy.ndarray
        (n, H, W) float32 ``sqrt(counts)``.

    Raises
    ------
    ValueError
        One line naming ``where`` for a wrong shape, or NaN/Inf or negative counts at good pixels.
    """
    counts = np.asarray(intensities)
    if counts.ndim != 3 or counts.dtype.kind not in "uif":
        raise ValueError(
            f"{where}: 'patterns' is {counts.dtype} {counts.shape}; expected real (n, H, W) counts"
        )
    counts = counts.astype(np.float32, copy=False)
    if bad_pixels is not None:
        bad_pixels = np.asarray(bad_pixels, dtype=bool)
        if bad_pixels.shape != counts.shape[1:]:
            raise ValueError(
                f"{where}: 'bad_pixels' has shape {bad_pixels.shape}; expected {counts.shape[1:]}"
            )
    _check_counts(counts, bad_pixels, where)
    if bad_pixels is not None and bad_pixels.any():
        counts = np.where(bad_pixels[None], np.float32(0), counts)
    return np.sqrt(np.maximum(counts, 0)).astype(np.float32, copy=False)


def read_batch_directory(
    directory: str | os.PathLike[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int], dict[str, Any]]:
    """Read a Ptychodus batch input directory for a ptychopinn reconstruction.

    A batch input directory (what ``ptychodus -b reconstruct -i DIR -o OUT`` and its Globus /
    remote workflows consume) holds ``diffraction.h5`` and ``product.h5`` (``product-in.h5`` for
    Ptychodus < 1.7), optionally ``settings.ini`` and ``model<ext>``.

    Parameters
    ----------
    directory : path-like
        The batch input directory.

    Returns
    -------
    intensities : numpy.ndarray
        (n, H, W) float32 photon counts (not amplitudes), DC at (H // 2, W // 2), one per
        pattern that has a position; bad pixels are left as stored (see
        ``metadata["bad_pixels"]``).
    positions_rc : numpy.ndarray
        (n, 2) float64 ptychopinn positions (row, col) in object pixels of the product's object.
    probe : numpy.ndarray
        (h, w) complex64 initial probe (first OPR / incoherent mode), on the object grid.
    object_shape : (int, int)
        (H_obj, W_obj) of the product's object.
    metadata : dict
        ``product`` (:class:`PtychodusProduct`), ``indexes`` ((n,) scan indexes), ``bad_pixels``
        ((H, W) bool or None), ``detector_pixel_width_m`` / ``_height_m``, ``photon_energy_eV``,
        ``detector_object_distance_m``, ``object_pixel_size_m`` ((height, width)),
        ``object_center_m`` ((x, y)), ``values`` (``"intensity"``), file paths, and the pairing
        counts ``n_dropped`` / ``n_interpolated`` / ``n_averaged``.

    Raises
    ------
    FileNotFoundError
        If the directory or one of its two files is missing.
    ValueError
        One line naming the file for inconsistent content (probe size != pattern size, probe not on
        the object grid, NaN/Inf or negative counts at good pixels, no pattern with a position).

    Notes
    -----
    Patterns and positions are paired by scan index as Ptychodus 1.7 does
    (``prepare_reconstruct_input``): duplicate position indexes are averaged, pattern indexes
    inside the position range without a position are linearly interpolated, patterns outside it
    are dropped.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: not a directory")
    diffraction_path = directory / DIFFRACTION_FILE_NAME
    if not diffraction_path.is_file():
        raise FileNotFoundError(
            f"{directory}: no {DIFFRACTION_FILE_NAME} (Ptychodus batch input directory expected)"
        )
    product_path = directory / PRODUCT_FILE_NAME
    if not product_path.is_file():
        for legacy in LEGACY_PRODUCT_FILE_NAMES:
            if (directory / legacy).is_file():
                product_path = directory / legacy
                break
        else:
            raise FileNotFoundError(
                f"{directory}: no {PRODUCT_FILE_NAME} (nor legacy "
                f"{', '.join(LEGACY_PRODUCT_FILE_NAMES)}) in Ptychodus batch input directory"
            )

    product = read_product(product_path)
    patterns, pattern_indexes, bad_pixels, attrs = read_diffraction_file(diffraction_path)
    try:
        _check_probe_on_object_grid(product)
    except ValueError as exc:
        raise ValueError(f"{product_path}: {exc}") from None
    if product.probe_shape != patterns.shape[1:]:
        raise ValueError(
            f"{product_path}: 'probe' is {product.probe_shape[0]}x{product.probe_shape[1]} but "
            f"{diffraction_path.name} patterns are {patterns.shape[1]}x{patterns.shape[2]}; "
            "expected equal sizes"
        )
    rows, x_m, y_m, stats = _pair_positions(pattern_indexes, product)
    if rows.size == 0:
        raise ValueError(
            f"{diffraction_path}: no pattern index lies within the product's position indexes "
            f"[{product.probe_position_indexes.min()}, {product.probe_position_indexes.max()}]"
        )
    if stats["n_dropped"] or stats["n_interpolated"] or stats["n_averaged"]:
        logger.warning(
            "%s: %d patterns without a position dropped, %d positions interpolated, "
            "%d duplicate positions averaged",
            directory,
            stats["n_dropped"],
            stats["n_interpolated"],
            stats["n_averaged"],
        )
    intensities = np.asarray(patterns[rows], dtype=np.float32)
    _check_counts(intensities, bad_pixels, diffraction_path)
    positions_rc = positions_m_to_px(
        x_m,
        y_m,
        center_x_m=product.object_center_x_m,
        center_y_m=product.object_center_y_m,
        pixel_width_m=product.object_pixel_width_m,
        pixel_height_m=product.object_pixel_height_m,
        object_shape=product.object_shape,
        probe_shape=product.probe_shape,
    )
    settings = directory / "settings.ini"
    metadata: dict[str, Any] = {
        "source_directory": str(directory),
        "diffraction_file": str(diffraction_path),
        "product_file": str(product_path),
        "settings_file": str(settings) if settings.is_file() else None,
        "product": product,
        "indexes": pattern_indexes[rows],
        "bad_pixels": bad_pixels,
        "detector_pixel_width_m": attrs[_DETECTOR_PIXEL_WIDTH],
        "detector_pixel_height_m": attrs[_DETECTOR_PIXEL_HEIGHT],
        "probe_photon_counts": (
            None if attrs[_POSITION_PHOTON_COUNTS] is None else attrs[_POSITION_PHOTON_COUNTS][rows]
        ),
        "photon_energy_eV": product.photon_energy_eV,
        "detector_object_distance_m": product.detector_object_distance_m,
        "object_pixel_size_m": (product.object_pixel_height_m, product.object_pixel_width_m),
        "object_center_m": (product.object_center_x_m, product.object_center_y_m),
        "values": "intensity",
        "position_convention": "ptychopinn patch centre (probe index N//2), object pixels",
        **stats,
    }
    if product.object.shape[0] > 1 or product.probe.shape[0] > 1 or product.probe.shape[1] > 1:
        logger.warning(
            "%s: using object layer 0 and probe mode (0, 0) of %s object / %s probe",
            product_path,
            product.object.shape,
            product.probe.shape,
        )
    probe = product.probe[0, 0].copy()
    return intensities, positions_rc, probe, product.object_shape, metadata


def write_batch_directory(
    directory: str | os.PathLike[str],
    patterns: np.ndarray,
    product: PtychodusProduct,
    *,
    detector_pixel_width_m: float,
    detector_pixel_height_m: float,
    indexes: np.ndarray | None = None,
    bad_pixels: np.ndarray | None = None,
) -> Path:
    """Write a Ptychodus >= 1.7 batch input directory (``diffraction.h5`` + ``product.h5``).

    Parameters
    ----------
    directory : path-like
        Created if missing.
    patterns : numpy.ndarray
        (n, H, W) photon counts (intensities), DC at (H // 2, W // 2).
    product : PtychodusProduct
        Initial product (positions, probe, object, metadata).
    detector_pixel_width_m, detector_pixel_height_m : float
        Detector pixel size in metres.
    indexes : numpy.ndarray, optional
        (n,) scan indexes of the patterns; default the product's position indexes when there is
        one position per pattern, else ``arange(n)``.
    bad_pixels : numpy.ndarray, optional
        (H, W) bool mask.

    Returns
    -------
    pathlib.Path
        ``directory``, ready for ``ptychodus -b reconstruct -i DIRECTORY -o OUT``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n = np.asarray(patterns).shape[0]
    if indexes is None and product.num_positions == n:
        indexes = product.probe_position_indexes
    write_diffraction_file(
        directory / DIFFRACTION_FILE_NAME,
        patterns,
        detector_pixel_width_m=detector_pixel_width_m,
        detector_pixel_height_m=detector_pixel_height_m,
        indexes=indexes,
        bad_pixels=bad_pixels,
    )
    write_product(product, directory / PRODUCT_FILE_NAME)
    return directory


# --- Ptychodus's PtychoPINN training NPZ ----------------------------------------------------------

_VALUE_SYNONYMS: dict[str, ValuesKind] = {
    "intensity": "intensity",
    "intensities": "intensity",
    "counts": "intensity",
    "photon_counts": "intensity",
    "amplitude": "amplitude",
    "amplitudes": "amplitude",
    "sqrt_counts": "amplitude",
}


def _declared_values(meta: Mapping[str, Any]) -> str | None:
    """What ``metadata_json`` says the diffraction array holds, or None."""
    for key in ("diffraction_values", "diffraction_units"):
        if key in meta:
            return str(meta[key])
    units = meta.get("units")
    if isinstance(units, Mapping):
        for key in ("diffraction", "diff3d"):
            if key in units:
                return str(units[key])
    return None


def read_ptychodus_npz(
    path: str | os.PathLike[str],
    *,
    values: ValuesKind | None = None,
    shift_to_patch_centre: bool = True,
) -> dict[str, np.ndarray]:
    """Read the PtychoPINN training NPZ that Ptychodus exports, as ptychopinn dataset arrays.

    Ptychodus's ``save_ptychopinn_training_data`` writes ``diff3d`` as **intensities** (photon
    counts, source dtype) without saying so in the file, while PtychoPINN's own NPZ files use the
    same key for amplitudes. This reader therefore refuses to guess.

    Parameters
    ----------
    path : path-like
        The NPZ file (never unpickled).
    values : {"intensity", "amplitude"}, optional
        What the diffraction array holds. Required unless ``metadata_json`` declares it
        (``diffraction_values`` / ``diffraction_units``, or ``units["diffraction"]``) or the array
        is stored under ``diffraction`` (amplitude by the ptychopinn format). A flag that
        contradicts the file's declaration is refused.
    shift_to_patch_centre : bool
        Ptychodus writes ``xcoords``/``ycoords`` as the object pixel of the probe's geometric
        centre (index (N - 1) / 2). True (default) adds :func:`probe_centre_offset` (0.5 px for
        even N) to follow ptychopinn's patch-centre convention; False keeps them as stored.

    Returns
    -------
    dict of numpy.ndarray
        Keys of the ptychopinn dataset NPZ: ``diffraction`` (M, N, N) float32 amplitudes =
        sqrt(counts); ``xcoords``, ``ycoords``, ``xcoords_start``, ``ycoords_start`` (M,) float64;
        ``probeGuess`` (N, N) complex64 (first mode); ``objectGuess`` (H, W) complex64 if present;
        ``scan_index`` (M,) int64; ``metadata_json`` 0-d str (provenance, units, the applied
        position shift, source metadata); ``bad_pixels`` (N, N) bool if present (Ptychodus has
        already inpainted or zeroed those pixels in ``diff3d``).

    Raises
    ------
    ValueError
        One line naming the file (and key) when the units are undeclared, a key is missing,
        shapes disagree, values are NaN/Inf or negative, or the file holds pickled objects.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as exc:
        raise ValueError(
            f"{path}: refused: holds pickled objects or is malformed ({exc})"
        ) from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable NPZ file ({exc})") from None

    if "diff3d" in arrays:
        dkey = "diff3d"
    elif "diffraction" in arrays:
        dkey = "diffraction"
    else:
        raise ValueError(f"{path}: missing key 'diff3d' (nor 'diffraction'); expected (M, N, N)")
    for key in ("xcoords", "ycoords", "probeGuess"):
        if key not in arrays:
            raise ValueError(f"{path}: missing key {key!r}")

    source_meta: dict[str, Any] = {}
    if "metadata_json" in arrays:
        try:
            source_meta = json.loads(str(arrays["metadata_json"][()]))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path}: 'metadata_json' is not valid JSON ({exc})") from None
        if not isinstance(source_meta, dict):
            raise ValueError(f"{path}: 'metadata_json' must hold a JSON object")
    raw_declared = _declared_values(source_meta)
    declared: str | None = None
    if raw_declared is not None:
        declared = _VALUE_SYNONYMS.get(raw_declared.strip().lower())
        if declared is None:
            raise ValueError(
                f"{path}: metadata_json declares diffraction values {raw_declared!r}; "
                "expected 'intensity' or 'amplitude'"
            )
    elif dkey == "diffraction":
        declared = "amplitude"
    if values is not None and values not in ("intensity", "amplitude"):
        raise ValueError(f"values must be 'intensity' or 'amplitude', got {values!r}")
    if values is not None and declared is not None and values != declared:
        raise ValueError(
            f"{path}: {dkey!r} is declared as {declared} but values={values!r} was given"
        )
    kind = values or declared
    if kind is None:
        raise ValueError(
            f"{path}: {dkey!r} does not say whether it holds intensities or amplitudes "
            "(Ptychodus's PtychoPINN export writes intensities); pass values='intensity' or "
            "values='amplitude'"
        )

    diff = arrays[dkey]
    if diff.ndim != 3 or diff.shape[1] != diff.shape[2] or diff.dtype.kind not in "uif":
        raise ValueError(
            f"{path}: {dkey!r} is {diff.dtype} {diff.shape}; expected real (M, N, N) patterns"
        )
    m, n = diff.shape[0], diff.shape[1]
    out: dict[str, np.ndarray] = {}
    data = diff.astype(np.float32)
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{path}: {dkey!r} has NaN/Inf values; expected finite {kind} values")
    if data.size and float(data.min()) < 0:
        raise ValueError(
            f"{path}: {dkey!r} has negative values (min {float(data.min()):.3g}); "
            f"expected non-negative {kind} values"
        )
    out["diffraction"] = np.sqrt(data) if kind == "intensity" else data

    probe = arrays["probeGuess"]
    if not np.iscomplexobj(probe) or probe.ndim not in (2, 3):
        raise ValueError(
            f"{path}: 'probeGuess' is {probe.dtype} {probe.shape}; expected complex (N, N) or "
            "(modes, N, N)"
        )
    if probe.ndim == 3:
        if probe.shape[0] > 1:
            logger.warning("%s: probeGuess has %d modes; using mode 0", path, probe.shape[0])
        probe = probe[0]
    if probe.shape != (n, n):
        raise ValueError(
            f"{path}: 'probeGuess' is {probe.shape[0]}x{probe.shape[1]}; expected {n}x{n} like "
            f"{dkey!r}"
        )
    out["probeGuess"] = probe.astype(np.complex64)

    d_row, d_col = probe_centre_offset((n, n)) if shift_to_patch_centre else (0.0, 0.0)
    for key, shift in (
        ("xcoords", d_col),
        ("ycoords", d_row),
        ("xcoords_start", d_col),
        ("ycoords_start", d_row),
    ):
        source = arrays.get(key, arrays[key.removesuffix("_start")])
        coords = np.asarray(source, dtype=np.float64).reshape(-1)
        if coords.size != m or not np.all(np.isfinite(coords)):
            raise ValueError(
                f"{path}: {key!r} has {coords.size} entries (or NaN/Inf); expected {m} finite "
                f"positions like {dkey!r}"
            )
        out[key] = coords + shift

    if "objectGuess" in arrays:
        obj = arrays["objectGuess"]
        if obj.ndim == 3 and obj.shape[0] == 1:
            obj = obj[0]
        if not np.iscomplexobj(obj) or obj.ndim != 2:
            raise ValueError(
                f"{path}: 'objectGuess' is {obj.dtype} {obj.shape}; expected complex (H, W)"
            )
        out["objectGuess"] = obj.astype(np.complex64)
    scan_index = arrays.get("scan_index", np.zeros(m, dtype=np.int64))
    if np.asarray(scan_index).shape != (m,):
        raise ValueError(f"{path}: 'scan_index' has shape {np.shape(scan_index)}; expected ({m},)")
    out["scan_index"] = np.asarray(scan_index, dtype=np.int64)
    if "bad_pixels" in arrays:
        bad = np.asarray(arrays["bad_pixels"], dtype=bool)
        if bad.shape != (n, n):
            raise ValueError(f"{path}: 'bad_pixels' has shape {bad.shape}; expected ({n}, {n})")
        out["bad_pixels"] = bad

    meta = {
        "source": str(path),
        "source_format": "ptychodus PtychoPINN training NPZ",
        "source_diffraction_key": dkey,
        "source_diffraction_values": kind,
        "diffraction_values": "amplitude",
        "position_convention": "patch centre (probe index N//2), object pixels",
        "position_shift_px": [d_row, d_col],
    }
    if source_meta:
        meta["source_metadata"] = source_meta
    out["metadata_json"] = np.array(json.dumps(meta))
    return out
