"""Data: the dataset contract (I/O), simulation, grouping, splitting, conversion."""

from __future__ import annotations

from ptychopinn.data.container import PtychoData
from ptychopinn.data.io import load_dataset, save_dataset

__all__ = ["PtychoData", "load_dataset", "save_dataset"]
