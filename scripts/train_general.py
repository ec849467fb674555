"""Train the general model shipped with the package, from the committed corpus spec.

    python scripts/train_general.py [--minutes 40] [--epochs 12] [--out runs/general]
    python scripts/train_general.py --set-inference-options   # the installed bundle only

Trains ``model.kind: unrolled`` (refiners that also see the scan's dose) on
``scripts/general_corpus.yaml`` (scenes simulated on the fly, seeded), then copies the run's
``model.zip`` to ``src/ptychopinn/models/general/general_n64.zip`` with the run's summary.
Deterministic on the CPU for a given number of epochs (``--minutes`` only caps wall time: a
run stopped by the cap depends on the machine's speed; the summary records epochs and device).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "scripts" / "general_corpus.yaml"
TARGET = ROOT / "src" / "ptychopinn" / "models" / "general"

#: The shipped model's run config (model and training sections over unrolled's recommended
#: ones: its grouping and augmentation).
MODEL = {"kind": "unrolled", "n_iterations": 6, "refiner_width": 24, "memory_channels": 4,
         "dose_input": True, "inference_steps": 0, "object_steps": 20}
#: Options that act at inference only (training never runs them): ``--set-inference-options``
#: writes them into the installed bundle without retraining it. 20 data-consistency steps on
#: the whole stitched object (every pattern at once) and no plain steps on the group canvases:
#: at equal inference time the object steps win on every held-out scan of
#: benchmarks/generalization.py (BENCHMARKS "Object steps").
INFERENCE_OPTIONS = ("inference_steps", "object_steps")


def set_inference_options(path: Path) -> None:
    """Write :data:`MODEL`'s inference-only options into the bundle at ``path`` (weights and
    provenance unchanged; atomic)."""
    from dataclasses import replace

    from ptychopinn.training.bundle import load_bundle, resave_bundle

    bundle = load_bundle(path)
    cfg = bundle.model.cfg
    cfg = replace(cfg, options=replace(cfg.options,
                                       **{k: MODEL[k] for k in INFERENCE_OPTIONS}))
    bundle.model.cfg = bundle.model.net.cfg = cfg
    resave_bundle(bundle, path)
    print(f"{path}: " + ", ".join(f"{k} = {MODEL[k]}" for k in INFERENCE_OPTIONS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "general")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--no-install", action="store_true",
                    help="do not copy the bundle into the package")
    ap.add_argument("--set-inference-options", action="store_true",
                    help="only write MODEL's inference-only options into the installed bundle")
    a = ap.parse_args()
    if a.set_inference_options:
        set_inference_options(TARGET / "general_n64.zip")
        return
    import torch

    from ptychopinn.config import RunConfig
    from ptychopinn.data.corpus import load_corpus
    from ptychopinn.training.api import train

    spec = load_corpus(CORPUS)
    cfg = RunConfig.for_kind("unrolled").with_overrides(
        model=MODEL, train={"epochs": a.epochs, "max_minutes": a.minutes,
                            "learning_rate": 2e-3, "batch_size": 8})
    res = train(None, a.out, cfg, corpus=spec, resume=a.resume)
    info = {"epochs": res.epochs_completed, "train_seconds": res.train_seconds,
            "device": res.device, "torch_threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "corpus": CORPUS.name, "final_loss": res.final_loss}
    print(json.dumps(info, indent=2))
    if not a.no_install:
        TARGET.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(res.bundle_path, TARGET / "general_n64.zip")
        (TARGET / "general_n64.json").write_text(json.dumps(info, indent=2) + "\n")
        print(f"installed {TARGET / 'general_n64.zip'}")


if __name__ == "__main__":
    main()
