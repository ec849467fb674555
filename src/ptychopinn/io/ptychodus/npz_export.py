"""The PtychoPINN training NPZ that Ptychodus exports (``save_ptychopinn_training_data``)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ptychopinn.io.ptychodus.geometry import probe_centre_offset

logger = logging.getLogger(__name__)

__all__ = ["read_ptychodus_npz"]

ValuesKind = Literal["intensity", "amplitude"]
_VALUE_SYNONYMS: dict[str, ValuesKind] = {
    "intensity": "intensity",
    "intensities": "intensity",
    "counts": "intensity",
    "photon_counts": "intensity",
    "amplitude": "amplitude",
    "amplitudes": "amplitude",
    "sqrt_counts": "amplitude",
}


def _declared_values(meta: Mapping[str, Any]) -> str | None:
    """What ``metadata_json`` says the diffraction array holds, or None."""
    for key in ("diffraction_values", "diffraction_units"):
        if key in meta:
            return str(meta[key])
    units = meta.get("units")
    if isinstance(units, Mapping):
        for key in ("diffraction", "diff3d"):
            if key in units:
                return str(units[key])
    return None


def read_ptychodus_npz(
    path: str | os.PathLike[str],
    *,
    values: ValuesKind | None = None,
    shift_to_patch_centre: bool = True,
) -> dict[str, np.ndarray]:
    """Read the PtychoPINN training NPZ that Ptychodus exports, as ptychopinn dataset arrays.

    Ptychodus's ``save_ptychopinn_training_data`` writes ``diff3d`` as **intensities** (photon
    counts, source dtype) without saying so in the file, while PtychoPINN's own NPZ files use the
    same key for amplitudes. This reader therefore refuses to guess.

    Parameters
    ----------
    path : path-like
        The NPZ file (never unpickled).
    values : {"intensity", "amplitude"}, optional
        What the diffraction array holds. Required unless ``metadata_json`` declares it
        (``diffraction_values`` / ``diffraction_units``, or ``units["diffraction"]``) or the array
        is stored under ``diffraction`` (amplitude by the ptychopinn format). A flag that
        contradicts the file's declaration is refused.
    shift_to_patch_centre : bool
        Ptychodus writes ``xcoords``/``ycoords`` as the object pixel of the probe's geometric
        centre (index (N - 1) / 2). True (default) adds :func:`probe_centre_offset` (0.5 px for
        even N) to follow ptychopinn's patch-centre convention; False keeps them as stored.

    Returns
    -------
    dict of numpy.ndarray
        Keys of the ptychopinn dataset NPZ: ``diffraction`` (M, N, N) float32 amplitudes =
        sqrt(counts); ``xcoords``, ``ycoords``, ``xcoords_start``, ``ycoords_start`` (M,) float64;
        ``probeGuess`` (N, N) complex64 (first mode); ``objectGuess`` (H, W) complex64 if present;
        ``scan_index`` (M,) int64; ``metadata_json`` 0-d str (provenance, units, the applied
        position shift, source metadata); ``bad_pixels`` (N, N) bool if present (Ptychodus has
        already inpainted or zeroed those pixels in ``diff3d``).

    Raises
    ------
    ValueError
        One line naming the file (and key) when the units are undeclared, a key is missing,
        shapes disagree, values are NaN/Inf or negative, or the file holds pickled objects.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as exc:
        raise ValueError(
            f"{path}: refused: holds pickled objects or is malformed ({exc})"
        ) from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable NPZ file ({exc})") from None

    if "diff3d" in arrays:
        dkey = "diff3d"
    elif "diffraction" in arrays:
        dkey = "diffraction"
    else:
        raise ValueError(f"{path}: missing key 'diff3d' (nor 'diffraction'); expected (M, N, N)")
    for key in ("xcoords", "ycoords", "probeGuess"):
        if key not in arrays:
            raise ValueError(f"{path}: missing key {key!r}")

    source_meta: dict[str, Any] = {}
    if "metadata_json" in arrays:
        try:
            source_meta = json.loads(str(arrays["metadata_json"][()]))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path}: 'metadata_json' is not valid JSON ({exc})") from None
        if not isinstance(source_meta, dict):
            raise ValueError(f"{path}: 'metadata_json' must hold a JSON object")
    raw_declared = _declared_values(source_meta)
    declared: str | None = None
    if raw_declared is not None:
        declared = _VALUE_SYNONYMS.get(raw_declared.strip().lower())
        if declared is None:
            raise ValueError(
                f"{path}: metadata_json declares diffraction values {raw_declared!r}; "
                "expected 'intensity' or 'amplitude'"
            )
    elif dkey == "diffraction":
        declared = "amplitude"
    if values is not None and values not in ("intensity", "amplitude"):
        raise ValueError(f"values must be 'intensity' or 'amplitude', got {values!r}")
    if values is not None and declared is not None and values != declared:
        raise ValueError(
            f"{path}: {dkey!r} is declared as {declared} but values={values!r} was given"
        )
    kind = values or declared
    if kind is None:
        raise ValueError(
            f"{path}: {dkey!r} does not say whether it holds intensities or amplitudes "
            "(Ptychodus's PtychoPINN export writes intensities); pass values='intensity' or "
            "values='amplitude'"
        )

    diff = arrays[dkey]
    if diff.ndim != 3 or diff.shape[1] != diff.shape[2] or diff.dtype.kind not in "uif":
        raise ValueError(
            f"{path}: {dkey!r} is {diff.dtype} {diff.shape}; expected real (M, N, N) patterns"
        )
    m, n = diff.shape[0], diff.shape[1]
    out: dict[str, np.ndarray] = {}
    data = diff.astype(np.float32)
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{path}: {dkey!r} has NaN/Inf values; expected finite {kind} values")
    if data.size and float(data.min()) < 0:
        raise ValueError(
            f"{path}: {dkey!r} has negative values (min {float(data.min()):.3g}); "
            f"expected non-negative {kind} values"
        )
    out["diffraction"] = np.sqrt(data) if kind == "intensity" else data

    probe = arrays["probeGuess"]
    if not np.iscomplexobj(probe) or probe.ndim not in (2, 3):
        raise ValueError(
            f"{path}: 'probeGuess' is {probe.dtype} {probe.shape}; expected complex (N, N) or "
            "(modes, N, N)"
        )
    if probe.ndim == 3:
        if probe.shape[0] > 1:
            logger.warning("%s: probeGuess has %d modes; using mode 0", path, probe.shape[0])
        probe = probe[0]
    if probe.shape != (n, n):
        raise ValueError(
            f"{path}: 'probeGuess' is {probe.shape[0]}x{probe.shape[1]}; expected {n}x{n} like "
            f"{dkey!r}"
        )
    out["probeGuess"] = probe.astype(np.complex64)

    d_row, d_col = probe_centre_offset((n, n)) if shift_to_patch_centre else (0.0, 0.0)
    for key, shift in (
        ("xcoords", d_col),
        ("ycoords", d_row),
        ("xcoords_start", d_col),
        ("ycoords_start", d_row),
    ):
        source = arrays.get(key, arrays[key.removesuffix("_start")])
        coords = np.asarray(source, dtype=np.float64).reshape(-1)
        if coords.size != m or not np.all(np.isfinite(coords)):
            raise ValueError(
                f"{path}: {key!r} has {coords.size} entries (or NaN/Inf); expected {m} finite "
                f"positions like {dkey!r}"
            )
        out[key] = coords + shift

    if "objectGuess" in arrays:
        obj = arrays["objectGuess"]
        if obj.ndim == 3 and obj.shape[0] == 1:
            obj = obj[0]
        if not np.iscomplexobj(obj) or obj.ndim != 2:
            raise ValueError(
                f"{path}: 'objectGuess' is {obj.dtype} {obj.shape}; expected complex (H, W)"
            )
        out["objectGuess"] = obj.astype(np.complex64)
    scan_index = arrays.get("scan_index", np.zeros(m, dtype=np.int64))
    if np.asarray(scan_index).shape != (m,):
        raise ValueError(f"{path}: 'scan_index' has shape {np.shape(scan_index)}; expected ({m},)")
    out["scan_index"] = np.asarray(scan_index, dtype=np.int64)
    if "bad_pixels" in arrays:
        bad = np.asarray(arrays["bad_pixels"], dtype=bool)
        if bad.shape != (n, n):
            raise ValueError(f"{path}: 'bad_pixels' has shape {bad.shape}; expected ({n}, {n})")
        out["bad_pixels"] = bad

    meta = {
        "source": str(path),
        "source_format": "ptychodus PtychoPINN training NPZ",
        "source_diffraction_key": dkey,
        "source_diffraction_values": kind,
        "diffraction_values": "amplitude",
        "position_convention": "patch centre (probe index N//2), object pixels",
        "position_shift_px": [d_row, d_col],
    }
    if source_meta:
        meta["source_metadata"] = source_meta
    out["metadata_json"] = np.array(json.dumps(meta))
    return out
