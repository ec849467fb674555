"""Test-time adaptation: fine-tune a copy of a trained model on a scan's own diffraction.

The physics loss needs no labels, so a bundle can be fitted further to the very scan it is
about to reconstruct. :func:`adapt` runs :func:`ptychopinn.training.api.train` with
``init_bundle=`` (the bundle's weights, probe, input scale and intensity scale) and writes a
normal run directory whose ``model.zip`` ``infer --model`` accepts.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from ptychopinn.data.container import PtychoData
from ptychopinn.data.grouping import GroupingConfig, covering_groups, relative_offsets
from ptychopinn.errors import PtychoInputError
from ptychopinn.models.registry import REGISTRY
from ptychopinn.training.bundle import Bundle, load_bundle

logger = logging.getLogger(__name__)

__all__ = ["PHYSICS_KINDS", "AdaptConfig", "AdaptResult", "adapt", "adaptation_run_config",
           "check_adaptable", "physics_loss"]

#: Model kinds trained with the physics loss (adaptable without labels).
PHYSICS_KINDS: tuple[str, ...] = tuple(k for k in sorted(REGISTRY)
                                       if not REGISTRY[k].supervised)
#: Epoch cap when only a time budget is given (the time budget ends adaptation first).
_EPOCHS_UNBOUNDED = 100_000


@dataclass(frozen=True, kw_only=True)
class AdaptConfig:
    """Budget and optimiser of an adaptation.

    ``minutes`` (wall time, > 0) and/or ``epochs`` (>= 1): adaptation stops at whichever
    comes first; at least one is required. ``learning_rate`` default: half the bundle's
    training learning rate (fine-tuning, not training from scratch). ``batch_size`` default:
    the bundle's. ``seed`` draws the groups and the batch order. ``refine_probe`` also learns
    the probe (from the bundle's; :class:`~ptychopinn.config.TrainConfig` ``probe_*``, here
    with no warm-up by default: the network is already trained); the adapted run directory then
    holds ``probe.npz``. ``passes``: an epoch holds ⌈passes × M / C⌉ groups of C patterns
    (each of the scan's M patterns is seen about ``passes`` times per epoch; a group seeded at
    every pattern, as training does, is ``passes = C``).
    """

    minutes: float | None = None
    epochs: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    seed: int = 0
    accelerator: str = "auto"
    show_progress: bool = True
    refine_probe: bool = False
    probe_lr: float | None = None
    probe_warmup_epochs: int = 0
    probe_support_radius: float | None = None
    passes: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.passes, int | float) and math.isfinite(self.passes)
                and self.passes > 0):
            raise PtychoInputError(f"adaptation passes must be > 0; got {self.passes!r}")
        if self.probe_lr is not None and not (isinstance(self.probe_lr, int | float)
                                              and math.isfinite(self.probe_lr)
                                              and self.probe_lr > 0):
            raise PtychoInputError(f"adaptation probe_lr must be > 0; got {self.probe_lr!r}")
        if self.probe_warmup_epochs < 0:
            raise PtychoInputError(f"adaptation probe_warmup_epochs must be >= 0; got "
                                   f"{self.probe_warmup_epochs!r}")
        if self.probe_support_radius is not None and not self.probe_support_radius > 0:
            raise PtychoInputError(f"adaptation probe_support_radius must be > 0 pixels; got "
                                   f"{self.probe_support_radius!r}")
        if self.minutes is None and self.epochs is None:
            raise PtychoInputError("adaptation needs a budget: minutes and/or epochs")
        if self.minutes is not None and not (isinstance(self.minutes, int | float)
                                             and math.isfinite(self.minutes)
                                             and self.minutes > 0):
            raise PtychoInputError(f"adaptation minutes must be > 0; got {self.minutes!r}")
        if self.epochs is not None and (isinstance(self.epochs, bool)
                                        or not isinstance(self.epochs, int | np.integer)
                                        or self.epochs < 1):
            raise PtychoInputError(f"adaptation epochs must be an integer >= 1; got "
                                   f"{self.epochs!r}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise PtychoInputError(f"adaptation learning_rate must be > 0; got "
                                   f"{self.learning_rate!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise PtychoInputError(f"adaptation batch_size must be >= 1; got {self.batch_size!r}")


@dataclass(frozen=True)
class AdaptResult:
    """An adapted model: its run directory, the loaded bundle, time and loss on the scan.

    ``seconds`` is the whole adaptation (set-up, training, bundle write); ``train_seconds``
    Lightning's fit alone. Losses are the model's physics loss on the scan's inference groups
    (:func:`physics_loss`) before and after.
    """

    run_dir: Path
    bundle_path: Path
    bundle: Bundle
    seconds: float
    train_seconds: float
    epochs_completed: int
    learning_rate: float
    loss_before: float
    loss_after: float

    def info(self) -> dict:
        """JSON-able summary for a reconstruction's ``info``."""
        return {"adapt_seconds": self.seconds, "adapt_train_seconds": self.train_seconds,
                "adapt_epochs": self.epochs_completed,
                "adapt_learning_rate": self.learning_rate,
                "adapt_loss_before": self.loss_before, "adapt_loss_after": self.loss_after,
                "adapted_model": str(self.bundle_path),
                **({"adapted_probe": str(self.probe_path)} if self.probe_path else {})}

    @property
    def probe_path(self) -> Path | None:
        """``run_dir/probe.npz``, the probe refined during adaptation (None without
        ``refine_probe``)."""
        path = self.run_dir / "probe.npz"
        return path if path.is_file() else None


def check_adaptable(bundle: Bundle, data: PtychoData) -> None:
    """Refuse (one line) a supervised model or patterns of another size than the model's."""
    kind = bundle.model.cfg.kind
    if kind not in PHYSICS_KINDS:
        raise PtychoInputError(f"model.kind {kind!r} is supervised (trained against labels) "
                               f"and cannot adapt to a scan; adaptation needs a physics-loss "
                               f"model ({', '.join(PHYSICS_KINDS)})")
    n = bundle.model.n
    if data.patch_size != n:
        raise PtychoInputError(f"patterns are {data.patch_size}x{data.patch_size} but the "
                               f"model expects {n}x{n}; adaptation cannot change the pattern "
                               f"size", path=data.source)


def adaptation_run_config(bundle: Bundle, cfg: AdaptConfig, n_patterns: int | None = None):
    """The :class:`~ptychopinn.config.RunConfig` of an adaptation run.

    Model: the bundle's. Grouping: the bundle's (gridsize, neighbour count, inference
    members) with ⌈``cfg.passes`` × ``n_patterns`` / C⌉ groups per epoch (one group per
    pattern when ``n_patterns`` is None; ``n_subsample``/oversampling are reset: they were
    sized for the training set). Training: ``cfg``'s budget,
    learning rate (default the bundle's / 2), batch size (default the bundle's), no
    validation split (every pattern of the scan is used).
    """
    from ptychopinn.config import RunConfig, TrainConfig

    man = bundle.manifest
    known = {f.name for f in fields(GroupingConfig)}
    g = {k: v for k, v in (man.get("grouping_config") or {}).items() if k in known}
    g["gridsize"] = bundle.gridsize  # the network's group side
    n_groups = None
    if n_patterns is not None:
        n_groups = min(n_patterns, max(1, math.ceil(cfg.passes * n_patterns
                                                    / bundle.gridsize**2)))
    g.update(n_groups=n_groups, n_subsample=None, enable_oversampling=False,
             neighbor_pool_size=None)
    grouping = GroupingConfig(**g)
    tc = man.get("train_config") or {}
    base_lr = float(tc.get("learning_rate", TrainConfig().learning_rate))
    train_cfg = TrainConfig(
        epochs=cfg.epochs if cfg.epochs is not None else _EPOCHS_UNBOUNDED,
        max_minutes=cfg.minutes,
        learning_rate=cfg.learning_rate if cfg.learning_rate is not None else base_lr / 2,
        batch_size=cfg.batch_size or int(tc.get("batch_size", TrainConfig().batch_size)),
        val_fraction=0.0, accelerator=cfg.accelerator, devices=1, strategy="auto",
        seed=cfg.seed, show_progress=cfg.show_progress, refine_probe=cfg.refine_probe,
        probe_lr=cfg.probe_lr if cfg.probe_lr is not None else TrainConfig().probe_lr,
        probe_warmup_epochs=cfg.probe_warmup_epochs,
        probe_support_radius=cfg.probe_support_radius)
    return RunConfig(model=bundle.model.cfg, grouping=grouping, train=train_cfg)


def physics_loss(bundle: Bundle, data: PtychoData, *, batch_size: int = 64) -> float:
    """Mean physics loss (the model's training loss, eval mode) of ``bundle`` on ``data``.

    Over the scan's inference groups (:func:`~ptychopinn.data.grouping.covering_groups`, as
    ``reconstruct`` forms them), weighted by group; read batch by batch. Poisson NLL per pixel
    in counts (``log k!`` dropped), or amplitude MAE, as the model config says.
    """
    from ptychopinn.training.module import ReconModule

    model = bundle.model
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    gcfg = bundle.manifest.get("grouping_config") or {}
    pool = (int(gcfg.get("neighbor_count", 6)) if gcfg.get("inference_members") == "pool"
            else None)
    groups = covering_groups(data.positions, model.gridsize, pool=pool)
    module = ReconModule(model, learning_rate=1.0)
    total, count = 0.0, 0
    try:
        with torch.inference_mode():
            for s in range(0, groups.shape[0], batch_size):
                gb = groups[s : s + batch_size]
                uniq, inv = np.unique(gb, return_inverse=True)
                amp = np.asarray(data.diffraction[uniq], np.float32)[inv.reshape(gb.shape)]
                batch = {"amplitude": torch.from_numpy(amp).to(dev),
                         "offsets": torch.from_numpy(
                             relative_offsets(data.positions, gb).astype(np.float32)).to(dev)}
                loss, _ = module._loss(batch)
                total += float(loss) * len(gb)
                count += len(gb)
    finally:
        model.train(was_training)
    return total / count


def adapt(bundle: Bundle | str | Path, data: PtychoData | str | Path, out_dir: str | Path,
          cfg: AdaptConfig, *, data_path: str | Path | None = None,
          probe: str | Path | None = None) -> AdaptResult:
    """Fine-tune a copy of ``bundle`` on ``data``'s diffraction with the physics loss.

    Writes a normal run directory ``out_dir`` (``model.zip``, ``config.yaml``,
    ``metrics.csv``, ``summary.json``, ``checkpoints/``), built in a temporary sibling and
    renamed into place when done: an error or interruption leaves no ``out_dir``. Refuses,
    before writing anything, a supervised model, patterns of another size and an
    ``out_dir`` that already exists. ``bundle`` itself is not changed. The scan is read into
    memory (training does). ``data_path`` (the file ``data`` came from) is recorded with its
    SHA-256 in the manifest's ``training_data``. The copy is first conditioned on the scan
    (its probe — ``probe`` as in :func:`~ptychopinn.inference.condition.condition_on_scan` —
    and its count scale), so adaptation starts from the scan's own physics.
    """
    from ptychopinn.inference.condition import condition_on_scan
    from ptychopinn.io.dataset import load_dataset
    from ptychopinn.training.api import train

    t0 = time.perf_counter()
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    data_path = None if data_path is None else Path(data_path)
    if not isinstance(data, PtychoData):
        data_path = Path(data)
        data = load_dataset(data_path)
    check_adaptable(bundle, data)
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise PtychoInputError("already exists; choose another output folder for the adapted "
                               "model", path=out_dir)
    run_cfg = adaptation_run_config(bundle, cfg, data.n_patterns)
    if data.is_lazy:
        data = data.subset(np.arange(data.n_patterns))
    bundle, _ = condition_on_scan(bundle, data, probe)
    bundle.model.to("cpu")
    loss_before = physics_loss(bundle, data)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        result = train(data, tmp / "run", run_cfg, data_path=data_path, init_bundle=bundle)
        (tmp / "run").rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    adapted = load_bundle(out_dir)
    loss_after = physics_loss(adapted, data)
    seconds = time.perf_counter() - t0
    logger.info("adapted %s to %s: %d epochs in %.1f s, physics loss %.5g -> %.5g",
                bundle.model.cfg.kind, data.source, result.epochs_completed, seconds,
                loss_before, loss_after)
    return AdaptResult(out_dir, out_dir / "model.zip", adapted, seconds, result.train_seconds,
                       result.epochs_completed, run_cfg.train.learning_rate, loss_before,
                       loss_after)
