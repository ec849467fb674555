"""Tiny studies (N = 32, ~150 positions, 1-epoch networks, 3-epoch LSQML) shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ptychopinn.iterative import is_available
from ptychopinn.studies.runner import run_study
from ptychopinn.studies.spec import load_study

TINY = {
    "name": "tiny",
    "seed": 1,
    "doses": ["1e4", 1.0e6],  # a string on purpose: YAML reads 1e4 as text
    "views": {"dense": {}},
    "models": ["PtychoPINN", "Baseline", "PtyChi-LSQML"],
    "scene": {"object": "lines", "probe": "disk", "n_positions": 150, "object_size": 80,
              "patch_size": 32},
    "training": {"epochs": 1, "batch_size": 16},
    "iterative": {"epochs": 3},
    # threads in this process: no worker start-up cost; two jobs side by side on 2 cores
    "compute": {"processes": False, "n_workers": 1, "threads_per_worker": 2},
}


def write_study(folder: Path, overrides: dict | None = None, name: str = "study.yaml") -> Path:
    """Write TINY (with top-level ``overrides``) as YAML into ``folder``."""
    d = {**TINY, **(overrides or {})}
    if not is_available():
        d["models"] = [m for m in d["models"] if not str(m).startswith("PtyChi")]
    path = folder / name
    path.write_text(yaml.safe_dump(d))
    return path


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    """A complete tiny study: (spec, out folder, StudyResult, events)."""
    folder = tmp_path_factory.mktemp("study")
    spec = load_study(write_study(folder))
    events: list[tuple[str, str]] = []
    result = run_study(spec, folder / "out", show_progress=False,
                       on_event=lambda j, s: events.append((j, s)))
    return spec, folder / "out", result, events
