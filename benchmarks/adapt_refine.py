"""Using the scan itself (issue #16): test-time adaptation and PINN-initialised LSQML on the
standard scene's test half, through the CLI (`ptychopinn infer --adapt-minutes / --refine`).

For each trained run: ``infer --adapt-minutes T``; for each ``--refine-run``: ``infer --refine
lsqml --refine-epochs K`` for K in ``--epochs``, each right after (same run, as close to the
same machine load as possible) flat-start ``ptychopinn iterative --algorithm lsqml --epochs 2K``
(pty-chi's default start, the same batch size and seed), the target. Quality of each result
(and, for refinement, of the network's own object) against ground truth; one JSON line per job,
then one ``verdict`` line per K: PINN + LSQML-K against flat LSQML-2K in phase SSIM and in time
(network inference + pty-chi reconstruction vs pty-chi reconstruction; each also end to end,
process start included).

    python benchmarks/adapt_refine.py --refine-run unrolled=lc_unrolled/run --epochs 5,10
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

from ptychopinn.inference.predict import load_reconstruction
from ptychopinn.io.dataset import save_dataset


def _run(cmd: list[str], out: Path, data) -> dict:
    """Run one CLI job into ``out``; its quality and timings."""
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    rec = load_reconstruction(out)
    row = {"wall_s": time.perf_counter() - t, **quality(data, rec),
           "info": {k: v for k, v in rec.info.items()
                    if "seconds" in k or "time" in k or k.startswith(("adapt_", "refine"))}}
    if (out / "network").exists():
        row["network_only"] = quality(data, load_reconstruction(out / "network"))
    return row


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
    test = a.out / "test.npz"
    save_dataset(te, test)
    infer = ["ptychopinn", "infer", "--data", str(test)]
    for name, run in (x.split("=", 1) for x in a.adapt_run):
        out = a.out / f"{name}_adapt"
        row = _run([*infer, "--out", str(out), "--model", run, "--adapt-minutes",
                    str(a.adapt_minutes)], out, data)
        print(json.dumps({"name": out.name, **row}, default=str), flush=True)
    ks = [int(k) for k in a.epochs.split(",")]
    for name, run in (x.split("=", 1) for x in a.refine_run):
        for k in ks:  # the flat-start target LSQML-2K right before PINN + LSQML-K (same load)
            out = a.out / f"flat_lsqml{2 * k}"
            target = _run(["ptychopinn", "iterative", "--data", str(test), "--out", str(out),
                           "--algorithm", "lsqml", "--epochs", str(2 * k), "--seed", "0"],
                          out, data)
            print(json.dumps({"name": out.name, **target}, default=str), flush=True)
            out = a.out / f"{name}_lsqml{k}"
            row = _run([*infer, "--out", str(out), "--model", run, "--refine", "lsqml",
                        "--refine-epochs", str(k)], out, data)
            print(json.dumps({"name": out.name, **row}, default=str), flush=True)
            info = row["info"]
            ours_s = info["inference_seconds"] + info["refine_seconds"]
            flat_s = target["info"]["wall_time_s"]
            print(json.dumps({
                "verdict": f"{name}+LSQML-{k} vs flat LSQML-{2 * k}",
                "phase_ssim": [row["phase_ssim"], target["phase_ssim"]],
                "amp_ssim": [row["amp_ssim"], target["amp_ssim"]],
                "seconds": [ours_s, flat_s], "end_to_end_s": [row["wall_s"], target["wall_s"]],
                "quality_met": row["phase_ssim"] >= target["phase_ssim"],
                "faster": ours_s < flat_s}), flush=True)

if __name__ == "__main__":
    main()
