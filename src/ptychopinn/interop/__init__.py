"""ptychopinn.interop: the Ptychodus reconstructor plugin,
:mod:`ptychopinn.interop.ptychodus_reconstructor` (needs ``pip install 'ptychopinn[ptychodus]'``).

The Ptychodus file formats and the conversion to datasets live in :mod:`ptychopinn.io.ptychodus`.
Importing this package imports neither the plugin nor ``ptychodus``.
"""

from __future__ import annotations

__all__: list[str] = []
