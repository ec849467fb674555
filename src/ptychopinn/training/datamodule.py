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


class CorpusGroups(Dataset):
    """Groups drawn on the fly from a synthetic corpus
    (:class:`~ptychopinn.data.corpus.CorpusSpec`); nothing is read or written.

    Item i belongs to scene ``i // groups_per_scene`` of the current epoch (seeded by the
    corpus seed, ``seed`` and the epoch, so a resumed run sees the same scenes); the last
    scene is cached, so read the items in order. Each item holds ``amplitude`` (C, N, N),
    ``offsets`` (C, 2), ``probe`` (N, N) complex64 (the scene's normalised probe) and
    ``count_scale`` () = sqrt(scene mean counts / (N/2)²), the per-group conditioning of
    :meth:`~ptychopinn.models.pinn.PINN.forward` for a model whose reference counts are
    (N/2)² (input scale 1).
    """

    def __init__(self, spec, grouping, *, seed: int = 0):
        self.spec = spec
        self.grouping = grouping
        self.seed = int(seed)
        self.epoch = 0
        self._cache: tuple[tuple[int, int], list[dict]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Draw the scenes of ``epoch`` from now on."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.spec.scenes_per_epoch * self.spec.groups_per_scene

    def scene_items(self, epoch: int, k: int) -> list[dict[str, torch.Tensor]]:
        """The ``groups_per_scene`` items of scene ``k`` of ``epoch``."""
        from dataclasses import replace

        from ptychopinn.data.corpus import make_scene
        from ptychopinn.data.grouping import make_groups

        rng = np.random.default_rng([self.spec.seed, self.seed, epoch, k])
        scene = make_scene(self.spec, rng)
        gcfg = replace(self.grouping, n_groups=self.spec.groups_per_scene, n_subsample=None,
                       enable_oversampling=False, neighbor_pool_size=None)
        groups = make_groups(scene.positions, gcfg, rng)
        offsets = relative_offsets(scene.positions, groups).astype(np.float32)
        n = self.spec.patch_size
        cs = torch.tensor(float(np.sqrt(scene.mean_counts)) / (n / 2), dtype=torch.float32)
        probe = torch.from_numpy(scene.probe)
        return [{"amplitude": torch.from_numpy(scene.amplitude[g]),
                 "offsets": torch.from_numpy(offsets[i]), "probe": probe, "count_scale": cs}
                for i, g in enumerate(groups)]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        k, j = divmod(int(i), self.spec.groups_per_scene)
        key = (self.epoch, k)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.scene_items(*key))
        return self._cache[1][j]


def epoch_setter():
    """A Lightning callback that tells a :class:`CorpusGroups` training set the epoch."""
    import lightning as L

    class _EpochSetter(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            ds = getattr(trainer.train_dataloader, "dataset", None)
            if isinstance(ds, CorpusGroups):
                ds.set_epoch(trainer.current_epoch)

    return _EpochSetter()
