"""Process-wide state a training run changes, put back afterwards; Lightning's noise silenced.

Lightning seeds the global RNGs (``seed_everything``), switches torch's deterministic
algorithms on, sets cuDNN and environment flags, prints a cloud-logging tip, device banners
("GPU available: ...", "TPU available: ...", "`Trainer.fit` stopped: ...") and, for a run
without a validation set, a warning about ``validation_step``, and triggers a torch
``LeafSpec`` FutureWarning on every run (and, on resume, warnings that the run's folders are
not empty). :func:`isolated_training` undoes the first group on exit and hides the rest while
it runs; the banners still show when the ``ptychopinn`` logger is enabled for DEBUG
(``ptychopinn -v``).
"""

from __future__ import annotations

import logging
import os
import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["LIGHTNING_TIP_LOGGERS", "isolated_training", "preserved_global_state",
           "quiet_lightning"]

#: Loggers through which Lightning's ``rank_zero_info`` may emit its tip.
LIGHTNING_TIP_LOGGERS = ("lightning.pytorch.utilities.rank_zero",
                         "lightning.fabric.utilities.rank_zero")
_ENV = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS", "CUBLAS_WORKSPACE_CONFIG")
_LEAFSPEC = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
# On --resume Lightning warns that the run's logs and checkpoints "exist and are not empty" and
# that old log files "will be deleted": the run keeps both (metrics.csv merges the earlier rows)
_RESUME_NOISE = (r"Experiment logs directory .* exists and is not empty",
                 r"Checkpoint directory .* exists and is not empty")
# A run too small for a validation set has none; our module still defines validation_step
_NO_VAL_LOADER = r"You defined a `validation_step` but have no `val_dataloader`"


@contextmanager
def preserved_global_state() -> Iterator[None]:
    """Restore on exit: python/numpy/torch(/CUDA) RNG states, torch's deterministic mode and
    warn_only flag, cuDNN deterministic/benchmark, and Lightning's seed environment."""
    py, npy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()  # noqa: NPY002
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    det = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    env = {k: os.environ.get(k) for k in _ENV}
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)  # noqa: NPY002  (the legacy global RNG is what we guard)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _DropLitLoggerTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("Tip:" in msg and "litlogger" in msg)


class _BannersOnlyWhenVerbose(logging.Filter):
    """Drop Lightning's INFO lines (device banners, "`Trainer.fit` stopped", "LOCAL_RANK")
    unless the application asked for our DEBUG lines: Lightning's import sets its loggers to
    INFO, so without this a library call prints them whatever the caller's logging setup."""

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.levelno > logging.INFO
                or logging.getLogger("ptychopinn").isEnabledFor(logging.DEBUG))


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Hide Lightning's litlogger tip, its INFO banners ("GPU available: ...", "TPU available:
    ...", "`Trainer.fit` stopped: ..."; shown when the ``ptychopinn`` logger is enabled for
    DEBUG), its warning that ``validation_step`` has no ``val_dataloader`` (we skip validation
    on purpose for small sets), torch's LeafSpec FutureWarning and Lightning's misleading
    "directory exists and is not empty" warnings on resume (nothing else)."""
    filters = (_DropLitLoggerTip(), _BannersOnlyWhenVerbose())
    loggers = [logging.getLogger(name) for name in LIGHTNING_TIP_LOGGERS]
    for lg in loggers:
        for f in filters:
            lg.addFilter(f)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_LEAFSPEC, category=FutureWarning)
            for message in (*_RESUME_NOISE, _NO_VAL_LOADER):
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
            yield
    finally:
        for lg in loggers:
            for f in filters:
                lg.removeFilter(f)


@contextmanager
def isolated_training() -> Iterator[None]:
    """:func:`preserved_global_state` and :func:`quiet_lightning` together."""
    with preserved_global_state(), quiet_lightning():
        yield
