"""Ptychodus position conventions and far-field sampling (metres <-> object pixels)."""

from __future__ import annotations

import numpy as np

__all__ = ["far_field_pixel_size_m", "positions_m_to_px", "positions_px_to_m",
           "probe_centre_offset"]


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

