"""Names and columns of a study folder's artifacts, shared by the writer
(:mod:`~ptychopinn.studies.report`) and the checker (:mod:`~ptychopinn.studies.verify`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ptychopinn.studies.spec import StudySpec

__all__ = ["LOCK", "MANIFEST", "METRICS_COLUMNS", "STUDY_FILES", "VERIFICATION", "plot_names"]

#: Columns of the tidy metrics table (SPEC §8).
METRICS_COLUMNS: tuple[str, ...] = ("dose", "view", "model", "split", "metric", "part", "value")
#: Study-level files written by ``study run`` (spec copy, tables, report).
STUDY_FILES: tuple[str, ...] = ("study.yaml", "metrics.csv", "metrics.parquet", "deltas.csv",
                                "overlap.csv", "jobs.csv", "report.md", "report.html")
#: SHA-256 and size of every artifact.
MANIFEST = "manifest.json"
#: Lock file held by a running ``study run`` (not an artifact).
LOCK = ".study.lock"
#: Result of the artifact check.
VERIFICATION = "verification.json"


def metric_plot(metric: str, split: str) -> str:
    """File name (under ``plots/``) of ``metric`` vs dose on ``split``."""
    return f"{metric}_vs_dose_{split}.png"


def phase_grid_plot(view: str, split: str) -> str:
    """File name (under ``plots/``) of the phase images of ``view`` on ``split``."""
    return f"phase_grid_{view}_{split}.png"


def plot_names(spec: StudySpec) -> list[str]:
    """File names (under ``plots/``) of the figures a complete study holds."""
    from ptychopinn.evaluation.metrics import METRIC_NAMES

    names = [metric_plot(m, s) for s in spec.evaluate for m in METRIC_NAMES]
    names += [phase_grid_plot(v.name, s) for s in spec.evaluate for v in spec.views]
    return names
