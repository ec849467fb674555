"""Model bundle: ``model.zip`` = ``manifest.json`` + ``weights.safetensors``. No pickle.

The loader checks the format name and version, the member list (nothing else, no paths), and
the SHA-256 of the weights, and refuses anything else with one line.

The manifest records the patch size (``patch_size``, from the training data) and the group
side (``grouping_config.gridsize``) the network was built for; bundles written before these
were recorded carry them as ``model_config.n`` and ``model_config.gridsize`` and still load.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ptychopinn import __version__
from ptychopinn.config import LEGACY_MODEL_KEYS
from ptychopinn.data.io import atomic_path
from ptychopinn.errors import PtychoInputError
from ptychopinn.models.pinn import PINN, ModelConfig

FORMAT = "ptychopinn-model-bundle"
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_WEIGHTS = "weights.safetensors"


@dataclass(frozen=True)
class Bundle:
    """A loaded model with its manifest (normalisation constants, grouping, provenance)."""

    model: PINN
    manifest: dict[str, Any]

    @property
    def gridsize(self) -> int:
        """Group side g (C = g²) the network was trained with."""
        return self.model.gridsize


def save_bundle(model: PINN, path: str | os.PathLike, *, extra: dict[str, Any] | None = None
                ) -> Path:
    """Write ``model`` (config, patch size, group side, constants, weights) as a bundle zip,
    atomically. ``extra`` manifest entries are kept; its ``grouping_config`` (the run's
    grouping section) must have the model's gridsize."""
    path = Path(path)
    extra = dict(extra or {})
    grouping = dict(extra.pop("grouping_config", None) or {})
    if grouping.setdefault("gridsize", model.gridsize) != model.gridsize:
        raise ValueError(f"grouping_config.gridsize ({grouping['gridsize']}) differs from the "
                         f"model's ({model.gridsize})")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    blob = st_save(state)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "model_config": asdict(model.cfg),
        "patch_size": model.n,
        "grouping_config": grouping,
        "normalisation": {
            "input_scale": float(model.input_scale),
            "intensity_scale": float(model.physics.scale.detach()),
        },
        "probe_shape": list(model.physics.probe.shape),
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        **extra,
    }
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr(_MANIFEST, json.dumps(manifest, indent=2, default=str))
            z.writestr(_WEIGHTS, blob)
    return path


def resolve_bundle_path(path: str | os.PathLike) -> Path:
    """Accept a run directory (holding ``model.zip``) or the zip itself."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.zip"
    if not path.exists():
        raise PtychoInputError("model bundle not found", path=path)
    return path


def load_bundle(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> Bundle:
    """Load and verify a bundle written by :func:`save_bundle`."""
    path = resolve_bundle_path(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if sorted(names) != sorted([_MANIFEST, _WEIGHTS]):
                raise PtychoInputError(f"not a ptychopinn bundle (members {names[:5]})",
                                       path=path)
            manifest = json.loads(z.read(_MANIFEST))
            blob = z.read(_WEIGHTS)
    except PtychoInputError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as e:
        raise PtychoInputError(f"corrupt or truncated bundle ({e})", path=path) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PtychoInputError(f"not a ptychopinn bundle (format {manifest.get('format')!r})"
                               if isinstance(manifest, dict) else "manifest is not an object",
                               path=path, key="manifest.json")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise PtychoInputError(f"unsupported bundle format_version "
                               f"{manifest.get('format_version')!r}; this build reads "
                               f"{FORMAT_VERSION}", path=path, key="manifest.json")
    if hashlib.sha256(blob).hexdigest() != manifest.get("weights_sha256"):
        raise PtychoInputError("weights checksum mismatch (tampered or corrupt bundle)",
                               path=path, key=_WEIGHTS)
    try:
        n, gridsize, cfg = _shape_and_config(manifest)
        state = st_load(blob)
        model = PINN(cfg, torch.zeros(n, n, dtype=torch.complex64), gridsize=gridsize,
                     input_scale=1.0, intensity_scale=1.0)
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        msg = " ".join(str(e).split())[:300]
        raise PtychoInputError(f"bundle content does not match its manifest ({msg})",
                               path=path) from None
    model.to(map_location).eval()
    return Bundle(model=model, manifest=manifest)


def _shape_and_config(manifest: dict[str, Any]) -> tuple[int, int, ModelConfig]:
    """Patch size, group side and model config of a manifest, old (``model_config.n`` and
    ``.gridsize``) or new (``patch_size``, ``grouping_config.gridsize``)."""
    mc = dict(manifest["model_config"])
    legacy = {k: mc.pop(k) for k in LEGACY_MODEL_KEYS if k in mc}
    n = manifest.get("patch_size", legacy.get("n"))
    gridsize = (manifest.get("grouping_config") or {}).get("gridsize", legacy.get("gridsize"))
    if n is None or gridsize is None:
        raise KeyError("patch_size" if n is None else "grouping_config.gridsize")
    return int(n), int(gridsize), ModelConfig(**mc)
