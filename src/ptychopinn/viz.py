"""Pictures people would rather look at than read (matplotlib, Agg backend, atomic writes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ptychopinn.data.container import PtychoData
from ptychopinn.files import atomic_path


def _figure(nrows: int, ncols: int, size: float = 3.2):
    from matplotlib.figure import Figure  # no pyplot: no backend is chosen or changed

    fig = Figure(figsize=(size * ncols, size * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path


def _show(ax, img: np.ndarray, title: str, cmap: str = "gray", **kw) -> None:
    im = ax.imshow(img, cmap=cmap, **kw)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.figure.colorbar(im, ax=ax, shrink=0.75)


def dataset_overview(data: PtychoData, path: str | Path, *, n_patterns: int = 3) -> Path:
    """Object (amplitude, phase + scan), probe (amplitude, phase), a few log-patterns."""
    path = Path(path)
    fig, ax = _figure(2, 4)
    if data.obj is not None:
        _show(ax[0, 0], np.abs(data.obj), "object amplitude")
        _show(ax[0, 1], np.angle(data.obj), "object phase (rad)", cmap="twilight")
        ax[0, 1].plot(data.positions[:, 1], data.positions[:, 0], ".", ms=1, color="w")
    else:
        ax[0, 0].plot(data.positions[:, 1], data.positions[:, 0], ".", ms=2)
        ax[0, 0].invert_yaxis()
        ax[0, 0].set_title("scan positions (px)", fontsize=9)
        ax[0, 1].axis("off")
    _show(ax[0, 2], np.abs(data.probe), "probe amplitude")
    _show(ax[0, 3], np.angle(data.probe), "probe phase (rad)", cmap="twilight")
    idx = np.linspace(0, data.n_patterns - 1, n_patterns).astype(int)
    pats = np.asarray(data.diffraction[idx])
    for j, (i, p) in enumerate(zip(idx, pats, strict=True)):
        _show(ax[1, j], np.log10(p.astype(np.float64) ** 2 + 1), f"pattern {i}: log10(counts+1)",
              cmap="magma")
    c = np.sum(pats.astype(np.float64) ** 2, axis=(1, 2))
    ax[1, 3].axis("off")
    ax[1, 3].text(0, 0.5, f"M = {data.n_patterns}\nN = {data.patch_size}\n"
                  f"counts/pattern ≈ {np.mean(c):.3g}", fontsize=11)
    return _save(fig, path)


def object_pngs(obj: np.ndarray, coverage: np.ndarray | None, out_dir: str | Path,
                *, stem: str = "") -> list[Path]:
    """Write ``amplitude.png`` and ``phase.png`` of a complex object (unscanned pixels masked)."""
    out_dir = Path(out_dir)
    mask = None if coverage is None else coverage <= 0
    paths = []
    for name, img, cmap in (("amplitude", np.abs(obj), "gray"),
                            ("phase", np.angle(obj), "twilight")):
        fig, ax = _figure(1, 1, 5)
        shown = np.ma.masked_array(img, mask) if mask is not None else img
        vals = img[~mask] if mask is not None and (~mask).any() else img
        _show(ax[0, 0], shown, f"{name}{' (rad)' if name == 'phase' else ''}", cmap=cmap,
              vmin=float(np.percentile(vals, 0.5)), vmax=float(np.percentile(vals, 99.5)))
        paths.append(_save(fig, out_dir / f"{stem}{name}.png"))
    return paths
