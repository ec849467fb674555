"""Iterative baseline: pty-chi reconstructions (LSQML, ePIE, rPIE, DM) on ptychopinn data.

pty-chi is an optional extra (``pip install 'ptychopinn[ptychi]'``); it runs in a separate
worker process so that it cannot change torch's global state in the caller.
"""

from ptychopinn.iterative.ptychi_backend import (
    ALGORITHMS,
    IterativeConfig,
    IterativeResult,
    PtychiWorker,
    coverage_map,
    is_available,
    ptychi_forward_amplitudes,
    ptychi_version,
    run_iterative,
)

__all__ = [
    "ALGORITHMS",
    "IterativeConfig",
    "IterativeResult",
    "PtychiWorker",
    "coverage_map",
    "is_available",
    "ptychi_forward_amplitudes",
    "ptychi_version",
    "run_iterative",
]
