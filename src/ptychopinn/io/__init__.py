"""ptychopinn.io: every file format has its owner here, with public readers and writers.

* :mod:`ptychopinn.files` -- ``atomic_path`` (atomic writes), ``file_kind`` (magic bytes),
  ``read_npz`` (never unpickles);
* :mod:`ptychopinn.io.dataset` -- datasets (NPZ, chunked HDF5, a Ptychodus batch directory):
  ``load_dataset`` is the one place where the input format is detected; ``save_dataset``;
* :mod:`ptychopinn.io.cxi` -- CXI files (reader with near-field detection, report, writer);
* :mod:`ptychopinn.io.reconstruction` -- ``reconstruction.npz``;
* :mod:`ptychopinn.io.bundle` -- the model bundle archive (``model.zip``);
* :mod:`ptychopinn.io.ptychodus` -- Ptychodus products, diffraction files, batch directories
  and its PtychoPINN NPZ export (imported on first use: ``import ptychopinn.io`` does not load
  it, nor ``ptychodus``).
"""

from __future__ import annotations

from ptychopinn.files import atomic_path, file_kind, read_npz
from ptychopinn.io.dataset import dataset_from_arrays, load_dataset, save_dataset
from ptychopinn.io.reconstruction import Reconstruction, load_reconstruction, save_reconstruction

__all__ = [
    "Reconstruction",
    "atomic_path",
    "dataset_from_arrays",
    "file_kind",
    "load_dataset",
    "load_reconstruction",
    "read_npz",
    "save_dataset",
    "save_reconstruction",
]
