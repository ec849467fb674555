"""Scale-and-speed benchmark (issue #8): memory and time of inspect + grouping + inference.

For each size M (default 1k, 10k, 100k patterns of 64×64) a chunked HDF5 dataset is simulated
once into ``--work`` (streamed to disk block by block, never held in memory). A PINN (gridsize 2)
is trained briefly on the smallest dataset (quality is not the point). Each dataset is then
inspected, grouped and reconstructed (inference + stitching, patterns streamed from disk) in a
FRESH subprocess that reports wall times and its peak RSS. pty-chi LSQML runs on the smallest
dataset with the same thread count, for the LSQML / PINN wall-time ratio. Prints Markdown
tables and the machine, and writes JSON (``benchmarks/results_scale.json``).

    python benchmarks/scale.py --sizes 1000,10000,100000
    python benchmarks/scale.py --quick          # small sizes, a few LSQML epochs (~1 min)

Scene (every size): Gaussian-random-field object (amplitude 0.5–1, phase −1…1 rad), the real
LCLS XPP probe (disk probe if the file is missing), uniformly random positions at the density of
the standard scene (2000 positions on 256×256, one position per ~18 px²; the object grows with
M), 1e6 photons per pattern, Poisson noise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
XPP = HERE.parents[1] / "shared/data/real/ptychopinn-xpp-run1084-recon/Run1084_recon3_postPC.npz"
AREA_PER_POSITION = (256 - 66) ** 2 / 2000  # px² of scan area per position (standard scene)
PATCH = 64
PHOTONS = 1e6
CHUNK = 64  # patterns per HDF5 chunk (and per simulated block)


# ------------------------------------------------------------------------------- machine
def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "lightning", "numpy", "scipy", "h5py", "ptychi", "ptychopinn"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def machine() -> dict[str, Any]:
    """Platform, CPU, memory, threads and library versions."""
    mem_gib = None
    try:
        import psutil

        mem_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "ram_gib": mem_gib, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(), **_versions()}


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _hwm_mib() -> float:
    """Peak resident set size of this process so far (MiB): ``VmHWM``.

    Not ``getrusage(...).ru_maxrss``: in a freshly exec'd child that still reports the parent's
    RSS at fork time (measured: 313 MiB in a child of a 300 MiB parent whose own peak is 14 MiB).
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------ datasets
class SimulatedPatterns:
    """(M, N, N) float32 noisy amplitudes computed on demand, one slice at a time.

    Handed to :func:`ptychopinn.io.dataset.save_dataset` as a lazy diffraction stack, so the HDF5
    file is written block by block in the package's own layout. Poisson noise is seeded by the
    block start, so a block is the same whatever else was computed.
    """

    def __init__(self, obj: np.ndarray, probe: np.ndarray, positions: np.ndarray, scale: float,
                 seed: int):
        self.obj = torch.from_numpy(obj)
        self.probe = torch.from_numpy(probe)
        self.positions = positions
        self.scale = scale
        self.seed = seed
        n = probe.shape[-1]
        self.shape = (positions.shape[0], n, n)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: slice) -> np.ndarray:
        from ptychopinn.physics.forward import forward_amplitude
        from ptychopinn.physics.noise import sample_poisson
        from ptychopinn.physics.patches import extract_patches

        start, stop, step = idx.indices(len(self))
        if step != 1:
            raise ValueError("SimulatedPatterns supports contiguous slices only")
        with torch.no_grad():
            p = extract_patches(self.obj, torch.from_numpy(self.positions[start:stop]),
                                self.shape[-1])
            amp = forward_amplitude(p, self.probe).numpy().astype(np.float64) * self.scale
        rng = np.random.default_rng([self.seed, start])
        return np.sqrt(sample_poisson(amp * amp, rng)).astype(np.float32)


def scene_geometry(m: int, *, seed: int = 7, device: str = "cpu") -> dict[str, Any]:
    """Object, probe, positions and photon scale of the scene with ``m`` positions.

    GRF object grown with ``m`` at the standard density, XPP probe (disk if absent), random
    scan; the photon scale comes from the first 512 noise-free patterns (computed on ``device``).
    Shared by :func:`build_dataset` and ``gpu_check.py``.
    """
    from ptychopinn.data.simulate import (
        SimulationConfig,
        disk_probe,
        load_probe,
        make_object,
        make_scan,
    )
    from ptychopinn.physics.forward import forward_amplitude
    from ptychopinn.physics.patches import extract_patches
    from ptychopinn.physics.probe import normalize_probe

    size = int(math.ceil(math.sqrt(m * AREA_PER_POSITION))) + PATCH + 4
    cfg = SimulationConfig(object="grf", probe=str(XPP) if XPP.exists() else "disk",
                           scan="random", n_positions=m, object_size=size, patch_size=PATCH,
                           photons=PHOTONS, seed=seed)
    ss = np.random.SeedSequence(seed)
    rng_obj, rng_scan, _ = (np.random.default_rng(s) for s in ss.spawn(3))
    obj = make_object(cfg, rng_obj)
    probe = (disk_probe(PATCH) if cfg.probe == "disk"
             else normalize_probe(load_probe(Path(cfg.probe), PATCH))[0])
    pos = make_scan(cfg, rng_scan, step=1.0, object_shape=obj.shape)
    dev = torch.device(device)
    with torch.no_grad():  # photon scale from the first (noise-free) patterns
        p = extract_patches(torch.from_numpy(obj).to(dev), torch.from_numpy(pos[:512]).to(dev),
                            PATCH)
        energy = float((forward_amplitude(p, torch.from_numpy(probe).to(dev)).double() ** 2)
                       .sum(dim=(-2, -1)).mean())
    return {"obj": obj, "probe": probe, "positions": pos, "scale": math.sqrt(PHOTONS / energy),
            "size": size, "probe_name": Path(cfg.probe).name}


def build_dataset(path: Path, m: int, *, seed: int = 7) -> dict[str, Any]:
    """Simulate the scene with ``m`` positions into a chunked HDF5 file (streamed)."""
    from ptychopinn.data.container import PtychoData
    from ptychopinn.io.dataset import save_dataset

    g = scene_geometry(m, seed=seed)
    obj, probe, pos, scale, size = g["obj"], g["probe"], g["positions"], g["scale"], g["size"]
    stack = SimulatedPatterns(obj, probe, pos, scale, seed)
    meta = {"units": {"diffraction": "sqrt(photon counts)", "positions": "object pixels"},
            "photons_per_pattern": PHOTONS, "intensity_scale": scale,
            "provenance": "benchmarks/scale.py", "object": "grf", "object_size": size,
            "probe": g["probe_name"], "seed": seed}
    data = PtychoData(diffraction=stack, positions=pos, probe=(probe * scale).astype(np.complex64),
                      obj=obj, scan_index=np.zeros(m, np.int64), metadata=meta)
    t0 = time.perf_counter()
    save_dataset(data, path, chunk=CHUNK)
    return {"object_size": size, "seconds": time.perf_counter() - t0,
            "bytes": path.stat().st_size}


# ------------------------------------------------------------------------------ children
def child_pipeline(data_path: Path, bundle_path: Path, out_dir: Path, threads: int,
                   batch_size: int) -> dict[str, Any]:
    """inspect + grouping + reconstruct + save in this (fresh) process; times and peak RSS."""
    torch.set_num_threads(threads)
    from ptychopinn.data.grouping import GroupingConfig, make_groups
    from ptychopinn.data.inspect import inspect_dataset
    from ptychopinn.inference.predict import InferConfig, reconstruct, save_reconstruction
    from ptychopinn.io.dataset import load_dataset
    from ptychopinn.training.bundle import load_bundle

    rss = {"start": _hwm_mib()}
    t = {}
    t0 = time.perf_counter()
    data = load_dataset(data_path)  # lazy HDF5: validated in one streaming pass
    t["load"] = time.perf_counter() - t0
    rss["load"] = _hwm_mib()
    s = time.perf_counter()
    report = inspect_dataset(data, path=data_path)
    t["inspect"] = time.perf_counter() - s
    rss["inspect"] = _hwm_mib()
    bundle = load_bundle(bundle_path)
    s = time.perf_counter()
    groups = make_groups(data.positions, GroupingConfig(gridsize=bundle.gridsize), rng=0)
    t["grouping"] = time.perf_counter() - s
    del groups
    rss["grouping"] = _hwm_mib()
    s = time.perf_counter()
    rec = reconstruct(bundle, data, InferConfig(batch_size=batch_size, show_progress=False,
                                                device="cpu"))
    t["reconstruct"] = time.perf_counter() - s
    rss["reconstruct"] = _hwm_mib()
    s = time.perf_counter()
    save_reconstruction(rec, out_dir)
    t["save"] = time.perf_counter() - s
    t["total"] = time.perf_counter() - t0
    rss["peak"] = _hwm_mib()
    m = data.n_patterns
    info = rec.info
    return {
        "n_patterns": m,
        "object_shape": list(rec.object.shape),
        "lazy": data.is_lazy,
        "seconds": t,
        "peak_rss_mib": rss,
        "infer_info": info,
        "net_patterns_per_s": m / info["network_seconds"],
        "net_stitch_patterns_per_s": m / (info["network_seconds"] + info["stitch_seconds"]),
        "reconstruct_patterns_per_s": info["patterns_per_second"],
        "pipeline_patterns_per_s": m / t["total"],
        "stitch_share_of_network": info["stitch_seconds"] / info["network_seconds"],
        "counts_median": report["counts_per_pattern"]["median"],
        "coverage_fraction": float((rec.coverage > 0).mean()),
    }


def child_grouping(m: int, threads: int) -> dict[str, Any]:
    """Group ``m`` random positions (training draw and inference neighbours); time and RSS."""
    torch.set_num_threads(threads)
    from ptychopinn.data.grouping import GroupingConfig, make_groups, nearest_groups

    side = math.sqrt(m * AREA_PER_POSITION)
    pos = np.random.default_rng(0).uniform(0, side, (m, 2))
    s = time.perf_counter()
    g = make_groups(pos, GroupingConfig(gridsize=2), rng=0)
    t_make = time.perf_counter() - s
    s = time.perf_counter()
    nearest_groups(pos, 2)
    t_near = time.perf_counter() - s
    return {"n_positions": m, "make_groups_s": t_make, "nearest_groups_s": t_near,
            "groups": int(g.shape[0]), "peak_rss_mib": _hwm_mib()}


def _run_child(args: list[str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"child {args[:2]} failed: {p.stderr.strip().splitlines()[-1:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# -------------------------------------------------------------------------------- report
def _fmt_table(res: dict[str, Any]) -> str:
    rows = res["sizes"]
    m0 = rows[0]
    lines = [
        "| patterns | object px | file GB | total s (inspect+group+infer+save) | infer s | "
        "infer pat/s (incl. read, stitch) | network pat/s | network+stitch pat/s | "
        "stitch / network | peak RSS MiB | µs/pattern (total) | vs smallest |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per = 1e6 * r["seconds"]["total"] / r["n_patterns"]
        per0 = 1e6 * m0["seconds"]["total"] / m0["n_patterns"]
        lines.append(
            f"| {r['n_patterns']:,} | {r['object_shape'][0]}² | {r['file_bytes'] / 1e9:.2f} | "
            f"{r['seconds']['total']:.1f} | {r['seconds']['reconstruct']:.1f} | "
            f"{r['reconstruct_patterns_per_s']:.0f} | {r['net_patterns_per_s']:.0f} | "
            f"{r['net_stitch_patterns_per_s']:.0f} | {100 * r['stitch_share_of_network']:.1f}% | "
            f"{r['peak_rss_mib']['peak']:.0f} | {per:.0f} | {per / per0:.2f}× |")
    out = "\n".join(lines)
    if len(rows) > 1:
        out += f"\n\nlog-log slope of total time vs patterns: {res['time_exponent']:.3f}"
        out += f"; of infer time: {res['infer_time_exponent']:.3f} (1 = linear)"
    return out


def _phase_table(res: dict[str, Any]) -> str:
    lines = ["| patterns | load+validate s | inspect s | grouping s | infer s | read s | "
             "network s | stitch s | RSS after load / inspect / group / infer (MiB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in res["sizes"]:
        t, i, rss = r["seconds"], r["infer_info"], r["peak_rss_mib"]
        lines.append(
            f"| {r['n_patterns']:,} | {t['load']:.1f} | {t['inspect']:.1f} | {t['grouping']:.2f} "
            f"| {t['reconstruct']:.1f} | {i['read_seconds']:.1f} | {i['network_seconds']:.1f} | "
            f"{i['stitch_seconds']:.2f} | {rss['load']:.0f} / {rss['inspect']:.0f} / "
            f"{rss['grouping']:.0f} / {rss['reconstruct']:.0f} |")
    return "\n".join(lines)


def _exponent(ms: list[int], ts: list[float]) -> float:
    if len(ms) < 2:
        return float("nan")
    return float(np.polyfit(np.log(ms), np.log(ts), 1)[0])


def _write_json(path: Path, obj: Any) -> None:
    from ptychopinn.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")


# ---------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000,100000", help="comma-separated pattern counts")
    p.add_argument("--work", type=Path, default=Path("/tmp/ptychopinn_scale"),
                   help="datasets, model and outputs (reused between runs)")
    p.add_argument("--out", type=Path, default=None,
                   help="results JSON (default benchmarks/results_scale.json; --quick: WORK)")
    p.add_argument("--train-epochs", type=int, default=3)
    p.add_argument("--lsqml-epochs", type=int, default=100)
    p.add_argument("--no-lsqml", action="store_true")
    p.add_argument("--group-positions", type=int, default=1_000_000,
                   help="also time grouping of this many random positions (0: skip)")
    p.add_argument("--batch-size", type=int, default=64, help="inference batch (groups)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for PINN and LSQML alike (default: torch's, = cores)")
    p.add_argument("--retrain", action="store_true", help="train again even if a model exists")
    p.add_argument("--quick", action="store_true", help="sizes 500,2000, 5 LSQML epochs")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    if a.child:  # internal: one measurement in a fresh process, JSON on the last stdout line
        if a.child[0] == "pipeline":
            out = child_pipeline(Path(a.child[1]), Path(a.child[2]), Path(a.child[3]),
                                 int(a.child[4]), int(a.child[5]))
        else:
            out = child_grouping(int(a.child[1]), int(a.child[2]))
        sys.stdout.write(json.dumps(out, default=str) + "\n")
        return 0
    if a.quick:
        a.sizes, a.lsqml_epochs, a.train_epochs = "500,2000", 5, 1
        a.group_positions = min(a.group_positions, 100_000)
        if a.work == Path("/tmp/ptychopinn_scale"):
            a.work = Path("/tmp/ptychopinn_scale_quick")
    out_json = a.out or (a.work / "results_scale.json" if a.quick
                         else HERE / "results_scale.json")
    sizes = sorted(int(s) for s in a.sizes.split(","))
    a.work.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    res: dict[str, Any] = {"command": command.strip(), "machine": machine(),
                           "date": time.strftime("%Y-%m-%d %H:%M"), "load_before": _load(),
                           "threads": threads, "scene": {
                               "patch": PATCH, "photons": PHOTONS, "object": "grf",
                               "probe": XPP.name if XPP.exists() else "disk",
                               "area_per_position_px2": AREA_PER_POSITION,
                               "scan": "random", "hdf5_chunk_patterns": CHUNK}}
    print(json.dumps({"machine": res["machine"], "load": res["load_before"]}), flush=True)

    paths = {}
    for m in sizes:
        paths[m] = a.work / f"scene_{m}.h5"
        if not paths[m].exists():
            b = build_dataset(paths[m], m)
            print(f"built {paths[m]} ({b['bytes'] / 1e9:.2f} GB, object {b['object_size']}², "
                  f"{b['seconds']:.0f} s)", flush=True)

    # ---- a briefly trained model (gridsize 2) on the smallest dataset
    run = a.work / "run_pinn_gs2"
    bundle = run / "model.zip"
    train_info = _train(paths[sizes[0]], run, a.train_epochs, retrain=a.retrain)
    res["training"] = train_info
    print(json.dumps({"training": train_info}), flush=True)

    # ---- inspect + grouping + inference, one fresh process per size
    res["sizes"] = []
    for m in sizes:
        r = _run_child(["--child", "pipeline", str(paths[m]), str(bundle),
                        str(a.work / f"recon_{m}"), str(threads), str(a.batch_size)],
                       timeout=7200)
        r["file_bytes"] = paths[m].stat().st_size
        r["load_after"] = _load()
        res["sizes"].append(r)
        print(json.dumps({m: {k: r[k] for k in ("seconds", "peak_rss_mib",
                                                 "reconstruct_patterns_per_s",
                                                 "net_patterns_per_s",
                                                 "stitch_share_of_network")}}), flush=True)
    ms = [r["n_patterns"] for r in res["sizes"]]
    res["time_exponent"] = _exponent(ms, [r["seconds"]["total"] for r in res["sizes"]])
    res["infer_time_exponent"] = _exponent(ms, [r["seconds"]["reconstruct"]
                                                for r in res["sizes"]])

    if a.group_positions:
        res["grouping"] = _run_child(["--child", "grouping", str(a.group_positions),
                                      str(threads)], timeout=1800)
        print(json.dumps({"grouping": res["grouping"]}), flush=True)

    # ---- pty-chi LSQML on the smallest dataset, same threads
    if not a.no_lsqml:
        res["lsqml"] = _lsqml(paths[sizes[0]], a.work / f"lsqml_{sizes[0]}", a.lsqml_epochs,
                              threads, res["sizes"][0])
        print(json.dumps({"lsqml": res["lsqml"]}), flush=True)
    res["load_after"] = _load()

    _write_json(out_json, res)
    print("\n## Scale and speed\n")
    print(f"Machine: {res['machine']}\nLoad average before / after: {res['load_before']} / "
          f"{res['load_after']}\n")
    print(_fmt_table(res) + "\n")
    print(_phase_table(res) + "\n")
    if "grouping" in res:
        g = res["grouping"]
        print(f"Grouping {g['n_positions']:,} random positions (gridsize 2, KD-tree): "
              f"make_groups {g['make_groups_s']:.2f} s, nearest_groups {g['nearest_groups_s']:.2f}"
              f" s, peak RSS {g['peak_rss_mib']:.0f} MiB\n")
    t = res["training"]
    print(f"Training (gs2, {t['n_patterns']} patterns, {t['epochs']} epochs): "
          f"{t['patterns_per_second']:.0f} patterns/s\n")
    if "lsqml" in res:
        q = res["lsqml"]
        print(f"LSQML-{q['epochs']} on {q['n_patterns']} patterns ({threads} threads): "
              f"{q['wall_time_s']:.1f} s (total {q['total_s']:.1f} s); PINN inference "
              f"{q['pinn_reconstruct_s']:.2f} s -> ratio {q['ratio_reconstruct']:.0f}× "
              f"(whole pipeline incl. inspect: {q['ratio_pipeline']:.0f}×)")
    print(f"\nresults: {out_json}")
    return 0


def _train(data_path: Path, run: Path, epochs: int, *, retrain: bool) -> dict[str, Any]:
    import shutil

    from ptychopinn.config import RunConfig
    from ptychopinn.io.dataset import load_dataset
    from ptychopinn.training.api import train
    from ptychopinn.training.bundle import load_bundle

    summary = run / "summary.json"
    if not retrain and summary.exists():
        try:
            load_bundle(run)
            s = json.loads(summary.read_text())
            return {"reused": True, "epochs": s["epochs_completed"],
                    "patterns_per_second": s["patterns_per_second"],
                    "n_patterns": s.get("n_patterns", load_dataset(data_path).n_patterns)}
        except (ValueError, KeyError):
            pass  # stale or unreadable: train again
    if run.exists():
        shutil.rmtree(run)
    data = load_dataset(data_path)
    cfg = RunConfig().with_overrides(grouping={"gridsize": 2},
                                     train={"epochs": epochs, "show_progress": False,
                                            "accelerator": "cpu", "devices": 1})
    r = train(data, run, cfg, data_path=data_path)
    s = json.loads(summary.read_text())
    s["n_patterns"] = data.n_patterns
    _write_json(summary, s)
    return {"reused": False, "epochs": r.epochs_completed, "seconds": r.train_seconds,
            "patterns_per_second": r.patterns_per_second, "n_patterns": data.n_patterns}


def _lsqml(data_path: Path, out_dir: Path, epochs: int, threads: int,
           pinn: dict[str, Any]) -> dict[str, Any]:
    from ptychopinn.io.dataset import load_dataset
    from ptychopinn.iterative.run import IterativeConfig, run_iterative_on_dataset

    data = load_dataset(data_path)
    data = replace(data, diffraction=np.asarray(data.diffraction[:], np.float32))
    s = time.perf_counter()
    rec = run_iterative_on_dataset(data, out_dir, IterativeConfig(
        algorithm="lsqml", epochs=epochs, num_threads=threads, device="cpu"))
    total = time.perf_counter() - s
    wall = float(rec.info["wall_time_s"])
    return {"epochs": epochs, "n_patterns": data.n_patterns, "threads": threads,
            "wall_time_s": wall, "total_s": total,
            "pinn_reconstruct_s": pinn["seconds"]["reconstruct"],
            "pinn_pipeline_s": pinn["seconds"]["total"],
            "ratio_reconstruct": wall / pinn["seconds"]["reconstruct"],
            "ratio_pipeline": total / pinn["seconds"]["total"]}


if __name__ == "__main__":
    sys.exit(main())
