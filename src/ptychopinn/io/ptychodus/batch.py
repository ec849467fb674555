"""Ptychodus batch input directories (``diffraction.h5`` + ``product.h5``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.io.ptychodus import _keys as k
from ptychopinn.io.ptychodus.diffraction import (
    check_counts,
    read_diffraction_file,
    write_diffraction_file,
)
from ptychopinn.io.ptychodus.geometry import positions_m_to_px
from ptychopinn.io.ptychodus.product import (
    PtychodusProduct,
    check_probe_on_object_grid,
    read_product,
    write_product,
)

logger = logging.getLogger(__name__)

__all__ = ["DIFFRACTION_FILE_NAME", "LEGACY_PRODUCT_FILE_NAMES", "PRODUCT_FILE_NAME",
           "pair_positions", "read_batch_directory", "write_batch_directory"]

#: File name of the assembled diffraction data in a Ptychodus batch directory.
DIFFRACTION_FILE_NAME = "diffraction.h5"
#: File name of the input (and output) product in a Ptychodus >= 1.7 batch directory.
PRODUCT_FILE_NAME = "product.h5"
#: Input product names used by Ptychodus releases before 1.7 (accepted on read only).
LEGACY_PRODUCT_FILE_NAMES = ("product-in.h5",)


def pair_positions(
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
        check_probe_on_object_grid(product)
    except ValueError as exc:
        raise ValueError(f"{product_path}: {exc}") from None
    if product.probe_shape != patterns.shape[1:]:
        raise ValueError(
            f"{product_path}: 'probe' is {product.probe_shape[0]}x{product.probe_shape[1]} but "
            f"{diffraction_path.name} patterns are {patterns.shape[1]}x{patterns.shape[2]}; "
            "expected equal sizes"
        )
    rows, x_m, y_m, stats = pair_positions(pattern_indexes, product)
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
    check_counts(intensities, bad_pixels, diffraction_path)
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
        "detector_pixel_width_m": attrs[k.DETECTOR_PIXEL_WIDTH],
        "detector_pixel_height_m": attrs[k.DETECTOR_PIXEL_HEIGHT],
        "probe_photon_counts": (
            None
            if attrs[k.POSITION_PHOTON_COUNTS] is None
            else attrs[k.POSITION_PHOTON_COUNTS][rows]
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

