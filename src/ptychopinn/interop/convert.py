"""``convert --format ptychodus``: a Ptychodus batch directory (or NPZ export) -> our dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError


def convert_ptychodus(source: str | Path, *, values: str | None = None) -> PtychoData:
    """Read a Ptychodus batch input directory (``diffraction.h5`` + ``product.h5``), or the
    directory holding them given as one of its files, or a Ptychodus PtychoPINN NPZ export
    (which needs ``values`` = amplitude|intensity: the export does not say which)."""
    from ptychopinn.interop.ptychodus_io import read_batch_directory, read_ptychodus_npz

    source = Path(source)
    if not source.exists():
        raise PtychoInputError("file not found", path=source)
    if source.is_file() and source.suffix == ".npz":
        arrays = read_ptychodus_npz(source, values=values)
        from ptychopinn.data.io import _build

        return _build(dict(arrays), source, values="amplitude")
    directory = source if source.is_dir() else source.parent
    intensities, positions, probe, shape, meta = read_batch_directory(directory)
    bad = meta.get("bad_pixels")
    if bad is not None:
        intensities = np.where(bad[None], 0.0, intensities)
    product = meta["product"]
    md = {
        "units": {"diffraction": "sqrt(photon counts)", "positions": "object pixels"},
        "provenance": f"converted from Ptychodus batch directory {directory}",
        "object_shape": [int(shape[0]), int(shape[1])],
        "photon_energy_eV": meta.get("photon_energy_eV"),
        "detector_object_distance_m": meta.get("detector_object_distance_m"),
        "object_pixel_size_m": list(meta.get("object_pixel_size_m", [])),
    }
    obj = np.asarray(product.object[0], np.complex64) if product.object.size else None
    return PtychoData(
        diffraction=np.sqrt(np.maximum(intensities, 0)).astype(np.float32),
        positions=np.asarray(positions, np.float64),
        probe=np.asarray(probe, np.complex64),
        obj=obj if obj is not None and obj.shape == tuple(shape) else None,
        scan_index=np.zeros(len(positions), np.int64),
        metadata=md,
        source=str(directory),
    )
