"""File primitives shared by every format: atomic writes, magic-byte detection, safe NPZ reads."""

from __future__ import annotations

import os
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np

from ptychopinn.errors import PtychoInputError

__all__ = ["HDF5_MAGIC", "atomic_path", "file_kind", "read_npz"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
FileKind = Literal["npz", "hdf5"]


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # created like open() would (mode 0o666 minus the umask; mkstemp would give 0600), and
    # exclusively, so two writers never share a temp file
    tmp_path = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}{suffix}.tmp"
    os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def file_kind(path: str | os.PathLike) -> FileKind:
    """'npz' or 'hdf5' from the file's magic bytes; refuse anything else (one line)."""
    path = Path(path)
    if not path.exists():
        raise PtychoInputError("file not found", path=path)
    if path.is_dir():
        raise PtychoInputError("is a directory, expected an NPZ or HDF5 file", path=path)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
        return "npz"
    if head == HDF5_MAGIC:
        return "hdf5"
    raise PtychoInputError("not an NPZ or HDF5 file (unrecognised header)", path=path)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an NPZ archive, never unpickling.

    Returns
    -------
    dict of str to ndarray
        The archive's arrays, read into memory.

    Raises
    ------
    PtychoInputError
        One line naming the file (and key) for an object (pickled) array, or a corrupt or
        truncated archive.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            arrays = {}
            for k in z.files:
                try:
                    arrays[k] = z[k]
                except ValueError as e:
                    if "allow_pickle" in str(e) or "Object arrays" in str(e):
                        raise PtychoInputError(
                            "object (pickled) array refused; expected a numeric array",
                            path=path, key=k) from None
                    raise PtychoInputError(f"unreadable array ({e})", path=path, key=k) from None
    except PtychoInputError:
        raise
    except FileNotFoundError:
        raise PtychoInputError("file not found", path=path) from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise PtychoInputError(f"corrupt or truncated NPZ archive ({msg})", path=path) from None
    return arrays


def open_hdf5(path: str | os.PathLike):
    """``h5py.File(path, "r")``; a file HDF5 cannot open is refused in one line."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise PtychoInputError(f"corrupt or truncated HDF5 file ({e})", path=path) from None
