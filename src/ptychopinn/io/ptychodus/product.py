"""Ptychodus products <-> ptychopinn arrays: :func:`product_from_reconstruction` and
:func:`reconstruction_from_product` (positions by the conventions of
:mod:`~ptychopinn.io.ptychodus.geometry`). Files are read and written by
:mod:`~ptychopinn.io.ptychodus.files`."""

from __future__ import annotations

import logging
import math

import numpy as np

from ptychopinn.io.ptychodus.container import PtychodusProduct, empty_float, empty_int
from ptychopinn.io.ptychodus.geometry import positions_m_to_px, positions_px_to_m

logger = logging.getLogger(__name__)

__all__ = ["check_probe_on_object_grid", "product_from_reconstruction",
           "reconstruction_from_product"]


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
    """Refuse (one-line ValueError) a probe whose pixel size differs from the object's
    (relative tolerance 1e-6): ptychopinn samples both on one grid."""
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

