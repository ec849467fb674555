"""Quality against wall time: snapshots of an iterative run scored like ``compare`` (SPEC §7).

``ptychopinn iterative --snapshot-every K`` writes ``snapshots.npz`` (``epochs`` (S,),
``seconds`` (S,), ``objects`` (S, H, W) complex64, optional ``coverage`` (H, W)).
:func:`trajectory` scores every snapshot against a reference with
:func:`~ptychopinn.evaluation.metrics.evaluate`; :func:`time_to_reach` interpolates the time at
which a trajectory first reaches a given quality.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.evaluation.metrics import PARTS, evaluate

__all__ = ["Trajectory", "load_snapshots", "time_to_reach", "trajectory"]

SNAPSHOT_KEYS = ("epochs", "seconds", "objects")


@dataclass(frozen=True)
class Trajectory:
    """Quality of S snapshots of one run.

    Attributes
    ----------
    epochs : numpy.ndarray
        (S,) int64 epoch of each snapshot (1-based).
    seconds : numpy.ndarray
        (S,) float64 cumulative reconstruction wall time, s.
    metrics : dict
        ``{part: {metric: (S,) float64}}`` for part in amplitude, phase.
    """

    epochs: np.ndarray
    seconds: np.ndarray
    metrics: dict[str, dict[str, np.ndarray]]

    def values(self, part: str, metric: str) -> np.ndarray:
        """(S,) values of one metric, e.g. ``values("phase", "ssim")``."""
        return self.metrics[part][metric]

    def time_to_reach(self, target: float, part: str = "phase", metric: str = "ssim"
                      ) -> float | None:
        """Seconds at which ``part``/``metric`` first reaches ``target`` (see
        :func:`time_to_reach`)."""
        return time_to_reach(self.seconds, self.values(part, metric), target)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: lists, non-finite values as None."""
        def clean(a: np.ndarray) -> list:
            return [float(v) if math.isfinite(v) else None for v in np.asarray(a, float)]

        return {"epochs": [int(e) for e in self.epochs], "seconds": clean(self.seconds),
                **{part: {m: clean(v) for m, v in per.items()}
                   for part, per in self.metrics.items()}}


def load_snapshots(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read ``snapshots.npz`` (or a directory holding it) without pickle.

    Returns
    -------
    dict
        ``epochs`` (S,) int64, ``seconds`` (S,) float64, ``objects`` (S, H, W) complex64 and,
        when present, ``coverage`` (H, W) float32 and ``origin`` (2,).

    Raises
    ------
    ValueError
        One line naming the file and the key on a missing file, key or inconsistent shapes.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "snapshots.npz"
    if not p.is_file():
        raise ValueError(f"{p}: snapshots file not found")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "metadata_json"}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{p}: not a readable snapshots NPZ ({exc})") from None
    for key in SNAPSHOT_KEYS:
        if key not in arrays:
            raise ValueError(f"{p}: key '{key}': missing (expected {', '.join(SNAPSHOT_KEYS)})")
    try:
        return _checked(arrays)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None


def _checked(arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    epochs = np.asarray(arrays["epochs"]).astype(np.int64)
    seconds = np.asarray(arrays["seconds"], dtype=np.float64)
    objects = np.asarray(arrays["objects"])
    if objects.ndim != 3:
        raise ValueError(f"key 'objects': expected (S, H, W), got shape {objects.shape}")
    s = objects.shape[0]
    if epochs.shape != (s,) or seconds.shape != (s,):
        raise ValueError(f"keys 'epochs' {epochs.shape} and 'seconds' {seconds.shape} must "
                         f"both have shape ({s},) like 'objects'")
    out = {"epochs": epochs, "seconds": seconds, "objects": objects.astype(np.complex64)}
    for key in ("coverage", "origin"):
        if arrays.get(key) is not None:
            out[key] = np.asarray(arrays[key])
    return out


def trajectory(
    reference: np.ndarray,
    snapshots: str | os.PathLike[str] | Mapping[str, Any],
    *,
    coverage: np.ndarray | None = None,
    metrics: tuple[str, ...] = ("ssim", "psnr"),
    **evaluate_kwargs: Any,
) -> Trajectory:
    """Score every snapshot against a reference: quality as a function of wall time.

    Parameters
    ----------
    reference : ndarray of shape (H, W), complex
        Ground truth or reference reconstruction on the snapshots' frame.
    snapshots : path or mapping
        ``snapshots.npz`` (or its directory), or a mapping with ``epochs`` (S,), ``seconds``
        (S,) and ``objects`` (S, H, W).
    coverage : ndarray of shape (H, W), optional
        Crop every snapshot to this scanned region; default the snapshots' own ``coverage``
        (the final reconstruction's), else the whole frame. One region for all snapshots.
    metrics : tuple of str
        Metrics kept (names of :func:`~ptychopinn.evaluation.metrics.evaluate`'s output).
    **evaluate_kwargs
        Passed to :func:`~ptychopinn.evaluation.metrics.evaluate` (``phase``,
        ``upsample_factor``, ``region``, ...).

    Returns
    -------
    Trajectory
        Epochs, seconds and ``{part: {metric: (S,)}}``.
    """
    snaps = (load_snapshots(snapshots) if isinstance(snapshots, str | os.PathLike)
             else _checked(snapshots))
    ref = np.asarray(reference)
    if snaps["objects"].shape[1:] != ref.shape:
        raise ValueError(f"snapshot objects {snaps['objects'].shape[1:]} are not on the "
                         f"reference frame {ref.shape}")
    cov = snaps.get("coverage") if coverage is None else coverage
    per: dict[str, dict[str, list[float]]] = {p: {m: [] for m in metrics} for p in PARTS}
    for obj in snaps["objects"]:
        scores = evaluate(ref, obj, coverage=cov, **evaluate_kwargs)
        for part in PARTS:
            for m in metrics:
                per[part][m].append(float(scores[part][m]))
    return Trajectory(snaps["epochs"], snaps["seconds"],
                      {p: {m: np.asarray(v) for m, v in d.items()} for p, d in per.items()})


def time_to_reach(seconds: np.ndarray, values: np.ndarray, target: float) -> float | None:
    """First time a trajectory reaches ``target`` (higher = better), linearly interpolated.

    Parameters
    ----------
    seconds : array of shape (S,)
        Increasing times of the snapshots, s.
    values : array of shape (S,)
        Quality at each time (e.g. phase SSIM).
    target : float
        Quality to reach.

    Returns
    -------
    float or None
        Interpolated between the last snapshot below and the first at or above ``target``;
        ``seconds[0]`` if the first snapshot already reaches it (an upper bound); None if the
        run never reaches it.

    Examples
    --------
    >>> time_to_reach(np.array([1.0, 2.0, 3.0]), np.array([0.2, 0.6, 0.9]), 0.75)
    2.5
    """
    t = np.asarray(seconds, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError(f"seconds {t.shape} and values {v.shape} must be 1-D of equal length")
    hit = np.flatnonzero(v >= target)
    if hit.size == 0:
        return None
    i = int(hit[0])
    if i == 0:
        return float(t[0])
    t0, t1, v0, v1 = t[i - 1], t[i], v[i - 1], v[i]
    return float(t0 + (t1 - t0) * (target - v0) / (v1 - v0))
