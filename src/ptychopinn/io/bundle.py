"""The model bundle archive: ``model.zip`` = ``manifest.json`` + ``weights.safetensors``.

This module owns the archive (member names, format name and version, weights checksum); the
training layer (:mod:`ptychopinn.training.bundle`) builds the manifest's model fields and the
network. No pickle: the weights are safetensors bytes. The reader checks the member list
(nothing else, no paths), the format name and version and the SHA-256 of the weights, and
refuses anything else with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ptychopinn.errors import PtychoInputError
from ptychopinn.files import atomic_path

__all__ = ["BUNDLE_FILE", "FORMAT", "FORMAT_VERSION", "read_bundle_archive",
           "resolve_bundle_path", "write_bundle_archive"]

FORMAT = "ptychopinn-model-bundle"
FORMAT_VERSION = 1
BUNDLE_FILE = "model.zip"
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"


def write_bundle_archive(path: str | os.PathLike, fields: Mapping[str, Any], weights: bytes, *,
                         extra: Mapping[str, Any] | None = None) -> Path:
    """Write a bundle archive atomically.

    Parameters
    ----------
    path : path-like
        Destination zip.
    fields : mapping
        Manifest entries describing the model (JSON-serialisable; ``default=str`` otherwise).
    weights : bytes
        The safetensors serialisation of the state dict.
    extra : mapping, optional
        Further manifest entries (provenance ...), written last.

    Returns
    -------
    pathlib.Path
        ``path``. The manifest holds ``format``, ``format_version``, ``fields``,
        ``weights_sha256`` and ``extra``, in that order.
    """
    path = Path(path)
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **fields,
                "weights_sha256": hashlib.sha256(weights).hexdigest(), **(extra or {})}
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr(MANIFEST, json.dumps(manifest, indent=2, default=str))
            z.writestr(WEIGHTS, weights)
    return path


def resolve_bundle_path(path: str | os.PathLike) -> Path:
    """Accept a run directory (holding ``model.zip``) or the zip itself."""
    path = Path(path)
    if path.is_dir():
        path = path / BUNDLE_FILE
    if not path.exists():
        raise PtychoInputError("model bundle not found", path=path)
    return path


def read_bundle_archive(path: str | os.PathLike) -> tuple[dict[str, Any], bytes, Path]:
    """Read and verify a bundle archive (a zip, or a run directory holding ``model.zip``).

    Returns
    -------
    manifest : dict
        The parsed ``manifest.json``.
    weights : bytes
        The safetensors bytes, whose SHA-256 matched the manifest.
    path : pathlib.Path
        The zip that was read.

    Raises
    ------
    PtychoInputError
        One line naming the file: not found, other members, corrupt zip, wrong format name or
        version, checksum mismatch.
    """
    path = resolve_bundle_path(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if sorted(names) != sorted([MANIFEST, WEIGHTS]):
                raise PtychoInputError(f"not a ptychopinn bundle (members {names[:5]})",
                                       path=path)
            manifest = json.loads(z.read(MANIFEST))
            weights = z.read(WEIGHTS)
    except PtychoInputError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as e:
        raise PtychoInputError(f"corrupt or truncated bundle ({e})", path=path) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PtychoInputError(f"not a ptychopinn bundle (format {manifest.get('format')!r})"
                               if isinstance(manifest, dict) else "manifest is not an object",
                               path=path, key=MANIFEST)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise PtychoInputError(f"unsupported bundle format_version "
                               f"{manifest.get('format_version')!r}; this build reads "
                               f"{FORMAT_VERSION}", path=path, key=MANIFEST)
    if hashlib.sha256(weights).hexdigest() != manifest.get("weights_sha256"):
        raise PtychoInputError("weights checksum mismatch (tampered or corrupt bundle)",
                               path=path, key=WEIGHTS)
    return manifest, weights, path
