"""Study outputs: tidy tables, model deltas, plots, ``report.md`` and a self-contained
``report.html`` (images embedded as base64 PNG). Every file is written atomically.

Files (in the study folder):

``metrics.csv`` / ``metrics.parquet``
    Tidy table, columns ``dose, view, model, split, metric, part, value`` (dose in photons per
    pattern; part = amplitude | phase; metrics as in ``ptychopinn compare``).
``deltas.csv``
    Reference model (the first PINN, e.g. PtychoPINN) minus every other model, per dose, view,
    split, metric and part: columns ``dose, view, split, metric, part, comparison, reference,
    other, reference_value, other_value, delta, higher_is_better``.
``overlap.csv``
    Achieved geometry per dose, view and part (all/train/test): ``n_positions, mean_nn_px,
    median_nn_px, min_nn_px, overlap_fraction, probe_diameter_px, min_spacing_px,
    target_overlap``.
``jobs.csv``
    One row per job: state, wall time, finish time.
``plots/<metric>_vs_dose_<split>.png``, ``plots/phase_grid_<view>_<split>.png``
    Metric vs dose (log x) per model and view; phase images per dose × model.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.studies.artifacts import (
    METRICS_COLUMNS,
    metric_plot,
    phase_grid_plot,
)
from ptychopinn.studies.jobs import Job, job_dir, read_done
from ptychopinn.studies.spec import StudySpec, dose_label

logger = logging.getLogger(__name__)

__all__ = ["collect_metrics", "compute_deltas", "write_report"]

#: Metrics where a smaller value is better (everything else: larger is better).
LOWER_IS_BETTER: frozenset[str] = frozenset({"mae", "mse"})
#: Metrics shown in the report's headline tables.
HEADLINE: tuple[str, ...] = ("ssim", "psnr", "frc50")
_UNITS = {"psnr": "dB", "psnr255": "dB", "frc50": "cycles/px", "frc17": "cycles/px"}


def _metric_names() -> tuple[str, ...]:
    from ptychopinn.evaluation.metrics import METRIC_NAMES

    return METRIC_NAMES


# ---------------------------------------------------------------------------------- tables
def collect_metrics(spec: StudySpec, jobs: list[Job], out: str | Path):
    """Tidy metrics DataFrame from the finished compare jobs (columns as ``metrics.csv``)."""
    import pandas as pd

    frames = []
    for job in jobs:
        path = job_dir(out, job.id) / "metrics.csv"
        if job.kind != "compare" or read_done(out, job.id) is None or not path.is_file():
            continue
        df = pd.read_csv(path)
        df["dose"], df["view"], df["split"] = float(job.dose), job.view, job.split
        frames.append(df)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c in ("dose", "value") else "str")
                             for c in METRICS_COLUMNS})
    df = pd.concat(frames, ignore_index=True)[list(METRICS_COLUMNS)]
    order = {
        "view": {v.name: i for i, v in enumerate(spec.views)},
        "model": {m.name: i for i, m in enumerate(spec.models)},
        "metric": {m: i for i, m in enumerate(_metric_names())},
        "split": {"train": 0, "test": 1},
    }
    keys = df.assign(**{f"_{k}": df[k].map(v) for k, v in order.items()})
    keys = keys.sort_values(["_split", "dose", "_view", "_model", "_metric", "part"],
                            kind="stable")
    return df.loc[keys.index].reset_index(drop=True)


def compute_deltas(metrics, reference: str):
    """Reference model minus every other model, per dose/view/split/metric/part.

    Parameters
    ----------
    metrics : DataFrame
        Tidy table (:func:`collect_metrics`).
    reference : str
        Model name the others are subtracted from (e.g. ``PtychoPINN``).
    """
    import pandas as pd

    cols = ["dose", "view", "split", "metric", "part", "comparison", "reference", "other",
            "reference_value", "other_value", "delta", "higher_is_better"]
    keys = ["dose", "view", "split", "metric", "part"]
    ref = metrics[metrics["model"] == reference]
    rows = []
    for other in [m for m in dict.fromkeys(metrics["model"]) if m != reference]:
        both = ref.merge(metrics[metrics["model"] == other], on=keys, suffixes=("_r", "_o"))
        for _, r in both.iterrows():
            rows.append({**{k: r[k] for k in keys}, "comparison": f"{reference} - {other}",
                         "reference": reference, "other": other,
                         "reference_value": r["value_r"], "other_value": r["value_o"],
                         "delta": r["value_r"] - r["value_o"],
                         "higher_is_better": r["metric"] not in LOWER_IS_BETTER})
    return pd.DataFrame(rows, columns=cols)


def _overlap_table(jobs: list[Job], out: Path):
    import pandas as pd

    rows = []
    for job in jobs:
        path = job_dir(out, job.id) / "overlap.json"
        if job.kind != "view" or read_done(out, job.id) is None or not path.is_file():
            continue
        rep = json.loads(path.read_text())
        for part in ("all", "train", "test"):
            rows.append({"dose": float(job.dose), "view": job.view, "part": part,
                         **rep[part], "min_spacing_px": rep["min_spacing_px"],
                         "target_overlap": rep["target_overlap"]})
    return pd.DataFrame(rows, columns=["dose", "view", "part", "n_positions", "mean_nn_px",
                                       "median_nn_px", "min_nn_px", "overlap_fraction",
                                       "probe_diameter_px", "min_spacing_px", "target_overlap"])


def _jobs_table(jobs: list[Job], out: Path, states: Mapping[str, str]):
    import pandas as pd

    rows = []
    for job in jobs:
        rec = read_done(out, job.id) or {}
        rows.append({"job": job.id, "kind": job.kind, "state": states.get(job.id, "unknown"),
                     "dose": job.dose, "view": job.view, "model": job.model, "split": job.split,
                     "wall_time_s": rec.get("wall_time_s"), "finished": rec.get("finished")})
    return pd.DataFrame(rows)


def _write_df(df, path: Path) -> None:
    from ptychopinn.files import atomic_path

    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False, float_format="%.10g")


# ----------------------------------------------------------------------------------- plots
def _figure(nrows: int, ncols: int, w: float, h: float):
    from matplotlib.figure import Figure  # no pyplot: no backend is chosen or changed

    fig = Figure(figsize=(w * ncols, h * nrows), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _save_png(fig, path: Path) -> None:
    from ptychopinn.files import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")


def _plot_metric(df, spec: StudySpec, metric: str, split: str, path: Path) -> None:
    """Metric vs dose (log x): one panel per part; colour = model, line style = view."""
    from matplotlib.ticker import NullLocator

    fig, ax = _figure(1, 2, 4.2, 3.2)
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v"]
    sub = df[(df["metric"] == metric) & (df["split"] == split)]
    for j, part in enumerate(("amplitude", "phase")):
        a = ax[0, j]
        for mi, m in enumerate(spec.models):
            for vi, v in enumerate(spec.views):
                s = sub[(sub["part"] == part) & (sub["model"] == m.name)
                        & (sub["view"] == v.name)].sort_values("dose")
                if s.empty:
                    continue
                a.plot(s["dose"], s["value"], styles[vi % 4], marker=markers[mi % 5],
                       color=f"C{mi}", label=f"{m.name} / {v.name}")
        a.set_xscale("log")
        # ticks at the study's doses, plain labels: reads better than decades and skips
        # matplotlib's mathtext tick labels (most of a plot's drawing time)
        doses = sorted(spec.doses)
        a.set_xticks(doses, labels=[dose_label(d) for d in doses])
        a.xaxis.set_minor_locator(NullLocator())
        a.set_xlabel("dose (photons / pattern)")
        unit = _UNITS.get(metric)
        a.set_ylabel(f"{metric}{f' ({unit})' if unit else ''}")
        a.set_title(f"{part} — {split}", fontsize=10)
        a.grid(True, alpha=0.3)
    handles, labels = ax[0, 1].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right center", fontsize=8)
    _save_png(fig, path)


def _phase_grid(spec: StudySpec, jobs: list[Job], out: Path, view: str, split: str,
                path: Path) -> bool:
    """Phase images, rows = doses, columns = ground truth + models (global phase removed)."""
    from ptychopinn.inference.predict import load_reconstruction
    from ptychopinn.io.dataset import load_dataset

    recon_jobs = {(j.dose, j.model): j for j in jobs
                  if j.kind in ("infer", "iterative") and j.view == view and j.split == split}
    view_jobs = {j.dose: j for j in jobs if j.kind == "view" and j.view == view}
    rows = []
    for dose in spec.doses:
        vj = view_jobs[dose]
        if read_done(out, vj.id) is None:
            continue
        data = load_dataset(job_dir(out, vj.id) / f"{split}.npz")
        if data.obj is None:
            continue
        half = data.patch_size / 2
        lo = np.maximum(np.floor(data.positions.min(0) - half).astype(int), 0)
        hi = np.minimum(np.ceil(data.positions.max(0) + half).astype(int), data.obj.shape)
        crop = (slice(lo[0], hi[0]), slice(lo[1], hi[1]))
        gt = data.obj[crop]
        cells = [("ground truth", np.angle(gt))]
        for m in spec.models:
            rj = recon_jobs.get((dose, m.name))
            if rj is None or read_done(out, rj.id) is None:
                cells.append((m.name, None))
                continue
            r = load_reconstruction(job_dir(out, rj.id) / "reconstruction.npz")
            obj, cov = r.object[crop], r.coverage[crop]
            covered = cov > 0
            offset = np.angle(np.sum(np.conj(gt[covered]) * obj[covered])) if covered.any() else 0
            ph = np.angle(obj * np.exp(-1j * offset))
            cells.append((m.name, np.ma.masked_array(ph, ~covered)))
        rows.append((dose, cells))
    if not rows:
        return False
    ncols = len(rows[0][1])
    fig, ax = _figure(len(rows), ncols, 2.1, 2.1)
    gt_all = np.concatenate([c[0][1].ravel() for _, c in rows])
    vmin, vmax = float(np.min(gt_all)), float(np.max(gt_all))
    for i, (dose, cells) in enumerate(rows):
        for j, (name, img) in enumerate(cells):
            a = ax[i, j]
            a.set_xticks([])
            a.set_yticks([])
            if img is not None:
                a.imshow(img, cmap="twilight", vmin=vmin, vmax=vmax)
            if i == 0:
                a.set_title(name, fontsize=9)
            if j == 0:
                a.set_ylabel(f"{dose_label(dose)} photons", fontsize=9)
    fig.suptitle(f"phase (rad, {vmin:.2f} … {vmax:.2f}), view {view}, {split} region",
                 fontsize=10)
    _save_png(fig, path)
    return True


# --------------------------------------------------------------------------------- report
def _fmt(x: Any) -> str:
    if isinstance(x, (float, np.floating)):
        if not np.isfinite(x):
            return str(x)
        return f"{x:.4g}" if abs(x) < 1e5 else f"{x:.3g}"
    return str(x)


def _scan_words(spec: StudySpec) -> str:
    """``random scan of 1000 positions`` / ``raster scan filling the object``."""
    from ptychopinn.data.simulate import DEFAULT_N_POSITIONS

    scene = spec.scene
    if scene.n_positions is None and scene.scan == "raster":
        return "raster scan filling the object"
    n = DEFAULT_N_POSITIONS if scene.n_positions is None else scene.n_positions
    return f"{scene.scan} scan of {n} positions"


def _blocks(spec: StudySpec, jobs: list[Job], out: Path, states: Mapping[str, str],
            metrics, deltas, overlap, jobs_df, plots: list[str]) -> list[tuple]:
    """Report content as blocks: ("h", level, text), ("p", text), ("table", header, rows),
    ("img", relative path, caption)."""
    n = {s: sum(v == s for v in states.values()) for s in ("done", "skipped", "failed")}
    compute_s = float(jobs_df["wall_time_s"].fillna(0).sum())
    cap = "" if spec.training.max_minutes is None else f" (≤ {spec.training.max_minutes} min)"
    b: list[tuple] = [
        ("h", 1, f"Study {spec.name}: dose × overlap"),
        ("p", f"Generated {_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')} from "
              f"`{spec.source}`. Doses (photons/pattern): "
              f"{', '.join(dose_label(d) for d in spec.doses)}. Views: "
              f"{', '.join(v.name for v in spec.views)}. Models: "
              f"{', '.join(f'{m.name} ({m.kind}, gridsize {m.gridsize})' if m.is_network else f'{m.name} ({m.algorithm})' for m in spec.models)}."),  # noqa: E501
        ("p", f"Scene: {spec.scene.object} object {spec.scene.object_size}² px, "
              f"{spec.scene.probe} probe, {_scan_words(spec)}, patterns "
              f"{spec.scene.patch_size}² px; split along "
              f"{spec.split.axis} at {spec.split.fraction}. Training: {spec.training.epochs} "
              f"epochs{cap} per network; iterative: "
              f"{spec.iterative.epochs} epochs."),
        ("p", f"Jobs: {len(jobs)} ({n['done']} run now, {n['skipped']} finished earlier, "
              f"{n['failed']} failed); summed job wall time {compute_s / 60:.1f} min. "
              "Per-job details: `jobs.csv`."),
    ]
    if n["failed"]:
        failed = [j for j, s in states.items() if s == "failed"]
        b.append(("p", f"**Failed jobs:** {', '.join(failed[:10])}"
                       f"{' …' if len(failed) > 10 else ''}."))
    if not overlap.empty:
        first = overlap[overlap["dose"] == overlap["dose"].iloc[0]]
        b += [("h", 2, "Achieved overlap per view"),
              ("p", "Linear overlap = 1 − median nearest-neighbour spacing / probe diameter "
                    "(same positions at every dose)."),
              ("table", ["view", "part", "positions", "mean NN spacing (px)",
                         "overlap fraction", "min spacing (px)"],
               [[r.view, r.part, r.n_positions, _fmt(r.mean_nn_px), _fmt(r.overlap_fraction),
                 _fmt(r.min_spacing_px)] for r in first.itertuples()])]
    for split in spec.evaluate:
        sub = metrics[(metrics["split"] == split) & metrics["metric"].isin(HEADLINE)]
        if sub.empty:
            continue
        wide = sub.pivot_table(index=["dose", "view", "model"], columns=["part", "metric"],
                               values="value", sort=False)
        cols = [(p, m) for p in ("phase", "amplitude") for m in HEADLINE if (p, m) in wide]
        b += [("h", 2, f"Headline metrics ({split} region)"),
              ("table", ["dose", "view", "model"] + [f"{p} {m}" for p, m in cols],
               [[dose_label(d), v, m] + [_fmt(wide.loc[(d, v, m), c]) for c in cols]
                for d, v, m in wide.index])]
        dsub = deltas[(deltas["split"] == split) & deltas["metric"].isin(HEADLINE)]
        if not dsub.empty:
            dw = dsub.pivot_table(index=["dose", "view", "comparison"],
                                  columns=["part", "metric"], values="delta", sort=False)
            dcols = [c for c in cols if c in dw]
            b += [("h", 3, f"Deltas ({split}): reference minus other (positive = reference "
                           "better for these metrics)"),
                  ("table", ["dose", "view", "comparison"] + [f"Δ {p} {m}" for p, m in dcols],
                   [[dose_label(d), v, c] + [_fmt(dw.loc[(d, v, c), k]) for k in dcols]
                    for d, v, c in dw.index])]
    if plots:
        b.append(("h", 2, "Figures"))
        for p in plots:
            b.append(("img", f"plots/{p}", p.removesuffix(".png").replace("_", " ")))
    b += [("h", 2, "Files"),
          ("p", "`metrics.csv` / `metrics.parquet` (tidy: dose, view, model, split, metric, "
                "part, value), `deltas.csv`, `overlap.csv`, `jobs.csv`, `verification.json`, "
                "`manifest.json`, and one folder per job under `jobs/`.")]
    return b


def _markdown(blocks: list[tuple]) -> str:
    lines: list[str] = []
    for blk in blocks:
        if blk[0] == "h":
            lines += ["#" * blk[1] + " " + blk[2], ""]
        elif blk[0] == "p":
            lines += [blk[1], ""]
        elif blk[0] == "table":
            header, rows = blk[1], blk[2]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
            lines.append("")
        elif blk[0] == "img":
            lines += [f"![{blk[2]}]({blk[1]})", ""]
    return "\n".join(lines)


def _inline_md(text: str) -> str:
    """Escape text for HTML, rendering `code` and **bold** spans."""
    import re

    s = html.escape(text)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)


def _html(blocks: list[tuple], out: Path, title: str) -> str:
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
             f"<title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;}"
             "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
             "td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}"
             "img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}</style>",
             "</head><body>"]
    for blk in blocks:
        if blk[0] == "h":
            parts.append(f"<h{blk[1]}>{html.escape(blk[2])}</h{blk[1]}>")
        elif blk[0] == "p":
            parts.append(f"<p>{_inline_md(blk[1])}</p>")
        elif blk[0] == "table":
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>"
                                                 for h in blk[1]) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                      for r in blk[2]]
            parts.append("</table>")
        elif blk[0] == "img":
            data = base64.b64encode((out / blk[1]).read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(blk[2])}' "
                         f"src='data:image/png;base64,{data}'><figcaption>"
                         f"{html.escape(blk[2])}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(spec: StudySpec, jobs: list[Job], out: str | Path, *,
                 states: Mapping[str, str]) -> dict[str, Any]:
    """Write the tables, plots, ``report.md`` and ``report.html`` from the finished jobs.

    Returns
    -------
    dict
        ``{"metrics": DataFrame, "deltas": DataFrame, "overlap": DataFrame}``.
    """
    from ptychopinn.files import atomic_path

    out = Path(out)
    metrics = collect_metrics(spec, jobs, out)
    ref = spec.reference_model
    deltas = compute_deltas(metrics, ref.name if ref else "")
    overlap = _overlap_table(jobs, out)
    jobs_df = _jobs_table(jobs, out, states)
    _write_df(metrics, out / "metrics.csv")
    _write_df(metrics, out / "metrics.parquet")
    _write_df(deltas, out / "deltas.csv")
    _write_df(overlap, out / "overlap.csv")
    _write_df(jobs_df, out / "jobs.csv")
    plots: list[str] = []
    if not metrics.empty:
        for split in spec.evaluate:
            for metric in _metric_names():
                name = metric_plot(metric, split)
                _plot_metric(metrics, spec, metric, split, out / "plots" / name)
                plots.append(name)
    for split in spec.evaluate:
        for v in spec.views:
            name = phase_grid_plot(v.name, split)
            if _phase_grid(spec, jobs, out, v.name, split, out / "plots" / name):
                plots.append(name)
    blocks = _blocks(spec, jobs, out, states, metrics, deltas, overlap, jobs_df, plots)
    from ptychopinn.studies.timequality import write_time_quality

    blocks[-2:-2] = write_time_quality(spec, jobs, out)  # before "Files"; [] w/o snapshots
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(_markdown(blocks))
    page = _html(blocks, out, f"Study {spec.name}")
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(page)
    logger.info("report: %s (%d metric rows, %d plots)", out / "report.md", len(metrics),
                len(plots))
    return {"metrics": metrics, "deltas": deltas, "overlap": overlap}
