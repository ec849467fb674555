"""Iterative baseline: pty-chi (LSQML, ePIE, rPIE, DM) on ptychopinn data.

pty-chi is run in a **separate Python process** (``python -m ptychopinn.iterative._worker``)
because it changes torch's process-global default dtype and device when it builds a
reconstruction task. Inputs and outputs are exchanged as ``.npz`` files in a temporary
directory, always read with ``allow_pickle=False``; nothing is pickled.

Conventions (SPEC §2, §3) and how they are mapped onto pty-chi 2.2
------------------------------------------------------------------
* Positions are patch **centres** in object pixels, ``(row, col)``. A patch of even size N
  centred at integer ``(y, x)`` covers rows ``y - N/2 … y + N/2 - 1``. pty-chi cuts the patch
  starting at ``position + position_origin_coords - (N - 1)/2``; with
  ``position_origin_coords = (-0.5, -0.5)`` (``SPECIFIED``) both cuts coincide and pty-chi's
  object buffer *is* our object canvas (same pixel = same physical pixel). Non-integer
  positions are handled by pty-chi with a Fourier sub-pixel shift of the probe.
* Data are amplitudes with DC at ``(N/2, N/2)``; pty-chi wants intensities with DC at
  ``(0, 0)``. We pass ``ifftshift(A**2)`` and ``fft_shift=False``.
* Our far field uses ``fft2(..., norm="ortho")``; pty-chi's far-field propagator uses the
  unnormalised forward FFT, i.e. ``|F_ptychi|^2 = N^2 |F_ortho|^2``. The probe handed to pty-chi
  is therefore divided by ``N`` (``sqrt(H*W)``) and multiplied back on return.
* Probe scale: the probe must be on the data's scale, i.e. ``|F(P O)|^2 ≈ counts`` for the
  true object. ptychopinn normalises probes (SPEC §3), so :attr:`IterativeConfig.rescale_probe`
  rescales the probe such that ``sum |P|^2`` equals the mean total counts per pattern,
  which is exact (Parseval) when ``|O| ≈ 1``. The applied factor is reported in
  :attr:`IterativeResult.probe_scale`.

Known pty-chi traps handled here: its default device is the GPU (we choose the device
explicitly, GPU only if ``torch.cuda.is_available()``); LSQML's first-epoch probe-intensity
rescaling is always off (in epoch 0 it would update nothing but the probe power); the
object/probe ambiguity removal is off when the probe is fixed; ``constrain_position_mean`` is
off (it recentres positions and moves them off our canvas).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

# the worker's line protocol (its module imports only numpy and the standard library)
from ptychopinn.errors import PtychoInputError
from ptychopinn.iterative._worker import _DONE_PREFIX, _ERROR_PREFIX

logger = logging.getLogger(__name__)

__all__ = [
    "ALGORITHMS",
    "IterativeConfig",
    "IterativeResult",
    "PtychiWorker",
    "coverage_map",
    "is_available",
    "ptychi_forward_amplitudes",
    "ptychi_version",
    "run_iterative",
]

ALGORITHMS: tuple[str, ...] = ("lsqml", "epie", "rpie", "dm")
"""Algorithms offered by :func:`run_iterative` (pty-chi reconstructors)."""

_DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
_NOT_INSTALLED = "pty-chi is not installed: pip install 'ptychopinn[ptychi]'"
_PROGRESS_RE = re.compile(r"^PTYCHOPINN_PROGRESS epoch=(\d+)/(\d+) loss=(\S+)")


@dataclass(frozen=True, kw_only=True)
class IterativeConfig:
    """Settings of an iterative (pty-chi) reconstruction.

    Parameters
    ----------
    algorithm : {"lsqml", "epie", "rpie", "dm"}
        pty-chi reconstructor. LSQML (least-squares maximum likelihood, Gaussian noise model)
        is the default; ePIE/rPIE use pty-chi's default step sizes (alpha = 0.1); DM always
        processes all positions at once (``batch_size`` is ignored).
    epochs : int
        Number of passes over all diffraction patterns (>= 1).
    batch_size : int
        Patterns per minibatch update (LSQML, ePIE, rPIE), >= 1.
    refine_probe : bool
        Also update the probe. When False the probe is fixed and pty-chi's object/probe
        ambiguity removal is disabled.
    refine_positions : bool
        Also refine the scan positions (pty-chi gradient position correction).
    position_step_size, position_update_limit : float or None
        With ``refine_positions``: pty-chi's position step size and the largest position
        update per step (pixels); None keeps pty-chi's defaults (0.3 and 0.1 px).
    position_affine : bool
        With ``refine_positions``: pty-chi's affine constraint on the positions.
    rescale_probe : bool
        Rescale the probe so that ``sum |P|^2`` equals the mean total counts per pattern
        (exact for ``|O| ≈ 1``). Use this when the probe is normalised (ptychopinn's
        convention) rather than on the data's photon scale.
    device : {"auto", "cpu", "cuda"}
        ``"auto"`` uses CUDA when ``torch.cuda.is_available()`` in the worker, else the CPU.
    seed : int
        Seed for pty-chi's minibatch shuffling (deterministic on CPU), >= 0.
    num_threads : int or None
        CPU threads for torch in the worker process; ``None`` leaves torch's default.
    snapshot_every : int or None
        Keep a copy of the object every K epochs and after the last one (1 <= K <= epochs),
        with the cumulative reconstruction time at each copy (copy time excluded); ``None``
        keeps none. The copies are held in memory (S = ceil(epochs / K) objects).
    """

    algorithm: Literal["lsqml", "epie", "rpie", "dm"] = "lsqml"
    epochs: int = 100
    batch_size: int = 32
    refine_probe: bool = False
    refine_positions: bool = False
    position_step_size: float | None = None
    position_update_limit: float | None = None
    position_affine: bool = False
    rescale_probe: bool = False
    device: str = "auto"
    seed: int = 0
    num_threads: int | None = None
    snapshot_every: int | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise PtychoInputError(
                f"algorithm must be one of {', '.join(ALGORITHMS)}; got {self.algorithm!r}"
            )
        if not _is_int(self.epochs) or self.epochs < 1:
            raise PtychoInputError(f"epochs must be an integer >= 1; got {self.epochs!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise PtychoInputError(f"batch_size must be an integer >= 1; got {self.batch_size!r}")
        for name in ("position_step_size", "position_update_limit"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and np.isfinite(v) and v > 0):
                raise PtychoInputError(f"{name} must be None or > 0; got {v!r}")
        for name in ("refine_probe", "refine_positions", "rescale_probe", "position_affine"):
            if not isinstance(getattr(self, name), bool):
                raise PtychoInputError(f"{name} must be a bool; got {getattr(self, name)!r}")
        if self.device not in _DEVICES:
            raise PtychoInputError(f"device must be one of {', '.join(_DEVICES)}; "
                                   f"got {self.device!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise PtychoInputError(f"seed must be an integer >= 0; got {self.seed!r}")
        if self.num_threads is not None and (not _is_int(self.num_threads) or self.num_threads < 1):
            raise PtychoInputError(
                f"num_threads must be None or an integer >= 1; got {self.num_threads!r}"
            )
        if self.snapshot_every is not None and (
            not _is_int(self.snapshot_every) or not 1 <= self.snapshot_every <= self.epochs
        ):
            raise PtychoInputError(
                f"snapshot_every must be None or an integer from 1 to epochs ({self.epochs}); "
                f"got {self.snapshot_every!r}"
            )


@dataclass(frozen=True, kw_only=True)
class IterativeResult:
    """Outcome of :func:`run_iterative`.

    Attributes
    ----------
    object : numpy.ndarray
        (H, W) complex64 reconstructed object in the caller's object-pixel frame: pixel
        ``(r, c)`` is the same physical pixel as position ``(r, c)``.
    coverage : numpy.ndarray
        (H, W) float32 summed probe intensity ``|P|^2`` over all (final) scan positions,
        normalised to a maximum of 1; 0 where nothing was illuminated.
    probe : numpy.ndarray
        (N, N) complex64 probe on the data's scale (refined, or the input probe after the
        optional rescaling).
    positions_rc : numpy.ndarray
        (M, 2) float64 patch centres in object pixels (refined, or the input).
    loss_history : numpy.ndarray
        (E,) float64 pty-chi's displayed loss per epoch (LSQML/PIE: MSE between measured and
        predicted amplitudes; DM: the DM error).
    wall_time_s : float
        Seconds spent in pty-chi's reconstruction loop (excluding process start-up and
        snapshot copies).
    total_time_s : float
        Seconds for the whole call, including data exchange and the worker's start-up
        (when the call started one).
    device : str
        Device that ran the reconstruction (``"cpu"`` or ``"cuda"``).
    algorithm : str
        Algorithm name (see :data:`ALGORITHMS`).
    ptychi_version : str
        Installed pty-chi version.
    probe_scale : float
        Factor applied to the input probe before reconstruction (1.0 unless
        ``rescale_probe``).
    snapshot_epochs : numpy.ndarray or None
        (S,) int64 epochs (1-based) after which the object was copied: every
        ``snapshot_every`` epochs and the last epoch; None without snapshots.
    snapshot_seconds : numpy.ndarray or None
        (S,) float64 cumulative reconstruction seconds at each snapshot, time spent copying
        snapshots excluded; strictly increasing, the last equals ``wall_time_s``.
    snapshot_objects : numpy.ndarray or None
        (S, H, W) complex64 objects in the same frame as ``object``; the last equals it.
    snapshot_overhead_s : float
        Seconds spent copying snapshots (not counted in ``wall_time_s``).
    """

    object: np.ndarray
    coverage: np.ndarray
    probe: np.ndarray
    positions_rc: np.ndarray
    loss_history: np.ndarray
    wall_time_s: float
    total_time_s: float
    device: str
    algorithm: str
    ptychi_version: str
    probe_scale: float = 1.0
    snapshot_epochs: np.ndarray | None = None
    snapshot_seconds: np.ndarray | None = None
    snapshot_objects: np.ndarray | None = None
    snapshot_overhead_s: float = 0.0


def is_available() -> bool:
    """Return whether pty-chi is installed (checked without importing it).

    Returns
    -------
    bool
        True when the ``ptychi`` distribution can be found.
    """
    return importlib.util.find_spec("ptychi") is not None


def ptychi_version() -> str:
    """Return the installed pty-chi version.

    Raises
    ------
    RuntimeError
        If pty-chi is not installed.
    """
    if not is_available():
        raise RuntimeError(_NOT_INSTALLED)
    try:
        return importlib.metadata.version("ptychi")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def run_iterative(
    diffraction: np.ndarray,
    positions_rc: np.ndarray,
    probe: np.ndarray,
    object_shape: tuple[int, int],
    config: IterativeConfig | None = None,
    *,
    initial_object: np.ndarray | None = None,
    show_progress: bool = False,
    worker: PtychiWorker | None = None,
) -> IterativeResult:
    """Reconstruct an object with pty-chi from measured diffraction amplitudes.

    Parameters
    ----------
    diffraction : numpy.ndarray
        (M, N, N) float32 measured amplitudes ``sqrt(counts)`` (photon units), DC at
        pixel ``(N/2, N/2)``. N must be even.
    positions_rc : numpy.ndarray
        (M, 2) float64 patch centres ``(row, col)`` in object pixels; every centre must lie
        on the ``object_shape`` canvas.
    probe : numpy.ndarray
        (N, N) complex64 probe on the object pixel grid, on the data's scale
        (``|fftshift(fft2(P*O, norm="ortho"))|^2 ≈ counts``) unless
        ``config.rescale_probe`` is set.
    object_shape : tuple of int
        (H, W) object canvas in pixels; positions are given in this frame.
    config : IterativeConfig, optional
        Algorithm settings; defaults to ``IterativeConfig()`` (LSQML, 100 epochs).
    initial_object : numpy.ndarray, optional
        (H, W) complex initial object; default all ones (free space).
    show_progress : bool
        Show a progress bar (stderr) and log a line every few epochs at INFO level;
        otherwise progress goes to DEBUG.
    worker : PtychiWorker, optional
        A worker process kept open across runs (saves its ≈13 s start-up); default: one
        started for this call.

    Returns
    -------
    IterativeResult
        Reconstructed object (our frame), coverage, probe, positions, losses and timing.

    Raises
    ------
    ValueError
        On inconsistent or invalid inputs (one line naming the argument).
    RuntimeError
        If pty-chi is not installed or the worker process fails.
    """
    t_start = time.perf_counter()
    config = IterativeConfig() if config is None else config
    if not isinstance(config, IterativeConfig):
        raise ValueError(f"config must be an IterativeConfig; got {type(config).__name__}")
    if not is_available():
        raise RuntimeError(_NOT_INSTALLED)
    version = ptychi_version()

    amplitudes, positions, probe_arr, shape = _validate_inputs(
        diffraction, positions_rc, probe, object_shape
    )
    if initial_object is None:
        obj0 = np.ones(shape, dtype=np.complex64)
    else:
        obj0 = np.asarray(initial_object)
        if obj0.shape != shape:
            raise ValueError(
                f"initial_object must have shape object_shape={shape}; got {obj0.shape}"
            )
        if not np.all(np.isfinite(obj0)):
            raise ValueError("initial_object contains NaN or Inf")
        obj0 = obj0.astype(np.complex64)

    counts = np.square(amplitudes, dtype=np.float32)
    probe_scale = 1.0
    if config.rescale_probe:
        probe_scale = _probe_rescale_factor(counts, probe_arr)
        probe_arr = (probe_arr * np.float32(probe_scale)).astype(np.complex64)
        logger.info("Probe rescaled by %.6g to the mean total counts per pattern", probe_scale)

    worker_cfg = asdict(config)
    worker_cfg["mode"] = "reconstruct"
    with tempfile.TemporaryDirectory(prefix="ptychopinn_ptychi_") as tmp:
        in_path = Path(tmp) / "inputs.npz"
        out_path = Path(tmp) / "outputs.npz"
        np.savez(
            in_path,
            counts=counts,
            positions_rc=positions,
            probe=probe_arr,
            object=obj0,
            config_json=np.array(json.dumps(worker_cfg)),
        )
        _run_worker(in_path, out_path, config, show_progress=show_progress, worker=worker)
        with np.load(out_path, allow_pickle=False) as out:
            obj = out["object"].astype(np.complex64)
            probe_out = out["probe"].astype(np.complex64)
            positions_out = out["positions_rc"].astype(np.float64)
            losses = out["loss_history"].astype(np.float64)
            wall = float(out["wall_time_s"])
            device = str(out["device"])
            snaps = {}
            if "snapshot_objects" in out:
                snaps = {"snapshot_epochs": out["snapshot_epochs"].astype(np.int64),
                         "snapshot_seconds": out["snapshot_seconds"].astype(np.float64),
                         "snapshot_objects": out["snapshot_objects"].astype(np.complex64),
                         "snapshot_overhead_s": float(out["snapshot_overhead_s"])}

    coverage = coverage_map(positions_out, probe_out, shape)
    total = time.perf_counter() - t_start
    logger.info(
        "pty-chi %s %s: %d epochs on %s in %.2f s (total %.2f s), final loss %.4g",
        version,
        config.algorithm,
        losses.size,
        device,
        wall,
        total,
        losses[-1] if losses.size else float("nan"),
    )
    return IterativeResult(
        object=obj,
        coverage=coverage,
        probe=probe_out,
        positions_rc=positions_out,
        loss_history=losses,
        wall_time_s=wall,
        total_time_s=total,
        device=device,
        algorithm=config.algorithm,
        ptychi_version=version,
        probe_scale=float(probe_scale),
        **snaps,
    )


def ptychi_forward_amplitudes(
    obj: np.ndarray,
    probe: np.ndarray,
    positions_rc: np.ndarray,
    *,
    device: str = "cpu",
    worker: PtychiWorker | None = None,
) -> np.ndarray:
    """Predict diffraction amplitudes with pty-chi's own forward model.

    The object, probe and positions go through exactly the conversions used by
    :func:`run_iterative` (probe FFT scaling, position origin, DC shift), so agreement with
    :mod:`ptychopinn`'s forward model proves that both describe the same physics on the same
    pixels.

    Parameters
    ----------
    obj : numpy.ndarray
        (H, W) complex object in our object-pixel frame.
    probe : numpy.ndarray
        (N, N) complex probe, N even.
    positions_rc : numpy.ndarray
        (M, 2) patch centres ``(row, col)`` in object pixels.
    device : {"auto", "cpu", "cuda"}
        Device for the worker.
    worker : PtychiWorker, optional
        A worker process kept open across runs; default: one started for this call.

    Returns
    -------
    numpy.ndarray
        (M, N, N) float32 amplitudes ``|fftshift(fft2(P*O_patch, norm="ortho"))|``, DC at
        ``(N/2, N/2)``.
    """
    if not is_available():
        raise RuntimeError(_NOT_INSTALLED)
    obj_arr = np.asarray(obj)
    if obj_arr.ndim != 2:
        raise ValueError(f"obj must be a 2-D (H, W) array; got shape {obj_arr.shape}")
    probe_arr = np.asarray(probe)
    n = probe_arr.shape[-1] if probe_arr.ndim == 2 else 0
    dummy = np.zeros((np.asarray(positions_rc).shape[0], n, n), dtype=np.float32)
    _, positions, probe_arr, shape = _validate_inputs(dummy, positions_rc, probe_arr, obj_arr.shape)
    config = IterativeConfig(device=device, epochs=1)
    worker_cfg = asdict(config)
    worker_cfg["mode"] = "forward"
    with tempfile.TemporaryDirectory(prefix="ptychopinn_ptychi_") as tmp:
        in_path = Path(tmp) / "inputs.npz"
        out_path = Path(tmp) / "outputs.npz"
        np.savez(
            in_path,
            counts=dummy,
            positions_rc=positions,
            probe=probe_arr,
            object=obj_arr.astype(np.complex64),
            config_json=np.array(json.dumps(worker_cfg)),
        )
        _run_worker(in_path, out_path, config, show_progress=False, worker=worker)
        with np.load(out_path, allow_pickle=False) as out:
            return out["amplitudes"].astype(np.float32)


def coverage_map(
    positions_rc: np.ndarray, probe: np.ndarray, object_shape: tuple[int, int]
) -> np.ndarray:
    """Summed probe illumination ``|P|^2`` over all scan positions, normalised to max 1.

    Sub-pixel positions are splatted bilinearly by the package's one placement
    (:meth:`ptychopinn.physics.patches.PatchGeometry.place`, in float64, 1024 positions at a
    time; the patch centred at ``p`` starts at ``p - N/2``). Parts of patches off the canvas
    are dropped.

    Parameters
    ----------
    positions_rc : numpy.ndarray
        (M, 2) patch centres ``(row, col)`` in object pixels.
    probe : numpy.ndarray
        (N, N) complex probe.
    object_shape : tuple of int
        (H, W) canvas.

    Returns
    -------
    numpy.ndarray
        (H, W) float32 coverage in [0, 1]; 0 where unilluminated.
    """
    import torch

    from ptychopinn.physics.patches import PatchGeometry

    h, w = (int(s) for s in object_shape)
    pos = torch.from_numpy(np.asarray(positions_rc, dtype=np.float64).reshape(-1, 2))
    intensity = torch.from_numpy(np.abs(np.asarray(probe, dtype=np.complex128)) ** 2)
    n = intensity.shape[-1]
    if intensity.shape != (n, n):
        raise ValueError(f"probe must be square, got shape {tuple(intensity.shape)}")
    acc = torch.zeros((h, w), dtype=torch.float64)
    for s in range(0, pos.shape[0], 1024):
        chunk = pos[s : s + 1024]
        PatchGeometry(chunk, n, (h, w)).place(intensity.expand(chunk.shape[0], n, n), out=acc)
    cov = acc.numpy()
    peak = cov.max(initial=0.0)
    if peak > 0:
        cov = cov / peak
    return cov.astype(np.float32)


# --------------------------------------------------------------------------------------
# internals


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _probe_rescale_factor(counts: np.ndarray, probe: np.ndarray) -> float:
    """Amplitude factor s with ``s^2 sum|P|^2 = mean total counts`` (Parseval, |O| = 1)."""
    mean_total = float(np.mean(np.sum(counts, axis=(-2, -1), dtype=np.float64)))
    probe_energy = float(np.sum(np.abs(probe.astype(np.complex128)) ** 2))
    if probe_energy <= 0 or not math.isfinite(probe_energy):
        raise ValueError("probe has zero energy; cannot rescale it to the data")
    if mean_total <= 0:
        raise ValueError("diffraction has zero total counts; cannot rescale the probe")
    return math.sqrt(mean_total / probe_energy)


def _validate_inputs(
    diffraction: np.ndarray,
    positions_rc: np.ndarray,
    probe: np.ndarray,
    object_shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    diff = np.asarray(diffraction)
    if diff.ndim != 3 or diff.shape[1] != diff.shape[2]:
        raise ValueError(f"diffraction must have shape (M, N, N); got {diff.shape}")
    if np.iscomplexobj(diff) or not np.issubdtype(diff.dtype, np.number):
        raise ValueError(f"diffraction must be real amplitudes; got dtype {diff.dtype}")
    m, n, _ = diff.shape
    if m < 1:
        raise ValueError("diffraction must contain at least one pattern")
    if n % 2:
        raise ValueError(f"pattern size N must be even; got N={n}")
    amplitudes = diff.astype(np.float32)
    if not np.all(np.isfinite(amplitudes)):
        raise ValueError("diffraction contains NaN or Inf")
    if np.any(amplitudes < 0):
        raise ValueError("diffraction contains negative amplitudes (expected sqrt(counts))")

    pos = np.asarray(positions_rc)
    if pos.shape != (m, 2):
        raise ValueError(f"positions_rc must have shape (M, 2)=({m}, 2); got {pos.shape}")
    pos = pos.astype(np.float64)
    if not np.all(np.isfinite(pos)):
        raise ValueError("positions_rc contains NaN or Inf")

    prb = np.asarray(probe)
    if prb.shape != (n, n):
        raise ValueError(f"probe must have the pattern shape ({n}, {n}); got {prb.shape}")
    prb = prb.astype(np.complex64)
    if not np.all(np.isfinite(prb)):
        raise ValueError("probe contains NaN or Inf")

    shape_t = tuple(int(s) for s in object_shape)
    if len(shape_t) != 2 or min(shape_t) < 1:
        raise ValueError(f"object_shape must be (H, W) with positive sizes; got {object_shape}")
    h, w = shape_t
    outside = (pos[:, 0] < 0) | (pos[:, 0] > h - 1) | (pos[:, 1] < 0) | (pos[:, 1] > w - 1)
    if np.any(outside):
        raise ValueError(
            f"{int(outside.sum())} position(s) lie outside the object canvas {shape_t} "
            "(positions are patch centres in object pixels, (row, col))"
        )
    return amplitudes, pos, prb, (h, w)


def _worker_env(num_threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    # Make the worker importable from a source checkout too (src layout).
    src_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src_root, env.get("PYTHONPATH", "")) if p)
    if num_threads is not None:
        env["OMP_NUM_THREADS"] = str(num_threads)
        env["MKL_NUM_THREADS"] = str(num_threads)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"  # requests (paths) go over stdin as UTF-8
    return env


class _WorkerLog:
    """Consumes the worker's stderr: progress lines, the error line, everything else."""

    def __init__(self, algorithm: str, epochs: int, show_progress: bool) -> None:
        self.algorithm = algorithm
        self.show_progress = show_progress
        self.level = logging.INFO if show_progress else logging.DEBUG
        self.log_every = max(1, epochs // 10)
        self.bar = None  # created at the first epoch so start-up does not skew the rate
        self.error_line: str | None = None
        self.tail: deque[str] = deque(maxlen=20)

    def feed(self, line: str) -> None:
        match = _PROGRESS_RE.match(line)
        if match:
            self._progress(int(match[1]), int(match[2]), match[3])
        elif line.startswith(_ERROR_PREFIX):
            self.error_line = line[len(_ERROR_PREFIX) :]
        elif line.strip():
            self.tail.append(line)
            logger.debug("[pty-chi worker] %s", line)

    def _progress(self, epoch: int, total: int, loss: str) -> None:
        if self.show_progress and self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=f"pty-chi {self.algorithm}", unit="epoch")
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=loss)
        if epoch % self.log_every == 0 or epoch == total:
            logger.log(
                self.level, "pty-chi %s epoch %d/%d loss %s", self.algorithm, epoch, total, loss
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class PtychiWorker:
    """A pty-chi worker process that serves several runs.

    Starting the worker imports torch, pty-chi and torch's compiler stack (≈13 s on a 2-core CPU,
    far longer than a small reconstruction); a worker held open pays that once. Pass it as
    ``worker=`` to :func:`run_iterative` (and the functions built on it); without one, each
    call starts and ends its own. Use as a context manager or call :meth:`close`.

    The process starts at the first run. Runs through one worker are serialised (a lock). A
    failed or interrupted run ends the process (the next run starts a fresh one, so nothing a
    failure left behind is reused); so does the end of the parent process (stdin closes). A
    worker inherited across ``fork`` is not shared: the child starts its own. (A forked child
    still holds the inherited end of the worker's stdin: while it lives, the worker outlives
    the parent's :meth:`close` by up to 30 s, then is killed.) An idle worker keeps its memory,
    on a GPU its CUDA context (a few hundred MB), until it is closed.

    Parameters
    ----------
    num_threads : int or None
        Threads the process starts with (``OMP_NUM_THREADS``); ``None`` inherits the
        environment. Each run then uses its ``IterativeConfig.num_threads``, or this default.
    """

    def __init__(self, num_threads: int | None = None) -> None:
        if num_threads is not None and (not _is_int(num_threads) or num_threads < 1):
            raise ValueError(f"num_threads must be None or an integer >= 1; got {num_threads!r}")
        self.num_threads = num_threads
        self._proc: subprocess.Popen | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._lock_pid = os.getpid()

    def __enter__(self) -> PtychiWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # also at interpreter shutdown
            self._stop(kill=True)

    @property
    def running(self) -> bool:
        """Whether a worker process is alive (it starts at the first run)."""
        return self._proc is not None and self._pid == os.getpid() and self._proc.poll() is None

    def close(self) -> None:
        """End the worker process (waits for the current run, if any)."""
        with self._guard():
            self._stop(kill=False)

    def _guard(self) -> threading.Lock:
        """The lock of this process (a fork may have copied the lock in a held state)."""
        if self._lock_pid != os.getpid():
            self._lock, self._lock_pid = threading.Lock(), os.getpid()
        return self._lock

    def _stop(self, *, kill: bool) -> None:
        proc, self._proc = self._proc, None
        if proc is None or self._pid != os.getpid():
            return  # nothing started, or the parent's (inherited through fork): not ours
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            if kill:
                proc.kill()
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(OSError):
            proc.stderr.close()

    def _start(self) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "ptychopinn.iterative._worker"]
        logger.debug("Starting pty-chi worker: %s", " ".join(cmd))
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=_worker_env(self.num_threads),
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._pid = os.getpid()
        return self._proc

    def _run(self, in_path: Path, out_path: Path, config: IterativeConfig, *,
             show_progress: bool) -> None:
        """One run: ``in_path`` -> ``out_path``, its stderr forwarded to logging and a bar."""
        with self._guard():
            if not self.running:
                self._stop(kill=True)  # dead (its pipes closed), or inherited through fork
                self._start()
            proc = self._proc
            log = _WorkerLog(config.algorithm, config.epochs, show_progress)
            rc: int | None = None
            try:
                try:
                    proc.stdin.write(f"{in_path}\t{out_path}\n")
                    proc.stdin.flush()
                except BrokenPipeError:
                    pass  # it died since the check; its exit is reported below
                for raw in proc.stderr:
                    line = raw.rstrip("\n")
                    if line.startswith(_DONE_PREFIX):
                        rc = int(line[len(_DONE_PREFIX):].strip() or 1)
                        break
                    log.feed(line)
            except BaseException:
                self._stop(kill=True)  # interrupted: do not leave the worker running
                raise
            finally:
                log.close()
            if rc != 0 or not out_path.exists():  # rc None: it ended before finishing the run
                self._stop(kill=True)
                if log.error_line:
                    detail = log.error_line
                elif rc is None:
                    detail = log.tail[-1] if log.tail else f"exit code {proc.returncode}"
                else:
                    detail = f"no output ({out_path.name})"
                raise RuntimeError(f"pty-chi worker failed: {detail}")


def _run_worker(in_path: Path, out_path: Path, config: IterativeConfig, *,
                show_progress: bool, worker: PtychiWorker | None) -> None:
    """Run through ``worker``, or through a worker of its own that ends with the run."""
    if worker is not None:
        worker._run(in_path, out_path, config, show_progress=show_progress)
        return
    with PtychiWorker(num_threads=config.num_threads) as own:
        own._run(in_path, out_path, config, show_progress=show_progress)
