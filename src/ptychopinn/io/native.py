"""The package's own dataset files: NPZ (SPEC §2) and our chunked HDF5 variant (read lazily).

:func:`~ptychopinn.io.dataset.load_dataset` dispatches here (``load_native``) and to the other
formats' readers, which build datasets with :func:`dataset_from_arrays`.

On-disk key names live only in this module. Every reader validates and refuses bad input with a
:class:`~ptychopinn.errors.PtychoInputError` naming the file, the key and what was expected;
:class:`~ptychopinn.data.container.PtychoData` then checks its own invariants again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError
from ptychopinn.files import atomic_path, file_kind, open_hdf5, read_npz

logger = logging.getLogger(__name__)

__all__ = ["DIFFRACTION_KEYS", "H5PatternStack", "dataset_from_arrays", "load_native",
           "save_dataset"]

DIFFRACTION_KEYS = ("diffraction", "diff3d")
ValuesKind = Literal["amplitude", "intensity"]


# ----------------------------------------------------------------------------------- reading
def _declared_values(meta: dict, values: ValuesKind | None, path: Path) -> ValuesKind | None:
    if values is not None:
        return values
    v = meta.get("diffraction_values")
    if v is None:
        return None
    if v not in ("amplitude", "intensity"):
        raise PtychoInputError(
            f"diffraction_values must be 'amplitude' or 'intensity', got {v!r}",
            path=path, key="metadata_json")
    return v


def _parse_metadata(raw: Any, path: Path) -> dict:
    if raw is None:
        return {}
    try:
        text = raw.item() if isinstance(raw, np.ndarray) else raw
        if isinstance(text, bytes):
            text = text.decode()
        meta = json.loads(str(text))
    except (ValueError, TypeError) as e:
        raise PtychoInputError(f"not valid JSON ({e})", path=path, key="metadata_json") from None
    if not isinstance(meta, dict):
        raise PtychoInputError("expected a JSON object", path=path, key="metadata_json")
    return meta


def _check_numeric(a: np.ndarray, path: Path, key: str, *, allow_complex: bool) -> None:
    if a.dtype == object:
        raise PtychoInputError("object array refused; expected numeric", path=path, key=key)
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise PtychoInputError(f"expected a numeric array, got dtype {a.dtype}", path=path,
                               key=key)
    if not allow_complex and np.iscomplexobj(a):
        raise PtychoInputError("complex values refused; expected real amplitudes", path=path,
                               key=key)


def _check_finite(a: np.ndarray, path: Path, key: str) -> None:
    if not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise PtychoInputError(f"{bad} NaN/Inf values; expected finite values", path=path,
                               key=key)


def _diffraction_layout(d: np.ndarray, m: int, path: Path, key: str) -> np.ndarray:
    """Bring a diffraction stack to (M, N, N): accepts (N, N, M) and a trailing channel."""
    if d.ndim == 4 and d.shape[-1] == 1:
        d = d[..., 0]
    if d.ndim != 3:
        raise PtychoInputError(f"expected shape (M, N, N), got {d.shape}", path=path, key=key)
    if d.shape[0] != m and d.shape[-1] == m and d.shape[0] == d.shape[1]:
        d = np.moveaxis(d, -1, 0)
    if d.shape[0] != m:
        raise PtychoInputError(
            f"has {d.shape[0]} patterns but xcoords/ycoords have {m}; expected the same M",
            path=path, key=key)
    if d.shape[1] != d.shape[2]:
        raise PtychoInputError(f"patterns must be square, got {d.shape[1]}x{d.shape[2]}",
                               path=path, key=key)
    return d


def _check_declared(dtype: np.dtype, declared: ValuesKind | None, path: Path, key: str) -> None:
    """Integer diffraction must say whether it holds intensities or amplitudes."""
    if np.issubdtype(dtype, np.integer) and declared is None:
        raise PtychoInputError(
            f"integer ({dtype}) diffraction is ambiguous; declare metadata_json "
            "diffraction_values='intensity' or 'amplitude' (CLI: --values)", path=path, key=key)


def _check_nonnegative(a: np.ndarray, path: Path, key: str) -> None:
    if a.size and float(a.min()) < 0:
        raise PtychoInputError(f"negative values (min {float(a.min()):.3g}); expected amplitudes"
                               " or counts >= 0", path=path, key=key)


def _to_amplitude(d: np.ndarray, declared: ValuesKind | None, path: Path, key: str) -> np.ndarray:
    _check_declared(d.dtype, declared, path, key)
    d = d.astype(np.float32, copy=False)
    _check_nonnegative(d, path, key)
    if declared == "intensity":
        d = np.sqrt(d)
    return d


def dataset_from_arrays(arrays: Mapping[str, np.ndarray], path: str | os.PathLike, *,
                        values: ValuesKind | None = None, diffraction: Any = None) -> PtychoData:
    """A validated dataset from arrays under the on-disk key names (SPEC §2).

    Parameters
    ----------
    arrays : mapping of str to ndarray
        ``diffraction`` (or legacy ``diff3d``), ``xcoords``, ``ycoords``, ``probeGuess``, and
        optionally ``objectGuess``, ``xcoords_start``/``ycoords_start``,
        ``xcoords_true``/``ycoords_true``, ``scan_index``, ``ground_truth_patches``,
        ``metadata_json``.
    path : path-like
        Where the arrays came from (named in every error).
    values : {"amplitude", "intensity"}, optional
        What the diffraction array holds (as in :func:`load_dataset`).
    diffraction : lazy (M, N, N) stack, optional
        Pre-validated patterns to use instead of ``arrays["diffraction"]``.

    Raises
    ------
    PtychoInputError
        One line naming the file and the key.
    """
    path = Path(path)
    meta = _parse_metadata(arrays.get("metadata_json"), path)
    declared = _declared_values(meta, values, path)
    for k in ("xcoords", "ycoords", "probeGuess"):
        if k not in arrays:
            raise PtychoInputError("missing required array", path=path, key=k)
    for k, a in arrays.items():
        if k != "metadata_json":
            _check_numeric(a, path, k, allow_complex=k not in ("xcoords", "ycoords",
                                                              *_POSITION_PAIRS,
                                                              "scan_index", *DIFFRACTION_KEYS))
    x = np.asarray(arrays["xcoords"], dtype=np.float64).reshape(-1)
    y = np.asarray(arrays["ycoords"], dtype=np.float64).reshape(-1)
    m = x.shape[0]
    if m == 0:
        raise PtychoInputError("empty dataset (0 positions)", path=path, key="xcoords")
    if y.shape[0] != m:
        raise PtychoInputError(f"has {y.shape[0]} entries but xcoords has {m}", path=path,
                               key="ycoords")
    _check_finite(x, path, "xcoords")
    _check_finite(y, path, "ycoords")
    dkey = next((k for k in DIFFRACTION_KEYS if k in arrays), None)
    if diffraction is None:
        if dkey is None:
            raise PtychoInputError("missing required array (or legacy 'diff3d')", path=path,
                                   key="diffraction")
        d = _diffraction_layout(arrays[dkey], m, path, dkey)
        _check_finite(d, path, dkey)
        diffraction = _to_amplitude(d, declared, path, dkey)
        n = diffraction.shape[-1]
    else:
        n = diffraction.shape[-1]
    probe = np.asarray(arrays["probeGuess"])
    if probe.ndim == 3 and probe.shape[-1] == 1:
        probe = probe[..., 0]
    if probe.ndim != 2 or probe.shape != (n, n):
        raise PtychoInputError(f"probe shape {probe.shape} must equal the pattern size ({n}, {n})",
                               path=path, key="probeGuess")
    _check_finite(probe, path, "probeGuess")
    probe = probe.astype(np.complex64)
    obj = arrays.get("objectGuess")
    if obj is not None:
        if obj.ndim != 2:
            raise PtychoInputError(f"expected shape (H, W), got {obj.shape}", path=path,
                                   key="objectGuess")
        _check_finite(obj, path, "objectGuess")
        obj = obj.astype(np.complex64)
    pos_start = _position_pair(arrays, "start", x, y, path)
    pos_true = _position_pair(arrays, "true", x, y, path)
    scan_index = None
    if "scan_index" in arrays:
        scan_index = np.asarray(arrays["scan_index"]).astype(np.int64).reshape(-1)
        if scan_index.shape[0] != m:
            raise PtychoInputError(f"has {scan_index.shape[0]} entries, expected {m}",
                                   path=path, key="scan_index")
    gt = arrays.get("ground_truth_patches")
    if gt is not None:
        if gt.ndim == 4 and gt.shape[-1] == 1:
            gt = gt[..., 0]
        if gt.shape != (m, n, n):
            raise PtychoInputError(f"expected shape ({m}, {n}, {n}), got {gt.shape}", path=path,
                                   key="ground_truth_patches")
        gt = gt.astype(np.complex64)
    meta.pop("diffraction_values", None)
    return PtychoData(
        diffraction=diffraction,
        positions=np.stack([y, x], axis=1),
        probe=probe,
        obj=obj,
        positions_start=pos_start,
        positions_true=pos_true,
        scan_index=scan_index,
        ground_truth_patches=gt,
        metadata=meta,
        source=str(path),
    )


def _position_pair(arrays: Mapping[str, np.ndarray], tag: str, x: np.ndarray, y: np.ndarray,
                   path: Path) -> np.ndarray | None:
    """(M, 2) (row, col) from ``xcoords_<tag>``/``ycoords_<tag>`` (a missing one defaults to
    ``xcoords``/``ycoords``), or None when neither is there."""
    kx, ky = f"xcoords_{tag}", f"ycoords_{tag}"
    if kx not in arrays and ky not in arrays:
        return None
    xs = np.asarray(arrays.get(kx, x), dtype=np.float64).reshape(-1)
    ys = np.asarray(arrays.get(ky, y), dtype=np.float64).reshape(-1)
    for key, a in ((kx, xs), (ky, ys)):
        if a.shape[0] != x.shape[0]:
            raise PtychoInputError(f"expected {x.shape[0]} entries like xcoords", path=path,
                                   key=key)
        _check_finite(a, path, key)
    return np.stack([ys, xs], axis=1)


_POSITION_PAIRS = ("xcoords_start", "ycoords_start", "xcoords_true", "ycoords_true")


def save_positions(path: str | os.PathLike, positions: np.ndarray,
                   nominal: np.ndarray | None = None) -> Path:
    """Write refined scan positions atomically as NPZ: ``xcoords``, ``ycoords`` (M,) float64
    (object pixels, the refined ones) and, given ``nominal`` (M, 2), ``xcoords_start``,
    ``ycoords_start``. :func:`with_positions` reads it back into a scan."""
    path = Path(path)
    pos = np.asarray(positions, np.float64)
    out = {"xcoords": pos[:, 1].copy(), "ycoords": pos[:, 0].copy()}
    if nominal is not None:
        nom = np.asarray(nominal, np.float64)
        out.update(xcoords_start=nom[:, 1].copy(), ycoords_start=nom[:, 0].copy())
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **out)
    return path


def save_probe(path: str | os.PathLike, probe: np.ndarray, **extra: np.ndarray) -> Path:
    """Write a probe atomically as NPZ: ``probeGuess`` (N, N) complex64 (what ``--probe``
    and :func:`~ptychopinn.data.simulate.load_probe` read), plus ``extra`` arrays."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, probeGuess=np.asarray(probe).astype(np.complex64), **extra)
    return path


def with_positions(data: PtychoData, path: str | os.PathLike) -> PtychoData:
    """``data`` with the positions of a ``positions.npz`` (:func:`save_positions`, e.g. a
    run's refined ones); its own positions become the nominal ``positions_start`` (unless it
    already has nominal ones). Refuses a file for another number of patterns."""
    from dataclasses import replace

    path = Path(path)
    arrays = read_npz(path)
    for k in ("xcoords", "ycoords"):
        if k not in arrays:
            raise PtychoInputError("missing required array", path=path, key=k)
    x = np.asarray(arrays["xcoords"], np.float64).reshape(-1)
    y = np.asarray(arrays["ycoords"], np.float64).reshape(-1)
    if x.shape[0] != data.n_patterns or y.shape[0] != data.n_patterns:
        raise PtychoInputError(f"holds {x.shape[0]} positions but the scan has "
                               f"{data.n_patterns} patterns", path=path, key="xcoords")
    _check_finite(x, path, "xcoords")
    _check_finite(y, path, "ycoords")
    start = data.positions_start if data.positions_start is not None else data.positions
    return replace(data, positions=np.stack([y, x], axis=1), positions_start=start)


# ------------------------------------------------------------------------------------ HDF5
class H5PatternStack:
    """Lazy (M, N, N) float32 amplitude stack backed by an HDF5 dataset.

    Indexing with a slice, an int or an index array reads only those patterns (any order;
    duplicates allowed). The file is opened per read, so the object is cheap and picklable-free.
    Reads bypass HDF5's chunk cache: with the default 1 MiB cache every scattered pattern pulled
    its whole chunk (64 patterns) into memory, ~20x slower for a batch of scattered neighbours.
    An index array is read as runs of consecutive indices, one hyperslab per run.
    """

    def __init__(self, path: Path, key: str, shape: tuple[int, int, int], sqrt: bool):
        self.path = Path(path)
        self.key = key
        self.shape = shape
        self.dtype = np.dtype(np.float32)
        self._sqrt = sqrt

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[slice(None)]
        return out if dtype is None else out.astype(dtype)

    def raw(self, idx: Any) -> np.ndarray:
        """Patterns ``idx`` as stored (the file's dtype and values)."""
        import h5py

        with h5py.File(self.path, "r", rdcc_nbytes=0) as f:
            ds = f[self.key]
            if isinstance(idx, (int, np.integer, slice)):
                return np.asarray(ds[idx])
            idx = np.asarray(idx)
            idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64)
            idx = np.where(idx < 0, idx + len(self), idx)
            if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
                raise IndexError(f"pattern index out of range for {len(self)} patterns")
            uniq, inv = np.unique(idx, return_inverse=True)
            if not uniq.size:
                return np.zeros((*idx.shape, *self.shape[1:]), ds.dtype)
            return _read_runs(ds, uniq)[inv]

    def __getitem__(self, idx: Any) -> np.ndarray:
        out = np.asarray(self.raw(idx), dtype=np.float32)
        return np.sqrt(out) if self._sqrt else out


def _read_runs(ds: Any, sorted_idx: np.ndarray) -> np.ndarray:
    """``ds[sorted_idx]`` for sorted unique indices, one contiguous slice read per run."""
    breaks = np.flatnonzero(np.diff(sorted_idx) != 1) + 1
    runs = np.split(sorted_idx, breaks)
    return np.concatenate([ds[int(r[0]) : int(r[-1]) + 1] for r in runs])


def load_native(path: Path, *, values: ValuesKind | None = None,
                lazy: bool | None = None) -> PtychoData:
    """An NPZ or HDF5 dataset file (told apart by their magic bytes); ``lazy`` (HDF5 only,
    default True) reads patterns on demand."""
    if file_kind(path) == "npz":
        return dataset_from_arrays(read_npz(path), path, values=values)
    return _load_hdf5(path, values=values, lazy=True if lazy is None else lazy)


def _load_hdf5(path: Path, *, values: ValuesKind | None, lazy: bool) -> PtychoData:
    import h5py

    f = open_hdf5(path)
    try:
        with f:
            arrays: dict[str, np.ndarray] = {}
            dkey = next((k for k in DIFFRACTION_KEYS if k in f), None)
            for k in f:
                if k == dkey:
                    continue
                obj = f[k]
                if not isinstance(obj, h5py.Dataset):
                    continue
                if k == "metadata_json":
                    arrays[k] = np.asarray(obj.asstr()[()] if obj.dtype.kind in "SO" else obj[()])
                else:
                    arrays[k] = np.asarray(obj[()])
            if "metadata_json" not in arrays and "metadata_json" in f.attrs:
                arrays["metadata_json"] = np.asarray(str(f.attrs["metadata_json"]))
            if dkey is None:
                raise PtychoInputError("missing required dataset", path=path, key="diffraction")
            ds = f[dkey]
            shape = tuple(ds.shape)
            dtype = ds.dtype
    except PtychoInputError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise PtychoInputError(f"corrupt HDF5 content ({e})", path=path) from None
    m = int(np.asarray(arrays.get("xcoords", np.zeros(0))).reshape(-1).shape[0])
    if not lazy or len(shape) != 3 or shape[0] != m:
        with open_hdf5(path) as f:
            arrays[dkey] = np.asarray(f[dkey][()])
        return dataset_from_arrays(arrays, path, values=values)
    meta = _parse_metadata(arrays.get("metadata_json"), path)
    declared = _declared_values(meta, values, path)
    if dtype.kind == "c":
        raise PtychoInputError("complex values refused; expected real amplitudes", path=path,
                               key=dkey)
    _check_declared(dtype, declared, path, dkey)
    if shape[1] != shape[2]:
        raise PtychoInputError(f"patterns must be square, got {shape[1]}x{shape[2]}", path=path,
                               key=dkey)
    stack = H5PatternStack(path, dkey, shape, sqrt=declared == "intensity")
    _scan_stack(stack, path, dkey)
    return dataset_from_arrays(arrays, path, values=values, diffraction=stack)


def _scan_stack(stack: H5PatternStack, path: Path, key: str, max_bytes: int = 16 << 20) -> None:
    """Check a lazy stack for NaN/Inf and negatives, ``max_bytes`` of patterns at a time."""
    batch = max(1, max_bytes // (4 * stack.shape[1] * stack.shape[2]))
    for s in range(0, len(stack), batch):
        a = stack[s : s + batch]
        _check_finite(a, path, key)
        _check_nonnegative(a, path, key)


# ----------------------------------------------------------------------------------- writing
def _arrays_for(data: PtychoData, *, with_diffraction: bool = True) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if with_diffraction:
        out["diffraction"] = np.asarray(data.diffraction, dtype=np.float32)
    out["xcoords"] = data.positions[:, 1].astype(np.float64)
    out["ycoords"] = data.positions[:, 0].astype(np.float64)
    out["probeGuess"] = data.probe.astype(np.complex64)
    if data.obj is not None:
        out["objectGuess"] = data.obj.astype(np.complex64)
    if data.positions_start is not None:
        out["xcoords_start"] = data.positions_start[:, 1].astype(np.float64)
        out["ycoords_start"] = data.positions_start[:, 0].astype(np.float64)
    if data.positions_true is not None:
        out["xcoords_true"] = data.positions_true[:, 1].astype(np.float64)
        out["ycoords_true"] = data.positions_true[:, 0].astype(np.float64)
    if data.scan_index is not None:
        out["scan_index"] = data.scan_index.astype(np.int64)
    if data.ground_truth_patches is not None:
        out["ground_truth_patches"] = np.asarray(data.ground_truth_patches, dtype=np.complex64)
    out["metadata_json"] = np.asarray(data.metadata_json())
    return out


def save_dataset(data: PtychoData, path: str | os.PathLike, *, chunk: int = 64) -> Path:
    """Write ``data`` atomically as NPZ (``.npz``) or chunked HDF5 (``.h5``/``.hdf5``).

    HDF5 writes stream the diffraction stack ``chunk`` patterns at a time, so a lazy input
    never has to fit in memory.
    """
    path = Path(path)
    if path.suffix.lower() in (".h5", ".hdf5"):
        import h5py

        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            for k, a in _arrays_for(data, with_diffraction=False).items():
                if k == "metadata_json":
                    f.create_dataset(k, data=str(a.item()), dtype=h5py.string_dtype())
                else:
                    f.create_dataset(k, data=a)
            m, n = data.n_patterns, data.patch_size
            ds = f.create_dataset("diffraction", shape=(m, n, n), dtype=np.float32,
                                  chunks=(min(chunk, m), n, n))
            for s in range(0, m, chunk):
                ds[s : s + chunk] = np.asarray(data.diffraction[s : s + chunk], np.float32)
        return path
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **_arrays_for(data))
    return path
