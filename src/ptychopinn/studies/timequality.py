"""Equal-time comparison and the regime map of a study whose iterative jobs kept snapshots.

With ``iterative: {snapshot_every: K}`` every compare job writes ``trajectory.csv`` (each
iterative model's SSIM/PSNR after every K epochs against cumulative reconstruction time). From
those and the networks' inference times (``info.json`` of the infer jobs) this module writes,
into the study folder:

``equal_time.csv``
    One row per dose, view, split, network and iterative model: the network's phase/amplitude
    SSIM and inference seconds; the iterative model's SSIM at convergence (its last epoch, as
    in ``metrics.csv``) and at the network's inference time (linear interpolation between
    snapshots); ``equal_time_first_epoch`` (True when the network finished before the first
    iterative snapshot: the value used is that snapshot's, an upper bound on the iterative
    quality); the iterative seconds to reach the network's phase SSIM (empty: never) and that
    time over the inference time.
``regime_map.csv``
    One row per dose, view and split: the best network (highest phase SSIM), the first
    iterative model, the margins ``best network − iterative`` in phase SSIM at convergence and
    at equal time (the best over networks of network − iterative at that network's time) and
    the winner of each.
``plots/regime_map_<split>.png``
    Heat maps (dose × view) of the two margins, each cell labelled with the winner.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.studies.jobs import TRAJECTORY_CSV, Job, job_dir, read_done
from ptychopinn.studies.spec import StudySpec, dose_label

logger = logging.getLogger(__name__)

__all__ = ["EQUAL_TIME_CSV", "REGIME_CSV", "equal_time_table", "regime_plot",
           "regime_table", "write_time_quality"]

EQUAL_TIME_CSV = "equal_time.csv"
REGIME_CSV = "regime_map.csv"


def regime_plot(split: str) -> str:
    """File name (under ``plots/``) of the regime heat map of ``split``."""
    return f"regime_map_{split}.png"


def _at_time(t: np.ndarray, v: np.ndarray, when: float) -> tuple[float, bool]:
    """Trajectory value at ``when`` s (linear between snapshots; the first snapshot's value
    before it, flagged True; the last one's after it)."""
    if when < t[0]:
        return float(v[0]), True
    return float(np.interp(when, t, v)), False


def _reach(t: np.ndarray, v: np.ndarray, target: float) -> float | None:
    from ptychopinn.evaluation.snapshots import time_to_reach

    return time_to_reach(t, v, target)


def equal_time_table(spec: StudySpec, jobs: list[Job], out: str | Path):
    """The rows of ``equal_time.csv`` as a DataFrame (empty without trajectories)."""
    import pandas as pd

    out = Path(out)
    nets = [m for m in spec.models if m.is_network]
    iters = [m for m in spec.models if not m.is_network]
    rows: list[dict[str, Any]] = []
    for job in jobs:
        traj_path = job_dir(out, job.id) / TRAJECTORY_CSV
        if job.kind != "compare" or read_done(out, job.id) is None or not traj_path.is_file():
            continue
        traj = pd.read_csv(traj_path)
        final = json.loads((job_dir(out, job.id) / "metrics.json").read_text())["metrics"]
        recons = job.params["recons"]
        for net in nets:
            if net.name not in recons or net.name not in final:
                continue
            info = json.loads((job_dir(out, recons[net.name]) / "info.json").read_text())
            t_net = float(info["seconds"])
            for it in iters:
                tr = traj[traj["model"] == it.name]
                if tr.empty or it.name not in final:
                    continue
                row: dict[str, Any] = {"dose": float(job.dose), "view": job.view,
                                       "split": job.split, "network": net.name,
                                       "iterative": it.name, "network_infer_s": t_net}
                first = False
                for part in ("phase", "amplitude"):
                    s = tr[(tr["part"] == part) & (tr["metric"] == "ssim")].sort_values("epoch")
                    t, v = s["seconds"].to_numpy(float), s["value"].to_numpy(float)
                    q_net = float(final[net.name][part]["ssim"])
                    v_eq, first = _at_time(t, v, t_net)
                    row[f"network_{part}_ssim"] = q_net
                    row[f"iterative_{part}_ssim"] = float(final[it.name][part]["ssim"])
                    row[f"iterative_{part}_ssim_at_equal_time"] = v_eq
                    if part == "phase":
                        row["iterative_epochs"] = int(s["epoch"].max())
                        row["iterative_s"] = float(t[-1])
                        reach = _reach(t, v, q_net)
                        row["iterative_s_to_network_phase_ssim"] = reach
                        row["iterative_over_network_time"] = (
                            None if reach is None else reach / t_net)
                row["equal_time_first_epoch"] = first
                rows.append(row)
    return pd.DataFrame(rows)


def regime_table(eq):
    """Per dose, view and split: the margins of the best network over the first iterative
    model in phase SSIM, at convergence and at equal time (rows of ``regime_map.csv``)."""
    import pandas as pd

    rows = []
    if eq.empty:
        return pd.DataFrame(rows)
    first_iter = eq["iterative"].iloc[0]
    eq = eq[eq["iterative"] == first_iter]
    for (dose, view, split), g in eq.groupby(["dose", "view", "split"], sort=False):
        best = g.loc[g["network_phase_ssim"].idxmax()]
        conv = float(best["network_phase_ssim"] - best["iterative_phase_ssim"])
        margins = g["network_phase_ssim"] - g["iterative_phase_ssim_at_equal_time"]
        eq_best = g.loc[margins.idxmax()]
        m_eq = float(margins.max())
        rows.append({"dose": dose, "view": view, "split": split,
                     "best_network": best["network"],
                     "best_network_phase_ssim": float(best["network_phase_ssim"]),
                     "iterative": first_iter,
                     "iterative_phase_ssim": float(best["iterative_phase_ssim"]),
                     "margin_convergence": conv,
                     "winner_convergence": best["network"] if conv > 0 else first_iter,
                     "equal_time_network": eq_best["network"],
                     "equal_time_s": float(eq_best["network_infer_s"]),
                     "iterative_phase_ssim_at_equal_time":
                         float(eq_best["iterative_phase_ssim_at_equal_time"]),
                     "margin_equal_time": m_eq,
                     "winner_equal_time": eq_best["network"] if m_eq > 0 else first_iter,
                     "equal_time_first_epoch": bool(eq_best["equal_time_first_epoch"])})
    return pd.DataFrame(rows)


def _plot(spec: StudySpec, reg, split: str, path: Path) -> bool:
    """Two heat maps (margin at convergence, at equal time); False when nothing to plot."""
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure  # no pyplot: no backend is chosen or changed

    from ptychopinn.files import atomic_path

    sub = reg[reg["split"] == split]
    if sub.empty:
        return False
    views = [v.name for v in spec.views]  # every cell of the study; unfinished ones blank
    doses = list(spec.doses)[::-1]  # high dose on top
    fig = Figure(figsize=(1.45 * len(views) * 2 + 1.5, 0.75 * len(doses) + 1.6),
                 layout="constrained")
    axes = fig.subplots(1, 2, squeeze=True)
    lim = max(0.05, float(np.nanmax(np.abs(sub[["margin_convergence",
                                               "margin_equal_time"]].to_numpy(float)))))
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim)
    for ax, key, title in ((axes[0], "convergence", f"at convergence ({sub['iterative'].iloc[0]} "
                                                    f"{spec.iterative.epochs} epochs)"),
                           (axes[1], "equal_time", "at the network's inference time")):
        grid = np.full((len(doses), len(views)), np.nan)
        for r in sub.itertuples():
            i, j = doses.index(r.dose), views.index(r.view)
            grid[i, j] = getattr(r, f"margin_{key}")
            win = str(getattr(r, f"winner_{key}")).replace("-", "-\n", 1)
            star = "*" if key == "equal_time" and r.equal_time_first_epoch else ""
            ax.text(j, i, f"{win}\n{grid[i, j]:+.3f}{star}", ha="center", va="center",
                    fontsize=6.5, color="white" if abs(grid[i, j]) > 0.6 * lim else "black")
        for i, j in zip(*np.nonzero(np.isnan(grid)), strict=True):
            ax.text(j, i, "not run", ha="center", va="center", fontsize=6.5, color="grey")
        im = ax.imshow(grid, cmap="RdBu", norm=norm, aspect="auto")
        ax.set_xticks(range(len(views)), views)
        ax.set_yticks(range(len(doses)), [dose_label(d) for d in doses])
        ax.set_xlabel("view (overlap)")
        ax.set_ylabel("photons / pattern")
        ax.set_title(f"best network − iterative, phase SSIM\n{title}", fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.8, label="phase SSIM margin (blue: network wins)")
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    return True


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "never"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def write_time_quality(spec: StudySpec, jobs: list[Job], out: str | Path) -> list[tuple]:
    """Write ``equal_time.csv``, ``regime_map.csv`` and the heat maps; return report blocks.

    Returns
    -------
    list of tuple
        Report blocks (see :mod:`~ptychopinn.studies.report`): a section with the regime table
        and figure; empty when no compare job wrote a trajectory.
    """
    from ptychopinn.files import atomic_path

    out = Path(out)
    eq = equal_time_table(spec, jobs, out)
    if eq.empty:
        return []
    reg = regime_table(eq)
    for df, name in ((eq, EQUAL_TIME_CSV), (reg, REGIME_CSV)):
        with atomic_path(out / name) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")
    blocks: list[tuple] = [
        ("h", 2, "Regime map: best network against the iterative model"),
        ("p", "Margin = phase SSIM of the best network minus that of the iterative model, at "
              "convergence (its last epoch) and at equal wall time (its quality after as many "
              "seconds of reconstruction as the network's inference took, interpolated between "
              "per-snapshot scores). * = the network finished before the first iterative "
              "snapshot, whose quality is used (an upper bound for the iterative model). "
              "Training time is not included (paid once per instrument). Tables: "
              f"`{REGIME_CSV}`, `{EQUAL_TIME_CSV}`.")]
    for split in spec.evaluate:
        sub = reg[reg["split"] == split]
        if sub.empty:
            continue
        blocks.append(("table",
                       ["dose", "view", "best network", "phase SSIM", "iterative (final)",
                        "margin (convergence)", "network s", "iterative at equal time",
                        "margin (equal time)", "winner (equal time)"],
                       [[dose_label(r.dose), r.view, r.best_network,
                         _fmt(r.best_network_phase_ssim), _fmt(r.iterative_phase_ssim),
                         f"{r.margin_convergence:+.3f}", _fmt(r.equal_time_s),
                         _fmt(r.iterative_phase_ssim_at_equal_time)
                         + ("*" if r.equal_time_first_epoch else ""),
                         f"{r.margin_equal_time:+.3f}", r.winner_equal_time]
                        for r in sub.itertuples()]))
        esub = eq[eq["split"] == split]
        blocks.append(("table",
                       ["dose", "view", "network", "phase SSIM", "inference s", "iterative",
                        "iterative s to the same phase SSIM", "ratio"],
                       [[dose_label(r.dose), r.view, r.network, _fmt(r.network_phase_ssim),
                         _fmt(r.network_infer_s), r.iterative,
                         _fmt(r.iterative_s_to_network_phase_ssim),
                         _fmt(r.iterative_over_network_time)]
                        for r in esub.itertuples()]))
        name = regime_plot(split)
        if _plot(spec, reg, split, out / "plots" / name):
            blocks.append(("img", f"plots/{name}", f"regime map ({split})"))
    logger.info("regime map: %s (%d cells)", out / REGIME_CSV, len(reg))
    return blocks
