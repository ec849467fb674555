"""``convert --format ptychodus``: re-exported from :mod:`ptychopinn.io.ptychodus.dataset`."""

from __future__ import annotations

from ptychopinn.io.ptychodus.dataset import convert_ptychodus

__all__ = ["convert_ptychodus"]
