"""``ptychopinn demo``: simulate → split → train (PINN, baseline) → infer → [pty-chi] → compare."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Demo sizes. ``train_minutes`` is the budget per model; ``quick`` shrinks everything."""

    out: Path
    seed: int = 0
    train_minutes: float = 2.0
    quick: bool = False
    with_iterative: bool = True


def run_demo(cfg: DemoConfig) -> str:
    """Run the whole pipeline into ``cfg.out``; returns a Markdown summary (also written)."""
    from ptychopinn.config import RunConfig
    from ptychopinn.data.inspect import inspect_dataset, report_markdown
    from ptychopinn.data.io import atomic_path, save_dataset
    from ptychopinn.data.simulate import SimulationConfig, simulate
    from ptychopinn.data.split import split_dataset
    from ptychopinn.evaluation.compare import compare_reconstructions
    from ptychopinn.inference.predict import reconstruct, save_reconstruction
    from ptychopinn.training.api import train
    from ptychopinn.viz import dataset_overview

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.quick:
        sim = SimulationConfig(object_size=96, patch_size=32, n_positions=240, seed=cfg.seed)
        epochs, minutes = 2, None
    else:
        sim = SimulationConfig(object_size=224, patch_size=64, n_positions=1200, seed=cfg.seed)
        epochs, minutes = 1000, cfg.train_minutes
    logger.info("[1/5] simulating %d patterns (%dx%d)", sim.n_positions, sim.patch_size,
                sim.patch_size)
    data = simulate(sim)
    save_dataset(data, out / "data.npz")
    train_d, test_d = split_dataset(data, axis="y", fraction=0.5)
    save_dataset(train_d, out / "train.npz")
    save_dataset(test_d, out / "test.npz")
    dataset_overview(data, out / "dataset.png")
    with atomic_path(out / "inspect.md") as tmp:
        tmp.write_text(report_markdown(inspect_dataset(data, path=out / "data.npz")))
    recons = {}
    for name, kind, gs in (("PtychoPINN", "pinn", 2), ("Baseline", "baseline", 1)):
        logger.info("[2/5] training %s (gridsize %d)", name, gs)
        rc = RunConfig().with_overrides(
            model={"kind": kind, "gridsize": gs, "n": sim.patch_size},
            grouping={"gridsize": gs},
            train={"epochs": epochs, "max_minutes": minutes, "seed": cfg.seed})
        run_dir = out / f"run_{kind}"
        resume = (run_dir / "checkpoints" / "last.ckpt").exists()
        train(train_d, run_dir, rc, resume=resume, data_path=out / "train.npz")
        logger.info("[3/5] inferring %s on the held-out region", name)
        r = reconstruct(run_dir, test_d)
        save_reconstruction(r, out / f"recon_{kind}")
        recons[name] = (r.object, r.coverage)
    from ptychopinn.iterative import is_available

    if cfg.with_iterative and is_available():
        from ptychopinn.iterative.run import IterativeConfig, run_iterative_on_dataset

        logger.info("[4/5] pty-chi LSQML on the held-out region")
        r = run_iterative_on_dataset(test_d, out / "recon_lsqml",
                                     IterativeConfig(epochs=5 if cfg.quick else 50))
        recons["PtyChi-LSQML"] = (r.object, r.coverage)
    logger.info("[5/5] comparing against ground truth")
    rows = compare_reconstructions(data.obj, recons, out / "compare")
    lines = ["# ptychopinn demo", "", f"Output folder: `{out}`", "",
             "| model | part | SSIM | PSNR (dB) | FRC 0.5 (cyc/px) |", "|---|---|---|---|---|"]
    table: dict = {}
    for r in rows:
        table.setdefault((r["model"], r["part"]), {})[r["metric"]] = r["value"]
    for (model, part), m in table.items():
        lines.append(f"| {model} | {part} | {m.get('ssim', float('nan')):.3f} | "
                     f"{m.get('psnr', float('nan')):.2f} | {m.get('frc50', float('nan')):.3f} |")
    lines += ["", "Figures: `dataset.png`, `compare/comparison.png`, `recon_*/amplitude.png`, "
              "`recon_*/phase.png`.", ""]
    summary = "\n".join(lines)
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(summary)
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(rows, indent=2, default=str))
    return summary
