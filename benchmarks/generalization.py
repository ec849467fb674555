"""Generalization (issue #21): the shipped general model on unseen scans, one change at a time.

Every scan is simulated on a 192² object with 1000 random positions (64-px patterns) and split
in y; all methods are scored on the test half against the truth, on the common scanned region,
with the same torch thread count:

* ``general``: the shipped model, plain inference (the scan's probe and count scale; its 20
  data-consistency steps on the whole stitched object, ``model.object_steps``);
* ``general0``: the network alone (no object steps, no plain group steps);
* ``general_g9``: the previous default, 9 plain steps on each group canvas and no object steps;
* ``general+adapt``: the same, first adapted to the test half for ``--adapt-minutes``;
* ``own``: an ``unrolled`` model trained ``--own-minutes`` on the train half of the same
  conditions (only for the variants in ``--own``), plain inference with the general model's
  object steps (the same inference as ``general``); ``own0``: the same model without them;
* ``pinn``: the faithful PtychoPINN network trained ``--own-minutes`` likewise (only for the
  variants in ``--pinn``);
* LSQML-5/20/100 from one pty-chi run with snapshots every 5 epochs (quality and loop time at
  epochs 5, 20 and ``--lsqml-epochs``).

Variants (``--variants``; held out = never in ``scripts/general_corpus.yaml``): ``base`` (lines
object, disk probe, 1e6 photons, random scan, overlap 0.7); ``object`` (the held-out ``camera``
photograph); ``probe`` (the held-out ``square`` aperture family); ``dose1e3``, ``dose1e4``,
``dose1e9``; ``sparse`` (raster, overlap 0.3); ``spiral``.

    python benchmarks/generalization.py --out bench_gen [--variants base,object,probe,dose1e4]
    python benchmarks/generalization.py --quick      # two variants, seconds-long budgets

Writes ``OUT/generalization.json``, ``OUT/generalization.md`` (the table) and
``OUT/generalization.png`` after every variant, and prints the table and the machine. A rerun
with the same ``--out`` keeps the rows already there and runs only the missing variants.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.data.split import split_dataset
from ptychopinn.evaluation import evaluate, trajectory
from ptychopinn.inference.adapt import AdaptConfig
from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.inference.workflow import run_inference

HERE = Path(__file__).resolve().parent
VARIANTS = ("base", "object", "probe", "dose1e3", "dose1e4", "dose1e9", "sparse", "spiral")


def _ttq():
    """``benchmarks/time_to_quality.py`` (machine info, common region)."""
    name = "benchmarks_time_to_quality"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "time_to_quality.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def simulation(variant: str, work: Path, *, quick: bool) -> SimulationConfig:
    """The simulated scan of ``variant`` (one change from ``base``)."""
    kw: dict[str, Any] = dict(object="lines", probe="disk", scan="random", overlap=0.7,
                              photons=1e6, object_size=128 if quick else 192, patch_size=64,
                              n_positions=300 if quick else 1000, seed=21)
    if variant == "object":
        import skimage.data

        kw["object"] = str(Path(skimage.data.__file__).parent / "camera.png")
    elif variant == "probe":
        from ptychopinn.data.corpus import make_probe

        p, _ = make_probe("square", 64, np.random.default_rng(5), diameter=(0.45, 0.5))
        path = work / "square_probe.npz"
        np.savez(path, probeGuess=p)
        kw["probe"] = str(path)
    elif variant.startswith("dose"):
        kw["photons"] = float(variant[4:])
    elif variant == "sparse":
        kw.update(scan="raster", overlap=0.3, n_positions=None)
    elif variant == "spiral":  # a Fermat spiral at the overlap's step (120 fit the object)
        kw.update(scan="spiral", n_positions=120)
    elif variant != "base":
        raise ValueError(f"unknown variant {variant!r}; variants: {', '.join(VARIANTS)}")
    return SimulationConfig(**kw)


def _train_own(kind: str, train_d, run: Path, minutes: float) -> float:
    from ptychopinn.config import RunConfig
    from ptychopinn.training.api import train

    cfg = RunConfig.for_kind(kind).with_overrides(
        train={"epochs": 1_000_000, "max_minutes": minutes, "show_progress": False})
    return train(train_d, run, cfg).train_seconds


def run_variant(variant: str, out: Path, a: argparse.Namespace) -> dict[str, Any]:
    """All methods on one held-out scan; returns the numbers."""
    from ptychopinn.iterative import IterativeConfig
    from ptychopinn.iterative.run import run_iterative_on_dataset

    work = out / variant
    work.mkdir(parents=True, exist_ok=True)
    data = simulate(simulation(variant, work, quick=a.quick))
    train_d, test_d = split_dataset(data, axis="y", fraction=0.5)
    quiet = InferConfig(show_progress=False)
    recons: dict[str, Any] = {}
    times: dict[str, dict] = {}
    reconstruct("general", test_d, quiet)  # warm-up (imports, first allocation)
    r = reconstruct("general", test_d, quiet)
    recons["general"], times["general"] = r, {"infer_s": r.info["seconds"]}
    steps = r.info["object_steps"]
    for name, extra, obj_steps in (("general0", 0, 0), ("general_g9", 9, 0)):
        r = reconstruct("general", test_d, InferConfig(show_progress=False, extra_steps=extra,
                                                       object_steps=obj_steps))
        recons[name], times[name] = r, {"infer_s": r.info["seconds"]}
    r = run_inference("general", test_d, quiet, adapt_cfg=AdaptConfig(
        minutes=a.adapt_minutes, show_progress=False)).reconstruction
    recons["general+adapt"] = r
    times["general+adapt"] = {"infer_s": r.info["seconds"], "adapt_s": r.info["adapt_seconds"],
                              "adapt_epochs": r.info["adapt_epochs"],
                              "adapt_s_per_pattern": r.info["adapt_train_seconds"]
                              / max(1, r.info["adapt_epochs"]) / test_d.n_patterns}
    for kind, which in (("unrolled", a.own), ("pinn", a.pinn)):
        if variant in which:
            name = "own" if kind == "unrolled" else "pinn"
            train_s = _train_own(kind, train_d, work / f"run_{kind}", a.own_minutes)
            r = reconstruct(work / f"run_{kind}", test_d, quiet)
            recons[name], times[name] = r, {"infer_s": r.info["seconds"], "train_s": train_s}
            if kind == "unrolled":  # the general model's inference: its object steps
                recons["own0"], times["own0"] = recons[name], times[name]
                r = reconstruct(work / f"run_{kind}", test_d,
                                InferConfig(show_progress=False, object_steps=steps))
                recons[name] = r
                times[name] = {"infer_s": r.info["seconds"], "train_s": train_s}
    lsq = run_iterative_on_dataset(test_d, work / "lsqml", IterativeConfig(
        epochs=a.lsqml_epochs, snapshot_every=5 if not a.quick else 1, seed=0))
    region = _ttq().common_region([v.coverage for v in (*recons.values(), lsq)])
    row: dict[str, Any] = {"variant": variant, "test_patterns": test_d.n_patterns,
                           "simulation": json.loads(json.dumps(
                               data.metadata.get("simulation", {}), default=str))}
    for name, rec in recons.items():
        m = evaluate(data.obj, rec.object, region=region)
        row[name] = {**times[name], "phase_ssim": float(m["phase"]["ssim"]),
                     "amp_ssim": float(m["amplitude"]["ssim"])}
    traj = trajectory(data.obj, work / "lsqml" / "snapshots.npz", region=region)
    ph, am = traj.values("phase", "ssim"), traj.values("amplitude", "ssim")
    for k in (5, 20, a.lsqml_epochs):
        i = int(np.argmin(np.abs(np.asarray(traj.epochs) - k)))
        row[f"lsqml{k}"] = {"epochs": int(traj.epochs[i]), "seconds": float(traj.seconds[i]),
                            "phase_ssim": float(ph[i]), "amp_ssim": float(am[i])}
    print(json.dumps(row), flush=True)
    return row


def markdown(rows: list[dict], a: argparse.Namespace, info: dict) -> str:
    """One row per held-out scan: phase / amp SSIM and seconds of every method."""
    k = a.lsqml_epochs
    cols = ["general", "general0", "general_g9", "general+adapt", "own", "own0", "pinn",
            "lsqml5", "lsqml20", f"lsqml{k}"]
    head = ["scan (test half)", "general (plain)", "general, network alone",
            "general, 9 group steps (old default)", f"general + adapt ≤ {a.adapt_minutes:g} min",
            f"unrolled trained {a.own_minutes:g} min on own conditions (+ object steps)",
            "the same, network alone", f"pinn trained {a.own_minutes:g} min", "LSQML-5",
            "LSQML-20", f"LSQML-{k}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r['variant']} ({r['test_patterns']} patterns)"]
        for c in cols:
            v = r.get(c)
            if v is None:
                cells.append("—")
                continue
            t = v.get("seconds", v.get("infer_s"))
            extra = f" +{v['adapt_s']:.0f} s adapt" if "adapt_s" in v else ""
            cells.append(f"{v['phase_ssim']:.3f} / {v['amp_ssim']:.3f} ({t:.2f} s{extra})")
        lines.append("| " + " | ".join(cells) + " |")
    ad = [r["general+adapt"]["adapt_s_per_pattern"] for r in rows]
    lines += ["", "Cells: phase / amplitude SSIM (seconds: inference, or LSQML's loop time to "
              "that epoch). Adaptation seconds per pattern per epoch: "
              + ", ".join(f"{x * 1e3:.2f} ms" for x in ad) + ".",
              "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items())]
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], path: Path, lsqml_last: int) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax = fig.subplots()
    names = ["general", "general0", "general_g9", "general+adapt", "own", "own0", "pinn",
             "lsqml5", "lsqml20", f"lsqml{lsqml_last}"]
    x = np.arange(len(rows))
    w = 0.8 / len(names)
    for i, n in enumerate(names):
        y = [r[n]["phase_ssim"] if n in r else math.nan for r in rows]
        ax.bar(x + (i - len(names) / 2) * w, y, w, label=n)
    ax.set_xticks(x, [r["variant"] for r in rows])
    ax.set_ylabel("phase SSIM (test half)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=4)
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--own", default="object,probe,dose1e4",
                   help="variants that also get an unrolled model trained on own conditions")
    p.add_argument("--pinn", default="object", help="variants that also get the faithful pinn")
    p.add_argument("--own-minutes", type=float, default=5.0)
    p.add_argument("--adapt-minutes", type=float, default=1.0)
    p.add_argument("--lsqml-epochs", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    if a.quick:
        a.variants, a.own, a.pinn = "base,probe", "probe", ""
        a.own_minutes, a.adapt_minutes, a.lsqml_epochs = 0.1, 0.1, 20
    a.own, a.pinn = a.own.split(","), a.pinn.split(",")
    out = a.out or Path(tempfile.mkdtemp(prefix="generalization_"))
    out.mkdir(parents=True, exist_ok=True)
    info = _ttq().machine()
    print(json.dumps({"machine": info, "out": str(out)}), flush=True)
    t0 = time.perf_counter()
    # resumable: rows already in OUT/generalization.json are kept and their variants skipped;
    # the table, JSON and figure are rewritten after every variant
    js = out / "generalization.json"
    rows = json.loads(js.read_text())["rows"] if js.exists() else []
    for v in (v.strip() for v in a.variants.split(",")):
        if not v or v in {r["variant"] for r in rows}:
            continue
        rows.append(run_variant(v, out, a))
        md = markdown(rows, a, info)
        (out / "generalization.md").write_text(md)
        js.write_text(json.dumps({"rows": rows, "machine": info, "argv": sys.argv[1:],
                                  "seconds": time.perf_counter() - t0}, indent=2))
        figure(rows, out / "generalization.png", a.lsqml_epochs)
    print(markdown(rows, a, info))


if __name__ == "__main__":
    main()
