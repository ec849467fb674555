"""Ptychodus inputs as ptychopinn datasets: a batch input directory or the PtychoPINN NPZ export."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError
from ptychopinn.io.ptychodus.batch import read_batch_directory
from ptychopinn.io.ptychodus.npz_export import read_ptychodus_npz

__all__ = ["convert_ptychodus", "dataset_from_batch_directory", "dataset_from_ptychodus_npz"]


def dataset_from_batch_directory(directory: str | os.PathLike) -> PtychoData:
    """A Ptychodus batch input directory (``diffraction.h5`` + ``product.h5``) as a dataset.

    Patterns are paired with positions by scan index (:func:`read_batch_directory`); bad pixels
    are zeroed and photon counts become amplitudes sqrt(counts) (M, N, N) float32; positions are
    ptychopinn (row, col) object pixels of the product's object, whose shape becomes the object
    frame (``metadata["object_shape"]``).
    """
    directory = Path(directory)
    if not directory.exists():
        raise PtychoInputError("file not found", path=directory)
    intensities, positions, probe, shape, meta = read_batch_directory(directory)
    bad = meta.get("bad_pixels")
    if bad is not None:
        intensities = np.where(bad[None], 0.0, intensities)
    product = meta["product"]
    md = {
        "units": {"diffraction": "sqrt(photon counts)", "positions": "object pixels"},
        "provenance": f"converted from Ptychodus batch directory {directory}",
        "object_shape": [int(shape[0]), int(shape[1])],
        "photon_energy_eV": meta.get("photon_energy_eV"),
        "detector_object_distance_m": meta.get("detector_object_distance_m"),
        "object_pixel_size_m": list(meta.get("object_pixel_size_m", [])),
    }
    obj = np.asarray(product.object[0], np.complex64) if product.object.size else None
    return PtychoData(
        diffraction=np.sqrt(np.maximum(intensities, 0)).astype(np.float32),
        positions=np.asarray(positions, np.float64),
        probe=np.asarray(probe, np.complex64),
        obj=obj if obj is not None and obj.shape == tuple(shape) else None,
        scan_index=np.zeros(len(positions), np.int64),
        metadata=md,
        source=str(directory),
    )


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
