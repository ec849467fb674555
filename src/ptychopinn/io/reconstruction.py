"""Reconstructions on disk: ``reconstruction.npz`` (object, coverage, origin, metadata_json)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptychopinn.errors import PtychoInputError
from ptychopinn.files import atomic_path, read_npz

__all__ = ["RECONSTRUCTION_FILE", "Reconstruction", "is_reconstruction_file", "load_reconstruction",
           "save_reconstruction"]

RECONSTRUCTION_FILE = "reconstruction.npz"


@dataclass(frozen=True)
class Reconstruction:
    """A stitched object in the dataset's object frame (SPEC §6a)."""

    object: np.ndarray  # (H, W) complex64
    coverage: np.ndarray  # (H, W) float32, 0 where nothing was reconstructed
    origin: tuple[float, float] = (0.0, 0.0)
    info: dict = field(default_factory=dict)


def save_reconstruction(recon: Reconstruction, out_dir: str | os.PathLike) -> Path:
    """Write ``out_dir/reconstruction.npz`` atomically (the data only; pictures are the
    caller's: :func:`ptychopinn.viz.object_pngs`).

    Keys: ``object`` (H, W) complex64, ``coverage`` (H, W) float32, ``origin`` (2,) float64
    (object-frame coordinate of pixel (0, 0)), ``metadata_json`` (the ``info`` dict).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RECONSTRUCTION_FILE
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, object=recon.object.astype(np.complex64),
                 coverage=recon.coverage.astype(np.float32),
                 origin=np.asarray(recon.origin, np.float64),
                 metadata_json=np.asarray(json.dumps(recon.info, default=str)))
    return path


def load_reconstruction(path: str | os.PathLike) -> Reconstruction:
    """Read ``reconstruction.npz`` (or a directory holding it); validated, no pickle."""
    path = Path(path)
    if path.is_dir():
        path = path / RECONSTRUCTION_FILE
    if not path.exists():
        raise PtychoInputError("reconstruction not found", path=path)
    z = read_npz(path)
    if "object" not in z:
        raise PtychoInputError("missing required array", path=path, key="object")
    obj = z["object"]
    if obj.ndim != 2:
        raise PtychoInputError(f"expected (H, W), got {obj.shape}", path=path, key="object")
    cov = z.get("coverage")
    if cov is None:
        cov = (np.abs(obj) > 0).astype(np.float32)
    if cov.shape != obj.shape:
        raise PtychoInputError(f"shape {cov.shape} differs from object {obj.shape}", path=path,
                               key="coverage")
    origin = tuple(float(v) for v in z.get("origin", np.zeros(2)))
    info = json.loads(str(z["metadata_json"])) if "metadata_json" in z else {}
    return Reconstruction(obj.astype(np.complex64), cov.astype(np.float32), origin, info)


def is_reconstruction_file(path: str | os.PathLike) -> bool:
    """True for a directory holding ``reconstruction.npz`` or an NPZ with an ``object`` array."""
    path = Path(path)
    if path.is_dir():
        return True
    from ptychopinn.files import file_kind

    return file_kind(path) == "npz" and "object" in read_npz(path)
