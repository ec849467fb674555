"""Sparse overlap (issue #13 target): networks trained on the dense train half, tested on the test
half thinned to a minimum centre spacing (default 28 px: overlap ≈ 0.2), against LSQML-100 on the
same sparse positions, in one run. Prints one JSON line per method and writes ``OUT/sparse.json``.

    python benchmarks/sparse.py --run unrolled=lc_unrolled/run --run pinn=lc_pinn/run
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from learning_curve import quality, scene
from standard_scene import machine

from ptychopinn.data.simulate import probe_diameter
from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.iterative.run import IterativeConfig, run_iterative_on_dataset
from ptychopinn.studies.views import overlap_stats, thin_positions


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", default=[], metavar="NAME=RUN_DIR",
                   help="trained run directory (repeatable)")
    p.add_argument("--min-spacing", type=float, default=28.0, help="pixels")
    p.add_argument("--photons", type=float, default=1e6)
    p.add_argument("--lsqml-epochs", type=int, default=100)
    p.add_argument("--out", type=Path, default=Path("sparse_out"))
    a = p.parse_args()
    data, _, te = scene(a.photons, 2000)
    sp = te.subset(np.asarray(thin_positions(te.positions, a.min_spacing, rng=0)))
    diameter = probe_diameter(data.probe)
    head = {"machine": machine(), "patterns": sp.n_patterns, "min_spacing": a.min_spacing,
            "photons": a.photons, "overlap": overlap_stats(sp.positions, diameter)}
    print(json.dumps(head), flush=True)
    rows = {}
    for item in a.run:
        name, run = item.split("=", 1)
        t0 = time.perf_counter()
        r = reconstruct(run, sp, InferConfig(show_progress=False))
        rows[name] = {"seconds": time.perf_counter() - t0, "gridsize": r.info["gridsize"],
                      **quality(data, r)}
        print(json.dumps({name: rows[name]}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        r = run_iterative_on_dataset(sp, Path(tmp) / "lsqml",
                                     IterativeConfig(epochs=a.lsqml_epochs))
    rows[f"LSQML-{a.lsqml_epochs}"] = {"seconds": r.info["wall_time_s"], **quality(data, r)}
    print(json.dumps({f"LSQML-{a.lsqml_epochs}": rows[f"LSQML-{a.lsqml_epochs}"]}), flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "sparse.json").write_text(json.dumps({**head, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
