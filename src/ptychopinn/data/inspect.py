"""Dataset report: shapes, count statistics, scan geometry, probe statistics, checksum."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from ptychopinn.data.container import PtychoData
from ptychopinn.data.simulate import probe_diameter


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _stats(v: np.ndarray) -> dict[str, float]:
    return {"min": float(v.min()), "median": float(np.median(v)), "mean": float(v.mean()),
            "max": float(v.max())}


def inspect_dataset(data: PtychoData, *, path: str | Path | None = None,
                    batch: int = 2048) -> dict[str, Any]:
    """Collect the report as a JSON-able dict (streams the patterns in batches)."""
    m, n = data.n_patterns, data.patch_size
    totals = np.empty(m)
    zeros = 0
    peak = 0.0
    for s in range(0, m, batch):
        a = np.asarray(data.diffraction[s : s + batch], dtype=np.float64)
        c = a * a
        totals[s : s + batch] = c.sum(axis=(1, 2))
        zeros += int(np.count_nonzero(c == 0))
        peak = max(peak, float(c.max()))
    pos = data.positions
    nn = cKDTree(pos).query(pos, k=2)[0][:, 1] if m > 1 else np.zeros(1)
    diam = probe_diameter(data.probe)
    spacing = float(np.median(nn))
    i = np.abs(data.probe.astype(np.complex128)) ** 2
    yy, xx = np.mgrid[0:n, 0:n]
    com = [float((i * yy).sum() / i.sum()), float((i * xx).sum() / i.sum())]
    report: dict[str, Any] = {
        "source": str(path or data.source),
        "n_patterns": m,
        "patch_size": n,
        "arrays": {
            "diffraction": {"shape": [m, n, n], "dtype": "float32",
                            "lazy": data.is_lazy},
            "positions": {"shape": list(pos.shape), "dtype": str(pos.dtype)},
            "probeGuess": {"shape": list(data.probe.shape), "dtype": str(data.probe.dtype)},
            "objectGuess": None if data.obj is None else {"shape": list(data.obj.shape),
                                                           "dtype": str(data.obj.dtype)},
            "ground_truth_patches": data.ground_truth_patches is not None,
        },
        "counts_per_pattern": {**_stats(totals), "zero_fraction": zeros / (m * n * n),
                               "max_pixel": peak},
        "scan": {
            "row_range": [float(pos[:, 0].min()), float(pos[:, 0].max())],
            "col_range": [float(pos[:, 1].min()), float(pos[:, 1].max())],
            "nearest_neighbour_px": _stats(nn),
            "n_scans": int(np.unique(data.scan_index).size) if data.scan_index is not None else 1,
        },
        "probe": {
            "power": float(i.sum()),
            "centre_of_mass_rc": com,
            "effective_diameter_px": float(diam),
        },
        "overlap_fraction": float(max(0.0, 1 - spacing / diam)),
        "metadata": data.metadata,
    }
    if path is not None and Path(path).is_file():
        report["sha256"] = sha256_file(path)
    return report


def report_markdown(report: dict[str, Any]) -> str:
    """Render :func:`inspect_dataset`'s dict as Markdown."""
    c = report["counts_per_pattern"]
    s = report["scan"]
    p = report["probe"]
    a = report["arrays"]
    lines = [
        f"# Dataset report: {report['source']}",
        "",
        "| array | shape | dtype |",
        "|---|---|---|",
    ]
    for k, v in a.items():
        if isinstance(v, dict):
            lines.append(f"| {k} | {tuple(v['shape'])} | {v['dtype']} |")
    lines += [
        f"| ground_truth_patches | {'yes' if a['ground_truth_patches'] else 'no'} | |",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| patterns M | {report['n_patterns']} |",
        f"| pattern size N | {report['patch_size']} |",
        f"| total counts / pattern (min / median / max) | {c['min']:.4g} / {c['median']:.4g} / "
        f"{c['max']:.4g} |",
        f"| zero-count pixel fraction | {c['zero_fraction']:.3f} |",
        f"| scan rows / cols (px) | {s['row_range'][0]:.1f}…{s['row_range'][1]:.1f} / "
        f"{s['col_range'][0]:.1f}…{s['col_range'][1]:.1f} |",
        f"| nearest-neighbour spacing (median, px) | {s['nearest_neighbour_px']['median']:.2f} |",
        f"| probe effective diameter (px) | {p['effective_diameter_px']:.2f} |",
        f"| estimated linear overlap | {report['overlap_fraction']:.2f} |",
        f"| probe power / centre of mass (r, c) | {p['power']:.4g} / "
        f"({p['centre_of_mass_rc'][0]:.1f}, {p['centre_of_mass_rc'][1]:.1f}) |",
    ]
    if "sha256" in report:
        lines.append(f"| SHA-256 | `{report['sha256']}` |")
    return "\n".join(lines) + "\n"
