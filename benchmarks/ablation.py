"""One PINN ablation on the standard scene at a fixed training time (issue #3).

Trains PtychoPINN (gridsize 2 unless overridden) on the train half of the standard scene for
``minutes``, then scores it against ground truth on the test half with both inference modes
(``--groups cover`` and ``every``) and on the train half. Appends one JSON line to ``--results``.

    python benchmarks/ablation.py ref '{"minutes": 4}'
    python benchmarks/ablation.py bs8 '{"minutes": 4, "train": {"batch_size": 8}}'
    python benchmarks/ablation.py nopad '{"minutes": 4, "model": {"pad_object": false}}'
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from standard_scene import XPP, machine

from ptychopinn.config import RunConfig
from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.data.split import split_dataset
from ptychopinn.evaluation import evaluate
from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.training.api import train


def _score(data, run, part, groups):
    rec = reconstruct(run, part, InferConfig(show_progress=False, groups=groups))
    m = evaluate(data.obj, rec.object, coverage=rec.coverage)
    return {"amp_ssim": m["amplitude"]["ssim"], "ph_ssim": m["phase"]["ssim"],
            "ph_psnr": m["phase"]["psnr"], "infer_pps": rec.info["patterns_per_second"]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("overrides", help='JSON: {"minutes": M, "model": {...}, "train": {...}, '
                                     '"grouping": {...}, "sim": {...}}')
    p.add_argument("--work", type=Path, default=Path("ablation_out"))
    p.add_argument("--results", type=Path, default=Path("ablation_out/results.jsonl"))
    a = p.parse_args()
    over = json.loads(a.overrides)
    minutes = float(over.pop("minutes", 4))
    sim = {"object": "lines", "probe": str(XPP) if XPP.exists() else "disk", "n_positions": 2000,
           "object_size": 256, "patch_size": 64, "photons": 1e6, "seed": 7, **over.pop("sim", {})}
    data = simulate(SimulationConfig(**sim))
    train_d, test_d = split_dataset(data, axis="y", fraction=0.5)
    cfg = RunConfig().with_overrides(
        model=over.get("model", {}), grouping=over.get("grouping", {}),
        train={"epochs": 10_000, "max_minutes": minutes, "show_progress": False,
               **over.get("train", {})})
    run = a.work / f"run_{a.name}"
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    res = train(train_d, run, cfg)
    out = {"name": a.name, "overrides": a.overrides, "machine": machine(),
           "train_s": time.perf_counter() - t0, "epochs": res.epochs_completed,
           "train_pps": res.patterns_per_second,
           "test_cover": _score(data, run, test_d, "cover"),
           "test_every": _score(data, run, test_d, "every"),
           "train_region": _score(data, run, train_d, "cover")}
    print(json.dumps(out), flush=True)
    a.results.parent.mkdir(parents=True, exist_ok=True)
    with open(a.results, "a") as fh:
        fh.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
