"""Ptychodus inputs as ptychopinn datasets.

:func:`dataset_from_product` is the one conversion of a Ptychodus product and its patterns to a
:class:`~ptychopinn.data.container.PtychoData`: the batch-directory reader
(:func:`dataset_from_batch_directory`, hence ``load_dataset`` and ``convert``) and the Ptychodus
reconstructor plugin (:mod:`ptychopinn.interop.ptychodus_reconstructor`) both call it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError
from ptychopinn.io.ptychodus.batch import read_batch_directory
from ptychopinn.io.ptychodus.container import PtychodusProduct
from ptychopinn.io.ptychodus.files import product_from_ptychodus
from ptychopinn.io.ptychodus.npz_export import read_ptychodus_npz
from ptychopinn.io.ptychodus.product import reconstruction_from_product

__all__ = ["amplitudes_from_counts", "convert_ptychodus", "dataset_from_batch_directory",
           "dataset_from_product", "dataset_from_ptychodus_npz"]


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
    PtychoInputError
        One line naming ``where`` for a wrong shape, or NaN/Inf or negative counts at good pixels.
    """
    counts = np.asarray(intensities)
    if counts.ndim != 3 or counts.dtype.kind not in "uif":
        raise PtychoInputError(f"'patterns' is {counts.dtype} {counts.shape}; expected real "
                               "(n, H, W) counts", path=where)
    counts = counts.astype(np.float32, copy=False)
    good = np.ones(counts.shape[1:], dtype=bool)
    if bad_pixels is not None:
        bad_pixels = np.asarray(bad_pixels, dtype=bool)
        if bad_pixels.shape != counts.shape[1:]:
            raise PtychoInputError(f"'bad_pixels' has shape {bad_pixels.shape}; expected "
                                   f"{counts.shape[1:]}", path=where)
        good = ~bad_pixels
    values = counts[:, good]
    if not np.all(np.isfinite(values)):
        raise PtychoInputError("'patterns' has NaN/Inf at good pixels; expected photon counts",
                               path=where)
    if values.size and float(values.min()) < 0:
        raise PtychoInputError(f"'patterns' has negative values (min {float(values.min()):.3g}) "
                               "at good pixels; expected non-negative photon counts", path=where)
    if bad_pixels is not None and bad_pixels.any():
        counts = np.where(bad_pixels[None], np.float32(0), counts)
    return np.sqrt(np.maximum(counts, 0)).astype(np.float32, copy=False)


def dataset_from_product(
    product: PtychodusProduct | Any,
    patterns: np.ndarray,
    bad_pixels: np.ndarray | None = None,
    *,
    where: str | os.PathLike | None = None,
    provenance: str | None = None,
) -> PtychoData:
    """A Ptychodus product and the patterns paired 1:1 with its positions, as a dataset.

    Positions go through :func:`~ptychopinn.io.ptychodus.reconstruction_from_product`
    (metres -> object pixels of the product's object, + 0.5 px for an even probe size: see
    the position conventions in :mod:`ptychopinn.io.ptychodus`); patterns through
    :func:`amplitudes_from_counts` (bad pixels zeroed, then ``sqrt``; Ptychodus patterns are
    already DC-centred). The first probe mode and object layer are used.

    Parameters
    ----------
    product : PtychodusProduct or ptychodus.api.product.Product
        P positions, probe on the object pixel grid.
    patterns : numpy.ndarray
        (P, N, N) photon counts, pattern i taken at position i (as Ptychodus's
        ``prepare_reconstruct_input`` or :func:`~ptychopinn.io.ptychodus.read_batch_directory`
        pair them).
    bad_pixels : numpy.ndarray, optional
        (N, N) bool, True where the detector pixel is invalid.
    where : str or path-like, optional
        Named in errors and kept as the dataset's ``source`` (default
        ``Ptychodus product '<name>'``).
    provenance : str, optional
        ``metadata["provenance"]`` (default: ``where``).

    Returns
    -------
    PtychoData
        ``diffraction`` (P, N, N) float32 amplitudes, ``positions`` (P, 2) float64 (row, col),
        ``probe`` (N, N) complex64, ``obj`` (H, W) complex64 (the product's object, layer 0),
        ``metadata["object_shape"]`` = (H, W), so reconstructions land on the product's grid;
        photon energy, distance, object pixel size and centre in ``metadata``.

    Raises
    ------
    PtychoInputError
        One line naming ``where`` for non-square patterns, a pattern/position count mismatch,
        a probe whose size differs from the patterns', a probe off the object grid, or invalid
        counts.
    """
    if not isinstance(product, PtychodusProduct):
        product = product_from_ptychodus(product, where=where)
    where = where if where is not None else f"Ptychodus product {product.name!r}"
    try:
        obj, probe, positions = reconstruction_from_product(product)
    except ValueError as exc:
        raise PtychoInputError(str(exc), path=where) from None
    counts = np.asarray(patterns)
    if counts.ndim != 3 or counts.shape[1] != counts.shape[2]:
        raise PtychoInputError(f"diffraction patterns are {counts.shape}; expected (M, N, N)",
                               path=where)
    if counts.shape[0] != positions.shape[0]:
        raise PtychoInputError(f"{counts.shape[0]} patterns but {positions.shape[0]} probe "
                               "positions; expected one position per pattern", path=where)
    if probe.shape != counts.shape[1:]:
        raise PtychoInputError(f"'probe' is {probe.shape[0]}x{probe.shape[1]} but patterns are "
                               f"{counts.shape[1]}x{counts.shape[2]}; expected equal sizes",
                               path=where)
    amplitudes = amplitudes_from_counts(counts, bad_pixels, where=where)
    metadata = {
        "units": {"diffraction": "sqrt(photon counts)", "positions": "object pixels"},
        "diffraction_values": "amplitude",
        "provenance": provenance or str(where),
        "object_shape": [int(obj.shape[0]), int(obj.shape[1])],
        "photon_energy_eV": product.photon_energy_eV,
        "detector_object_distance_m": product.detector_object_distance_m,
        "object_pixel_size_m": [product.object_pixel_height_m, product.object_pixel_width_m],
        "object_center_m": [product.object_center_x_m, product.object_center_y_m],
        "n_bad_pixels": 0 if bad_pixels is None else int(np.count_nonzero(bad_pixels)),
        "position_convention": "ptychopinn patch centre (probe index N//2), object pixels",
    }
    return PtychoData(
        diffraction=amplitudes,
        positions=positions,
        probe=probe,
        obj=obj,
        scan_index=np.zeros(positions.shape[0], np.int64),
        metadata=metadata,
        source=str(where),
    )


def dataset_from_batch_directory(directory: str | os.PathLike) -> PtychoData:
    """A Ptychodus batch input directory (``diffraction.h5`` + ``product.h5``) as a dataset.

    :func:`~ptychopinn.io.ptychodus.read_batch_directory` pairs patterns with positions by scan
    index; :func:`dataset_from_product` converts them (needs ``ptychodus``).
    """
    directory = Path(directory)
    if not directory.exists():
        raise PtychoInputError("file not found", path=directory)
    intensities, bad_pixels, product, _ = read_batch_directory(directory)
    return dataset_from_product(
        product, intensities, bad_pixels, where=directory,
        provenance=f"converted from Ptychodus batch directory {directory}")


def dataset_from_ptychodus_npz(path: str | os.PathLike, *, values: str | None = None
                               ) -> PtychoData:
    """Ptychodus's PtychoPINN training NPZ export as a dataset (see :func:`read_ptychodus_npz`;
    ``values`` = amplitude|intensity is needed because the export does not say which)."""
    from ptychopinn.io.native import dataset_from_arrays

    arrays = read_ptychodus_npz(path, values=values)
    return dataset_from_arrays(dict(arrays), path, values="amplitude")


def convert_ptychodus(source: str | os.PathLike, *, values: str | None = None) -> PtychoData:
    """``convert --format ptychodus``: a Ptychodus batch input directory, the directory holding
    them given as one of its files, or a Ptychodus PtychoPINN NPZ export (which needs
    ``values`` = amplitude|intensity: the export does not say which)."""
    source = Path(source)
    if not source.exists():
        raise PtychoInputError("file not found", path=source)
    if source.is_file() and source.suffix == ".npz":
        return dataset_from_ptychodus_npz(source, values=values)
    return dataset_from_batch_directory(source if source.is_dir() else source.parent)
