"""The in-memory/lazy dataset container shared by every workflow."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np


class PatternStack(Protocol):
    """Array-like (M, N, N) float32 amplitude stack that can be read in batches."""

    shape: tuple[int, ...]
    dtype: Any

    def __getitem__(self, idx: Any) -> np.ndarray: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, eq=False)
class PtychoData:
    """A ptychography dataset in the SPEC §2 contract (validated by the readers).

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
    ground_truth_patches: Any = None
    metadata: dict = field(default_factory=dict)
    source: str = "<memory>"

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

    def mean_total_counts(self, *, batch: int = 4096) -> float:
        """Mean over patterns of the total counts sum(A**2), computed in batches."""
        total = 0.0
        for s in range(0, self.n_patterns, batch):
            a = np.asarray(self.diffraction[s : s + batch], dtype=np.float64)
            total += float(np.sum(a * a))
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
            scan_index=None if self.scan_index is None else self.scan_index[idx],
            ground_truth_patches=None if gt is None else np.asarray(gt[idx]),
            metadata=dict(self.metadata),
        )

    def metadata_json(self) -> str:
        """Metadata serialised as JSON."""
        return json.dumps(self.metadata, sort_keys=True, default=str)
