"""Position refinement (issue #23): planted stage errors, recovered by the network and by LSQML.

Each case simulates a scan at true positions and stores nominal ones (``simulate
--position-error/--position-drift/--position-scale``); every method sees only the nominal
positions and is scored against the truth (position RMS error after removing the unobservable
mean shift; phase/amplitude SSIM on the common scanned region), with the same torch threads:

* ``net nominal``: the shipped general model at the nominal positions (no refinement);
* ``net true``: the same at the true positions (the quality refinement aims for);
* ``net refined``: ``infer --refine-positions`` (the network's object, joint gradient steps on
  positions and object, the network again at the refined positions), its wall time;
* ``LSQML-pc``: pty-chi LSQML with gradient position correction, pty-chi's defaults (0.1 px
  largest update per step) and a faster setting (``--lsqml-limit``, step size 1), at
  ``--lsqml-epochs`` (separate runs, each with its loop time).

Scenes: ``lines`` (lines object, disk probe, 1000 random positions on a 192² object) and
``grf`` (Gaussian random field object, 300-position Fermat spiral on a 256² object); 1e6
photons, 64-px patterns.
Cases: ``r0.5``, ``r1``, ``r2`` (random, px RMS), ``scale1`` (1 %), ``drift3`` (3 px across the
scan), ``all`` (2 px random + 1 % + 3 px drift).

    python benchmarks/positions.py --out bench_pos
    python benchmarks/positions.py --quick       # one small case, seconds

Writes ``OUT/positions.json`` and ``OUT/positions.md`` after every case (a rerun with the same
``--out`` runs only the missing cases) and prints the table and the machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.evaluation import evaluate
from ptychopinn.inference.positions import ScanRefinement, refine_scan
from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.training.positions import affine_fit, position_rms

HERE = Path(__file__).resolve().parent
SCENES = ("lines", "grf")
CASES = {"r0.5": (0.5, 0, 0), "r1": (1.0, 0, 0), "r2": (2.0, 0, 0), "scale1": (0, 0, 0.01),
         "drift3": (0, 3.0, 0), "all": (2.0, 3.0, 0.01)}


def _ttq():
    """``benchmarks/time_to_quality.py`` (machine info, common region)."""
    name = "benchmarks_time_to_quality"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "time_to_quality.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def simulation(scene: str, case: str, *, quick: bool) -> SimulationConfig:
    err, drift, scale = CASES[case]
    kw: dict[str, Any] = dict(object=scene, probe="disk", photons=1e6, patch_size=64,
                              object_size=128 if quick else 192, seed=23,
                              position_error=err, position_drift=drift, position_scale=scale)
    if scene == "lines":
        kw.update(scan="random", n_positions=200 if quick else 1000, overlap=0.7)
    else:
        kw.update(scan="spiral", n_positions=100 if quick else 300, overlap=0.7,
                  object_size=192 if quick else 256)
    return SimulationConfig(**kw)


def run_case(scene: str, case: str, out: Path, a: argparse.Namespace) -> dict[str, Any]:
    from ptychopinn.files import read_npz
    from ptychopinn.iterative import IterativeConfig
    from ptychopinn.iterative.run import run_iterative_on_dataset

    work = out / f"{scene}_{case}"
    work.mkdir(parents=True, exist_ok=True)
    data = simulate(simulation(scene, case, quick=a.quick))
    true = data.positions_true
    quiet = InferConfig(show_progress=False)
    reconstruct("general", data, quiet)  # warm-up
    recons, row = {}, {"scene": scene, "case": case, "patterns": data.n_patterns,
                       "error_rms_px": position_rms(data.positions, true)}
    r = reconstruct("general", data, quiet)
    recons["net nominal"] = r
    row["net nominal"] = {"seconds": r.info["seconds"], "rms_px": row["error_rms_px"]}
    r = reconstruct("general", replace(data, positions=true), quiet)
    recons["net true"] = r
    row["net true"] = {"seconds": r.info["seconds"], "rms_px": 0.0}
    t0 = time.perf_counter()
    refined, r, info = refine_scan("general", data, ScanRefinement(steps=a.steps), quiet)
    recons["net refined"] = r
    row["net refined"] = {"seconds": time.perf_counter() - t0,
                          "rms_px": position_rms(refined.positions, true),
                          "scale": [info["affine"]["scale_row"], info["affine"]["scale_col"]]}
    for label, extra in (("default", {}), ("fast", {"position_update_limit": a.lsqml_limit,
                                                    "position_step_size": 1.0})):
        for ep in a.lsqml_epochs:
            d = work / f"lsqml_{label}_{ep}"
            rec = run_iterative_on_dataset(data, d, IterativeConfig(
                epochs=ep, refine_positions=True, seed=0, **extra), show_progress=False)
            p = read_npz(d / "positions.npz")
            pos = np.stack([p["ycoords"], p["xcoords"]], axis=1)
            name = f"LSQML-pc {label} {ep}"
            recons[name] = rec
            row[name] = {"seconds": float(rec.info["wall_time_s"]),
                         "rms_px": position_rms(pos, true),
                         "scale": [affine_fit(data.positions, pos)[k]
                                   for k in ("scale_row", "scale_col")]}
    region = _ttq().common_region([v.coverage for v in recons.values()])
    for name, rec in recons.items():
        m = evaluate(data.obj, rec.object, region=region)
        row[name].update(phase_ssim=float(m["phase"]["ssim"]),
                         amp_ssim=float(m["amplitude"]["ssim"]))
    print(json.dumps(row), flush=True)
    return row


def markdown(rows: list[dict], a: argparse.Namespace, info: dict) -> str:
    cols = ["net nominal", "net true", "net refined"] + [
        f"LSQML-pc {lab} {ep}" for lab in ("default", "fast") for ep in a.lsqml_epochs]
    head = ["scene / planted error", "RMS before"] + cols
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r['scene']} {r['case']} ({r['patterns']})", f"{r['error_rms_px']:.2f} px"]
        for c in cols:
            v = r.get(c)
            cells.append("—" if v is None else
                         f"{v['rms_px']:.3f} px, {v['phase_ssim']:.3f} / {v['amp_ssim']:.3f} "
                         f"({v['seconds']:.1f} s)")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Cells: position RMS error against the truth (mean shift removed), phase / "
              "amplitude SSIM, seconds (network: inference, or the whole refinement; LSQML: "
              "loop time). LSQML-pc fast: largest position update "
              f"{a.lsqml_limit:g} px per step, step size 1.",
              "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--scenes", default=",".join(SCENES))
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--steps", type=int, default=ScanRefinement().steps,
                   help="gradient steps of the network's position refinement")
    p.add_argument("--lsqml-epochs", default="25,100",
                   help="LSQML-pc epochs, comma-separated ('' = the network rows only)")
    p.add_argument("--lsqml-limit", type=float, default=1.0,
                   help="largest position update per step of the fast LSQML setting (px)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    if a.quick:
        a.scenes, a.cases, a.lsqml_epochs, a.steps = "lines", "all", "5", 50
    a.lsqml_epochs = [int(x) for x in str(a.lsqml_epochs).split(",") if x.strip()]
    out = a.out or Path(tempfile.mkdtemp(prefix="positions_"))
    out.mkdir(parents=True, exist_ok=True)
    info = _ttq().machine()
    print(json.dumps({"machine": info, "out": str(out)}), flush=True)
    t0 = time.perf_counter()
    js = out / "positions.json"
    rows = json.loads(js.read_text())["rows"] if js.exists() else []
    for scene in a.scenes.split(","):
        for case in a.cases.split(","):
            if (scene, case) in {(r["scene"], r["case"]) for r in rows}:
                continue
            rows.append(run_case(scene, case, out, a))
            (out / "positions.md").write_text(markdown(rows, a, info))
            js.write_text(json.dumps({"rows": rows, "machine": info, "argv": sys.argv[1:],
                                      "seconds": time.perf_counter() - t0}, indent=2))
    print(markdown(rows, a, info))


if __name__ == "__main__":
    main()
