"""The in-memory/lazy dataset container shared by every workflow, and its object frame.

A :class:`PtychoData` is validated when it is constructed, whoever constructs it (a reader, the
simulator, a converter, the Ptychodus bridge): a wrong shape, dtype or value is one
:class:`~ptychopinn.errors.PtychoInputError` line naming the source and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from ptychopinn.errors import PtychoInputError


class PatternStack(Protocol):
    """Array-like (M, N, N) float32 amplitude stack that can be read in batches."""

    shape: tuple[int, ...]
    dtype: Any

    def __getitem__(self, idx: Any) -> np.ndarray: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, eq=False)
class PtychoData:
    """A ptychography dataset in the SPEC §2 contract, validated at construction.

    Shapes, dtypes and (for in-memory arrays) finiteness and non-negative amplitudes are
    checked in ``__post_init__``; positions become float64, probe/object/patches complex64
    and ``scan_index`` int64. A lazy ``diffraction`` stack is checked by shape only (its
    reader scans the values).

    Attributes
    ----------
    diffraction : ndarray or lazy stack (M, N, N) float32
        Measured amplitudes sqrt(counts), DC at (N/2, N/2).
    positions : ndarray (M, 2) float64
        Patch centres (row, col) = (ycoords, xcoords) in object pixels.
    probe : ndarray (N, N) complex64
        Probe on the object pixel grid (as stored; not normalised).
    obj : ndarray (H, W) complex64 or None
        Ground truth or reference object.
    positions_start : ndarray (M, 2) float64
        Nominal positions (default: ``positions``).
    positions_true : ndarray (M, 2) float64 or None
        Where the patterns were really taken, when known (a simulation with position errors):
        for scoring position refinement only; reconstructions never read it.
    scan_index : ndarray (M,) int64
    ground_truth_patches : ndarray (M, N, N) complex64 or None
    metadata : dict
        Parsed ``metadata_json``.
    source : str
        Where it was read from (for messages).
    """

    diffraction: Any
    positions: np.ndarray
    probe: np.ndarray
    obj: np.ndarray | None = None
    positions_start: np.ndarray | None = None
    scan_index: np.ndarray | None = None
    positions_true: np.ndarray | None = None
    ground_truth_patches: Any = None
    metadata: dict = field(default_factory=dict)
    source: str = "<memory>"

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def n_patterns(self) -> int:
        """Number of patterns M."""
        return int(self.positions.shape[0])

    @property
    def patch_size(self) -> int:
        """Pattern (and probe) size N."""
        return int(self.probe.shape[-1])

    @property
    def is_lazy(self) -> bool:
        """True when ``diffraction`` is read from disk on demand."""
        return not isinstance(self.diffraction, np.ndarray)

    def mean_total_counts(self, *, chunk_bytes: int = 8 * 2**20) -> float:
        """Mean over patterns of the total counts sum(A**2), read in chunks of about
        ``chunk_bytes`` of float32 patterns (memory stays flat for lazy HDF5 stacks)."""
        n = self.patch_size
        batch = max(1, chunk_bytes // (4 * n * n))
        total = 0.0
        for s in range(0, self.n_patterns, batch):
            a = np.asarray(self.diffraction[s : s + batch], dtype=np.float32)
            total += float(np.square(a, dtype=np.float64).sum())
        return total / max(self.n_patterns, 1)

    def subset(self, idx: np.ndarray) -> PtychoData:
        """A new in-memory dataset holding patterns ``idx`` (sorted order kept as given)."""
        idx = np.asarray(idx, dtype=np.int64)
        gt = self.ground_truth_patches
        return replace(
            self,
            diffraction=np.asarray(self.diffraction[idx], dtype=np.float32),
            positions=self.positions[idx],
            positions_start=None if self.positions_start is None else self.positions_start[idx],
            positions_true=None if self.positions_true is None else self.positions_true[idx],
            scan_index=None if self.scan_index is None else self.scan_index[idx],
            ground_truth_patches=None if gt is None else np.asarray(gt[idx]),
            metadata=dict(self.metadata),
        )

    def metadata_json(self) -> str:
        """Metadata serialised as JSON."""
        return json.dumps(self.metadata, sort_keys=True, default=str)


# ------------------------------------------------------------------------------ validation
def _fail(data: PtychoData, name: str, message: str) -> PtychoInputError:
    where = None if data.source == "<memory>" else data.source
    return PtychoInputError(f"PtychoData.{name}: {message}", path=where)


def _real(data: PtychoData, name: str, a: Any, dtype: Any) -> np.ndarray:
    a = np.asarray(a)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise _fail(data, name, f"expected real numbers, got dtype {a.dtype}")
    return a.astype(dtype, copy=False)


def _complex(data: PtychoData, name: str, a: Any) -> np.ndarray:
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.number):
        raise _fail(data, name, f"expected a numeric array, got dtype {a.dtype}")
    return a.astype(np.complex64, copy=False)


def _finite(data: PtychoData, name: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        raise _fail(data, name, f"{bad} NaN/Inf values; expected finite values")


def _check_amplitudes(data: PtychoData, d: np.ndarray, *, max_bytes: int = 16 << 20) -> None:
    """Finite and >= 0, ``max_bytes`` of patterns at a time: a sum and a min per block, with
    no temporary as large as the stack (the exact NaN/Inf count only on failure)."""
    step = max(1, max_bytes // max(1, d[:1].nbytes))
    lowest = np.inf
    for s in range(0, d.shape[0], step):
        block = d[s : s + step]
        if not np.isfinite(block.sum(dtype=np.float64)):
            _finite(data, "diffraction", d)
        if block.size:
            lowest = min(lowest, float(block.min()))
    if lowest < 0:
        raise _fail(data, "diffraction", f"negative values (min {lowest:.3g}); expected "
                    "amplitudes >= 0")


def _validate(data: PtychoData) -> None:
    """Check and normalise every field of ``data`` in place (frozen: via object.__setattr__)."""

    def put(name: str, value: Any) -> None:
        object.__setattr__(data, name, value)

    pos = _real(data, "positions", data.positions, np.float64)
    if pos.ndim != 2 or pos.shape[1] != 2:
        raise _fail(data, "positions", f"expected shape (M, 2) (row, col), got {pos.shape}")
    m = pos.shape[0]
    if m == 0:
        raise _fail(data, "positions", "empty dataset (0 positions)")
    _finite(data, "positions", pos)
    put("positions", pos)

    d = data.diffraction
    shape = tuple(getattr(d, "shape", ()))
    if len(shape) != 3:
        raise _fail(data, "diffraction", f"expected shape (M, N, N), got {shape}")
    if shape[0] != m:
        raise _fail(data, "diffraction", f"has {shape[0]} patterns but positions has {m}; "
                    "expected the same M")
    if shape[1] != shape[2]:
        raise _fail(data, "diffraction", f"patterns must be square, got {shape[1]}x{shape[2]}")
    if isinstance(d, np.ndarray):
        if not (np.issubdtype(d.dtype, np.integer) or np.issubdtype(d.dtype, np.floating)):
            raise _fail(data, "diffraction", f"expected real amplitudes, got dtype {d.dtype}")
        _check_amplitudes(data, d)
    n = shape[1]

    probe = _complex(data, "probe", data.probe)
    if probe.shape != (n, n):
        raise _fail(data, "probe", f"shape {probe.shape} must equal the pattern size ({n}, {n})")
    _finite(data, "probe", probe)
    put("probe", probe)

    if data.obj is not None:
        obj = _complex(data, "obj", data.obj)
        if obj.ndim != 2:
            raise _fail(data, "obj", f"expected shape (H, W), got {obj.shape}")
        _finite(data, "obj", obj)
        put("obj", obj)

    for name in ("positions_start", "positions_true"):
        if getattr(data, name) is not None:
            start = _real(data, name, getattr(data, name), np.float64)
            if start.shape != (m, 2):
                raise _fail(data, name, f"expected shape ({m}, 2), got {start.shape}")
            _finite(data, name, start)
            put(name, start)

    if data.scan_index is not None:
        idx = np.asarray(data.scan_index)
        if not np.issubdtype(idx.dtype, np.integer) and not (
                np.issubdtype(idx.dtype, np.floating) and np.all(idx == np.round(idx))):
            raise _fail(data, "scan_index", f"expected integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64).reshape(-1) if idx.ndim <= 1 else idx
        if idx.shape != (m,):
            raise _fail(data, "scan_index", f"expected shape ({m},), got {idx.shape}")
        put("scan_index", idx)

    gt = data.ground_truth_patches
    if gt is not None:
        gshape = tuple(getattr(gt, "shape", ()))
        if gshape != (m, n, n):
            raise _fail(data, "ground_truth_patches", f"expected shape ({m}, {n}, {n}), got "
                        f"{gshape}")
        if isinstance(gt, np.ndarray):
            put("ground_truth_patches", _complex(data, "ground_truth_patches", gt))

    if not isinstance(data.metadata, dict):
        raise _fail(data, "metadata", f"expected a dict, got {type(data.metadata).__name__}")
    put("source", str(data.source))


# ----------------------------------------------------------------------------- object frame
@dataclass(frozen=True)
class ObjectFrame:
    """Canvas geometry: ``shape`` (H, W) and the object-frame coordinate of pixel (0, 0)."""

    shape: tuple[int, int]
    origin: tuple[float, float]


def object_frame(data: PtychoData) -> ObjectFrame:
    """The dataset's object frame: objectGuess's shape if present, else the scan's bounding box."""
    if data.obj is not None:
        return ObjectFrame(tuple(data.obj.shape), (0.0, 0.0))
    shape = data.metadata.get("object_shape")
    if shape is not None:
        return ObjectFrame((int(shape[0]), int(shape[1])), (0.0, 0.0))
    n = data.patch_size
    lo = np.floor(data.positions.min(axis=0) - n / 2) - 1
    hi = np.ceil(data.positions.max(axis=0) + n / 2) + 1
    size = (hi - lo).astype(int)
    return ObjectFrame((int(size[0]), int(size[1])), (float(lo[0]), float(lo[1])))
