"""``train()`` called from Python prints none of Lightning's banners (issue #24).

Lightning's device lines ("GPU available: ...", "TPU available: ...", "`Trainer.fit` stopped")
are INFO records on its rank-zero loggers, and a run without a validation set warns "You defined
a `validation_step` but have no `val_dataloader`". ``ptychopinn -v`` still shows the INFO lines
(tests/test_cli_logging.py).
"""

from __future__ import annotations

import logging
import warnings

from ptychopinn.config import RunConfig
from ptychopinn.training.api import train

BANNERS = ("GPU available", "TPU available", "`Trainer.fit` stopped", "LOCAL_RANK",
           "You defined a `validation_step` but have no `val_dataloader`")


def test_library_train_prints_no_lightning_banners(tmp_path, tiny_data, capsys, caplog):
    # val_fraction 0: no validation set, the case in which Lightning warns about validation_step
    cfg = RunConfig().with_overrides(train={"epochs": 1, "show_progress": False,
                                            "val_fraction": 0.0, "accelerator": "cpu"})
    caplog.set_level(logging.INFO)  # an application that shows INFO lines (ours included)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # pytest's own filters would hide Lightning's warnings
        res = train(tiny_data, tmp_path / "run", cfg)
    assert res.epochs_completed == 1
    out = capsys.readouterr()
    shown = "\n".join([out.out, out.err, caplog.text, *(str(w.message) for w in caught)])
    for banner in BANNERS:
        assert banner not in shown, (banner, shown[-2000:])
