"""CLI commands for models: train, infer, compare, iterative."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ptychopinn.models.registry import DEFAULT_KIND, KINDS

logger = logging.getLogger("ptychopinn")

#: Default ``infer --refine-epochs``: a short polish from the network's object.
REFINE_EPOCHS = 20


#: ``train`` without ``--model`` or a config: the best model kind (BENCHMARKS.md).


def _cmd_train(a: argparse.Namespace) -> int:
    from ptychopinn.config import RunConfig, load_config
    from ptychopinn.errors import PtychoInputError
    from ptychopinn.training.api import train

    if (a.data is None) == (a.corpus is None):
        raise PtychoInputError("train needs --data DATA.npz or --corpus CORPUS.yaml (one)")
    if a.corpus is not None and a.probe is not None:
        raise PtychoInputError("--probe replaces a dataset's probe; a corpus draws its own")

    cfg_path = a.config
    if cfg_path is None and a.resume and (a.out / "config.yaml").exists():
        cfg_path = a.out / "config.yaml"
    if cfg_path:
        cfg = load_config(cfg_path)
        kind = a.model or cfg.model.kind
    else:  # no config: the kind's recommended sections (its registry entry)
        kind = a.model or DEFAULT_KIND
        cfg = RunConfig.for_kind(kind)
    from ptychopinn.models.registry import kind_spec

    gridsize = kind_spec(kind).fixed_gridsize if a.gridsize is None else a.gridsize
    from ptychopinn.io.dataset import load_dataset

    corpus = data = None
    if a.corpus is not None:
        from ptychopinn.data.corpus import load_corpus

        corpus = load_corpus(a.corpus)
    else:
        data = load_dataset(a.data)
    if a.probe is not None:
        data = _with_probe(data, a.probe)
    cfg = cfg.with_overrides(  # the patch size comes from the data, not the config
        model={"kind": kind},
        grouping={"gridsize": gridsize},
        train={"epochs": a.epochs, "max_minutes": a.max_minutes, "seed": a.seed,
               "batch_size": a.batch_size, "devices": a.devices, "strategy": a.strategy,
               "accelerator": a.accelerator, "refine_probe": a.refine_probe or None,
               "probe_lr": a.probe_lr, "probe_warmup_epochs": a.probe_warmup_epochs,
               "probe_support_radius": a.probe_support_radius,
               "refine_positions": a.refine_positions or None, "position_lr": a.position_lr,
               "position_bound": a.position_bound},
    )
    if corpus is not None:
        cfg = cfg.with_overrides(model=_corpus_model_options(cfg))
    train(data, a.out, cfg, resume=a.resume, data_path=a.data, corpus=corpus)
    return 0


def _corpus_model_options(cfg) -> dict:
    """A model trained on a corpus serves many doses: its refiners see the dose, unless the
    config says otherwise."""
    return {} if cfg.model.options.dose_input else {"dose_input": True}


def _with_probe(data, path: Path):
    """``data`` with its probe replaced by ``probeGuess`` from ``path`` (e.g. a refined probe).

    The model (and so ``infer``) uses the probe stored in the bundle; the dataset file is not
    changed.
    """
    from dataclasses import replace

    import numpy as np

    from ptychopinn.data.simulate import load_probe
    from ptychopinn.errors import PtychoInputError

    probe = load_probe(Path(path), data.patch_size)
    if not float(np.sum(np.abs(probe) ** 2)) > 0:
        raise PtychoInputError("probe has zero power", path=path, key="probeGuess")
    logger.info("probe replaced by %s", path)
    return replace(data, probe=probe, metadata={**data.metadata, "probe_source": str(path)})


def _cmd_infer(a: argparse.Namespace) -> int:
    import math

    from ptychopinn.errors import PtychoInputError
    from ptychopinn.inference.predict import InferConfig
    from ptychopinn.inference.workflow import infer_to_dir
    from ptychopinn.training.bundle import SHIPPED

    if a.adapt_minutes is not None and not (math.isfinite(a.adapt_minutes)
                                            and a.adapt_minutes > 0):
        raise PtychoInputError(f"--adapt-minutes must be > 0; got {a.adapt_minutes:g}")
    if a.adapt_epochs is not None and a.adapt_epochs < 1:
        raise PtychoInputError(f"--adapt-epochs must be an integer >= 1; got {a.adapt_epochs}")
    if a.adapt_lr is not None and not a.adapt_lr > 0:
        raise PtychoInputError(f"--adapt-lr must be > 0; got {a.adapt_lr:g}")
    if a.refine_epochs is not None and a.refine_epochs < 1:
        raise PtychoInputError(f"--refine-epochs must be an integer >= 1; got {a.refine_epochs}")
    if a.refine is None and a.refine_epochs is not None:
        raise PtychoInputError("--refine-epochs needs --refine ALGORITHM")
    adapting = a.adapt_minutes is not None or a.adapt_epochs is not None
    if a.adapt_lr is not None and not adapting:
        raise PtychoInputError("--adapt-lr needs --adapt-minutes or --adapt-epochs")
    if a.probe_lr is not None and not a.refine_probe:
        raise PtychoInputError("--probe-lr needs --refine-probe")
    if a.probe_lr is not None and not (math.isfinite(a.probe_lr) and a.probe_lr > 0):
        raise PtychoInputError(f"--probe-lr must be > 0; got {a.probe_lr:g}")
    device = a.device if a.device in ("auto", "cpu", "cuda") else (
        "cuda" if a.device.startswith("cuda") else "cpu")
    for flag, value in (("--position-lr", a.position_lr),
                        ("--position-bound", a.position_bound)):
        if value is not None and not a.refine_positions:
            raise PtychoInputError(f"{flag} needs --refine-positions")
    for flag, value in (("--scan-steps", a.scan_steps), ("--scan-rounds", a.scan_rounds)):
        if value is not None and not (a.refine_positions or a.refine_probe):
            raise PtychoInputError(f"{flag} needs --refine-positions or --refine-probe")
    scan = None
    if a.refine_positions or a.refine_probe:
        from ptychopinn.inference.positions import ScanRefinement

        options = {"steps": a.scan_steps, "rounds": a.scan_rounds, "lr": a.position_lr,
                   "bound": a.position_bound, "probe_lr": a.probe_lr}
        scan = ScanRefinement(positions=a.refine_positions, probe=a.refine_probe,
                              **{k: v for k, v in options.items() if v is not None})
    adapt_cfg = None
    if a.adapt_minutes is not None or a.adapt_epochs is not None:
        from ptychopinn.inference.adapt import AdaptConfig

        adapt_cfg = AdaptConfig(minutes=a.adapt_minutes, epochs=a.adapt_epochs,
                                learning_rate=a.adapt_lr, seed=a.seed,
                                accelerator={"cuda": "gpu"}.get(device, device),
                                refine_probe=a.refine_probe, probe_lr=a.probe_lr)
    refine = None
    if a.refine is not None:
        from ptychopinn.iterative.ptychi_backend import IterativeConfig

        refine = IterativeConfig(algorithm=a.refine, epochs=a.refine_epochs or REFINE_EPOCHS,
                                 seed=a.seed, device=device)
    from ptychopinn.inference.condition import PROBE_CHOICES

    probe = a.probe if a.probe is None or a.probe in PROBE_CHOICES else Path(a.probe)
    infer_to_dir(a.model or SHIPPED, a.data, a.out,
                 InferConfig(batch_size=a.batch_size, device=a.device, groups=a.groups,
                             gridsize=a.gridsize, probe=probe, extra_steps=a.extra_steps,
                             object_steps=a.object_steps),
                 adapt_cfg=adapt_cfg, refine=refine, scan=scan)
    return 0


def _cmd_compare(a: argparse.Namespace) -> int:
    from ptychopinn.evaluation.compare import canonical_model_name, compare_reconstructions
    from ptychopinn.inference.predict import load_reconstruction

    reference, _ = _load_reference(a.ref)
    recons = {}
    for item in a.recon:
        if "=" not in item:
            raise ValueError(f"--recon expects NAME=OUT_DIR, got {item!r}")
        name, path = item.split("=", 1)
        r = load_reconstruction(path)
        recons[canonical_model_name(name)] = (r.object, r.coverage)
    rows = compare_reconstructions(reference, recons, a.out, phase=a.phase)
    import sys

    for r in rows:
        if r["metric"] in ("ssim", "psnr", "frc50"):
            sys.stdout.write(f"{r['model']:>14} {r['part']:>9} {r['metric']:>6} "
                             f"{r['value']:.4f}\n")
    return 0


def _load_reference(path: Path):
    """A dataset with objectGuess or a reconstruction.npz (or its directory)."""
    from ptychopinn.errors import PtychoInputError
    from ptychopinn.io.dataset import load_dataset
    from ptychopinn.io.reconstruction import is_reconstruction_file, load_reconstruction

    path = Path(path)
    if is_reconstruction_file(path):
        r = load_reconstruction(path)
        return r.object, r.coverage
    d = load_dataset(path)
    if d.obj is None:
        raise PtychoInputError("reference dataset has no objectGuess", path=path,
                               key="objectGuess")
    return d.obj, None


def _cmd_iterative(a: argparse.Namespace) -> int:
    from ptychopinn.iterative.run import IterativeConfig, run_iterative_on_dataset

    every = _snapshot_every(a.snapshot_every, a.epochs)
    cfg = IterativeConfig(algorithm=a.algorithm, epochs=a.epochs, batch_size=a.batch_size,
                          refine_probe=a.refine_probe, refine_positions=a.refine_positions,
                          seed=a.seed, snapshot_every=every)
    run_iterative_on_dataset(a.data, a.out, cfg)
    return 0


def _snapshot_every(text: str | None, epochs: int) -> int | None:
    """``--snapshot-every`` as an integer K with 1 <= K <= epochs (None when not given)."""
    from ptychopinn.errors import PtychoInputError

    if text is None:
        return None
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= epochs:
        raise PtychoInputError(f"--snapshot-every must be an integer from 1 to --epochs "
                               f"({epochs}); got {text!r}")
    return int(value)


def _cmd_export(a: argparse.Namespace) -> int:
    from ptychopinn.inference.predict import load_reconstruction
    from ptychopinn.io.dataset import load_dataset
    from ptychopinn.io.ptychodus import (
        product_from_reconstruction,
        require_ptychodus,
        write_product,
    )

    require_ptychodus("export --format ptychodus", a.out)
    recon = load_reconstruction(a.recon)
    data = load_dataset(a.data)
    refined = (a.recon if a.recon.is_dir() else a.recon.parent) / "positions.npz"
    if refined.is_file():  # positions refined with the reconstruction (infer/iterative)
        from ptychopinn.io.native import with_positions

        data = with_positions(data, refined)
        logger.info("positions from %s", refined)
    positions = data.positions - recon.origin  # canvas-pixel frame of the exported object
    meta = data.metadata
    energy = a.photon_energy_ev or meta.get("photon_energy_eV")
    distance = a.distance_m or meta.get("detector_object_distance_m")
    pixel = a.pixel_size_m or (meta.get("object_pixel_size_m") or [None])[0]
    missing = [k for k, v in (("--photon-energy-ev", energy), ("--distance-m", distance),
                              ("--pixel-size-m", pixel)) if not v]
    if missing:
        raise ValueError(f"{data.source}: no {', '.join(missing)} in the dataset metadata; "
                         "pass them on the command line")
    product = product_from_reconstruction(
        recon.object, data.probe, positions, pixel_size_m=float(pixel),
        photon_energy_eV=float(energy), detector_object_distance_m=float(distance),
        name=a.name)
    write_product(product, a.out)
    logger.info("wrote %s", a.out)
    return 0


def _devices(text: str) -> int | str:
    """``--devices``: an integer count stays an int (config.yaml), anything else a string."""
    return int(text) if text.strip().isdigit() else text


def add_commands(sub) -> None:
    """Register the model subcommands on ``sub``."""
    s = sub.add_parser("train", help="train a network (unrolled by default) on a dataset or "
                                     "a synthetic corpus")
    s.add_argument("--data", default=None, type=Path, help="training dataset (.npz or .h5)")
    s.add_argument("--corpus", default=None, type=Path, metavar="CORPUS.yaml",
                   help="instead of --data: a synthetic corpus generated on the fly (objects, "
                        "probes, doses, scans; see scripts/general_corpus.yaml)")
    s.add_argument("--out", required=True, type=Path, help="run directory")
    s.add_argument("--model", default=None, choices=sorted(KINDS),
                   help="model kind (unrolled: physics steps inside the network, takes each "
                        "scan's probe and dose, physics loss; pinn: faithful PtychoPINN CNN, "
                        "physics loss; baseline: supervised); default: the --config's kind, "
                        f"else {DEFAULT_KIND}")
    s.add_argument("--gridsize", type=int, default=None,
                   help="groups of gridsize² patterns (default: the --config value, else 2; "
                        "3 for unrolled, 1 for the baseline: each kind's recommended)")
    s.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default: the --config value, else 30)")
    s.add_argument("--max-minutes", type=float, default=None,
                   help="wall-time cap in minutes (default: the --config value, else none)")
    s.add_argument("--batch-size", type=int, default=None,
                   help="groups per optimiser step (default: the --config value, else 8)")
    s.add_argument("--config", type=Path, default=None,
                   help="YAML run config with sections model, grouping, train (default: the "
                        "built-in defaults; with --resume, RUN_DIR/config.yaml)")
    s.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    s.add_argument("--probe", type=Path, default=None,
                   help="PROBE.npz (probeGuess, e.g. iterative's probe.npz) replacing the "
                        "dataset's probe")
    s.add_argument("--seed", type=int, default=None,
                   help="training seed (default: the --config value, else 0)")
    s.add_argument("--refine-probe", action="store_true",
                   help="also learn the probe (physics-loss kinds; fixed total power, circular "
                        "support); the refined probe goes into the bundle and RUN_DIR/probe.npz")
    s.add_argument("--probe-lr", type=float, default=None,
                   help="probe learning rate (default: the --config value, else 0.01)")
    s.add_argument("--probe-warmup-epochs", type=int, default=None, metavar="E",
                   help="epochs with the probe held fixed first (default: the --config value, "
                        "else 1)")
    s.add_argument("--probe-support-radius", type=float, default=None, metavar="R",
                   help="probe support radius in pixels (default: the --config value, else "
                        "1.25 x the radius holding 99.9%% of the initial probe's power)")
    s.add_argument("--refine-positions", action="store_true",
                   help="also learn the scan positions (physics-loss kinds; a global affine "
                        "map and drift, then bounded per-pattern corrections); written as "
                        "RUN_DIR/positions.npz")
    s.add_argument("--position-lr", type=float, default=None, metavar="PX",
                   help="position learning rate, pixels per step (default: the --config "
                        "value, else 0.05)")
    s.add_argument("--position-bound", type=float, default=None, metavar="PX",
                   help="largest per-pattern position correction in pixels (default: the "
                        "--config value, else 4)")
    s.add_argument("--accelerator", default=None,
                   help="auto | cpu | gpu (default: the --config value, else auto)")
    s.add_argument("--devices", default=None, type=_devices,
                   help="Lightning devices: a count (e.g. 2), a list (0,1) or auto "
                        "(default: the --config value, else auto)")
    s.add_argument("--strategy", default=None,
                   help="Lightning strategy: auto | ddp | ddp_spawn | ... (CPU DDP uses gloo) "
                        "(default: the --config value, else auto)")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("infer", help="reconstruct a scan with a trained model (default: the "
                                     "general model shipped with the package)")
    s.add_argument("--model", default=None,
                   help="RUN_DIR, model.zip or 'general' (default: general, the model shipped "
                        "with the package for the scan's patch size)")
    s.add_argument("--probe", default=None, metavar="scan|bundle|PATH.npz",
                   help="probe the network's physics steps use: the scan's own (scan), the "
                        "model's training probe (bundle) or probeGuess from a file (default: "
                        "scan, or bundle when the model's probe was refined on a scan)")
    s.add_argument("--data", required=True, type=Path,
                   help="dataset to reconstruct (.npz, .h5 or a Ptychodus batch folder)")
    s.add_argument("--out", required=True, type=Path,
                   help="output folder (reconstruction.npz, amplitude/phase PNGs)")
    s.add_argument("--batch-size", type=int, default=None,
                   help="groups per forward pass (default: 64; canvas networks about 200 "
                        "patterns per pass)")
    s.add_argument("--groups", choices=("cover", "every", "partition"), default=None,
                   help="cover: few groups holding every pattern, all members stitched "
                        "(fast); every: one group per pattern, seed stitched; partition: "
                        "disjoint groups, each pattern predicted once (fastest) (default: "
                        "partition for unrolled, cover for the CNNs)")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda")
    s.add_argument("--gridsize", type=int, default=None, metavar="G",
                   help="members per group G² at inference (default: the bundle's "
                        "grouping.inference_gridsize, else its gridsize; another value only for "
                        "canvas networks, model.kind unrolled)")
    s.add_argument("--extra-steps", type=int, default=None, metavar="K",
                   help="K plain data-consistency steps after a canvas network's learned ones "
                        "(2 FFTs per pattern each; a little more quality, BENCHMARKS 'Quality "
                        "per FFT'; default: the model's model.inference_steps, else 0)")
    s.add_argument("--object-steps", type=int, default=None, metavar="K",
                   help="K data-consistency steps on the whole stitched object with every "
                        "pattern at once (2 FFTs per pattern each; fixes seams between groups; "
                        "BENCHMARKS 'Object steps'; default: the model's model.object_steps: 20 "
                        "for the shipped general model and for unrolled trained with its "
                        "recommended settings, else 0)")
    s.add_argument("--adapt-minutes", type=float, default=None, metavar="T",
                   help="first fine-tune a copy of the model on this scan's diffraction "
                        "(physics loss, no labels; not for the supervised baseline) for at "
                        "most T minutes; written as OUT/adapted (a run directory)")
    s.add_argument("--adapt-epochs", type=int, default=None, metavar="E",
                   help="adaptation epochs (with --adapt-minutes: whichever ends first)")
    s.add_argument("--adapt-lr", type=float, default=None,
                   help="adaptation learning rate (default: half the model's training rate)")
    s.add_argument("--refine", default=None, choices=["lsqml", "epie", "rpie", "dm"],
                   help="then refine the stitched object with pty-chi from it (free space "
                        "where nothing was reconstructed, amplitude scaled to the data); "
                        "OUT/reconstruction.npz is the refined object, OUT/network/ the "
                        "network's")
    s.add_argument("--refine-epochs", type=int, default=None, metavar="K",
                   help=f"pty-chi epochs of --refine (default: {REFINE_EPOCHS})")
    s.add_argument("--refine-probe", action="store_true",
                   help="refine the probe: first with the network's object (scan refinement, "
                        "written as OUT/probe.npz), then during adaptation when adapting "
                        "(OUT/adapted/probe.npz; --refine then starts pty-chi from it)")
    s.add_argument("--probe-lr", type=float, default=None,
                   help="probe learning rate of --refine-probe (default: 0.01)")
    s.add_argument("--refine-positions", action="store_true",
                   help="refine the scan positions first: from the network's reconstruction, "
                        "joint gradient steps on the positions and the object, then the "
                        "network again at the refined positions (and adaptation, if asked, "
                        "on them); written as OUT/positions.npz")
    s.add_argument("--scan-steps", type=int, default=None, metavar="S",
                   help="most gradient steps per round of --refine-positions/--refine-probe "
                        "(default: 400; a round stops earlier once settled)")
    s.add_argument("--scan-rounds", type=int, default=None, metavar="R",
                   help="rounds (network reconstruction + gradient steps) of "
                        "--refine-positions/--refine-probe (default: 1; 3 with --refine-probe)")
    s.add_argument("--position-lr", type=float, default=None, metavar="PX",
                   help="per-pattern position learning rate of --refine-positions, pixels "
                        "per step (default: 0.05)")
    s.add_argument("--position-bound", type=float, default=None, metavar="PX",
                   help="largest per-pattern correction of --refine-positions beyond the "
                        "global affine map, pixels (default: 8)")
    s.add_argument("--seed", type=int, default=0,
                   help="seed of adaptation (groups, batch order) and refinement")
    s.set_defaults(func=_cmd_infer)

    s = sub.add_parser("compare", help="metrics, FRC and figures against a reference")
    s.add_argument("--ref", required=True, type=Path, help="DATA.npz with objectGuess or RECON")
    s.add_argument("--recon", required=True, nargs="+", help="NAME=OUT_DIR ...")
    s.add_argument("--out", required=True, type=Path,
                   help="output folder (metrics.csv, metrics.json, FRC, figures)")
    s.add_argument("--phase", default="mean", choices=["mean", "plane"],
                   help="phase alignment: remove the mean offset or a fitted phase plane")
    s.set_defaults(func=_cmd_compare)

    s = sub.add_parser("export", help="export a reconstruction as a Ptychodus product.h5")
    s.add_argument("recon", type=Path, help="OUT_DIR or reconstruction.npz")
    s.add_argument("--data", required=True, type=Path,
                   help="dataset it was reconstructed from (positions: the refined ones of "
                        "the reconstruction's positions.npz when it has one)")
    s.add_argument("--format", default="ptychodus", choices=["ptychodus"], help="output format")
    s.add_argument("--out", required=True, type=Path, help="product.h5")
    s.add_argument("--pixel-size-m", type=float, default=None,
                   help="object pixel size in m (default: from the dataset metadata)")
    s.add_argument("--photon-energy-ev", type=float, default=None,
                   help="photon energy in eV (default: from the dataset metadata)")
    s.add_argument("--distance-m", type=float, default=None,
                   help="detector-object distance in m (default: from the dataset metadata)")
    s.add_argument("--name", default="ptychopinn", help="product name")
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser("iterative", help="iterative reconstruction with pty-chi")
    s.add_argument("--data", required=True, type=Path, help="dataset (.npz or .h5)")
    s.add_argument("--out", required=True, type=Path,
                   help="output folder (reconstruction.npz, probe.npz, PNGs)")
    s.add_argument("--algorithm", default="lsqml", choices=["lsqml", "epie", "rpie", "dm"],
                   help="pty-chi algorithm")
    s.add_argument("--epochs", type=int, default=100, help="passes over the scan")
    s.add_argument("--batch-size", type=int, default=32, help="patterns per minibatch")
    s.add_argument("--refine-probe", action="store_true", help="also refine the probe")
    s.add_argument("--refine-positions", action="store_true",
                   help="also refine the scan positions")
    s.add_argument("--seed", type=int, default=0, help="seed of the reconstruction")
    s.add_argument("--snapshot-every", default=None, metavar="K",
                   help="also write snapshots.npz: the object every K epochs and after the "
                        "last, with the cumulative reconstruction time of each (1 <= K <= E)")
    s.set_defaults(func=_cmd_iterative)
