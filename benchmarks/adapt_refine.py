"""Using the scan itself (issue #16): test-time adaptation and PINN-initialised LSQML on the
standard scene's test half, through the CLI (`ptychopinn infer --adapt-minutes / --refine`).

For each trained run: ``infer --adapt-minutes 2``; for each ``--refine-run``: ``infer --refine
lsqml --refine-epochs K`` for K in ``--epochs``. Quality of the result (and, for refinement, of the
network's own object) against ground truth; one JSON line per job. Compare refinement with the
flat-start LSQML trajectory of ``benchmarks/time_to_quality.py`` (LSQML-2K).

    python benchmarks/adapt_refine.py --adapt-run pinn=lc_pinn/run \\
        --adapt-run unrolled=lc_unrolled/run --refine-run unrolled=lc_unrolled/run --epochs 5,10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from learning_curve import quality, scene

from ptychopinn.data.io import save_dataset
from ptychopinn.inference.predict import load_reconstruction


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--adapt-run", action="append", default=[], metavar="NAME=RUN_DIR")
    p.add_argument("--refine-run", action="append", default=[], metavar="NAME=RUN_DIR")
    p.add_argument("--adapt-minutes", type=float, default=2.0)
    p.add_argument("--epochs", default="5,10", help="refinement epochs K")
    p.add_argument("--out", type=Path, default=Path("ar_out"))
    a = p.parse_args()
    data, _, te = scene(1e6, 2000)
    a.out.mkdir(parents=True, exist_ok=True)
    save_dataset(te, a.out / "test.npz")
    jobs = [(f"{n}_adapt", ["--model", r, "--adapt-minutes", str(a.adapt_minutes)])
            for n, r in (x.split("=", 1) for x in a.adapt_run)]
    jobs += [(f"{n}_lsqml{k}", ["--model", r, "--refine", "lsqml", "--refine-epochs", k])
             for n, r in (x.split("=", 1) for x in a.refine_run) for k in a.epochs.split(",")]
    for name, args in jobs:
        t = time.perf_counter()
        subprocess.run(["ptychopinn", "infer", "--data", str(a.out / "test.npz"), "--out",
                        str(a.out / name), *args], check=True, capture_output=True)
        rec = load_reconstruction(a.out / name)
        row = {"name": name, "wall_s": time.perf_counter() - t, **quality(data, rec),
               "info": {k: v for k, v in rec.info.items()
                        if "seconds" in k or k.startswith(("adapt_", "refine"))}}
        if (a.out / name / "network").exists():
            row["network_only"] = quality(data, load_reconstruction(a.out / name / "network"))
        print(json.dumps(row, default=str), flush=True)


if __name__ == "__main__":
    main()
