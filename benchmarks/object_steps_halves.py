"""Train and test halves, network alone and with object steps, for the models that
``benchmarks/generalization.py`` trained on the scans' own conditions.

    python benchmarks/generalization.py --out bench_gen
    python benchmarks/object_steps_halves.py --gen bench_gen [--steps 20]

For each ``VARIANT/run_unrolled`` and ``VARIANT/run_pinn`` under ``--gen`` the same scan is
simulated again (seeded) and both halves are reconstructed with 0 and ``--steps`` object
steps; one JSON line per (variant, model, half): phase / amplitude SSIM and seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gen", type=Path, required=True, help="a generalization.py --out folder")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    import torch

    sys.path.insert(0, str(HERE))
    import generalization as gen

    from ptychopinn.data.simulate import simulate
    from ptychopinn.data.split import split_dataset
    from ptychopinn.evaluation import evaluate
    from ptychopinn.inference.predict import InferConfig, reconstruct

    torch.set_num_threads(a.threads)
    print(json.dumps({"machine": gen._ttq().machine()}), flush=True)
    for variant in gen.VARIANTS:
        runs = [r for r in ("run_unrolled", "run_pinn") if (a.gen / variant / r).is_dir()]
        if not runs:
            continue
        data = simulate(gen.simulation(variant, a.gen / variant, quick=False))
        halves = dict(zip(("train", "test"), split_dataset(data, axis="y", fraction=0.5),
                          strict=True))
        for run in runs:
            for half, d in halves.items():
                row = {"variant": variant, "model": run.removeprefix("run_"), "half": half}
                for k in (0, a.steps):
                    r = reconstruct(a.gen / variant / run, d,
                                    InferConfig(show_progress=False, object_steps=k))
                    m = evaluate(data.obj, r.object,
                                 region=gen._ttq().common_region([r.coverage]))
                    row[f"obj{k}"] = [round(float(m["phase"]["ssim"]), 4),
                                      round(float(m["amplitude"]["ssim"]), 4),
                                      round(r.info["seconds"], 2)]
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
