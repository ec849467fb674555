"""``train.keep_best``: the bundle holds the weights of the epoch with the lowest validation
loss, not the last epoch's (a late loss spike cannot spoil a run)."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from ptychopinn.config import RunConfig
from ptychopinn.training.api import train
from ptychopinn.training.bundle import load_bundle
from ptychopinn.training.checkpoint_io import load_state
from ptychopinn.training.module import CHECKPOINT_KEY


def _val_losses(run) -> list[float]:
    with open(run / "metrics.csv", newline="") as fh:
        return [float(r["val/loss"]) for r in csv.DictReader(fh) if r.get("val/loss")]


@pytest.mark.parametrize("keep_best", [True, False])
def test_bundle_holds_the_epoch_with_the_lowest_validation_loss(keep_best, tiny_data, tmp_path):
    # a learning rate this high makes the validation loss rise after epoch 2 of 4
    cfg = RunConfig().with_overrides(model={"n_filters_scale": 0.25}, train={
        "epochs": 4, "learning_rate": 0.2, "show_progress": False, "keep_best": keep_best})
    run = tmp_path / "run"
    train(tiny_data, run, cfg)
    val = _val_losses(run)
    best = min(range(4), key=val.__getitem__) + 1
    assert len(val) == 4 and best < 4, val  # the case this test is about
    summary = json.loads((run / "summary.json").read_text())
    weights = load_bundle(run).model.state_dict()
    last = {k.removeprefix("model."): v
            for k, v in load_state(run / "checkpoints" / "last.ckpt")["state_dict"].items()}
    same_as_last = all(torch.equal(weights[k], last[k]) for k in weights)
    if keep_best:
        assert summary["kept_epoch"] == best
        assert summary["kept_val_loss"] == pytest.approx(val[best - 1], rel=1e-5)
        assert not same_as_last
        kept = load_state(run / "checkpoints" / "last.ckpt")[CHECKPOINT_KEY]["best"]
        assert kept["epoch"] == best and all(
            torch.equal(weights[k], kept["state"][f"model.{k}"]) for k in weights)
        assert load_bundle(run).manifest["kept_epoch"]["epoch"] == best
    else:
        assert summary["kept_epoch"] == 4 and "kept_val_loss" not in summary
        assert same_as_last
