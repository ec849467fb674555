"""Lightning module: one ``_shared_step`` for train/val/test, loss chosen by the model config."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import Tensor

from ptychopinn.models.pinn import PINN
from ptychopinn.physics.noise import amplitude_mae, poisson_nll


def supervised_mae(patches: Tensor, labels: Tensor) -> Tensor:
    """MAE on amplitude and on wrapped phase difference between predicted and true patches."""
    amp = (patches.abs() - labels.abs()).abs().mean()
    dphi = torch.angle(patches * labels.conj())
    return amp + dphi.abs().mean()


class ReconModule(L.LightningModule):
    """Trains a :class:`PINN` (physics loss) or the supervised baseline (labels, MAE)."""

    def __init__(self, model: PINN, *, learning_rate: float, hparams: dict | None = None,
                 plateau_monitor: str = "train"):
        super().__init__()
        self.model = model
        self.learning_rate = learning_rate
        self.plateau_monitor = plateau_monitor
        self.save_hyperparameters(hparams or {})

    def _loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        cfg = self.model.cfg
        amp = batch["amplitude"]
        if cfg.kind == "baseline":
            raw, _ = self.model.predict_patches(amp, batch["offsets"])
            return supervised_mae(raw, batch["labels"]), {"raw": raw}
        out = self.model(amp, batch["offsets"])
        if cfg.loss == "poisson":
            loss = poisson_nll(out["pred_amplitude"] ** 2, amp**2)
        else:
            loss = amplitude_mae(out["pred_amplitude"], amp)
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
        return self._shared_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.learning_rate)
        # The per-batch loss is noisy (patterns differ in content), so only a long plateau of
        # the epoch-mean loss lowers the rate; halving every few epochs starved training.
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=10)
        monitor = "train/loss_epoch" if self.plateau_monitor == "train" else "val/loss"
        schedule = {"scheduler": sched, "monitor": monitor, "interval": "epoch"}
        return {"optimizer": opt, "lr_scheduler": schedule}
