"""Ptychodus batch input directories (``diffraction.h5`` + ``product.h5``)."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.errors import PtychoInputError
from ptychopinn.io.ptychodus import _keys as k
from ptychopinn.io.ptychodus.container import PtychodusProduct
from ptychopinn.io.ptychodus.files import (
    read_diffraction_file,
    read_product,
    write_diffraction_file,
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
) -> tuple[np.ndarray, np.ndarray, PtychodusProduct, dict[str, Any]]:
    """Read a Ptychodus batch input directory, patterns paired with positions by scan index.

    A batch input directory (what ``ptychodus -b reconstruct -i DIR -o OUT`` and its Globus /
    remote workflows consume) holds ``diffraction.h5`` and ``product.h5`` (``product-in.h5`` for
    Ptychodus < 1.7), optionally ``settings.ini`` and ``model<ext>``. Both files are read through
    ``ptychodus`` (:func:`~ptychopinn.io.ptychodus.read_product`,
    :func:`~ptychopinn.io.ptychodus.read_diffraction_file`). The result is what Ptychodus hands
    a reconstructor (``ReconstructInput``); :func:`~ptychopinn.io.ptychodus.dataset_from_product`
    turns it into a dataset.

    Parameters
    ----------
    directory : path-like
        The batch input directory.

    Returns
    -------
    intensities : numpy.ndarray
        (n, H, W) float32 photon counts (not amplitudes, bad pixels as stored), DC at
        (H // 2, W // 2), one per pattern that has a position.
    bad_pixels : numpy.ndarray
        (H, W) bool, True where the detector pixel is invalid.
    product : PtychodusProduct
        The input product with its positions replaced by the n paired ones (metres; indexes =
        the patterns' scan indexes; per-position photon counts dropped).
    metadata : dict
        File paths (``source_directory``, ``diffraction_file``, ``product_file``,
        ``settings_file``), ``indexes`` ((n,) scan indexes), ``detector_pixel_width_m`` /
        ``_height_m``, ``probe_photon_counts`` ((n,) or None, from the diffraction file),
        ``values`` (``"intensity"``) and the pairing counts ``n_dropped`` / ``n_interpolated`` /
        ``n_averaged``.

    Raises
    ------
    FileNotFoundError
        If the directory or one of its two files is missing.
    PtychoInputError
        Without ``ptychodus``; one line naming the file that Ptychodus cannot read, or the
        diffraction file when no pattern index lies within the product's position indexes.

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
    rows, x_m, y_m, stats = pair_positions(pattern_indexes, product)
    if rows.size == 0:
        raise PtychoInputError(
            "no pattern index lies within the product's position indexes "
            f"[{product.probe_position_indexes.min()}, {product.probe_position_indexes.max()}]",
            path=diffraction_path)
    if stats["n_dropped"] or stats["n_interpolated"] or stats["n_averaged"]:
        logger.warning(
            "%s: %d patterns without a position dropped, %d positions interpolated, "
            "%d duplicate positions averaged",
            directory,
            stats["n_dropped"],
            stats["n_interpolated"],
            stats["n_averaged"],
        )
    paired = replace(product, probe_position_indexes=pattern_indexes[rows],
                     probe_position_x_m=x_m, probe_position_y_m=y_m, probe_photon_counts=None)
    counts = attrs[k.POSITION_PHOTON_COUNTS]
    settings = directory / "settings.ini"
    metadata: dict[str, Any] = {
        "source_directory": str(directory),
        "diffraction_file": str(diffraction_path),
        "product_file": str(product_path),
        "settings_file": str(settings) if settings.is_file() else None,
        "indexes": pattern_indexes[rows],
        "detector_pixel_width_m": attrs[k.DETECTOR_PIXEL_WIDTH],
        "detector_pixel_height_m": attrs[k.DETECTOR_PIXEL_HEIGHT],
        "probe_photon_counts": None if counts is None else counts[rows],
        "values": "intensity",
        **stats,
    }
    return np.asarray(patterns[rows], dtype=np.float32), bad_pixels, paired, metadata


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

