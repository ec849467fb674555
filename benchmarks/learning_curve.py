"""Learning curve (issue 13): quality on the unseen and on the trained half against training time.

One model configuration, the standard scene (lines object, XPP probe, 2000 random positions, 64 px
patches, 1e6 photons, y-split 0.5). Training resumes from its checkpoint at each budget (Lightning's
timer is cumulative), so one run gives every point. After each budget the bundle reconstructs the
test half (never trained on) and the train half; SSIM/PSNR against the ground truth, throughput.
Writes ``OUT/learning_curve.json`` and ``OUT/learning_curve.png``; prints one JSON line per point.

    python benchmarks/learning_curve.py --name unrolled \
        --overrides '{"model": {"kind": "unrolled"}}' --minutes 2.5,5,10 --out lc_unrolled
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from standard_scene import XPP, machine

from ptychopinn.config import RunConfig
from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.data.split import split_dataset
from ptychopinn.evaluation import evaluate
from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.training.api import train


def scene(photons: float, n_positions: int, seed: int = 7, object_kind: str = "lines"):
    """The standard scene split along y: (full, train half, test half)."""
    probe = str(XPP) if XPP.exists() else "disk"
    data = simulate(SimulationConfig(object=object_kind, probe=probe, n_positions=n_positions,
                                     object_size=256, patch_size=64, photons=photons,
                                     seed=seed))
    tr, te = split_dataset(data, axis="y", fraction=0.5)
    return data, tr, te


def config_from(overrides: dict, minutes: float | None, epochs: int | None = None
                ) -> RunConfig:
    """RunConfig with JSON section overrides (an older ``model.gridsize`` sets grouping's)."""
    model = dict(overrides.get("model", {}))
    grouping = dict(overrides.get("grouping", {}))
    train_o = {"show_progress": False, **overrides.get("train", {}),
               "epochs": epochs or 100_000, "max_minutes": minutes}
    return RunConfig().with_overrides(model=model, grouping=grouping, train=train_o)


def quality(data, recon) -> dict:
    m = evaluate(data.obj, recon.object, coverage=recon.coverage)
    return {"phase_ssim": m["phase"]["ssim"], "amp_ssim": m["amplitude"]["ssim"],
            "phase_psnr": m["phase"]["psnr"], "amp_psnr": m["amplitude"]["psnr"]}


def plot(points: list[dict], path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.2), constrained_layout=True)
    for ax, key, lab in zip(fig.subplots(1, 2), ("phase_ssim", "amp_ssim"),
                            ("phase SSIM", "amplitude SSIM"), strict=True):
        t = [p["minutes"] for p in points]
        ax.plot(t, [p["test"][key] for p in points], "o-", label="test half (unseen)")
        ax.plot(t, [p["train"][key] for p in points], "s--", label="train half")
        ax.set_xscale("log")
        ax.set_xticks(t, [f"{m:g}" for m in t])
        ax.minorticks_off()
        ax.set_xlabel("training minutes")
        ax.set_ylabel(lab)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=8)
    import textwrap

    fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=8)
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", default="pinn", help="label for this configuration")
    p.add_argument("--overrides", default="{}", help="JSON {model:{..}, grouping:{..}, train:{..}}")
    p.add_argument("--minutes", default="2.5,5,10,20", help="cumulative training budgets")
    p.add_argument("--epochs", default=None,
                   help="cumulative epoch budgets instead of minutes (for runs on a busy machine)")
    p.add_argument("--photons", type=float, default=1e6)
    p.add_argument("--n-positions", type=int, default=2000)
    p.add_argument("--object", default="lines", help="lines | grf (scene object)")
    p.add_argument("--out", type=Path, default=Path("lc_out"))
    a = p.parse_args()
    overrides = json.loads(a.overrides)
    data, tr, te = scene(a.photons, a.n_positions, object_kind=a.object)
    head = {"machine": machine(), "name": a.name, "overrides": overrides,
            "train_patterns": tr.n_patterns, "test_patterns": te.n_patterns,
            "photons": a.photons, "object": a.object}
    print(json.dumps(head), flush=True)
    run = a.out / "run"
    points = []
    elapsed = 0.0
    budgets = ([(None, int(e)) for e in a.epochs.split(",")] if a.epochs else
               [(float(m), None) for m in a.minutes.split(",")])
    for minutes, epochs in budgets:
        cfg = config_from(overrides, minutes, epochs)
        t0 = time.perf_counter()
        res = train(tr, run, cfg, resume=(run / "checkpoints" / "last.ckpt").exists())
        t_seg = time.perf_counter() - t0
        elapsed += res.train_seconds
        rec_te = reconstruct(run, te, InferConfig(show_progress=False))
        rec_tr = reconstruct(run, tr, InferConfig(show_progress=False))
        pt = {"minutes": minutes if minutes else elapsed / 60,
              "epochs": res.epochs_completed, "segment_s": t_seg,
              "train_patterns_per_s": res.patterns_per_second,
              "infer_patterns_per_s": rec_te.info["patterns_per_second"],
              "test": quality(data, rec_te), "train": quality(data, rec_tr)}
        points.append(pt)
        print(json.dumps(pt), flush=True)
        out = {**head, "points": points}
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "learning_curve.json").write_text(json.dumps(out, indent=2))
        plot(points, a.out / "learning_curve.png", f"{a.name}: {json.dumps(overrides)}")


if __name__ == "__main__":
    main()
