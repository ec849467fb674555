"""Plain inference speed and quality by grouping (issue 13: ≥ 500 patterns/s incl. stitching).

Reconstructs the standard scene's test half (987 patterns, 64 px) with a trained bundle, for
each inference grouping (``cover``: overlapping neighbour groups holding every pattern;
``partition``: disjoint groups, each pattern once) and group side. Wall time includes grouping,
reading, the network and stitching. Variants are run interleaved, ``--reps`` rounds, median
reported. Prints one JSON line per variant and a markdown table.

    python benchmarks/learning_curve.py --name unrolled --epochs 4 --out lc_unrolled \
        --overrides '{"model": {"kind": "unrolled"}, "grouping": {"gridsize": 3,
                      "neighbor_count": 12, "inference_gridsize": 5}}'
    python benchmarks/infer_speed.py --model lc_unrolled/run --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from learning_curve import quality, scene
from standard_scene import machine

from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.training.bundle import load_bundle


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="trained run directory")
    p.add_argument("--variants", default="cover:5,partition:5,partition:6,partition:7,cover:4,"
                   "partition:4", help="comma-separated GROUPS:GRIDSIZE")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    data, _, te = scene(1e6, 2000)
    bundle = load_bundle(a.model)
    variants = [(g, int(s)) for g, s in (v.split(":") for v in a.variants.split(","))]
    print(json.dumps({"machine": machine(), "model_kind": bundle.model.cfg.kind,
                      "patterns": te.n_patterns}), flush=True)
    times: dict[tuple, list[float]] = {v: [] for v in variants}
    info: dict[tuple, dict] = {}
    for _ in range(a.reps):
        for groups, gs in variants:
            t = time.perf_counter()
            r = reconstruct(bundle, te, InferConfig(show_progress=False, groups=groups,
                                                    gridsize=gs))
            times[(groups, gs)].append(time.perf_counter() - t)
            info[(groups, gs)] = {"n_groups": r.info["n_groups"], **quality(data, r)}
    rows = []
    for (groups, gs), ts in times.items():
        wall = statistics.median(ts)
        row = {"groups": groups, "gridsize": gs, "wall_s": wall,
               "patterns_per_s": te.n_patterns / wall, **info[(groups, gs)]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("| groups | gridsize | groups predicted | wall s | patterns/s | test phase / amp SSIM |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['groups']} | {r['gridsize']} | {r['n_groups']} | {r['wall_s']:.2f} | "
              f"{r['patterns_per_s']:.0f} | {r['phase_ssim']:.3f} / {r['amp_ssim']:.3f} |")


if __name__ == "__main__":
    main()
