"""``train``: the Python entry point for training (the CLI only parses and calls it)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ptychopinn.config import RunConfig, save_config
from ptychopinn.data.container import PtychoData
from ptychopinn.data.grouping import make_groups
from ptychopinn.errors import PtychoInputError
from ptychopinn.files import atomic_path
from ptychopinn.io.dataset import load_dataset
from ptychopinn.models.pinn import PINN
from ptychopinn.models.registry import kind_spec
from ptychopinn.physics.patches import extract_patches
from ptychopinn.physics.probe import normalize_probe
from ptychopinn.training.bundle import Bundle, save_bundle
from ptychopinn.training.datamodule import GroupDataset

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    bundle_path: Path
    epochs_completed: int
    train_seconds: float
    patterns_per_second: float
    device: str
    final_loss: float | None


def _with_labels(data: PtychoData) -> PtychoData:
    """Ensure ground-truth patches exist (cut from objectGuess when needed) or refuse."""
    if data.ground_truth_patches is not None:
        return data
    if data.obj is None:
        raise PtychoInputError("no labels (ground_truth_patches or objectGuess); the supervised "
                               "baseline needs them", path=data.source)
    from dataclasses import replace

    with torch.no_grad():
        gt = extract_patches(torch.from_numpy(data.obj), torch.from_numpy(data.positions),
                             data.patch_size).numpy()
    return replace(data, ground_truth_patches=gt)


def build_model(cfg: RunConfig, data: PtychoData) -> tuple[PINN, dict[str, float]]:
    """Model with normalisation constants derived from the training data.

    The network is built for the data's patch size N and ``cfg.grouping.gridsize``; neither is
    copied into the config (the bundle manifest records both).
    """
    from ptychopinn.models.registry import check_shape

    n = data.patch_size
    try:
        check_shape(cfg.model.kind, n, cfg.grouping.gridsize)
    except ValueError as e:
        raise PtychoInputError(f"{e} (patterns are {n}x{n})", path=data.source) from None
    mean_counts = data.mean_total_counts()
    if not mean_counts > 0:
        raise PtychoInputError("all patterns are empty (zero counts)", path=data.source)
    probe_n, f = normalize_probe(data.probe)
    consts = {
        "mean_total_counts": mean_counts,
        "input_scale": (n / 2) / float(np.sqrt(mean_counts)),
        "intensity_scale_init": float(np.sqrt(mean_counts)) / (n / 2),
        "probe_norm_factor": f,
    }
    model = PINN(cfg.model, torch.from_numpy(probe_n), gridsize=cfg.grouping.gridsize,
                 input_scale=consts["input_scale"],
                 intensity_scale=consts["intensity_scale_init"])
    return model, consts


def _resolve_accelerator(name: str) -> str:
    if name == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return name


def _initial_model(cfg: RunConfig, data: PtychoData, init_bundle: Bundle | str | Path | None
                   ) -> tuple[PINN, dict[str, float], dict[str, Any] | None]:
    """Fresh model (:func:`build_model`) or a copy of ``init_bundle``'s model.

    Returns the model, its normalisation constants and, for a bundle, its provenance for the
    new manifest (``initialised_from``). A bundle keeps its weights, probe, input scale and
    intensity scale; ``cfg.model`` must equal its model config, ``cfg.grouping.gridsize`` its
    group side and the patterns its size.
    """
    if init_bundle is None:
        model, consts = build_model(cfg, data)
        return model, consts, None
    import copy

    from ptychopinn.training.bundle import load_bundle, resolve_bundle_path

    source = None
    if isinstance(init_bundle, Bundle):
        bundle = init_bundle
        model = copy.deepcopy(bundle.model).to("cpu")  # never train the caller's copy
    else:
        source = resolve_bundle_path(init_bundle)
        bundle = load_bundle(source)
        model = bundle.model
    n = model.n
    if data.patch_size != n:
        raise PtychoInputError(f"patterns are {data.patch_size}x{data.patch_size} but the "
                               f"initial model expects {n}x{n}", path=data.source)
    if cfg.grouping.gridsize != model.gridsize:
        raise PtychoInputError(f"grouping.gridsize {cfg.grouping.gridsize} differs from the "
                               f"initial bundle's ({model.gridsize}); fine-tuning keeps the "
                               "bundle's group side")
    if cfg.model != model.cfg:
        theirs = model.cfg.to_dict()
        diff = sorted(k for k, v in cfg.model.to_dict().items() if theirs.get(k) != v)
        raise PtychoInputError(f"model config differs from the initial bundle's in "
                               f"{', '.join(diff)}; fine-tuning keeps the bundle's model")
    man = bundle.manifest
    consts = dict(man.get("normalisation_constants") or {})
    consts.setdefault("input_scale", float(model.input_scale))
    consts.setdefault("intensity_scale_init", float(model.physics.scale.detach()))
    origin = {"path": None if source is None else str(source),
              "weights_sha256": man.get("weights_sha256"),
              "training_data": man.get("training_data"),
              "initialised_from": man.get("initialised_from")}
    model.train()
    return model, consts, origin


def train(data: PtychoData | str | Path | None, out_dir: str | Path, cfg: RunConfig, *,
          resume: bool = False, data_path: str | Path | None = None,
          init_bundle: Bundle | str | Path | None = None, corpus=None) -> TrainResult:
    """Train a model and write ``out_dir/{model.zip, config.yaml, metrics.csv, summary.json}``.

    Seeded by ``cfg.train.seed``; the caller's global RNG states and torch's deterministic
    mode are as before on return (:mod:`ptychopinn.training.isolation`).

    Parameters
    ----------
    data : PtychoData or path
        Training dataset.
    out_dir : path
        Run directory. Holds ``checkpoints/last.ckpt`` (each epoch) for ``resume``.
    cfg : RunConfig
    resume : bool
        Continue from ``out_dir/checkpoints/last.ckpt``.
    init_bundle : Bundle or path, optional
        Fine-tune: start from this bundle's weights, probe, input scale and intensity scale
        (and keep its normalisation constants) instead of a fresh model. ``cfg.model`` must
        equal the bundle's model config and the patterns must have its size; the bundle
        itself is not modified. The new manifest records it under ``initialised_from``.
    corpus : CorpusSpec, optional
        Train on a synthetic corpus generated on the fly
        (:class:`~ptychopinn.data.corpus.CorpusSpec`) instead of ``data`` (then None): each
        group comes with its scene's probe and count scale, and the model learns to take
        both as inputs (a network with the physics inside, ``model.kind: unrolled``).
    """
    from ptychopinn.training.isolation import isolated_training

    with isolated_training():
        return _train(data, out_dir, cfg, resume=resume, data_path=data_path,
                      init_bundle=init_bundle, corpus=corpus)


def build_corpus_model(cfg: RunConfig, corpus) -> tuple[PINN, dict[str, float]]:
    """A fresh model for corpus training: reference counts (N/2)² (input scale 1), so a scan's
    count scale is sqrt(its mean counts) / (N/2); its stored probe (a soft disk) is only a
    placeholder, since every scan brings its own. Refuses a network that does not take the
    probe as an input."""
    from ptychopinn.data.simulate import disk_probe
    from ptychopinn.models.registry import check_shape

    n = corpus.patch_size
    try:
        check_shape(cfg.model.kind, n, cfg.grouping.gridsize)
    except ValueError as e:
        raise PtychoInputError(str(e), path=corpus.source) from None
    model = PINN(cfg.model, torch.from_numpy(disk_probe(n)), gridsize=cfg.grouping.gridsize,
                 input_scale=1.0, intensity_scale=1.0)
    if not kind_spec(cfg.model.kind).canvas:
        raise PtychoInputError(f"training on a corpus needs a network that takes the probe as "
                               f"an input (model.kind unrolled), not {cfg.model.kind!r}",
                               path=corpus.source)
    consts = {"mean_total_counts": float((n / 2) ** 2), "input_scale": 1.0,
              "intensity_scale_init": 1.0, "probe_norm_factor": 1.0}
    return model, consts


@dataclass
class _Prepared:
    """A run ready to fit: the model, its constants, the training and validation sets."""

    model: PINN
    consts: dict[str, float]
    origin: dict[str, Any] | None
    train_ds: Any
    val_ds: GroupDataset | None
    n_groups: int
    data: PtychoData | None
    data_path: Path | None


@dataclass
class _Fitted:
    """A fitted run: the Lightning module and trainer, and what the fit took."""

    module: Any
    trainer: Any
    seconds: float
    start_epoch: int
    epochs_done: int
    previous_history: list[dict[str, str]]
    initial_probe: torch.Tensor | None  # the probe before refinement (train.refine_probe)


def _train(data: PtychoData | str | Path | None, out_dir: str | Path, cfg: RunConfig, *,
           resume: bool, data_path: str | Path | None,
           init_bundle: Bundle | str | Path | None = None, corpus=None) -> TrainResult:
    """:func:`train` without the global-state guard: prepare, fit, write."""
    import lightning as L

    out_dir = Path(out_dir)
    ckpt = out_dir / "checkpoints" / "last.ckpt"
    if ckpt.exists() and not resume:
        raise PtychoInputError("already holds a training run; pass --resume to continue it or "
                               "choose another --out", path=out_dir)
    if resume and not ckpt.exists():
        logger.warning("no checkpoint in %s; starting a new run", out_dir)
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    prep = _prepare(data, cfg, data_path=data_path, init_bundle=init_bundle, corpus=corpus)
    fitted = _fit(prep, cfg, out_dir, resume=resume and ckpt.exists(), corpus=corpus)
    return _write(prep, fitted, cfg, out_dir, corpus=corpus)


def _prepare(data: PtychoData | str | Path | None, cfg: RunConfig, *,
             data_path: str | Path | None, init_bundle: Bundle | str | Path | None,
             corpus) -> _Prepared:
    """Read the data (into memory), draw the groups, split off the validation groups and build
    the model (fresh, from ``init_bundle``, or for a corpus)."""
    data_path = None if data_path is None else Path(data_path)
    if corpus is not None:
        from ptychopinn.training.datamodule import CorpusGroups

        if data is not None or init_bundle is not None:
            raise ValueError("train on a corpus or on data (and an initial bundle), not both")
        model, consts = build_corpus_model(cfg, corpus)
        train_ds = CorpusGroups(corpus, cfg.grouping, seed=cfg.train.seed)
        return _Prepared(model, consts, None, train_ds, None, len(train_ds), None, None)
    if not isinstance(data, PtychoData):
        data_path = Path(data)
        data = load_dataset(data_path)
    if data.is_lazy:
        data = data.subset(np.arange(data.n_patterns))  # training sets are read into memory
    labels = kind_spec(cfg.model.kind).supervised
    if labels:
        data = _with_labels(data)
    rng = np.random.default_rng(cfg.train.seed)
    groups = make_groups(data.positions, cfg.grouping, rng)
    n_val = int(round(cfg.train.val_fraction * len(groups))) if len(groups) >= 40 else 0
    perm = rng.permutation(len(groups))
    val_groups, train_groups = groups[perm[:n_val]], groups[perm[n_val:]]
    train_ds = GroupDataset(data, train_groups, with_labels=labels)
    val_ds = GroupDataset(data, val_groups, with_labels=labels) if n_val else None
    model, consts, origin = _initial_model(cfg, data, init_bundle)
    return _Prepared(model, consts, origin, train_ds, val_ds, len(groups), data, data_path)


def _fit(prep: _Prepared, cfg: RunConfig, out_dir: Path, *, resume: bool, corpus) -> _Fitted:
    """Fit with Lightning into ``out_dir`` (``config.yaml``, ``checkpoints/last.ckpt`` after
    every epoch, ``logs/``); with ``resume`` from that checkpoint, whose epoch count is read
    from our own checkpoint entry."""
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from ptychopinn.training.checkpoint_io import SafeCheckpointIO
    from ptychopinn.training.module import ProbeRefinement, ReconModule
    from ptychopinn.training.positions import PositionRefinement

    ckpt = out_dir / "checkpoints" / "last.ckpt"
    data, model = prep.data, prep.model
    hparams = {**cfg.to_dict(), "normalisation": prep.consts}
    probe_cfg = ProbeRefinement.from_train_config(cfg.train)
    initial_probe = model.physics.probe.detach().clone() if probe_cfg is not None else None
    pos_cfg = PositionRefinement.from_train_config(cfg.train)
    if pos_cfg is not None and corpus is not None:
        raise PtychoInputError("train.refine_positions refines one scan's positions; a corpus "
                               "has no measured positions to refine")
    module = ReconModule(model, learning_rate=cfg.train.learning_rate, hparams=hparams,
                         plateau_monitor=(cfg.train.plateau_monitor if prep.val_ds is not None
                                          else "train"),
                         probe_refinement=probe_cfg, position_refinement=pos_cfg,
                         nominal_positions=None if pos_cfg is None
                         else torch.from_numpy(data.positions), augment=cfg.train.augment,
                         keep_best=cfg.train.keep_best and prep.val_ds is not None)
    accelerator = _resolve_accelerator(cfg.train.accelerator)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_dir / "config.yaml")
    n_train = len(prep.train_ds)
    trainer = L.Trainer(
        max_epochs=cfg.train.epochs,
        max_time=None if cfg.train.max_minutes is None else {"minutes": cfg.train.max_minutes},
        accelerator=accelerator,
        devices=cfg.train.devices,
        strategy=cfg.train.strategy,
        default_root_dir=out_dir,
        logger=CSVLogger(out_dir, name="logs", version=""),
        callbacks=_callbacks(out_dir, corpus is not None),
        plugins=[SafeCheckpointIO()],
        enable_progress_bar=cfg.train.show_progress,
        enable_model_summary=False,
        log_every_n_steps=max(1, min(50, -(-n_train // cfg.train.batch_size) // 2)),
        deterministic=accelerator == "cpu",
        num_sanity_val_steps=0,
    )
    # Several processes (DDP): Lightning shuffles with a seeded DistributedSampler, and a
    # torch.Generator cannot be sent to ddp_spawn workers, so it is only used in one process.
    gen = (torch.Generator().manual_seed(cfg.train.seed) if trainer.world_size == 1
           else None)
    # corpus items are read in order (each scene is simulated once, for its groups)
    train_dl = DataLoader(prep.train_ds, batch_size=cfg.train.batch_size,
                          shuffle=corpus is None, generator=gen,
                          num_workers=cfg.train.num_workers, drop_last=False)
    val_dl = (DataLoader(prep.val_ds, batch_size=cfg.train.batch_size,
                         num_workers=cfg.train.num_workers)
              if prep.val_ds is not None else None)
    t0 = time.perf_counter()
    start_epoch = 0
    if resume:
        from ptychopinn.training.checkpoint_io import load_state
        from ptychopinn.training.module import checkpoint_epochs

        start_epoch = checkpoint_epochs(load_state(ckpt))
        logger.info("resuming %s from epoch %d", out_dir, start_epoch)
    previous = _read_csv(out_dir / "logs" / "metrics.csv") if start_epoch else []
    trainer.fit(module, train_dl, val_dl, ckpt_path=str(ckpt) if resume else None)
    seconds = time.perf_counter() - t0
    return _Fitted(module, trainer, seconds, start_epoch,
                   _epochs_completed(trainer, module, ckpt), previous, initial_probe)


def _write(prep: _Prepared, fit: _Fitted, cfg: RunConfig, out_dir: Path, *,
           corpus) -> TrainResult:
    """Write the bundle (``model.zip``, its manifest saying what it was trained on),
    ``metrics.csv`` (the whole history across resumes), ``summary.json`` and, when refined,
    ``probe.npz`` / ``positions.npz`` (rank 0 only)."""
    module, trainer, data, consts = fit.module, fit.trainer, prep.data, prep.consts
    accelerator = _resolve_accelerator(cfg.train.accelerator)
    epochs_done, seconds = fit.epochs_done, fit.seconds
    n_patterns = (epochs_done - fit.start_epoch) * len(prep.train_ds) * cfg.grouping.gridsize**2
    result_loss = trainer.callback_metrics.get("train/loss_epoch")
    if trainer.global_rank != 0:
        return TrainResult(out_dir, out_dir / "model.zip", epochs_done, seconds, 0.0,
                           accelerator, None)
    kept = module.restore_best()
    module.commit_probe()
    module.model.to("cpu")
    extra: dict[str, Any] = {
        "grouping_config": cfg.to_dict()["grouping"],
        "train_config": cfg.to_dict()["train"],
        "normalisation_constants": consts,
    }
    if corpus is not None:
        extra["training_data"] = {"corpus": str(corpus.source),
                                  "groups_per_epoch": len(prep.train_ds)}
        extra["trained_on"] = corpus.describe()
    else:
        extra["training_data"] = {"path": str(prep.data_path or data.source),
                                  "sha256": _sha(prep.data_path), "n_patterns": data.n_patterns}
        extra["trained_on"] = {"patch_size": data.patch_size, "probe": "the training scan's",
                               "dose_range": [consts["mean_total_counts"]] * 2}
    if prep.origin is not None:
        extra["initialised_from"] = prep.origin
    if kept is not None:  # the weights are those of the epoch with the lowest validation loss
        extra["kept_epoch"] = kept
    probe_info = None
    if module.probe_refinement is not None:
        probe_info = _probe_outputs(module.model, fit.initial_probe, data,
                                    module.probe_refinement,
                                    module.probe_param.support_radius, out_dir)
        extra["probe_refinement"] = probe_info
    pos_info = None
    if module.position_refinement is not None:
        pos_info = _position_outputs(module.positions, data, module.position_refinement,
                                     out_dir)
        extra["position_refinement"] = pos_info
    bundle_path = save_bundle(module.model, out_dir / "model.zip", extra=extra)
    metrics_src = out_dir / "logs" / "metrics.csv"
    if metrics_src.exists():
        _write_history(fit.previous_history, _read_csv(metrics_src), fit.start_epoch,
                       out_dir / "metrics.csv")
    summary = {
        "epochs_completed": epochs_done,
        "resumed_from_epoch": fit.start_epoch,
        "train_seconds": seconds,
        "patterns_per_second": n_patterns / seconds if seconds > 0 else 0.0,
        "groups": prep.n_groups,
        "device": accelerator,
        "final_train_loss": None if result_loss is None else float(result_loss),
        "kept_epoch": epochs_done if kept is None else kept["epoch"],
        **({} if kept is None else {"kept_val_loss": kept["val_loss"]}),
        "intensity_scale": float(module.model.physics.scale.detach()),
        **consts,
        **({} if probe_info is None else {"probe_refinement": probe_info}),
        **({} if pos_info is None else {"position_refinement": pos_info}),
    }
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    logger.info("trained %d epochs in %.1f s (%.0f patterns/s) -> %s", epochs_done, seconds,
                summary["patterns_per_second"], bundle_path)
    return TrainResult(out_dir, bundle_path, epochs_done, seconds,
                       summary["patterns_per_second"], accelerator,
                       summary["final_train_loss"])


def _probe_outputs(model: PINN, initial: torch.Tensor, data: PtychoData, probe_cfg: Any,
                   support_radius: float, out_dir: Path) -> dict[str, Any]:
    """Write the refined probe as ``out_dir/probe.npz`` and describe it for the manifest.

    ``probeGuess`` (N, N) complex64 is the model's refined (normalised) probe brought to the
    total power of ``data``'s probe (the photon scale, as ``iterative --refine-probe`` writes
    it), so ``train --probe out_dir/probe.npz`` reads it. ``change_from_initial`` is
    :func:`~ptychopinn.physics.probe.probe_error` of the refined probe against the initial one.
    """
    from ptychopinn.io.native import save_probe
    from ptychopinn.physics.probe import probe_error, probe_norm_factor

    refined = model.physics.probe.detach().cpu().numpy().astype(np.complex64)
    save_probe(out_dir / "probe.npz", refined / probe_norm_factor(data.probe))
    change = probe_error(refined, initial.cpu().numpy())
    logger.info("probe refined: change from the initial probe %.4f (normalised) -> %s",
                change, out_dir / "probe.npz")
    return {"probe_lr": probe_cfg.lr, "warmup_epochs": probe_cfg.warmup_epochs,
            "support_radius": support_radius, "change_from_initial": change,
            "probe_file": "probe.npz"}


def _position_outputs(positions: Any, data: PtychoData, pos_cfg: Any,
                      out_dir: Path) -> dict[str, Any]:
    """Write the refined positions as ``out_dir/positions.npz`` and describe them.

    ``positions.npz`` (:func:`~ptychopinn.io.native.save_positions`) holds the refined
    ``xcoords``/``ycoords`` and the nominal ``xcoords_start``/``ycoords_start`` (M,) float64,
    object pixels; :func:`~ptychopinn.io.native.with_positions` puts them into the scan.
    """
    from dataclasses import asdict

    from ptychopinn.io.native import save_positions
    from ptychopinn.training.positions import affine_fit, position_rms

    refined = positions.refined()
    save_positions(out_dir / "positions.npz", refined, data.positions)
    info = {**asdict(pos_cfg), "positions_file": "positions.npz",
            "change_rms_px": position_rms(refined, data.positions),
            "affine": affine_fit(data.positions, refined)}
    if data.positions_true is not None:
        info["error_rms_px_before"] = position_rms(data.positions, data.positions_true)
        info["error_rms_px_after"] = position_rms(refined, data.positions_true)
    logger.info("positions refined: RMS change %.3f px -> %s", info["change_rms_px"],
                out_dir / "positions.npz")
    return info


def _epochs_completed(trainer: Any, module: Any, ckpt: Path) -> int:
    """Epochs finished: the module's own count; after ddp_spawn the main process's module is
    not the one that trained (only weights and metrics come back), so the last checkpoint's
    count is consulted too."""
    done = int(module.epochs_completed)
    if trainer.world_size > 1 and trainer.global_rank == 0 and ckpt.exists():
        from ptychopinn.training.checkpoint_io import load_state
        from ptychopinn.training.module import checkpoint_epochs

        done = max(done, checkpoint_epochs(load_state(ckpt)))
    return done


def _read_csv(path: Path) -> list[dict[str, str]]:
    import csv

    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _write_history(old: list[dict], new: list[dict], start_epoch: int, path: Path) -> None:
    """metrics.csv = rows of epochs before ``start_epoch`` from the earlier run + the new rows."""
    import csv

    rows = [r for r in old if r.get("epoch") not in (None, "") and
            int(float(r["epoch"])) < start_epoch] + new
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    shutil.copyfile(path, path.parent / "logs" / "metrics.csv")


def _callbacks(out_dir: Path, corpus: bool = False) -> list:
    """Lightning callbacks: a checkpoint (``checkpoints/last.ckpt``) after every epoch; with a
    corpus, the epoch handed to its training set (each epoch draws new scenes)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from ptychopinn.training.datamodule import epoch_setter

    ckpt = ModelCheckpoint(dirpath=out_dir / "checkpoints", save_last=True, save_top_k=1,
                           save_on_train_epoch_end=True, every_n_epochs=1)
    return [ckpt, epoch_setter()] if corpus else [ckpt]


def _sha(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    from ptychopinn.data.inspect import sha256_file

    return sha256_file(path)
