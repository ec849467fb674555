"""Recipe audit (issue 13): the faithful PtychoPINN network, one change at a time, equal budget.

Each variant changes one setting of the default ``model.kind: pinn`` configuration toward the
original PtychoPINN recipe (width, learning rate, LR plateau on the validation loss, batch size,
BatchNorm, intensity-scale handling, central-region decoder) and trains from scratch on the
standard scene's train half for the same wall time. Quality on the unseen test half and on the
train half, training and inference throughput. Prints one JSON line per variant and a markdown
table; writes ``OUT/recipe_audit.json``.

    python benchmarks/recipe_audit.py --minutes 2.5 --out audit_out
    python benchmarks/recipe_audit.py --only base,width2 --minutes 5
    python benchmarks/recipe_audit.py --epochs 4      # equal epochs, on a busy machine
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from learning_curve import config_from, quality, scene
from standard_scene import machine

from ptychopinn.inference.predict import InferConfig, reconstruct
from ptychopinn.training.api import train

#: name -> (what changes, overrides relative to today's defaults)
VARIANTS: dict[str, tuple[str, dict]] = {
    "base": ("today's defaults (16 base filters, lr 2e-3, batch 8, BatchNorm, learned scale)", {}),
    "width2": ("n_filters_scale 2 (base 32, as the original)", {"model": {"n_filters_scale": 2.0}}),
    "lr1e-3": ("learning rate 1e-3", {"train": {"learning_rate": 1e-3}}),
    "lr1e-3_val": ("lr 1e-3 + LR plateau on the validation loss",
                   {"train": {"learning_rate": 1e-3, "plateau_monitor": "val"}}),
    "batch16": ("batch 16 groups", {"train": {"batch_size": 16}}),
    "no_bn": ("no BatchNorm (as the original)", {"model": {"batch_norm": False}}),
    "fixed_scale": ("intensity scale fixed at its data-derived value (not learned)",
                    {"model": {"learn_scale": False}}),
    "full_decoder": ("decoder predicts all N×N (no central region + border branch)",
                     {"model": {"pad_object": False}}),
}


def run_variant(name: str, overrides: dict, minutes: float | None, epochs: int | None,
                tr, te, data, out: Path) -> dict:
    """Train one variant from scratch for ``minutes`` (or ``epochs``); quality on both halves."""
    run = out / name
    cfg = config_from(overrides, minutes, epochs)
    t0 = time.perf_counter()
    res = train(tr, run, cfg)
    wall = time.perf_counter() - t0
    rec_te = reconstruct(run, te, InferConfig(show_progress=False))
    rec_tr = reconstruct(run, tr, InferConfig(show_progress=False))
    return {"variant": name, "change": VARIANTS[name][0], "overrides": overrides,
            "minutes": minutes, "epochs": res.epochs_completed,
            "train_minutes": res.train_seconds / 60, "train_wall_s": wall,
            "train_patterns_per_s": res.patterns_per_second,
            "infer_patterns_per_s": rec_te.info["patterns_per_second"],
            "test": quality(data, rec_te), "train": quality(data, rec_tr)}


def table(rows: list[dict]) -> str:
    """Markdown table, deltas against the ``base`` row when present."""
    base = next((r for r in rows if r["variant"] == "base"), None)
    lines = ["| variant | change | epochs | train min | train p/s | test phase / amp SSIM "
             "| Δ phase vs base | train-half phase / amp |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d = (f"{r['test']['phase_ssim'] - base['test']['phase_ssim']:+.3f}" if base else "")
        lines.append(f"| {r['variant']} | {r['change']} | {r['epochs']} | "
                     f"{r['train_minutes']:.1f} | "
                     f"{r['train_patterns_per_s']:.0f} | {r['test']['phase_ssim']:.3f} / "
                     f"{r['test']['amp_ssim']:.3f} | {d} | {r['train']['phase_ssim']:.3f} / "
                     f"{r['train']['amp_ssim']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=2.5, help="training minutes per variant")
    p.add_argument("--epochs", type=int, default=None,
                   help="equal epochs instead of equal minutes (for a busy machine: the "
                        "table then also gives each variant's training minutes)")
    p.add_argument("--only", default=None, help="comma-separated variant names (default: all)")
    p.add_argument("--photons", type=float, default=1e6)
    p.add_argument("--n-positions", type=int, default=2000)
    p.add_argument("--out", type=Path, default=Path("audit_out"))
    a = p.parse_args()
    names = a.only.split(",") if a.only else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; variants: {', '.join(VARIANTS)}")
    data, tr, te = scene(a.photons, a.n_positions)
    head = {"machine": machine(), "minutes": None if a.epochs else a.minutes,
            "epochs": a.epochs, "photons": a.photons,
            "train_patterns": tr.n_patterns, "test_patterns": te.n_patterns}
    print(json.dumps(head), flush=True)
    rows = []
    a.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        rows.append(run_variant(name, VARIANTS[name][1], None if a.epochs else a.minutes,
                                a.epochs, tr, te, data, a.out))
        print(json.dumps(rows[-1]), flush=True)
        (a.out / "recipe_audit.json").write_text(json.dumps({**head, "rows": rows}, indent=2))
    print(table(rows))


if __name__ == "__main__":
    main()
