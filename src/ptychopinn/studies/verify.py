"""``verification.json`` (every expected artifact present, non-empty, loadable, finite) and
``manifest.json`` (relative path, SHA-256 and size of every artifact)."""

from __future__ import annotations

import json
import logging
import math
import zipfile
from pathlib import Path
from typing import Any

from ptychopinn.studies.artifacts import (
    LOCK,
    MANIFEST,
    METRICS_COLUMNS,
    STUDY_FILES,
    VERIFICATION,
    plot_names,
)
from ptychopinn.studies.jobs import DONE, JOB_OUTPUTS, Job, file_record, read_done
from ptychopinn.studies.spec import StudySpec

logger = logging.getLogger(__name__)

__all__ = ["check_file", "expected_artifacts", "verify_study", "write_manifest"]


def expected_artifacts(spec: StudySpec, jobs: list[Job]) -> list[str]:
    """Relative paths (POSIX) of every artifact a complete study holds, besides the manifest."""
    paths = []
    for job in jobs:
        base = f"jobs/{job.id}"
        paths += [f"{base}/{f}" for f in JOB_OUTPUTS[job.kind]] + [f"{base}/{DONE}"]
    paths += list(STUDY_FILES)
    paths += [f"plots/{p}" for p in plot_names(spec)]
    if (spec.iterative.snapshot_every is not None and any(m.is_network for m in spec.models)
            and any(not m.is_network for m in spec.models)):
        from ptychopinn.studies.timequality import EQUAL_TIME_CSV, REGIME_CSV, regime_plot

        paths += [EQUAL_TIME_CSV, REGIME_CSV] + [f"plots/{regime_plot(s)}" for s in spec.evaluate]
    return paths


def check_file(path: Path) -> str | None:
    """Why ``path`` is not a valid artifact (missing, empty, not loadable), or None.

    Loadability by suffix: ``.npz`` (every array read, ``allow_pickle=False``), ``.zip``
    (CRC check), ``.csv``/``.parquet`` (pandas), ``.json``, ``.yaml``, ``.png`` (Pillow),
    ``.md``/``.html`` (UTF-8 text).
    """
    if not path.is_file():
        return "missing"
    if path.stat().st_size == 0:
        return "empty"
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            import numpy as np

            with np.load(path, allow_pickle=False) as z:
                for k in z.files:
                    z[k]
        elif suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            if bad is not None:
                return f"corrupt member {bad}"
        elif suffix == ".csv":  # a header-only table is valid (e.g. no deltas with one model)
            import pandas as pd

            pd.read_csv(path)
        elif suffix == ".parquet":
            import pandas as pd

            pd.read_parquet(path)
        elif suffix == ".json":
            json.loads(path.read_text())
        elif suffix == ".yaml":
            import yaml

            yaml.safe_load(path.read_text())
        elif suffix == ".png":
            from PIL import Image

            with Image.open(path) as im:
                im.verify()
        elif suffix in (".md", ".html", ".txt"):
            path.read_bytes().decode("utf-8")
    except Exception as e:  # anything that fails to load is reported, not raised
        return f"not loadable ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
    return None


def _check_metrics(spec: StudySpec, out: Path) -> list[str]:
    """Problems of the tidy metrics table: columns, finiteness, every cell present."""
    import pandas as pd

    problems = []
    for name in ("metrics.csv", "metrics.parquet"):
        path = out / name
        if check_file(path) is not None:
            continue  # reported with the artifact
        df = pd.read_csv(path) if name.endswith(".csv") else pd.read_parquet(path)
        if df.empty:
            problems.append(f"{name}: no rows")
            continue
        if tuple(df.columns) != METRICS_COLUMNS:
            problems.append(f"{name}: columns {list(df.columns)}, expected "
                            f"{list(METRICS_COLUMNS)}")
            continue
        bad = df[~df["value"].map(lambda v: isinstance(v, (int, float)) and math.isfinite(v))]
        for _, r in bad.head(5).iterrows():
            problems.append(f"{name}: non-finite value {r['value']} for dose {r['dose']:g}, "
                            f"view {r['view']}, model {r['model']}, {r['metric']} {r['part']}")
        have = set(zip(df["dose"].map(float), df["view"], df["model"], df["split"],
                       strict=True))
        for dose in spec.doses:
            for v in spec.views:
                for m in spec.models:
                    for s in spec.evaluate:
                        if (float(dose), v.name, m.name, s) not in have:
                            problems.append(f"{name}: no rows for dose {dose:g}, view "
                                            f"{v.name}, model {m.name}, split {s}")
    return problems


def verify_study(spec: StudySpec, jobs: list[Job], out: str | Path, *,
                 check_manifest: bool) -> dict[str, Any]:
    """Check every expected artifact and write ``out/verification.json``.

    Checks: each expected file exists, is non-empty and loads (:func:`check_file`); each job
    output still has the size and SHA-256 recorded in its ``done.json``; the metrics table has
    the expected columns, a row group for every (dose, view, model, split) and only finite
    values; with ``check_manifest``, every file listed in ``manifest.json`` is unchanged.

    Returns
    -------
    dict
        ``{"ok": bool, "n_checked": int, "problems": [str], "artifacts": [{"path", "ok",
        "size", "problem"}]}`` (also written as ``verification.json``).
    """
    from ptychopinn.files import atomic_path

    out = Path(out)
    artifacts = []
    problems: list[str] = []
    recorded: dict[str, dict] = {}
    for job in jobs:
        rec = read_done(out, job.id) or {}
        for rel, meta in rec.get("outputs", {}).items():
            recorded[f"jobs/{job.id}/{rel}"] = meta
    for rel in expected_artifacts(spec, jobs):
        path = out / rel
        problem = check_file(path)
        if problem is None and rel in recorded:
            now = file_record(path)
            if now["size"] != recorded[rel]["size"]:
                problem = f"size {now['size']} differs from done.json ({recorded[rel]['size']})"
            elif now["sha256"] != recorded[rel]["sha256"]:
                problem = "SHA-256 differs from done.json"
        artifacts.append({"path": rel, "ok": problem is None,
                          "size": path.stat().st_size if path.is_file() else None,
                          "problem": problem})
        if problem is not None:
            problems.append(f"{rel}: {problem}")
    problems += _check_metrics(spec, out)
    if check_manifest:
        problems += _check_manifest(out)
    report = {"ok": not problems, "n_checked": len(artifacts), "problems": problems,
              "artifacts": artifacts}
    with atomic_path(out / VERIFICATION) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    for p in problems[:20]:
        logger.warning("verification: %s", p)
    return report


def _check_manifest(out: Path) -> list[str]:
    path = out / MANIFEST
    if check_file(path) is not None:
        return [f"{MANIFEST}: {check_file(path)}"]
    problems = []
    for entry in json.loads(path.read_text()).get("files", []):
        p = out / entry["path"]
        if not p.is_file():
            problems.append(f"{entry['path']}: listed in {MANIFEST} but missing")
            continue
        if entry["path"] == VERIFICATION:
            continue  # rewritten by every verification
        now = file_record(p)
        if (now["size"], now["sha256"]) != (entry["size"], entry["sha256"]):
            problems.append(f"{entry['path']}: differs from {MANIFEST} (size {now['size']}, "
                            f"recorded {entry['size']})")
    return problems


def write_manifest(out: str | Path) -> dict[str, Any]:
    """Write ``out/manifest.json``: ``{"files": [{"path", "sha256", "size"}]}`` for every file
    under ``out`` (sorted; the manifest itself and temporary files excluded)."""
    from ptychopinn.files import atomic_path

    out = Path(out)
    files = []
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if not p.is_file() or rel in (MANIFEST, LOCK) or p.name.endswith(".tmp"):
            continue
        files.append({"path": rel, **file_record(p)})
    manifest = {"format": "ptychopinn.study-manifest/1", "n_files": len(files),
                "total_bytes": sum(f["size"] for f in files), "files": files}
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))
    return manifest
