"""Ptychodus product files (``product.h5``): the :class:`PtychodusProduct` record, its reader
and writer, and conversions to and from ptychopinn arrays."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ptychopinn.files import atomic_path
from ptychopinn.io.ptychodus import _keys as k
from ptychopinn.io.ptychodus._common import (
    attr_scalar,
    decode,
    empty_float,
    empty_int,
    open_h5,
    require_dataset,
)
from ptychopinn.io.ptychodus.container import PtychodusProduct
from ptychopinn.io.ptychodus.geometry import positions_m_to_px, positions_px_to_m

if TYPE_CHECKING:
    from ptychopinn.io.ptychodus.bridge import Backend

logger = logging.getLogger(__name__)

__all__ = ["PtychodusProduct", "check_probe_on_object_grid", "product_from_reconstruction",
           "read_product", "reconstruction_from_product", "write_product"]


def read_product(path: str | os.PathLike[str], *, backend: Backend = "auto"
                 ) -> PtychodusProduct:
    """Read a Ptychodus product HDF5 file.

    Parameters
    ----------
    path : path-like
        A file written by Ptychodus (``ptychodus.api.io.save_product``) or by
        :func:`write_product`.
    backend : {"auto", "ptychodus", "h5py"}
        ``"auto"``: ``ptychodus.api.io.load_product`` when Ptychodus is installed
        (:mod:`~ptychopinn.io.ptychodus.bridge`), and the h5py reader for a file it refuses
        (which then reads it or names the offending key); ``"ptychodus"``: Ptychodus only;
        ``"h5py"``: the plain reader. Both give the same record.

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
    from ptychopinn.io.ptychodus import bridge

    path = Path(path)
    if bridge.use_ptychodus(backend) and path.is_file():
        try:
            return bridge.read_product_with_ptychodus(path)
        except bridge.READ_ERRORS as exc:
            if backend == "ptychodus":
                msg = " ".join(str(exc).split()) or type(exc).__name__
                raise ValueError(f"{path}: Ptychodus cannot read this product ({msg})") from None
            logger.debug("%s: Ptychodus's loader refused the file (%s); reading with h5py",
                         path, exc)
    return _read_product_h5py(path)


def _read_product_h5py(path: Path) -> PtychodusProduct:
    with open_h5(path) as h5:
        attrs = h5.attrs

        def root_float(key: str, default: float | None) -> float:
            if key in attrs:
                return attr_scalar(attrs, key, path, "root")
            if default is None:
                raise ValueError(
                    f"{path}: Ptychodus product is missing root attribute {key!r}; "
                    "expected a number"
                )
            return default

        if k.PHOTON_ENERGY in attrs:
            energy = attr_scalar(attrs, k.PHOTON_ENERGY, path, "root")
        elif k.LEGACY_PHOTON_ENERGY in attrs:
            energy = attr_scalar(attrs, k.LEGACY_PHOTON_ENERGY, path, "root")
            logger.debug(
                "%s: photon energy read from legacy attribute %r", path, k.LEGACY_PHOTON_ENERGY
            )
        else:
            raise ValueError(
                f"{path}: Ptychodus product is missing root attribute {k.PHOTON_ENERGY!r} "
                f"(nor legacy {k.LEGACY_PHOTON_ENERGY!r}); expected the photon energy in eV"
            )

        polarization = None
        if k.POLARIZATION in attrs:
            polarization = str(decode(attrs[k.POLARIZATION]))
        far_field = True
        if k.FAR_FIELD in attrs:
            far_field = bool(np.asarray(attrs[k.FAR_FIELD]).reshape(-1)[0])
        extra = {key: decode(attrs[key]) for key in attrs if key not in k.KNOWN_ROOT_ATTRS}

        h5_object = require_dataset(h5, k.OBJECT, path, "complex (layers, H, W) object")
        obj_attrs = h5_object.attrs
        for key in (k.CENTER_X, k.CENTER_Y, k.PIXEL_WIDTH, k.PIXEL_HEIGHT):
            if key not in obj_attrs:
                raise ValueError(
                    f"{path}: Ptychodus product dataset 'object' is missing attribute {key!r}; "
                    "expected a number in metres"
                )
        h5_probe = require_dataset(h5, k.PROBE, path, "complex (opr, modes, h, w) probe")
        obj_pw = attr_scalar(obj_attrs, k.PIXEL_WIDTH, path, "'object'")
        obj_ph = attr_scalar(obj_attrs, k.PIXEL_HEIGHT, path, "'object'")
        probe_attrs = h5_probe.attrs
        probe_pw = (
            attr_scalar(probe_attrs, k.PIXEL_WIDTH, path, "'probe'")
            if k.PIXEL_WIDTH in probe_attrs
            else obj_pw
        )
        probe_ph = (
            attr_scalar(probe_attrs, k.PIXEL_HEIGHT, path, "'probe'")
            if k.PIXEL_HEIGHT in probe_attrs
            else obj_ph
        )

        indexes = require_dataset(h5, k.POSITION_INDEXES, path, "(P,) integer scan indexes")
        xs = require_dataset(h5, k.POSITION_X, path, "(P,) probe-centre x positions in metres")
        ys = require_dataset(h5, k.POSITION_Y, path, "(P,) probe-centre y positions in metres")

        def optional(key: str) -> np.ndarray | None:
            if key not in h5:
                return None
            return require_dataset(h5, key, path, "")[()]

        spacing = optional(k.LAYER_SPACING)
        epochs = optional(k.LOSS_EPOCHS)
        values = optional(k.LOSS_VALUES)
        if (epochs is None) != (values is None):
            raise ValueError(
                f"{path}: Ptychodus product has only one of {k.LOSS_EPOCHS!r} and {k.LOSS_VALUES!r}"
            )

        fields: dict[str, Any] = {
            "name": str(decode(attrs.get(k.NAME, "Unnamed"))),
            "comments": str(decode(attrs.get(k.COMMENTS, ""))),
            "detector_object_distance_m": root_float(k.DETECTOR_OBJECT_DISTANCE, None),
            "photon_energy_eV": energy,
            "probe_photon_count": root_float(k.PROBE_PHOTON_COUNT, 0.0),
            "exposure_time_s": root_float(k.EXPOSURE_TIME, 0.0),
            "mass_attenuation_m2_per_kg": root_float(k.MASS_ATTENUATION, 0.0),
            "tomography_angle_deg": root_float(k.TOMOGRAPHY_ANGLE, 0.0),
            "focus_object_distance_m": root_float(k.FOCUS_OBJECT_DISTANCE, 0.0),
            "tilt_angle_deg": root_float(k.TILT_ANGLE, 0.0),
            "far_field": far_field,
            "polarization": polarization,
            "probe_position_indexes": indexes[()],
            "probe_position_x_m": xs[()],
            "probe_position_y_m": ys[()],
            "probe": h5_probe[()],
            "probe_pixel_width_m": probe_pw,
            "probe_pixel_height_m": probe_ph,
            "object": h5_object[()],
            "object_center_x_m": attr_scalar(obj_attrs, k.CENTER_X, path, "'object'"),
            "object_center_y_m": attr_scalar(obj_attrs, k.CENTER_Y, path, "'object'"),
            "object_pixel_width_m": obj_pw,
            "object_pixel_height_m": obj_ph,
            "object_layer_spacing_m": empty_float() if spacing is None else spacing,
            "loss_epochs": empty_int() if epochs is None else epochs,
            "loss_values": empty_float() if values is None else values,
            "opr_weights": optional(k.OPR_WEIGHTS),
            "probe_photon_counts": optional(k.POSITION_PHOTON_COUNTS),
            "extra_attrs": extra,
        }
    for key in (k.OBJECT, k.PROBE):
        dtype = np.asarray(fields[key]).dtype
        if dtype == np.complex128:
            logger.info("%s: %r stored as complex128; read as complex64", path, key)
    try:
        return PtychodusProduct(**fields)
    except ValueError as exc:
        raise ValueError(f"{path}: invalid Ptychodus product: {exc}") from None


def write_product(product: PtychodusProduct, path: str | os.PathLike[str], *,
                  backend: Backend = "auto") -> Path:
    """Write a product in the Ptychodus >= 1.7 HDF5 layout, atomically.

    The file is first written to a temporary file in the destination directory and then moved
    into place with :func:`os.replace`, so readers never see a partial file.

    Parameters
    ----------
    product : PtychodusProduct
        The product to write.
    path : path-like
        Destination (conventionally ``*.h5``); its directory must exist.
    backend : {"auto", "ptychodus", "h5py"}
        ``"auto"``: ``ptychodus.api.io.save_product`` when Ptychodus is installed, else (or for
        a product its record cannot hold, e.g. an unknown polarization) the h5py writer;
        ``"ptychodus"`` / ``"h5py"``: that one only. Both write the same file content.

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
    from ptychopinn.io.ptychodus import bridge

    path = Path(path)
    if bridge.use_ptychodus(backend):
        try:
            bridge.write_product_with_ptychodus(product, path)
        except (ValueError, TypeError) as exc:
            if backend == "ptychodus":
                raise
            logger.debug("%s: Ptychodus's writer refused the product (%s); writing with h5py",
                         path, exc)
        else:
            logger.info("wrote Ptychodus product %s (%d positions)", path,
                        product.num_positions)
            return path
    _write_product_h5py(product, path)
    logger.info("wrote Ptychodus product %s (%d positions)", path, product.num_positions)
    return path


def _write_product_h5py(product: PtychodusProduct, path: Path) -> None:
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        attrs = h5.attrs
        attrs[k.NAME] = product.name
        attrs[k.COMMENTS] = product.comments
        attrs[k.DETECTOR_OBJECT_DISTANCE] = product.detector_object_distance_m
        attrs[k.PHOTON_ENERGY] = product.photon_energy_eV
        attrs[k.PROBE_PHOTON_COUNT] = product.probe_photon_count
        attrs[k.EXPOSURE_TIME] = product.exposure_time_s
        attrs[k.MASS_ATTENUATION] = product.mass_attenuation_m2_per_kg
        attrs[k.TOMOGRAPHY_ANGLE] = product.tomography_angle_deg
        attrs[k.FOCUS_OBJECT_DISTANCE] = product.focus_object_distance_m
        attrs[k.TILT_ANGLE] = product.tilt_angle_deg
        attrs[k.FAR_FIELD] = product.far_field
        if product.polarization is not None:
            attrs[k.POLARIZATION] = product.polarization
        for key, value in product.extra_attrs.items():
            attrs[key] = value

        h5.create_dataset(k.POSITION_INDEXES, data=product.probe_position_indexes)
        h5.create_dataset(k.POSITION_X, data=product.probe_position_x_m)
        h5.create_dataset(k.POSITION_Y, data=product.probe_position_y_m)
        if product.probe_photon_counts is not None:
            h5.create_dataset(k.POSITION_PHOTON_COUNTS, data=product.probe_photon_counts)

        h5_probe = h5.create_dataset(k.PROBE, data=product.probe)
        if product.opr_weights is not None:
            h5.create_dataset(k.OPR_WEIGHTS, data=product.opr_weights)
        h5_probe.attrs[k.PIXEL_WIDTH] = product.probe_pixel_width_m
        h5_probe.attrs[k.PIXEL_HEIGHT] = product.probe_pixel_height_m

        h5_object = h5.create_dataset(k.OBJECT, data=product.object)
        h5_object.attrs[k.CENTER_X] = product.object_center_x_m
        h5_object.attrs[k.CENTER_Y] = product.object_center_y_m
        h5_object.attrs[k.PIXEL_WIDTH] = product.object_pixel_width_m
        h5_object.attrs[k.PIXEL_HEIGHT] = product.object_pixel_height_m
        h5.create_dataset(k.LAYER_SPACING, data=product.object_layer_spacing_m)

        h5.create_dataset(k.LOSS_EPOCHS, data=product.loss_epochs)
        h5.create_dataset(k.LOSS_VALUES, data=product.loss_values)



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
        loss_epochs=empty_int() if loss_epochs is None else loss_epochs,
        loss_values=empty_float() if loss_values is None else loss_values,
        far_field=far_field,
    )


def check_probe_on_object_grid(product: PtychodusProduct) -> None:
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
    check_probe_on_object_grid(product)
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

