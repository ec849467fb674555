"""Data: the dataset container, simulation, grouping, splitting, conversion.

``load_dataset`` / ``save_dataset`` are re-exported from :mod:`ptychopinn.io.dataset`, resolved
on first access (the io package itself builds :class:`PtychoData`).
"""

from __future__ import annotations

from typing import Any

from ptychopinn.data.container import PtychoData

__all__ = ["PtychoData", "load_dataset", "save_dataset"]


def __getattr__(name: str) -> Any:
    if name in ("load_dataset", "save_dataset"):
        from ptychopinn.io import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
