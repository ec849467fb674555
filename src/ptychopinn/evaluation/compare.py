"""The ``compare`` writer: metrics tables, FRC curves and a side-by-side figure (SPEC §6a, §7).

:func:`compare_reconstructions` aligns every reconstruction to one reference, scores it with
:func:`~ptychopinn.evaluation.metrics.evaluate_aligned` and writes, into ``out_dir``:

``metrics.csv``
    Tidy table, header exactly ``model,metric,part,value``; one row per (model, metric, part),
    part in ``amplitude | phase``. Non-finite values are written ``inf`` / ``nan``.
``metrics.json``
    ``{"format": ..., "metrics": {model: {part: {metric: value}}}, "registration": {model:
    {"shift_rc": [dr, dc], "region": {"rows": [r0, r1], "cols": [c0, c1]}}}, "units": ...,
    "settings": ...}``; non-finite values are ``null`` (strict JSON).
``frc.csv``
    FRC curves, header ``model,part,freq,frc`` (freq in cycles/pixel, empty ``frc`` for a
    ring without power).
``comparison.png``
    Rows: reference, then one per model; columns: amplitude, phase, amplitude error, phase
    error; last row: amplitude and phase FRC curves of all models with the 0.5 and 1/7
    thresholds.

Every file is written atomically (temporary file in ``out_dir``, then :func:`os.replace`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ptychopinn.evaluation.frc import FRC_HALF, FRC_ONE_SEVENTH, frc
from ptychopinn.evaluation.metrics import METRIC_NAMES, PARTS, evaluate_aligned, part_images
from ptychopinn.evaluation.registration import (
    AlignedPair,
    Region,
    _intersect_regions,
    align_to_reference,
    scanned_region,
)
from ptychopinn.models.registry import REGISTRY

logger = logging.getLogger(__name__)

__all__ = [
    "CANONICAL_MODEL_NAMES",
    "METRICS_CSV_HEADER",
    "FRC_CSV_HEADER",
    "canonical_model_name",
    "compare_reconstructions",
]

#: Model names used in tables (SPEC §7): each kind's display name (the registry's), and
#: ``PtyChi-<ALGORITHM>`` for iterative algorithms.
CANONICAL_MODEL_NAMES: tuple[str, ...] = (*(s.display for s in REGISTRY.values()),
                                          "PtyChi-LSQML")
#: Header of ``metrics.csv``.
METRICS_CSV_HEADER: tuple[str, ...] = ("model", "metric", "part", "value")
#: Header of ``frc.csv``.
FRC_CSV_HEADER: tuple[str, ...] = ("model", "part", "freq", "frc")

_FORMAT = "ptychopinn.compare/1"
_ALIASES = {alias: spec.display for kind, spec in REGISTRY.items()
            for alias in (kind, *spec.aliases)}
_PTYCHI_ALGORITHMS = {"lsqml": "LSQML", "epie": "ePIE", "rpie": "rPIE", "dm": "DM", "pie": "PIE"}


def canonical_model_name(name: str) -> str:
    """Map common spellings to the canonical table names.

    Parameters
    ----------
    name : str
        A model kind or one of its aliases (``"pinn"``, ``"unrolled"``, ``"supervised"``), or
        an iterative algorithm (``"lsqml"``, ``"ptychi-epie"``).

    Returns
    -------
    str
        The kind's display name (:class:`~ptychopinn.models.registry.KindSpec`),
        ``"PtyChi-<ALGORITHM>"`` (LSQML, ePIE, rPIE, DM, PIE), or ``name`` unchanged when it
        is not recognised.

    Examples
    --------
    >>> canonical_model_name("lsqml"), canonical_model_name("pinn"), canonical_model_name("X")
    ('PtyChi-LSQML', 'PtychoPINN', 'X')
    """
    key = name.strip().lower().replace("_", "-")
    if key in _ALIASES:
        return _ALIASES[key]
    algo = key.removeprefix("ptychi-").removeprefix("ptychi")
    if algo in _PTYCHI_ALGORITHMS:
        return f"PtyChi-{_PTYCHI_ALGORITHMS[algo]}"
    return name


# --------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------
def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`ptychopinn.files.atomic_path`)."""
    from ptychopinn.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode("utf-8"))


def _csv_text(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _fmt(value: float) -> str:
    """Full-precision text for a CSV cell (``inf``, ``-inf``, ``nan`` spelled out)."""
    return repr(float(value))


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# main entry point
# --------------------------------------------------------------------------------------------
def _common_region(
    shape: tuple[int, int],
    recons: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    threshold: float,
) -> Region:
    region: Region = (slice(0, shape[0]), slice(0, shape[1]))
    for name, (_, coverage) in recons.items():
        if coverage is None:
            continue
        cov = np.asarray(coverage)
        if cov.shape != shape:
            raise ValueError(f"{name}: coverage shape {cov.shape} != reference shape {shape}")
        try:
            region = _intersect_regions(region, scanned_region(cov, threshold=threshold))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return region


def compare_reconstructions(
    reference: np.ndarray,
    recons: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    out_dir: str | os.PathLike[str],
    *,
    phase: Literal["mean", "plane"] = "mean",
    upsample_factor: int = 50,
    crop_margin: int = 2,
    threshold: float = 0.5,
    common_region: bool = True,
    ring_width: float = 1.0,
    figure: bool = True,
) -> list[dict[str, Any]]:
    """Score reconstructions against a reference and write the ``compare`` outputs.

    Parameters
    ----------
    reference : ndarray of shape (H, W), complex
        Ground truth (``objectGuess``) or reference reconstruction.
    recons : mapping of str to (ndarray of shape (H, W) complex, ndarray of shape (H, W) or None)
        ``{model_name: (object, coverage)}``; objects on the same pixel frame as ``reference``
        (SPEC §6a), coverage = summed stitching weight or None (whole frame). Use the
        canonical names ``PtychoPINN``, ``Baseline``, ``PtyChi-LSQML``
        (:func:`canonical_model_name`). Order is kept in the outputs.
    out_dir : path
        Output directory (created if missing). Existing output files are replaced.
    phase : {"mean", "plane"}, optional
        Phase ambiguity removed before scoring (global offset or phase plane).
    upsample_factor : int, optional
        Registration precision ``1 / upsample_factor`` px.
    crop_margin : int, optional
        Pixels cropped beyond ``ceil(|shift|)`` on each side after the Fourier shift.
    threshold : float, optional
        Relative coverage defining each scanned region (:func:`scanned_region`).
    common_region : bool, optional
        If True (default), every model is scored inside the *intersection* of the scanned
        regions of all models that have a coverage map (each then minus its own shift
        border); if False, each model uses its own scanned region.
    ring_width : float, optional
        FRC ring width.
    figure : bool, optional
        Write ``comparison.png`` (needs matplotlib).

    Returns
    -------
    list of dict
        The rows of ``metrics.csv``: ``{"model": str, "metric": str, "part": str, "value":
        float}``, ordered by model, metric (:data:`~ptychopinn.evaluation.metrics.METRIC_NAMES`),
        part (amplitude, phase).

    Raises
    ------
    ValueError
        If ``recons`` is empty, a name is empty or duplicated after stripping, or an array
        does not match the reference frame (the message names the model).
    """
    ref = np.asarray(reference)
    if ref.ndim != 2:
        raise ValueError(f"reference must be a 2-D complex object, got shape {ref.shape}")
    if not recons:
        raise ValueError("no reconstructions to compare")
    names = [str(n) for n in recons]
    if any(not n.strip() for n in names):
        raise ValueError("model names must be non-empty")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    shared: Region | None = _common_region(ref.shape, recons, threshold) if common_region else None
    pairs: dict[str, AlignedPair] = {}
    scores: dict[str, dict[str, dict[str, float]]] = {}
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for name, (obj, coverage) in recons.items():
        arr = np.asarray(obj)
        if arr.shape != ref.shape:
            raise ValueError(
                f"{name}: object shape {arr.shape} != reference shape {ref.shape} "
                "(reconstructions must be on the reference pixel frame)"
            )
        try:
            pair = align_to_reference(
                ref,
                arr,
                coverage=None if shared is not None else coverage,
                region=shared,
                threshold=threshold,
                upsample_factor=upsample_factor,
                phase=phase,
                crop_margin=crop_margin,
            )
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        pairs[name] = pair
        scores[name] = evaluate_aligned(pair, ring_width=ring_width)
        curves[name] = {
            part: frc(a, b, ring_width=ring_width, window="hann")
            for part, (a, b) in part_images(pair).items()
        }
        logger.info(
            "%s: shift %s px, amplitude SSIM %.4f, phase SSIM %.4f",
            name,
            np.round(pair.shift_rc, 3).tolist(),
            scores[name]["amplitude"]["ssim"],
            scores[name]["phase"]["ssim"],
        )

    rows: list[dict[str, Any]] = [
        {"model": name, "metric": metric, "part": part, "value": float(scores[name][part][metric])}
        for name in scores
        for metric in METRIC_NAMES
        for part in PARTS
    ]
    _atomic_write_text(
        out / "metrics.csv",
        _csv_text(
            METRICS_CSV_HEADER,
            [(r["model"], r["metric"], r["part"], _fmt(r["value"])) for r in rows],
        ),
    )
    frc_rows = [
        (name, part, _fmt(f), "" if not np.isfinite(c) else _fmt(c))
        for name, per_part in curves.items()
        for part, (freqs, curve) in per_part.items()
        for f, c in zip(freqs, curve, strict=True)
    ]
    _atomic_write_text(out / "frc.csv", _csv_text(FRC_CSV_HEADER, frc_rows))

    payload = {
        "format": _FORMAT,
        "metrics": {
            name: {
                part: {m: _json_number(v) for m, v in per_part.items()}
                for part, per_part in per_model.items()
            }
            for name, per_model in scores.items()
        },
        "registration": {
            name: {
                "shift_rc": [float(s) for s in pair.shift_rc],
                "region": {
                    "rows": [pair.region[0].start, pair.region[0].stop],
                    "cols": [pair.region[1].start, pair.region[1].stop],
                },
            }
            for name, pair in pairs.items()
        },
        "units": {
            "mae": "image units",
            "mse": "image units squared",
            "psnr": "dB (peak = reference data range)",
            "psnr255": "dB (peak = 255, raw values; published PtychoPINN convention)",
            "ssim": "1",
            "ms_ssim": "1",
            "frc50": "cycles/pixel (0.5 = Nyquist, never crossed)",
            "frc17": "cycles/pixel (0.5 = Nyquist, never crossed)",
            "phase": "radians",
        },
        "settings": {
            "phase": phase,
            "upsample_factor": upsample_factor,
            "crop_margin": crop_margin,
            "threshold": threshold,
            "common_region": common_region,
            "ring_width": ring_width,
            "frc_thresholds": {"frc50": FRC_HALF, "frc17": FRC_ONE_SEVENTH},
        },
    }
    _atomic_write_text(out / "metrics.json", json.dumps(payload, indent=2, allow_nan=False) + "\n")
    if figure:
        png = _comparison_figure(ref, shared, pairs, curves, scores)
        _atomic_write_bytes(out / "comparison.png", png)
    logger.info("compare: wrote %d metric rows for %d model(s) to %s", len(rows), len(pairs), out)
    return rows


# --------------------------------------------------------------------------------------------
# figure
# --------------------------------------------------------------------------------------------
def _robust_limits(img: np.ndarray, lo: float = 0.5, hi: float = 99.5) -> tuple[float, float]:
    vmin, vmax = (float(v) for v in np.percentile(img, [lo, hi]))
    if vmax <= vmin:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    return vmin, vmax


def _comparison_figure(
    reference: np.ndarray,
    shared: Region | None,
    pairs: Mapping[str, AlignedPair],
    curves: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    scores: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> bytes:
    """Render ``comparison.png`` and return the PNG bytes (no pyplot, no global state)."""
    from matplotlib.figure import Figure

    ref_crop = reference if shared is None else reference[shared]
    ref_amp = np.abs(ref_crop)
    ref_phase = np.angle(ref_crop)
    amp_lim = _robust_limits(ref_amp)
    ph_lim = _robust_limits(ref_phase)
    amp_errs = [np.abs(p.test) - np.abs(p.reference) for p in pairs.values()]
    ph_errs = [np.angle(p.test * np.conj(p.reference)) for p in pairs.values()]
    amp_err_max = max(float(np.percentile(np.abs(e), 99.5)) for e in amp_errs) or 1.0
    ph_err_max = max(float(np.percentile(np.abs(e), 99.5)) for e in ph_errs) or 1.0

    n_models = len(pairs)
    n_rows = n_models + 2
    fig = Figure(figsize=(12.0, 2.8 * n_rows), layout="constrained")
    grid = fig.add_gridspec(n_rows, 4)
    titles = ("amplitude", "phase (rad)", "amplitude error", "phase error (rad)")

    def show(ax: Any, img: np.ndarray, lim: tuple[float, float], cmap: str) -> None:
        im = ax.imshow(img, cmap=cmap, vmin=lim[0], vmax=lim[1], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)

    for col, title in enumerate(titles[:2]):
        ax = fig.add_subplot(grid[0, col])
        img, lim = (ref_amp, amp_lim) if col == 0 else (ref_phase, ph_lim)
        show(ax, img, lim, "gray" if col == 0 else "twilight")
        ax.set_title(f"reference: {title}")
    for col in (2, 3):
        ax = fig.add_subplot(grid[0, col])
        ax.axis("off")
    for row, (name, pair) in enumerate(pairs.items(), start=1):
        parts = part_images(pair)
        panels = (
            (parts["amplitude"][1], amp_lim, "gray"),
            (parts["phase"][1], ph_lim, "twilight"),
            (amp_errs[row - 1], (-amp_err_max, amp_err_max), "RdBu_r"),
            (ph_errs[row - 1], (-ph_err_max, ph_err_max), "RdBu_r"),
        )
        for col, (img, lim, cmap) in enumerate(panels):
            ax = fig.add_subplot(grid[row, col])
            show(ax, img, lim, cmap)
            title = f"{name}: {titles[col]}"
            if col >= 2:
                part = PARTS[col - 2]
                title += (
                    f"\nSSIM {scores[name][part]['ssim']:.3f}, MAE {scores[name][part]['mae']:.3g}"
                )
            ax.set_title(title, fontsize=9)
    for k, part in enumerate(PARTS):
        ax = fig.add_subplot(grid[n_rows - 1, 2 * k : 2 * k + 2])
        for name, per_part in curves.items():
            freqs, curve = per_part[part]
            ax.plot(freqs[1:], curve[1:], label=name)
        ax.axhline(FRC_HALF, color="0.4", linestyle="--", linewidth=0.8, label="0.5")
        ax.axhline(FRC_ONE_SEVENTH, color="0.4", linestyle=":", linewidth=0.8, label="1/7")
        ax.set_xlim(0.0, 0.5)
        ax.set_ylim(-0.1, 1.05)
        ax.set_xlabel("spatial frequency (cycles/pixel)")
        ax.set_ylabel("FRC")
        ax.set_title(f"FRC, {part}")
        ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()
