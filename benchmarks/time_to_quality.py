"""Time to quality (issue #14): LSQML quality vs wall time against PINN inference, one scan.

Scene (as ``benchmarks/standard_scene.py``): lines object, real LCLS XPP probe (disk probe if the
file is missing), 64×64 patterns, 2000 random positions on 256×256, 1e6 photons/pattern, seed 7,
spatial y-split 0.5. The PINN trains on the train half; everything is scored on the test half
against ground truth, all methods with the same torch thread count (``--threads``) and on the
common scanned region of all reconstructions.

* Iterative (pty-chi LSQML, optionally ePIE/DM/rPIE via ``--algorithms``): one run on the test
  half with ``--snapshot-every K``; every snapshot is scored
  (:func:`ptychopinn.evaluation.trajectory`), giving SSIM/PSNR against cumulative wall time.
* PINN variants (``--pinn NAME=JSON``, repeatable; JSON with sections model/grouping/train for
  ``RunConfig().with_overrides``; default one faithful variant ``pinn={}``), trained for
  ``--minutes``, or reused with ``--pinn-run NAME=RUN_DIR``: plain inference on the test half
  (with stitching; a warm-up call, then the median of ``--repeats`` timed calls) is the point;
  training time is reported separately and amortised over 1, 10 and 100 scans (wall time of
  ``train()``; for a reused run, ``train_seconds`` from its ``summary.json``).
* "LSQML s to same phase SSIM" is interpolated linearly between snapshots; "≤ t (first
  snapshot)" means the first snapshot already reached it, "never (> t)" that the run did not
  (the ratio is then a lower bound).

Writes ``OUT/time_to_quality.json`` (all numbers), ``OUT/time_to_quality.png`` (phase and
amplitude SSIM vs wall time, log time axis) and ``OUT/time_to_quality.md``, and prints the
Markdown table and the machine.

    python benchmarks/time_to_quality.py --minutes 10 --lsqml-epochs 200 --snapshot-every 5
    python benchmarks/time_to_quality.py --pinn gs1='{"model": {"gridsize": 1}}' --pinn pinn={}
    python benchmarks/time_to_quality.py --pinn-run pinn=bench_out/run_pinn2 --algorithms lsqml,epie
    python benchmarks/time_to_quality.py --quick          # tiny scene, smoke test (< 1 min)
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ptychopinn.config import RunConfig
from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.data.split import split_dataset
from ptychopinn.errors import PtychoInputError
from ptychopinn.evaluation import evaluate, scanned_region, trajectory
from ptychopinn.files import atomic_path
from ptychopinn.inference.predict import InferConfig, reconstruct, save_reconstruction

HERE = Path(__file__).resolve().parent
XPP = HERE.parents[1] / "shared/data/real/ptychopinn-xpp-run1084-recon/Run1084_recon3_postPC.npz"
AMORTISE_OVER = (1, 10, 100)
METRICS = ("ssim", "psnr")
ALGORITHM_NAMES = {"lsqml": "LSQML", "epie": "ePIE", "rpie": "rPIE", "dm": "DM"}


@dataclass(frozen=True, kw_only=True)
class Scene:
    """The simulated scan (lengths in object pixels)."""

    object_size: int = 256
    patch_size: int = 64
    n_positions: int = 2000
    photons: float = 1e6
    probe: str = "xpp"  # "xpp" (the XPP file when present, else disk) | "disk"
    seed: int = 7
    split_fraction: float = 0.5

    def simulation(self) -> SimulationConfig:
        probe = str(XPP) if self.probe == "xpp" and XPP.exists() else "disk"
        return SimulationConfig(object="lines", probe=probe, n_positions=self.n_positions,
                                object_size=self.object_size, patch_size=self.patch_size,
                                photons=self.photons, seed=self.seed)


QUICK_SCENE = Scene(object_size=64, patch_size=16, n_positions=160, photons=1e5, probe="disk",
                    seed=3)


def machine() -> dict[str, Any]:
    """Platform, cores, library versions, torch threads and GPU of this process."""
    import importlib.metadata as md

    def version(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "not installed"

    cuda = torch.cuda.is_available()
    return {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "ptychi": version("ptychi"),
            "torch_threads": torch.get_num_threads(), "cuda": cuda,
            "gpu": torch.cuda.get_device_name(0) if cuda else None}


# ------------------------------------------------------------------------------ arguments
def parse_variants(specs: list[str], option: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` pairs; names non-empty."""
    out = []
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name.strip():
            raise PtychoInputError(f"{option} expects NAME=VALUE; got {spec!r}")
        out.append((name.strip(), value))
    return out


def variant_config(overrides_json: str, base: RunConfig, name: str) -> RunConfig:
    """``base`` with the JSON sections applied; ``model.gridsize`` alone also sets grouping's."""
    try:
        overrides = json.loads(overrides_json or "{}")
    except json.JSONDecodeError as exc:
        raise PtychoInputError(f"--pinn {name}: not valid JSON ({exc.msg})") from None
    if not isinstance(overrides, dict) or not all(isinstance(v, dict)
                                                  for v in overrides.values()):
        raise PtychoInputError(f"--pinn {name}: expected a JSON object of sections, e.g. "
                               '{"model": {"gridsize": 1}, "train": {"learning_rate": 1e-3}}')
    overrides = {k: dict(v) for k, v in overrides.items()}
    gs = overrides.get("model", {}).get("gridsize")
    if gs is not None and "gridsize" not in overrides.get("grouping", {}):
        overrides.setdefault("grouping", {})["gridsize"] = gs
    unknown = set(overrides) - {"model", "grouping", "train"}
    if unknown:
        raise PtychoInputError(f"--pinn {name}: unknown section(s) {sorted(unknown)}; "
                               "allowed: model, grouping, train")
    try:
        return base.with_overrides(**overrides)
    except (PtychoInputError, ValueError) as exc:
        raise PtychoInputError(f"--pinn {name}: {exc}") from None


# ------------------------------------------------------------------------------ PINN
def run_pinn(name: str, test_d, *, train_d=None, cfg: RunConfig | None = None,
             run_dir: Path, reuse: bool, repeats: int) -> dict[str, Any]:
    """Train (unless reused), then time inference on the test half; returns numbers + recon."""
    from ptychopinn.training.api import train
    from ptychopinn.training.bundle import load_bundle

    res: dict[str, Any] = {"run_dir": str(run_dir), "reused": reuse}
    if reuse:
        summary_path = run_dir / "summary.json"
        if not summary_path.exists():
            raise PtychoInputError("no summary.json: not a finished training run",
                                   path=run_dir)
        s = json.loads(summary_path.read_text())
        res.update(train_s=float(s["train_seconds"]), train_fit_s=float(s["train_seconds"]),
                   epochs=s.get("epochs_completed"),
                   train_patterns_per_s=s.get("patterns_per_second"))
    else:
        res["config"] = cfg.to_dict()
        t0 = time.perf_counter()
        tr = train(train_d, run_dir, cfg)
        res.update(train_s=time.perf_counter() - t0, train_fit_s=tr.train_seconds,
                   epochs=tr.epochs_completed, train_patterns_per_s=tr.patterns_per_second)
    bundle = load_bundle(run_dir)
    icfg = InferConfig(show_progress=False)
    t0 = time.perf_counter()
    rec = reconstruct(bundle, test_d, icfg)  # warm-up; its result is the one scored
    res["infer_first_call_s"] = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        reconstruct(bundle, test_d, icfg)
        times.append(time.perf_counter() - t0)
    res.update(infer_s=statistics.median(times), infer_s_all=times,
               infer_patterns_per_s=test_d.n_patterns / statistics.median(times),
               device=rec.info.get("device"))
    print(json.dumps({name: {k: v for k, v in res.items() if k != "config"}}), flush=True)
    return {"numbers": res, "recon": rec}


# ------------------------------------------------------------------------------ iterative
def run_algorithm(algorithm: str, test_d, out: Path, *, epochs: int, every: int,
                  threads: int) -> dict[str, Any]:
    """One pty-chi run with snapshots on the test half."""
    from ptychopinn.iterative import IterativeConfig
    from ptychopinn.iterative.run import run_iterative_on_dataset

    cfg = IterativeConfig(algorithm=algorithm, epochs=epochs, snapshot_every=every,
                          num_threads=threads, seed=0)
    t0 = time.perf_counter()
    rec = run_iterative_on_dataset(test_d, out, cfg)
    res = {"epochs": epochs, "snapshot_every": every, "wall_s": rec.info["wall_time_s"],
           "total_s": time.perf_counter() - t0, "device": rec.info["device"],
           "snapshot_overhead_s": rec.info.get("snapshot_overhead_s"), "out_dir": str(out)}
    print(json.dumps({algorithm: res}), flush=True)
    return {"numbers": res, "recon": rec, "snapshots": out / "snapshots.npz"}


# ------------------------------------------------------------------------------ scoring
def common_region(coverages: list[np.ndarray]) -> tuple[slice, slice]:
    """Intersection of the scanned regions of all reconstructions."""
    boxes = [scanned_region(c) for c in coverages]
    rows = slice(max(b[0].start for b in boxes), min(b[0].stop for b in boxes))
    cols = slice(max(b[1].start for b in boxes), min(b[1].stop for b in boxes))
    if rows.stop <= rows.start or cols.stop <= cols.start:
        raise ValueError("the reconstructions' scanned regions do not overlap")
    return rows, cols


def amortised(t_iter: float, t_infer: float, t_train: float) -> dict[str, float]:
    """Iterative time over PINN time per scan when training is shared by n scans."""
    return {str(n): t_iter / (t_infer + t_train / n) for n in AMORTISE_OVER}


def score(obj_ref: np.ndarray, pinn: dict[str, dict], iterative: dict[str, dict]) -> tuple:
    """Fill in quality, times to reach and ratios; returns (region, trajectories)."""
    region = common_region([v["recon"].coverage for v in (*pinn.values(), *iterative.values())])
    trajs = {alg: trajectory(obj_ref, it["snapshots"], region=region, metrics=METRICS)
             for alg, it in iterative.items()}
    for alg, it in iterative.items():
        it["numbers"]["trajectory"] = trajs[alg].to_dict()
    for v in pinn.values():
        r = v["numbers"]
        m = evaluate(obj_ref, v["recon"].object, region=region)
        for part in ("amplitude", "phase"):
            r[part] = {k: float(m[part][k]) for k in METRICS}
        r["iterative"] = {}
        for alg, traj in trajs.items():
            t_reach = traj.time_to_reach(r["phase"]["ssim"], "phase", "ssim")
            t_end = float(traj.seconds[-1])
            t_used = t_end if t_reach is None else t_reach
            r["iterative"][alg] = {
                "time_to_phase_ssim_s": t_reach, "reached": t_reach is not None,
                # reached by the first snapshot: the time is an upper bound
                "reached_at_first_snapshot": bool(
                    t_reach is not None
                    and traj.values("phase", "ssim")[0] >= r["phase"]["ssim"]),
                "run_seconds": t_end,
                "ratio": t_used / r["infer_s"],
                "ratio_amortised": amortised(t_used, r["infer_s"], r["train_s"]),
                "ratio_is_lower_bound": t_reach is None}
    return region, trajs


# ------------------------------------------------------------------------------ reports
def _ratio(x: float, lower_bound: bool) -> str:
    return f"> {x:.3g}×" if lower_bound else f"{x:.3g}×"


def markdown(payload: dict[str, Any]) -> str:
    """The table (one row per PINN variant) and the iterative runs, then the machine."""
    lines = ["| PINN variant | train s (epochs) | inference s | amp SSIM | phase SSIM | "
             "LSQML s to same phase SSIM | ratio LSQML / inference | "
             "ratio with training over 1 / 10 / 100 scans |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in payload["pinn"].items():
        q = r["iterative"].get("lsqml")
        if q is None:
            reach, ratio, amort = "—", "—", "—"
        else:
            lb = q["ratio_is_lower_bound"]
            reach = (f"{q['time_to_phase_ssim_s']:.3g}" if q["reached"]
                     else f"never (> {q['run_seconds']:.3g})")
            if q["reached_at_first_snapshot"]:
                reach = f"≤ {reach} (first snapshot)"
            ratio = _ratio(q["ratio"], lb)
            amort = " / ".join(_ratio(q["ratio_amortised"][str(n)], lb) for n in AMORTISE_OVER)
        lines.append(f"| {name} | {r['train_s']:.1f} ({r['epochs']}) | {r['infer_s']:.3g} | "
                     f"{r['amplitude']['ssim']:.3f} | {r['phase']['ssim']:.3f} | {reach} | "
                     f"{ratio} | {amort} |")
    lines += ["", "| iterative | epochs (snapshot every) | wall s | final amp SSIM | "
              "final phase SSIM | s/epoch |", "|---|---|---|---|---|---|"]
    for alg, it in payload["iterative"].items():
        t = it["trajectory"]
        lines.append(f"| PtyChi-{ALGORITHM_NAMES[alg]} | {it['epochs']} ({it['snapshot_every']}) "
                     f"| {it['wall_s']:.3g} | {t['amplitude']['ssim'][-1]:.3f} | "
                     f"{t['phase']['ssim'][-1]:.3f} | {it['wall_s'] / it['epochs']:.3g} |")
    sc = payload["scene"]
    lines += ["", f"Test half: {payload['test_patterns']} patterns of {sc['patch_size']}² "
              f"({sc['photons']:.0e} photons); {payload['threads']} threads for all methods; "
              f"scored on rows {payload['region']['rows']}, cols {payload['region']['cols']}.",
              "Machine: " + ", ".join(f"{k} {v}" for k, v in payload["machine"].items())]
    return "\n".join(lines) + "\n"


def figure_png(payload: dict[str, Any]) -> bytes:
    """Phase and amplitude SSIM vs wall time (log axis): iterative lines, PINN points."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    colors = ("C0", "C1", "C2", "C3")
    for ax, part in zip(axes, ("phase", "amplitude"), strict=True):
        for (alg, it), c in zip(payload["iterative"].items(), colors, strict=False):
            t = it["trajectory"]
            ax.plot(t["seconds"], t[part]["ssim"], "-o", ms=3, color=c,
                    label=f"PtyChi-{ALGORITHM_NAMES[alg]} (every {it['snapshot_every']} ep)")
        for i, (name, r) in enumerate(payload["pinn"].items()):
            c = f"C{4 + i % 6}"
            y = r[part]["ssim"]
            ax.plot([r["infer_s"]], [y], "*", ms=13, color=c, label=f"{name}: inference")
            ax.plot([r["infer_s"] + r["train_s"]], [y], "*", ms=13, mfc="none", color=c,
                    label=f"{name}: inference + training")
        ax.set_xscale("log")
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel(f"{part} SSIM")
        ax.set_title(f"{part} SSIM vs wall time (test half)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _finite(x: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, non-finite floats as None."""
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _write(path: Path, data: str | bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data) if isinstance(data, bytes) else tmp.write_text(data)


# ------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None,
                   help="new or empty work/output directory (default: a new /tmp dir)")
    p.add_argument("--minutes", type=float, default=10.0, help="PINN training budget per variant")
    p.add_argument("--lsqml-epochs", type=int, default=None,
                   help="epochs of each iterative run (default 200; --quick: 6)")
    p.add_argument("--snapshot-every", type=int, default=None,
                   help="iterative snapshot interval K in epochs (default 5; --quick: 2)")
    p.add_argument("--algorithms", default="lsqml",
                   help="comma-separated iterative algorithms (lsqml required; epie, rpie, dm)")
    p.add_argument("--pinn", action="append", default=[], metavar="NAME=JSON",
                   help="PINN variant: RunConfig overrides, e.g. "
                        "gs1='{\"model\": {\"gridsize\": 1}}' (default: pinn={})")
    p.add_argument("--pinn-run", action="append", default=[], metavar="NAME=RUN_DIR",
                   help="reuse an already trained run directory (skips training)")
    p.add_argument("--repeats", type=int, default=3, help="timed inference calls (median)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for every method (default: torch's)")
    p.add_argument("--photons", type=float, default=None, help="dose (default 1e6)")
    p.add_argument("--quick", action="store_true",
                   help="tiny scene (64² object, 16² patches, 160 positions), 1 training epoch, "
                        "6 LSQML epochs, 1 repeat: a smoke test")
    return p


def run(a: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    algorithms = [s.strip() for s in a.algorithms.split(",") if s.strip()]
    if "lsqml" not in algorithms or any(s not in ALGORITHM_NAMES for s in algorithms):
        raise PtychoInputError(f"--algorithms must include lsqml and name only "
                               f"{', '.join(ALGORITHM_NAMES)}; got {a.algorithms!r}")
    if len(set(algorithms)) != len(algorithms):
        raise PtychoInputError(f"--algorithms lists an algorithm twice: {a.algorithms!r}")
    scene = QUICK_SCENE if a.quick else Scene()
    if a.lsqml_epochs is None:
        a.lsqml_epochs = 6 if a.quick else 200
    if a.snapshot_every is None:
        a.snapshot_every = 2 if a.quick else 5
    if a.quick:
        a.repeats = 1
    if a.photons is not None:
        scene = replace(scene, photons=a.photons)
    if not a.minutes > 0 or a.repeats < 1 or a.lsqml_epochs < 1:
        raise PtychoInputError("--minutes must be > 0, --repeats and --lsqml-epochs >= 1")
    if not 1 <= a.snapshot_every <= a.lsqml_epochs:
        raise PtychoInputError(f"--snapshot-every must be an integer from 1 to --lsqml-epochs "
                               f"({a.lsqml_epochs}); got {a.snapshot_every}")
    variants = parse_variants(a.pinn, "--pinn")
    reused = parse_variants(a.pinn_run, "--pinn-run")
    if not variants and not reused:
        variants = [("pinn", "{}")]
    names = [n for n, _ in (*variants, *reused)]
    if len(set(names)) != len(names):
        raise PtychoInputError(f"PINN variant names must be unique; got {names}")
    if a.threads is not None:
        if a.threads < 1:
            raise PtychoInputError(f"--threads must be >= 1; got {a.threads}")
        torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    train_over = {"epochs": 1} if a.quick else {"epochs": 1_000_000}
    base = RunConfig().with_overrides(
        train={**train_over, "max_minutes": a.minutes, "show_progress": False})
    configs = {n: variant_config(j, base, n) for n, j in variants}
    for n, d in reused:
        if not Path(d).is_dir():
            raise PtychoInputError(f"--pinn-run {n}: not a directory", path=d)

    out = a.out or Path(tempfile.mkdtemp(prefix="time_to_quality_"))
    if out.exists() and any(out.iterdir()):
        raise PtychoInputError("is not empty; choose a new --out directory", path=out)
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    load_before = os.getloadavg()
    print(json.dumps({"machine": info, "out": str(out), "load_before": load_before}), flush=True)

    t_start = time.perf_counter()
    data = simulate(scene.simulation())
    train_d, test_d = split_dataset(data, axis="y", fraction=scene.split_fraction)
    pinn: dict[str, dict] = {}
    for name, cfg in configs.items():
        pinn[name] = run_pinn(name, test_d, train_d=train_d, cfg=cfg, run_dir=out / f"run_{name}",
                              reuse=False, repeats=a.repeats)
    for name, d in reused:
        pinn[name] = run_pinn(name, test_d, run_dir=Path(d), reuse=True, repeats=a.repeats)
    for name, v in pinn.items():
        save_reconstruction(v["recon"], out / f"recon_{name}")
    iterative = {alg: run_algorithm(alg, test_d, out / f"iterative_{alg}", epochs=a.lsqml_epochs,
                                    every=a.snapshot_every, threads=threads)
                 for alg in algorithms}
    region, _ = score(data.obj, pinn, iterative)

    sim = scene.simulation()
    payload = {
        "command": " ".join(["python benchmarks/time_to_quality.py", *argv]),
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": info, "threads": threads,
        "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
        "total_s": time.perf_counter() - t_start, "minutes": a.minutes, "quick": a.quick,
        "scene": {**asdict(scene), "probe": Path(sim.probe).name, "object": sim.object},
        "train_patterns": train_d.n_patterns, "test_patterns": test_d.n_patterns,
        "region": {"rows": [region[0].start, region[0].stop],
                   "cols": [region[1].start, region[1].stop]},
        "amortise_over_scans": list(AMORTISE_OVER),
        "pinn": {n: v["numbers"] for n, v in pinn.items()},
        "iterative": {alg: v["numbers"] for alg, v in iterative.items()},
    }
    table = markdown(payload)
    _write(out / "time_to_quality.json",
           json.dumps(_finite(payload), indent=2, allow_nan=False) + "\n")
    _write(out / "time_to_quality.png", figure_png(payload))
    _write(out / "time_to_quality.md", table)
    sys.stdout.write("\n" + table)
    sys.stdout.write(f"\nwrote {out / 'time_to_quality.json'}, {out / 'time_to_quality.png'}\n")
    return payload


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    a = build_parser().parse_args(argv)
    try:
        run(a, argv)
    except (PtychoInputError, ValueError, FileNotFoundError, RuntimeError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        sys.stderr.write(f"time_to_quality: error: {msg}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
