"""Datasets on disk: ``load_dataset``, the one place where the input format is detected.

Formats are registered readers, tried in order (:data:`READERS`): a Ptychodus batch input
directory, a far-field CXI file, then the package's own NPZ / HDF5 files
(:mod:`ptychopinn.io.native`, which also writes them: ``save_dataset``). Every reader
validates and refuses bad input with a :class:`~ptychopinn.errors.PtychoInputError` naming the
file, the key and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError
from ptychopinn.io.native import (
    DIFFRACTION_KEYS,
    H5PatternStack,
    ValuesKind,
    dataset_from_arrays,
    load_native,
    save_dataset,
)

__all__ = ["CONVERTERS", "DIFFRACTION_KEYS", "READERS", "H5PatternStack", "Reader",
           "ValuesKind", "convert_from", "dataset_from_arrays", "load_dataset", "save_dataset"]


@dataclass(frozen=True)
class Reader:
    """A registered dataset format: ``accepts(path)`` says whether the file or directory is
    this format (cheap: magic bytes, a group name); ``read(path, values, lazy)`` loads it."""

    name: str
    accepts: Callable[[Path], bool]
    read: Callable[[Path, ValuesKind | None, bool | None], PtychoData]


def _is_batch_directory(path: Path) -> bool:
    return path.is_dir()


def _read_batch_directory(path: Path, values: ValuesKind | None, lazy: bool | None
                          ) -> PtychoData:
    from ptychopinn.io.ptychodus.batch import DIFFRACTION_FILE_NAME
    from ptychopinn.io.ptychodus.dataset import dataset_from_batch_directory

    if not (path / DIFFRACTION_FILE_NAME).is_file():
        raise PtychoInputError(f"is a directory without {DIFFRACTION_FILE_NAME}; expected an "
                               "NPZ or HDF5 file or a Ptychodus batch input directory",
                               path=path)
    return dataset_from_batch_directory(path)


def _is_cxi(path: Path) -> bool:
    from ptychopinn.files import file_kind
    from ptychopinn.io.cxi import is_cxi

    return file_kind(path) != "npz" and is_cxi(path)


def _read_cxi(path: Path, values: ValuesKind | None, lazy: bool | None) -> PtychoData:
    from ptychopinn.io.cxi import load_cxi

    if values == "amplitude":
        raise PtychoInputError("CXI patterns are intensities; values='amplitude' does not "
                               "apply", path=path)
    return load_cxi(path)


#: The dataset formats ``load_dataset`` reads, tried in this order.
READERS: tuple[Reader, ...] = (
    Reader("ptychodus batch directory", _is_batch_directory, _read_batch_directory),
    Reader("cxi", _is_cxi, _read_cxi),
    Reader("native", lambda path: True,
           lambda path, values, lazy: load_native(path, values=values, lazy=lazy)),
)


def _convert_tike(path: Path, values: ValuesKind | None) -> PtychoData:
    from ptychopinn.data.convert import convert_tike

    return convert_tike(path)  # tike stores intensities: values does not apply


def _convert_ptychodus(path: Path, values: ValuesKind | None) -> PtychoData:
    from ptychopinn.io.ptychodus.dataset import convert_ptychodus

    return convert_ptychodus(path, values=values)


#: ``convert --format NAME``: the source formats named explicitly (a tike NPZ cannot be told
#: from ours by its bytes), each ``read(path, values)``; ``npz`` and ``cxi`` are any file
#: :func:`load_dataset` reads.
CONVERTERS: dict[str, Callable[[Path, ValuesKind | None], PtychoData]] = {
    "tike": _convert_tike,
    "ptychodus": _convert_ptychodus,
    "npz": lambda path, values: load_dataset(path, values=values),
    "cxi": lambda path, values: load_dataset(path, values=values),
}


def convert_from(path: str | os.PathLike, fmt: str, *, values: ValuesKind | None = None
                 ) -> PtychoData:
    """Read ``path`` as the named source format (:data:`CONVERTERS`); an unknown format is
    refused in one line naming the known ones."""
    if fmt not in CONVERTERS:
        raise PtychoInputError(f"unknown format {fmt!r}; formats: {', '.join(CONVERTERS)}",
                               path=path)
    return CONVERTERS[fmt](Path(path), values)


def load_dataset(path: str | os.PathLike, *, values: ValuesKind | None = None,
                 lazy: bool | None = None) -> PtychoData:
    """Load and validate a dataset: the one place where the input format is detected.

    Parameters
    ----------
    path : path-like
        An NPZ or HDF5 dataset file (told apart by their magic bytes), a far-field CXI file
        (an HDF5 file with an ``entry_1`` group, read by :func:`ptychopinn.io.cxi.load_cxi`;
        intensities, so ``values`` does not apply; near-field data are refused), or a Ptychodus
        batch input directory (``diffraction.h5`` + ``product.h5``, read by
        :func:`ptychopinn.io.ptychodus.dataset_from_batch_directory`; photon counts become
        amplitudes, so ``values`` does not apply).
    values : {"amplitude", "intensity"}, optional
        What the diffraction array holds. Default: ``metadata_json["diffraction_values"]`` if
        present, else amplitude for float data; integer data must be declared.
    lazy : bool, optional
        HDF5 only: read patterns on demand (default True for HDF5).

    Returns
    -------
    PtychoData
    """
    path = Path(path)
    reader = next(r for r in READERS if r.accepts(path))
    return reader.read(path, values, lazy)
