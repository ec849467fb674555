"""``ptychopinn demo``: simulate → the shipped general model on the held-out half (no
training) → adapted to the scan → train (unrolled, faithful PINN, baseline) → infer →
[pty-chi with snapshots] → compare, with a time-to-quality plot and one sentence per method."""

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
    train_minutes: float = 1.5
    adapt_minutes: float = 1.0
    quick: bool = False
    with_iterative: bool = True


def run_demo(cfg: DemoConfig) -> str:
    """Run the whole pipeline into ``cfg.out``; returns a Markdown summary (also written)."""
    from ptychopinn.config import RunConfig
    from ptychopinn.data.inspect import inspect_dataset, report_markdown
    from ptychopinn.data.simulate import SimulationConfig, simulate
    from ptychopinn.data.split import split_dataset
    from ptychopinn.evaluation.compare import compare_reconstructions
    from ptychopinn.files import atomic_path
    from ptychopinn.inference.predict import reconstruct, save_reconstruction
    from ptychopinn.inference.workflow import run_inference
    from ptychopinn.io.dataset import save_dataset
    from ptychopinn.training.api import train
    from ptychopinn.viz import dataset_overview, object_pngs

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.quick:  # 64-px patterns: the shipped general model's size
        sim = SimulationConfig(object_size=128, patch_size=64, n_positions=200, seed=cfg.seed)
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
    from ptychopinn.inference.adapt import AdaptConfig
    from ptychopinn.models.registry import REGISTRY

    recons: dict = {}
    timing: dict[str, dict] = {}
    # the general model shipped with the package: a picture before any training, then
    # adapted to this very scan for a minute (physics loss, no labels)
    logger.info("[2/5] the shipped general model on the held-out region (no training)")
    r = reconstruct("general", test_d)
    save_reconstruction(r, out / "recon_general")
    object_pngs(r.object, r.coverage, out / "recon_general")
    recons[GENERAL] = (r.object, r.coverage)
    timing[GENERAL] = {"infer_s": r.info["seconds"]}
    logger.info("[2/5] the general model adapted to the held-out scan")
    adapt = (AdaptConfig(epochs=1, seed=cfg.seed) if cfg.quick
             else AdaptConfig(minutes=cfg.adapt_minutes, seed=cfg.seed))
    r = run_inference("general", test_d, adapt_cfg=adapt).reconstruction
    save_reconstruction(r, out / "recon_general_adapted")
    object_pngs(r.object, r.coverage, out / "recon_general_adapted")
    recons[ADAPTED] = (r.object, r.coverage)
    timing[ADAPTED] = {"adapt_s": r.info["adapt_seconds"], "infer_s": r.info["seconds"]}
    # then networks trained on the scan's other half: the unrolled physics network (the
    # default kind), the faithful PtychoPINN network and the supervised baseline, each with the
    # same training budget
    for kind, spec in REGISTRY.items():
        name = spec.display
        logger.info("[2/5] training %s (%s)", name, kind)
        rc = RunConfig.for_kind(kind).with_overrides(
            train={"epochs": epochs, "max_minutes": minutes, "seed": cfg.seed})
        run_dir = out / f"run_{kind}"
        resume = (run_dir / "checkpoints" / "last.ckpt").exists()
        res = train(train_d, run_dir, rc, resume=resume, data_path=out / "train.npz")
        logger.info("[3/5] inferring %s on the held-out region", name)
        r = reconstruct(run_dir, test_d)
        save_reconstruction(r, out / f"recon_{kind}")
        object_pngs(r.object, r.coverage, out / f"recon_{kind}")
        recons[name] = (r.object, r.coverage)
        timing[name] = {"train_s": res.train_seconds, "infer_s": r.info["seconds"]}
    from ptychopinn.iterative import is_available

    lsqml_traj = None
    if cfg.with_iterative and is_available():
        from ptychopinn.evaluation import trajectory
        from ptychopinn.iterative.run import IterativeConfig, run_iterative_on_dataset

        logger.info("[4/5] pty-chi LSQML on the held-out region (object saved every epoch)")
        lsqml_dir = out / "recon_lsqml"
        r = run_iterative_on_dataset(test_d, lsqml_dir, IterativeConfig(
            epochs=5 if cfg.quick else 50, snapshot_every=1))
        recons["PtyChi-LSQML"] = (r.object, r.coverage)
        timing["PtyChi-LSQML"] = {"infer_s": r.info.get("wall_time_s", r.info.get("seconds"))}
        lsqml_traj = trajectory(data.obj, lsqml_dir / "snapshots.npz", coverage=r.coverage)
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
    quality = {model: m.get("ssim", float("nan")) for (model, part), m in table.items()
               if part == "phase"}
    lines += ["", *_sentences(timing, quality, lsqml_traj)]
    if lsqml_traj is not None:
        _time_to_quality_plot(lsqml_traj, timing, table, out / "time_to_quality.png")
        lines += ["", "Time to quality: `time_to_quality.png` (LSQML's SSIM after every epoch "
                  "against wall time; the networks as points at their inference time)."]
    lines += ["", "Figures: `dataset.png`, `compare/comparison.png`, `recon_*/amplitude.png`, "
              "`recon_*/phase.png`.", ""]
    summary = "\n".join(lines)
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(summary)
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(rows, indent=2, default=str))
    return summary


#: Demo table names of the shipped general model, plain and adapted to the scan.
GENERAL = "PtychoPINN-General"
ADAPTED = "PtychoPINN-General+adapt"


def _sentences(timing: dict, phase_ssim: dict, traj) -> list[str]:
    """One line per method: time taken, quality reached, LSQML's time to the same quality."""
    out = []
    for name, t in timing.items():
        q = phase_ssim.get(name, float("nan"))
        if name.startswith("PtyChi"):
            out.append(f"- **{name}**: {t['infer_s']:.1f} s for the whole run, phase SSIM "
                       f"{q:.3f}.")
            continue
        if name == GENERAL:
            how = "shipped with the package (no training on this scan)"
        elif "adapt_s" in t:
            how = f"the shipped model adapted to the scan for {t['adapt_s']:.0f} s"
        else:
            how = f"trained {t['train_s'] / 60:.1f} min on the scan's other half"
        line = (f"- **{name}**: {how}, reconstructed the held-out scan in {t['infer_s']:.2f} s, "
                f"phase SSIM {q:.3f}")
        if traj is not None:
            reach = traj.time_to_reach(q, "phase", "ssim")
            if reach is None:
                line += "; LSQML did not reach this quality in its run"
            else:
                line += (f"; LSQML reaches it within {reach:.1f} s "
                         f"({reach / max(t['infer_s'], 1e-9):.1f}× the network's time)")
        out.append(line + ".")
    return out


def _time_to_quality_plot(traj, timing: dict, table: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    from ptychopinn.files import atomic_path

    fig = Figure(figsize=(8, 3.2), constrained_layout=True)
    for ax, part in zip(fig.subplots(1, 2), ("phase", "amplitude"), strict=True):
        ax.plot(traj.seconds, traj.values(part, "ssim"), "k.-", label="PtyChi-LSQML (per epoch)")
        for name, t in timing.items():
            if not name.startswith("PtyChi") and (name, part) in table:
                ax.plot([t["infer_s"]], [table[(name, part)]["ssim"]], "o", ms=8, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel(f"{part} SSIM")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
