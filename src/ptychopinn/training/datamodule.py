"""Torch datasets of neighbour groups, read from a PtychoData (in memory or lazy)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ptychopinn.data.container import PtychoData
from ptychopinn.data.grouping import relative_offsets


class GroupDataset(Dataset):
    """Item g: ``amplitude`` (C, N, N) float32, ``offsets`` (C, 2) float32, ``index`` (C,),
    and ``labels`` (C, N, N) complex64 when ground-truth patches are requested."""

    def __init__(self, data: PtychoData, groups: np.ndarray, *, with_labels: bool = False):
        self.data = data
        self.groups = np.asarray(groups, dtype=np.int64)
        self.offsets = relative_offsets(data.positions, self.groups).astype(np.float32)
        self.with_labels = with_labels
        if with_labels and data.ground_truth_patches is None:
            raise ValueError("labels requested but the dataset has none")

    def __len__(self) -> int:
        return self.groups.shape[0]

    def __getitem__(self, g: int) -> dict[str, torch.Tensor]:
        idx = self.groups[g]
        item = {
            "amplitude": torch.from_numpy(np.asarray(self.data.diffraction[idx], np.float32)),
            "offsets": torch.from_numpy(self.offsets[g]),
            "index": torch.from_numpy(idx),
        }
        if self.with_labels:
            item["labels"] = torch.from_numpy(
                np.asarray(self.data.ground_truth_patches[idx], np.complex64))
        return item
