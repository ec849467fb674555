"""Backward-compatible import path: datasets on disk now live in :mod:`ptychopinn.io.dataset`
(and the file primitives in :mod:`ptychopinn.io.files`)."""

from __future__ import annotations

from ptychopinn.io.dataset import (
    DIFFRACTION_KEYS,
    H5PatternStack,
    ValuesKind,
    dataset_from_arrays,
    load_dataset,
    save_dataset,
)
from ptychopinn.io.files import HDF5_MAGIC, atomic_path, file_kind, read_npz

__all__ = [
    "DIFFRACTION_KEYS",
    "HDF5_MAGIC",
    "H5PatternStack",
    "ValuesKind",
    "atomic_path",
    "dataset_from_arrays",
    "file_kind",
    "load_dataset",
    "read_npz",
    "save_dataset",
]
