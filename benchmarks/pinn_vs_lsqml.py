"""PINN vs pty-chi LSQML on the standard scene (issue #5): inference speed ratio and quality.

Scene (as ``benchmarks/standard_scene.py``): lines object, real LCLS XPP probe (Run1084), 64×64
patterns, 2000 random positions on a 256×256 object, seed 7, spatial y-split (train / test half).
For each dose (default 1e6 and 1e4 photons/pattern):

1. train the PINN (gridsize 2) on the train half for ``--minutes``;
2. PINN inference on the test half, wall time including grouping and stitching (one warm-up
   call, then the median of ``--repeats`` timed calls);
3. pty-chi LSQML (``--lsqml-epochs``, default 100) on the test half with the dataset's probe and
   positions, in a worker with the same torch thread count;
4. quality of both against ground truth (``ptychopinn.evaluation.evaluate``, coverage crop).

Prints a Markdown table and the machine, and writes ``benchmarks/results_pinn_vs_lsqml.json``.
The LSQML numbers do not depend on the PINN. Target: LSQML-100 wall time ≥ 30× PINN inference.

    python benchmarks/pinn_vs_lsqml.py --minutes 10            # full run
    python benchmarks/pinn_vs_lsqml.py --minutes 0.5 --json /tmp/smoke.json   # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from ptychopinn.config import RunConfig
from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.data.split import split_dataset
from ptychopinn.evaluation import evaluate
from ptychopinn.files import atomic_path
from ptychopinn.inference.predict import InferConfig, reconstruct, save_reconstruction
from ptychopinn.iterative import IterativeConfig, ptychi_version
from ptychopinn.iterative.run import run_iterative_on_dataset
from ptychopinn.training.api import train
from ptychopinn.training.bundle import load_bundle
from ptychopinn.viz import object_pngs

HERE = Path(__file__).resolve().parent
XPP = HERE.parents[1] / "shared/data/real/ptychopinn-xpp-run1084-recon/Run1084_recon3_postPC.npz"
TARGET_RATIO = 30.0
METRICS = ("ssim", "psnr", "frc50")


def machine() -> dict:
    """Platform, cores, library versions and torch threads of this process."""
    return {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "ptychi": ptychi_version(),
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}


def _quality(data, rec) -> dict:
    m = evaluate(data.obj, rec.object, coverage=rec.coverage)
    return {part: {k: float(m[part][k]) for k in METRICS} for part in ("amplitude", "phase")}


def run_dose(photons: float, a: argparse.Namespace, out: Path) -> dict:
    """Simulate, train, time and score PINN and LSQML at one dose."""
    probe = str(XPP) if XPP.exists() else "disk"
    data = simulate(SimulationConfig(object="lines", probe=probe, n_positions=a.n_positions,
                                     object_size=256, patch_size=64, photons=photons, seed=7))
    train_d, test_d = split_dataset(data, axis="y", fraction=0.5)
    tag = f"{photons:.0e}".replace("+", "")
    res: dict = {"photons": photons, "probe": Path(probe).name,
                 "train_patterns": train_d.n_patterns, "test_patterns": test_d.n_patterns}

    # --- PINN: train (time budget), then timed inference incl. stitching on the test half
    cfg = RunConfig().with_overrides(
        model={"kind": "pinn"}, grouping={"gridsize": 2},
        train={"epochs": 100_000, "max_minutes": a.minutes, "show_progress": False})
    run = out / f"run_pinn_{tag}"
    t0 = time.perf_counter()
    tr = train(train_d, run, cfg)
    t_train = time.perf_counter() - t0
    bundle = load_bundle(run)
    icfg = InferConfig(show_progress=False)
    t0 = time.perf_counter()
    rec = reconstruct(bundle, test_d, icfg)  # warm-up; its result is the one scored
    t_first = time.perf_counter() - t0
    times, stitch = [], []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        r = reconstruct(bundle, test_d, icfg)
        times.append(time.perf_counter() - t0)
        stitch.append(r.info["stitch_fraction"])
    save_reconstruction(rec, out / f"recon_pinn_{tag}")
    object_pngs(rec.object, rec.coverage, out / f"recon_pinn_{tag}")
    t_infer = statistics.median(times)
    res["pinn"] = {"epochs": tr.epochs_completed, "train_s": t_train,
                   "train_patterns_per_s": tr.patterns_per_second,
                   "infer_s": t_infer, "infer_s_all": times, "infer_first_call_s": t_first,
                   "infer_patterns_per_s": test_d.n_patterns / t_infer,
                   "stitch_fraction": statistics.median(stitch), **_quality(data, rec)}
    print(json.dumps({tag: {"pinn": res["pinn"]}}), flush=True)

    # --- LSQML on the same test half, same probe/positions, same thread count
    icfg_lsq = IterativeConfig(algorithm="lsqml", epochs=a.lsqml_epochs,
                               num_threads=torch.get_num_threads(), seed=0)
    t0 = time.perf_counter()
    lrec = run_iterative_on_dataset(test_d, out / f"recon_lsqml_{tag}", icfg_lsq)
    t_total = time.perf_counter() - t0
    res["lsqml"] = {"epochs": a.lsqml_epochs, "wall_s": lrec.info["wall_time_s"],
                    "total_s": t_total, "device": lrec.info["device"], **_quality(data, lrec)}
    res["ratio_lsqml_over_pinn_infer"] = res["lsqml"]["wall_s"] / t_infer
    print(json.dumps({tag: {"lsqml": res["lsqml"],
                            "ratio": res["ratio_lsqml_over_pinn_infer"]}}), flush=True)
    return res


def markdown(results: list[dict], info: dict) -> str:
    """The results as a Markdown table plus the machine line."""
    lines = [
        "| photons | model | time (s) | amp SSIM | amp PSNR | phase SSIM | phase PSNR "
        "| phase FRC 0.5 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        p, q = r["pinn"], r["lsqml"]
        for name, t, m in ((f"PtychoPINN gs2 ({p['epochs']} ep, {p['train_s'] / 60:.1f} min train)"
                            f", inference", p["infer_s"], p),
                           (f"PtyChi-LSQML ({q['epochs']} epochs)", q["wall_s"], q)):
            lines.append(f"| {r['photons']:.0e} | {name} | {t:.2f} | "
                         f"{m['amplitude']['ssim']:.3f} | {m['amplitude']['psnr']:.2f} | "
                         f"{m['phase']['ssim']:.3f} | {m['phase']['psnr']:.2f} | "
                         f"{m['phase']['frc50']:.3f} |")
    lines.append("")
    for r in results:
        ratio = r["ratio_lsqml_over_pinn_infer"]
        ok = "meets" if ratio >= TARGET_RATIO else "misses"
        lines.append(f"- {r['photons']:.0e} photons: LSQML-{r['lsqml']['epochs']} / PINN "
                     f"inference = {ratio:.1f}× ({ok} the ≥ {TARGET_RATIO:.0f}× target); "
                     f"{r['test_patterns']} test patterns")
    lines.append("")
    lines.append("Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="PINN training budget per dose")
    p.add_argument("--photons", default="1e6,1e4", help="comma-separated doses")
    p.add_argument("--n-positions", type=int, default=2000)
    p.add_argument("--lsqml-epochs", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3, help="timed inference calls (median)")
    p.add_argument("--out", type=Path, default=None,
                   help="work directory for runs and reconstructions (default: a new /tmp dir)")
    p.add_argument("--json", type=Path, default=HERE / "results_pinn_vs_lsqml.json")
    a = p.parse_args(argv)
    if a.minutes <= 0 or a.repeats < 1 or a.lsqml_epochs < 1:
        p.error("--minutes must be > 0, --repeats and --lsqml-epochs >= 1")
    if a.out is None:
        a.out = Path(tempfile.mkdtemp(prefix="pinn_vs_lsqml_"))
    elif a.out.exists() and any(a.out.iterdir()):
        p.error(f"--out {a.out} is not empty; choose a new directory")
    a.out.mkdir(parents=True, exist_ok=True)
    doses = [float(x) for x in a.photons.split(",")]
    info = machine()
    load_before = os.getloadavg()
    print(json.dumps({"machine": info, "out": str(a.out), "load_before": load_before}), flush=True)
    t0 = time.perf_counter()
    results = [run_dose(d, a, a.out) for d in doses]
    payload = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
               "date": time.strftime("%Y-%m-%d %H:%M"), "machine": info,
               "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
               "total_s": time.perf_counter() - t0, "minutes": a.minutes,
               "target_ratio": TARGET_RATIO, "results": results}
    with atomic_path(a.json) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
    sys.stdout.write(markdown(results, info))
    sys.stdout.write(f"load average before {load_before}, after {payload['load_avg_after']}; "
                     f"wrote {a.json}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
