"""Pickle-free Lightning checkpoints: JSON structure + safetensors tensors in one zip."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.plugins.io import CheckpointIO
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ptychopinn.errors import PtychoInputError
from ptychopinn.files import atomic_path

_STATE = "state.json"
_TENSORS = "tensors.safetensors"


def _encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        pairs = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint dict key of type {type(k).__name__} not storable")
            pairs.append([k, _encode(v, tensors)])
        return {"__dict__": pairs}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: _decode(v, tensors) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(_decode(v, tensors) for v in obj["__tuple__"])
        raise ValueError("malformed checkpoint structure")
    return obj


def save_state(state: dict, path: str | os.PathLike) -> None:
    """Write a nested dict of tensors / JSON values atomically as a zip (no pickle)."""
    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(state, tensors)
    blob = st_save(tensors) if tensors else b""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr(_STATE, json.dumps(structure))
            z.writestr(_TENSORS, blob)


def load_state(path: str | os.PathLike, map_location: Any = None) -> dict:
    """Read a checkpoint written by :func:`save_state`; refuses anything else in one line."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if names != {_STATE, _TENSORS}:
                raise PtychoInputError(f"unexpected checkpoint members {sorted(names)}",
                                       path=path)
            structure = json.loads(z.read(_STATE))
            blob = z.read(_TENSORS)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as e:
        if isinstance(e, PtychoInputError):
            raise
        raise PtychoInputError(f"corrupt checkpoint ({e})", path=path) from None
    tensors = st_load(blob) if blob else {}
    if map_location is not None and not callable(map_location):
        tensors = {k: v.to(map_location) for k, v in tensors.items()}
    return _decode(structure, tensors)


class SafeCheckpointIO(CheckpointIO):
    """Lightning CheckpointIO plugin storing checkpoints without pickle."""

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Any = None) -> None:
        save_state(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: Any = None
                        ) -> dict:
        return load_state(path, map_location)

    def remove_checkpoint(self, path: Any) -> None:
        p = Path(path)
        if p.exists():
            p.unlink()
