"""Standard-scene benchmark (issues 3/4/8): PINN gs2 vs gs1 vs supervised baseline at equal time.

Scene: lines object (amplitude + phase), the real LCLS XPP probe, 64×64 patterns, dense random scan,
1e6 photons/pattern, y-split. Prints quality against ground truth, throughput and the machine.

    python benchmarks/standard_scene.py --minutes 10 --out bench_out
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from ptychopinn.config import RunConfig
from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.data.split import split_dataset
from ptychopinn.evaluation import evaluate
from ptychopinn.inference.predict import InferConfig, reconstruct, save_reconstruction
from ptychopinn.training.api import train
from ptychopinn.viz import object_pngs

HERE = Path(__file__).resolve().parent
XPP = HERE.parents[1] / "shared/data/real/ptychopinn-xpp-run1084-recon/Run1084_recon3_postPC.npz"


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(), "python": platform.python_version()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per model")
    p.add_argument("--out", type=Path, default=Path("bench_out"))
    p.add_argument("--photons", type=float, default=1e6)
    p.add_argument("--n-positions", type=int, default=2000)
    p.add_argument("--models", default="pinn2,pinn1,baseline")
    p.add_argument("--model-overrides", default="{}",
                   help='JSON of ModelConfig fields for the PINN runs, e.g. {"pad_object": false}')
    a = p.parse_args()
    probe = str(XPP) if XPP.exists() else "disk"
    data = simulate(SimulationConfig(object="lines", probe=probe, n_positions=a.n_positions,
                                     object_size=256, patch_size=64, photons=a.photons, seed=7))
    train_d, test_d = split_dataset(data, axis="y", fraction=0.5)
    print(json.dumps({"machine": machine(), "train_patterns": train_d.n_patterns,
                      "test_patterns": test_d.n_patterns, "probe": Path(probe).name}))
    results = {}
    for name in a.models.split(","):
        kind, gs = ("baseline", 1) if name == "baseline" else ("pinn", int(name[-1]))
        cfg = RunConfig().with_overrides(
            model={"kind": kind, **(json.loads(a.model_overrides) if kind == "pinn" else {})},
            grouping={"gridsize": gs},
            train={"epochs": 10_000, "max_minutes": a.minutes, "show_progress": False})
        run = a.out / f"run_{name}"
        t0 = time.perf_counter()
        res = train(train_d, run, cfg, resume=(run / "checkpoints" / "last.ckpt").exists())
        t_train = time.perf_counter() - t0
        rec = reconstruct(run, test_d, InferConfig(show_progress=False))
        save_reconstruction(rec, a.out / f"recon_{name}")
        object_pngs(rec.object, rec.coverage, a.out / f"recon_{name}")
        m = evaluate(data.obj, rec.object, coverage=rec.coverage)
        results[name] = {"train_s": t_train, "epochs": res.epochs_completed,
                         "train_patterns_per_s": res.patterns_per_second,
                         "infer_patterns_per_s": rec.info["patterns_per_second"],
                         "stitch_fraction": rec.info["stitch_fraction"],
                         "amplitude": m["amplitude"], "phase": m["phase"]}
        print(json.dumps({name: results[name]}), flush=True)
    (a.out / "results.json").write_text(json.dumps({"machine": machine(), **results}, indent=2))


if __name__ == "__main__":
    main()
