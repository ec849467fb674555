"""Quality per FFT (issue #22): SSIM against FFTs per pattern and wall time, one scan, one run.

Counted in the work that bounds both methods: 2-D FFTs (forward + inverse) per diffraction
pattern. The network reports its own count (``Reconstruction.info["ffts_per_pattern"]``: 2 per
data-consistency step per predicted member); pty-chi's LSQML is counted here, in-process on a
small scan, by wrapping ``torch.fft`` (``lsqml_ffts_per_epoch``; 6 per pattern per epoch with
pty-chi 2.2: forward and back propagation, the step-size search's propagated update directions
and the loss), and every LSQML snapshot is placed at ``epoch × that``.

Scene: the standard scene of ``learning_curve.py`` (lines object, XPP probe, 2000 random
positions, 64 px, seed 7, y-split), at ``--photons``, or ``--object grf``. Networks train on
the train half (``--train NAME=JSON`` for ``--minutes``) or are reused (``--run
NAME=RUN_DIR``); every network is run on the test half (never trained on) with each inference
``--settings`` entry ``gG`` (partition groups of G², ``G=0`` the bundle's own) or ``gG+X``
(X extra plain data-consistency steps after the learned ones); a warm-up call, then the median
of ``--repeats`` timed calls. LSQML (pty-chi, ``--threads`` threads) runs ``--lsqml-epochs``
with a snapshot every epoch. All are scored on the common scanned region against the truth.

Writes ``OUT/quality_per_fft.json``, ``.md`` and ``.png`` (phase / amplitude SSIM against FFTs
per pattern and against wall time, log axes) and prints the table and the machine.

    python benchmarks/quality_per_fft.py --run unrolled=lc_u/run --train pinn='{}' \\
        --minutes 5 --settings g0,g20,g20+3,g20+9 --lsqml-epochs 100 --out qpf
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_curve import config_from, scene  # noqa: E402
from time_to_quality import _write, common_region, machine, parse_variants  # noqa: E402

from ptychopinn.evaluation import evaluate, trajectory  # noqa: E402
from ptychopinn.inference.predict import InferConfig, reconstruct  # noqa: E402


def lsqml_ffts_per_epoch(threads: int) -> float:
    """2-D FFTs per pattern per epoch of pty-chi's LSQML, counted in-process (one small scan,
    two epochs; the wrapped ``torch.fft`` functions are restored afterwards)."""
    from ptychopinn.data.simulate import SimulationConfig, simulate
    from ptychopinn.iterative import IterativeConfig, _worker
    from ptychopinn.iterative import ptychi_backend as pb

    count = [0]
    saved = {name: getattr(torch.fft, name) for name in ("fft2", "ifft2", "fftn", "ifftn")}

    def counting(fn, ndim):
        def wrapped(x, *args, **kwargs):
            dims = kwargs.get("dim", args[1] if len(args) > 1 else None)
            nd = ndim or (len(dims) if dims is not None else x.dim())
            count[0] += math.prod(x.shape[:-nd]) * (nd // 2)
            return fn(x, *args, **kwargs)
        return wrapped

    run_worker = pb._run_worker
    d = simulate(SimulationConfig(object="lines", probe="disk", n_positions=100,
                                  object_size=96, patch_size=32, photons=1e6, seed=0))
    try:
        for name, fn in saved.items():
            setattr(torch.fft, name, counting(fn, 2 if name.endswith("2") else 0))
        pb._run_worker = lambda i, o, c, **k: _worker._main(i, o, threads)
        epochs = 2
        pb.run_iterative(np.asarray(d.diffraction, np.float32),
                         d.positions - d.positions.min(0) + 20, d.probe, (140, 140),
                         IterativeConfig(epochs=epochs, num_threads=threads),
                         show_progress=False)
    finally:
        for name, fn in saved.items():
            setattr(torch.fft, name, fn)
        pb._run_worker = run_worker
    return count[0] / d.n_patterns / epochs


def parse_setting(text: str) -> tuple[int, int]:
    """``gG`` or ``gG+X`` -> (G, X)."""
    g, _, x = text.strip().lstrip("g").partition("+")
    return int(g), int(x or 0)


def run_network(name: str, run_dir: Path, test, settings: list[str], repeats: int) -> list[dict]:
    """Plain inference on the test half for every setting: time, FFTs, reconstruction."""
    from ptychopinn.training.bundle import load_bundle

    bundle = load_bundle(run_dir)
    canvas = bundle.model.canvas
    out = []
    for text in settings:
        g, x = parse_setting(text)
        if not canvas and (g or x):
            continue  # a CNN has one grouping and no data-consistency steps
        cfg = InferConfig(show_progress=False, gridsize=g or None, extra_steps=x)
        rec = reconstruct(bundle, test, cfg)  # warm-up; its result is the one scored
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            reconstruct(bundle, test, cfg)
            times.append(time.perf_counter() - t0)
        pt = {"name": name, "setting": text, "gridsize": rec.info["gridsize"],
              "extra_steps": x, "ffts_per_pattern": rec.info["ffts_per_pattern"],
              "seconds": statistics.median(times), "recon": rec}
        print(json.dumps({k: v for k, v in pt.items() if k != "recon"}), flush=True)
        out.append(pt)
    return out


def figure(payload: dict, path: Path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig = Figure(figsize=(11, 7), layout="constrained")
    axes = fig.subplots(2, 2)
    traj = payload["lsqml"]["trajectory"]
    for row, part in enumerate(("phase", "amplitude")):
        for col, (xkey, xlab) in enumerate((("ffts_per_pattern", "FFTs per pattern"),
                                            ("seconds", "wall time (s)"))):
            ax = axes[row, col]
            ax.plot(traj[xkey], traj[part], "-o", ms=3, color="C0", label="LSQML (pty-chi)")
            names = sorted({p["name"] for p in payload["points"]})
            for i, name in enumerate(names):
                pts = [p for p in payload["points"] if p["name"] == name]
                # a CNN runs no FFT: drawn at 1 on the log axis, labelled
                xs = [max(p[xkey], 1.0) if xkey == "ffts_per_pattern" else p[xkey]
                      for p in pts]
                ax.plot(xs, [p[part] for p in pts], "*", ms=11, color=f"C{i + 1}", label=name)
                for x, p in zip(xs, pts, strict=True):
                    label = p["setting"] + (" (0 FFTs)" if p["ffts_per_pattern"] == 0
                                            and xkey == "ffts_per_pattern" else "")
                    ax.annotate(label, (x, p[part]), fontsize=6, textcoords="offset points",
                                xytext=(4, -8))
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(xlab)
            ax.set_ylabel(f"{part} SSIM")
            ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"quality per FFT, test half, {payload['photons']:.0e} photons, "
                 f"{payload['object']} object", fontsize=9)
    fig.savefig(path, dpi=110)


def markdown(payload: dict) -> str:
    rows = ["| method | setting | FFTs / pattern | wall s | phase SSIM | amp SSIM |",
            "|---|---|---|---|---|---|"]
    for p in payload["points"]:
        rows.append(f"| {p['name']} | {p['setting']} | {p['ffts_per_pattern']:.1f} | "
                    f"{p['seconds']:.2f} | {p['phase']:.3f} | {p['amplitude']:.3f} |")
    t = payload["lsqml"]["trajectory"]
    for i, ep in enumerate(t["epochs"]):
        if ep in payload["lsqml_rows"]:
            rows.append(f"| LSQML | {ep} epochs | {t['ffts_per_pattern'][i]:.0f} | "
                        f"{t['seconds'][i]:.2f} | {t['phase'][i]:.3f} | {t['amplitude'][i]:.3f} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR (a trained run)")
    p.add_argument("--train", action="append", default=[],
                   help="NAME=JSON overrides: train it on the train half for --minutes")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--settings", default="g0,g20,g20+3,g20+9")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--lsqml-epochs", type=int, default=100)
    p.add_argument("--lsqml-rows", default="1,2,3,5,10,20,50,100")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--photons", type=float, default=1e6)
    p.add_argument("--object", default="lines")
    p.add_argument("--n-positions", type=int, default=2000)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    full, tr, te = scene(a.photons, a.n_positions, object_kind=a.object)
    head = {"machine": machine(), "photons": a.photons, "object": a.object,
            "test_patterns": te.n_patterns}
    print(json.dumps(head), flush=True)
    runs = [(name, Path(d)) for name, d in parse_variants(a.run, "--run")]
    from ptychopinn.training.api import train

    for name, js in parse_variants(a.train, "--train"):
        run_dir = a.out / f"run_{name}"
        res = train(tr, run_dir, config_from(json.loads(js or "{}"), a.minutes),
                    resume=(run_dir / "checkpoints" / "last.ckpt").exists())
        print(json.dumps({name: {"train_s": res.train_seconds,
                                 "epochs": res.epochs_completed}}), flush=True)
        runs.append((name, run_dir))
    settings = a.settings.split(",")
    points = [pt for name, d in runs for pt in run_network(name, d, te, settings, a.repeats)]

    per_epoch = lsqml_ffts_per_epoch(a.threads)
    print(json.dumps({"lsqml_ffts_per_pattern_per_epoch": per_epoch}), flush=True)
    from ptychopinn.iterative import IterativeConfig
    from ptychopinn.iterative.run import run_iterative_on_dataset

    lsq = run_iterative_on_dataset(te, a.out / "lsqml", IterativeConfig(
        epochs=a.lsqml_epochs, snapshot_every=1, num_threads=a.threads, seed=0))
    region = common_region([lsq.coverage, *(pt["recon"].coverage for pt in points)])
    tj = trajectory(full.obj, a.out / "lsqml" / "snapshots.npz", region=region,
                    metrics=("ssim",))
    traj = {"epochs": [int(e) for e in tj.epochs], "seconds": [float(s) for s in tj.seconds],
            "ffts_per_pattern": [per_epoch * int(e) for e in tj.epochs],
            "phase": [float(v) for v in tj.values("phase", "ssim")],
            "amplitude": [float(v) for v in tj.values("amplitude", "ssim")]}
    for pt in points:
        m = evaluate(full.obj, pt.pop("recon").object, region=region)
        pt.update(phase=float(m["phase"]["ssim"]), amplitude=float(m["amplitude"]["ssim"]))
    payload = {**head, "command": " ".join(sys.argv), "runs": {n: str(d) for n, d in runs},
               "lsqml_ffts_per_pattern_per_epoch": per_epoch,
               "lsqml": {"epochs": a.lsqml_epochs, "trajectory": traj},
               "lsqml_rows": [int(e) for e in a.lsqml_rows.split(",")], "points": points}
    _write(a.out / "quality_per_fft.json", json.dumps(payload, indent=2))
    md = markdown(payload)
    _write(a.out / "quality_per_fft.md", md)
    figure(payload, a.out / "quality_per_fft.png")
    print(md)
    print(json.dumps(head["machine"]))


if __name__ == "__main__":
    main()
