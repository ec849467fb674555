"""Data: the dataset container, simulation, grouping, splitting, conversion.

Reading and writing datasets on disk is :mod:`ptychopinn.io` (``load_dataset``,
``save_dataset``), a layer above this one.
"""

from __future__ import annotations

from ptychopinn.data.container import PtychoData

__all__ = ["PtychoData"]
