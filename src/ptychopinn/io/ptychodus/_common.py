"""Validation and HDF5 helpers shared by the Ptychodus readers and writers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np


def empty_float() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


def empty_int() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


def frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def as_int64(values: Any, key: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"{key!r}: expected a 1-D array, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)):
            raise ValueError(f"{key!r}: expected integers, got dtype {a.dtype}")
        if not np.all(a == np.round(a)):
            raise ValueError(f"{key!r}: expected integers, got non-integral values")
    return frozen(np.array(a, dtype=np.int64, copy=True))


def as_float64(values: Any, key: str, *, ndim: int = 1) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != ndim:
        raise ValueError(f"{key!r}: expected a {ndim}-D array, got shape {a.shape}")
    if a.size and not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{key!r}: expected real numbers, got dtype {a.dtype}")
    out = np.array(a, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{key!r}: {int(np.sum(~np.isfinite(out)))} NaN/Inf values")
    return frozen(out)


def as_complex64(
    values: Any, key: str, ndim_range: tuple[int, int], target_ndim: int
) -> np.ndarray:
    a = np.asarray(values)
    if not np.iscomplexobj(a):
        raise ValueError(f"{key!r}: expected a complex array, got dtype {a.dtype}")
    if not ndim_range[0] <= a.ndim <= ndim_range[1]:
        raise ValueError(
            f"{key!r}: expected {ndim_range[0]} to {ndim_range[1]} dimensions, got shape {a.shape}"
        )
    out = np.array(a, dtype=np.complex64, copy=True)
    while out.ndim < target_ndim:
        out = out[np.newaxis]
    if 0 in out.shape:
        raise ValueError(f"{key!r}: empty array of shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{key!r}: {int(np.sum(~np.isfinite(out)))} NaN/Inf values")
    return frozen(np.ascontiguousarray(out))


def finite(value: Any, key: str, *, positive: bool = False) -> float:
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0.0):
        expected = "a finite positive number" if positive else "a finite number"
        raise ValueError(f"{key!r}: expected {expected}, got {v!r}")
    return v



def decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in ("S", "O") and value.ndim == 0:
        return decode(value[()])
    return value


def attr_scalar(attrs: Any, key: str, path: Path, where: str) -> float:
    value = decode(attrs[key])
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{path}: {where} attribute {key!r} is {value!r}; expected a number"
        ) from None
    if a.size != 1:
        raise ValueError(
            f"{path}: {where} attribute {key!r} has shape {a.shape}; expected a scalar"
        )
    return float(a.reshape(-1)[0])


def require_dataset(h5: Any, key: str, path: Path, expected: str) -> Any:
    import h5py

    if key not in h5:
        raise ValueError(f"{path}: Ptychodus file is missing dataset {key!r}; expected {expected}")
    node = h5[key]
    if not isinstance(node, h5py.Dataset):
        raise ValueError(f"{path}: {key!r} is a {type(node).__name__}; expected a dataset")
    return node


def open_h5(path: Path) -> Any:
    import h5py

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None

