"""Lightning module: one ``_shared_step`` for train/val/test, loss chosen by the model config."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import lightning as L
import torch
from torch import Tensor

from ptychopinn.models.pinn import PINN
from ptychopinn.models.registry import kind_spec
from ptychopinn.physics.noise import amplitude_mae, poisson_nll
from ptychopinn.physics.probe import ProbeParameter
from ptychopinn.training.augment import dihedral
from ptychopinn.training.positions import PositionRefinement, ScanPositions

logger = logging.getLogger(__name__)


def supervised_mae(patches: Tensor, labels: Tensor) -> Tensor:
    """MAE on amplitude and on wrapped phase difference between predicted and true patches."""
    amp = (patches.abs() - labels.abs()).abs().mean()
    dphi = torch.angle(patches * labels.conj())
    return amp + dphi.abs().mean()


#: Our entry in a training checkpoint: ``{"epochs_completed": int}``.
CHECKPOINT_KEY = "ptychopinn"


def checkpoint_epochs(checkpoint: dict) -> int:
    """Epochs a training checkpoint has finished, from our own entry (checkpoints written
    before it existed: Lightning's documented ``epoch`` field, the last epoch started)."""
    own = checkpoint.get(CHECKPOINT_KEY)
    if own is not None:
        return int(own["epochs_completed"])
    return int(checkpoint.get("epoch", -1)) + 1


@dataclass(frozen=True)
class ProbeRefinement:
    """Probe refinement options: ``lr`` (Adam), ``warmup_epochs`` with the probe fixed,
    ``support_radius`` in pixels (None: automatic,
    :func:`~ptychopinn.physics.probe.auto_support_radius`)."""

    lr: float
    warmup_epochs: int = 1
    support_radius: float | None = None

    @classmethod
    def from_train_config(cls, tc) -> ProbeRefinement | None:
        """From a :class:`~ptychopinn.config.TrainConfig` (None unless ``refine_probe``)."""
        if not tc.refine_probe:
            return None
        return cls(lr=tc.probe_lr, warmup_epochs=tc.probe_warmup_epochs,
                   support_radius=tc.probe_support_radius)


class ReconModule(L.LightningModule):
    """Trains a :class:`PINN` (physics loss) or the supervised baseline (labels, MAE).

    ``probe_refinement`` (a :class:`ProbeRefinement`) makes the probe a learnable, constrained
    parameter (:class:`~ptychopinn.physics.probe.ProbeParameter`, initialised from the model's
    probe) in its own optimiser group: learning rate 0 during the warm-up epochs, then
    ``lr``. Each step the constrained probe replaces the model's probe buffer for the forward
    pass, so the physics layer and a network with physics inside (``unrolled``) both use it;
    :meth:`commit_probe` writes the final one into the model (and so into its bundle).

    ``position_refinement`` with ``nominal_positions`` (M, 2) float64, the scan's positions, makes
    them learnable (:class:`~ptychopinn.training.positions.ScanPositions`): each batch's
    member offsets are computed from the current positions of its ``index`` (so the batch
    must carry it) and the gradient reaches them through the patch geometry; own optimiser
    groups (``positions_global``, ``positions``) with their warm-ups.
    """

    def __init__(self, model: PINN, *, learning_rate: float, hparams: dict | None = None,
                 plateau_monitor: str = "train",
                 probe_refinement: ProbeRefinement | None = None,
                 position_refinement: PositionRefinement | None = None,
                 nominal_positions: Tensor | None = None, augment: bool = False,
                 keep_best: bool = False):
        super().__init__()
        self.model = model
        self.augment = augment
        self.learning_rate = learning_rate
        self.plateau_monitor = plateau_monitor
        self.probe_refinement = probe_refinement
        self.probe_param = None
        if probe_refinement is not None:
            if kind_spec(model.cfg.kind).supervised:
                raise ValueError("probe refinement needs a physics-loss model; the supervised "
                                 f"{model.cfg.kind} does not use the probe")
            self.probe_param = ProbeParameter(model.physics.probe,
                                              support_radius=probe_refinement.support_radius)
            self.commit_probe()
        self.position_refinement = position_refinement
        self.positions = None
        if position_refinement is not None:
            if kind_spec(model.cfg.kind).supervised:
                raise ValueError("position refinement needs a physics-loss model; the "
                                 f"supervised {model.cfg.kind} does not use the positions")
            if nominal_positions is None:
                raise ValueError("position refinement needs the scan's nominal positions")
            self.positions = ScanPositions(nominal_positions.numpy(),
                                           bound=position_refinement.bound,
                                           affine=position_refinement.affine)
        self.save_hyperparameters(hparams or {})
        #: training epochs finished (a cut-short last epoch counts), carried in our own
        #: checkpoint entry (:data:`CHECKPOINT_KEY`) so a resumed run knows where it stands
        #: without reading Lightning's private loop state
        self.epochs_completed = 0
        #: ``keep_best``: the state (model, probe, positions) of the epoch with the lowest
        #: validation loss, restored by :meth:`restore_best` (also in our checkpoint entry)
        self.keep_best = keep_best
        self.best: dict | None = None  # {"loss", "epoch", "state"}
        self._val_sum: list[Tensor] = []

    def refined_probe(self) -> Tensor:
        """The current constrained probe (N, N) complex64 (detached), or the model's probe."""
        if self.probe_param is None:
            return self.model.physics.probe.detach()
        with torch.no_grad():
            return self.probe_param().detach()

    def commit_probe(self) -> None:
        """Write the current constrained probe into the model's probe buffer."""
        if self.probe_param is not None:
            self.model.physics.probe = self.refined_probe().to(self.model.physics.probe.device)

    def _loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        cfg = self.model.cfg
        amp = batch["amplitude"]
        if kind_spec(cfg.kind).supervised:
            raw, _ = self.model.predict_patches(amp, batch["offsets"])
            return supervised_mae(raw, batch["labels"]), {"raw": raw}
        cond = {"probe": batch.get("probe"), "count_scale": batch.get("count_scale")}
        offsets = (batch["offsets"] if self.positions is None
                   else self.positions.offsets(batch["index"]))
        probe = None if self.probe_param is None else self.probe_param()  # differentiable
        if self.augment and self.training:
            # one random symmetry of the whole experiment per batch: the probe (the refined
            # one too, differentiably) and the positions follow the patterns
            k = int(torch.randint(8, (1,)))
            base = next(p for p in (cond["probe"], probe, self.model.physics.probe)
                        if p is not None)
            amp, offsets, base = dihedral(amp, offsets, base, k)
            cond["probe"] = base if base.dim() == 3 else base.expand(amp.shape[0], *base.shape)
        if probe is None:
            out = self.model(amp, offsets, **cond)
        else:
            physics = self.model.physics
            physics.probe = probe  # used by the physics and the network
            try:
                out = self.model(amp, offsets, **cond)
            finally:  # the graph keeps its own reference; the buffer must not hold one
                physics.probe = probe.detach()
        pred = out["pred_amplitude"]
        cs = cond["count_scale"]
        if cs is not None:  # groups of scans at other doses weigh the same (model units)
            pred, amp = pred / cs[:, None, None, None], amp / cs[:, None, None, None]
        if cfg.loss == "poisson":
            loss = poisson_nll(pred**2, amp**2)
        else:
            loss = amplitude_mae(pred, amp)
        return loss, out

    def _shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        loss, out = self._loss(batch)
        bs = batch["amplitude"].shape[0]
        # synced across processes (DDP) so the LR plateau scheduler sees one loss on all ranks
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=bs, sync_dist=True,
                 on_step=stage == "train", on_epoch=True)
        if stage == "train":
            phase = torch.angle(out["raw"])
            self.log("train/phase_saturated", (phase.abs() > 0.9 * math.pi).float().mean(),
                     batch_size=bs)
            self.log("train/intensity_scale", self.model.physics.scale.detach(), batch_size=bs)
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self._shared_step(batch, "val")
        if self.keep_best:
            bs = batch["amplitude"].shape[0]
            self._val_sum.append(torch.stack([loss.detach() * bs, loss.new_tensor(bs)]))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_sum = []

    def on_validation_epoch_end(self) -> None:
        """With ``keep_best``: keep a copy of the state when this epoch's validation loss (mean
        over groups, over all processes) is the lowest so far."""
        if not self.keep_best or not self._val_sum or self.trainer.sanity_checking:
            return
        total = torch.stack(self._val_sum).sum(0)
        total = self.trainer.strategy.reduce(total, reduce_op="sum")
        loss = float(total[0] / total[1])
        if self.best is None or loss < self.best["loss"]:
            self.best = {"loss": loss, "epoch": self.epochs_completed + 1,
                         "state": {k: v.detach().clone()
                                   for k, v in self.state_dict().items()}}

    def restore_best(self) -> dict | None:
        """Load the kept best state (``keep_best``) unless the last epoch is the best; returns
        ``{"epoch", "val_loss"}`` of the weights now held (None without a kept state)."""
        if self.best is None:
            return None
        if self.best["epoch"] != self.epochs_completed:
            self.load_state_dict(self.best["state"])
            logger.info("kept the weights of epoch %d (lowest validation loss %.6g) instead of "
                        "the last epoch's (%d)", self.best["epoch"], self.best["loss"],
                        self.epochs_completed)
        return {"epoch": self.best["epoch"], "val_loss": self.best["loss"]}

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")

    def _warmups(self) -> dict[str, tuple[int, float]]:
        """Optimiser group name -> (first epoch it learns, its learning rate)."""
        out = {}
        if self.probe_param is not None:
            out["probe"] = (self.probe_refinement.warmup_epochs, self.probe_refinement.lr)
        if self.positions is not None:
            pr = self.position_refinement
            out["positions_global"] = (pr.warmup_epochs, pr.lr)
            out["positions"] = (pr.warmup_epochs + (pr.affine_epochs if pr.affine else 0),
                                pr.lr)
        return out

    def on_train_epoch_end(self) -> None:
        # runs before the checkpoint callback's hook (Lightning calls the module between the
        # plain and the checkpointing callbacks), so the epoch's checkpoint counts it
        self.epochs_completed += 1

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = {"epochs_completed": self.epochs_completed,
                                      **({} if self.best is None else {"best": self.best})}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.epochs_completed = checkpoint_epochs(checkpoint)
        best = (checkpoint.get(CHECKPOINT_KEY) or {}).get("best")
        if best is not None:
            self.best = {"loss": float(best["loss"]), "epoch": int(best["epoch"]),
                         "state": dict(best["state"])}

    def on_train_epoch_start(self) -> None:
        """Warm-ups (probe, positions): a group's learning rate is 0 until its first epoch
        (set once when it comes, so the plateau scheduler's later reductions stand)."""
        for name, (first, lr) in self._warmups().items():
            if self.current_epoch <= first:
                for opt in self.trainer.optimizers:
                    for group in opt.param_groups:
                        if group.get("name") == name:
                            group["lr"] = lr if self.current_epoch >= first else 0.0

    def configure_optimizers(self):
        own = {}
        if self.probe_param is not None:
            own["probe"] = list(self.probe_param.parameters())
        if self.positions is not None:
            own["positions_global"] = self.positions.global_parameters()
            own["positions"] = [self.positions.raw]
        own = {k: v for k, v in own.items() if v}
        if not own:
            opt = torch.optim.Adam(self.parameters(), lr=self.learning_rate)
        else:
            taken = {id(p) for ps in own.values() for p in ps}
            rest = [p for p in self.parameters() if id(p) not in taken]
            warm = self._warmups()
            opt = torch.optim.Adam([{"params": rest, "name": "model"}] + [
                {"params": ps, "name": name,
                 "lr": 0.0 if warm[name][0] > 0 else warm[name][1]}
                for name, ps in own.items()], lr=self.learning_rate)
        # The per-batch loss is noisy (patterns differ in content), so only a long plateau of
        # the epoch-mean loss lowers the rate; halving every few epochs starved training.
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=10)
        monitor = "train/loss_epoch" if self.plateau_monitor == "train" else "val/loss"
        schedule = {"scheduler": sched, "monitor": monitor, "interval": "epoch"}
        return {"optimizer": opt, "lr_scheduler": schedule}
