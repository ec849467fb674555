"""Parts of ``benchmarks/gpu_check.sh`` (one GPU): each prints one JSON line per figure.

    python benchmarks/gpu_check.py tests                    # pytest -m gpu
    python benchmarks/gpu_check.py train WORK --seconds 30  # training throughput, patterns/s
    python benchmarks/gpu_check.py infer WORK               # inference + stitching, 1k, 100k
    python benchmarks/gpu_check.py lsqml WORK --epochs 50   # pty-chi LSQML on the GPU
    python benchmarks/gpu_check.py ttq-summary TTQ.json     # time_to_quality.py results

Only the JSON lines go to stdout; everything else (Lightning, pytest, progress) goes to stderr.
Needs ``PYTHONPATH=src`` when the package is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
XPP = HERE.parents[1] / "shared/data/real/ptychopinn-xpp-run1084-recon/Run1084_recon3_postPC.npz"


def _emit(out: TextIO, part: str, **fields: Any) -> None:
    out.write(json.dumps({"part": part, **fields}, default=str) + "\n")
    out.flush()


def _gpu() -> dict[str, Any]:
    import torch

    return {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "cuda": torch.version.cuda}


def _standard_scene(n_positions: int = 2000):
    """Standard scene (lines, XPP probe or disk if the file is absent, 64 px, 1e6 photons)."""
    from ptychopinn.data.simulate import SimulationConfig, simulate
    from ptychopinn.data.split import split_dataset

    probe = str(XPP) if XPP.exists() else "disk"
    data = simulate(SimulationConfig(object="lines", probe=probe, n_positions=n_positions,
                                     object_size=256, patch_size=64, photons=1e6, seed=7))
    train_d, test_d = split_dataset(data, axis="y", fraction=0.5)
    return data, train_d, test_d, Path(probe).name


# ------------------------------------------------------------------------------ parts
def part_tests(out: TextIO, a: argparse.Namespace) -> int:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                   if "mark.gpu" in p.read_text(encoding="utf-8", errors="replace"))
    if not files:
        _emit(out, "gpu_tests", status="skipped", reason="no test marked gpu")
        return 0
    xml = Path(a.work) / "gpu_tests.xml"
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p",
                        "no:cacheprovider", f"--junitxml={xml}", *files], cwd=ROOT,
                       stdout=sys.stderr, stderr=sys.stderr, check=False)
    counts: dict[str, Any] = {}
    failed_names: list[str] = []
    if xml.exists():
        root = ET.parse(xml).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        failed_names = [f"{c.get('classname')}.{c.get('name')}" for c in suite.iter("testcase")
                        if c.find("failure") is not None or c.find("error") is not None]
    _emit(out, "gpu_tests", rc=p.returncode, files=files, **counts, failed=failed_names,
          seconds=round(time.perf_counter() - t0, 1))
    return p.returncode


def part_train(out: TextIO, a: argparse.Namespace) -> int:
    from ptychopinn.config import RunConfig
    from ptychopinn.training.api import train

    _, train_d, _, probe = _standard_scene()
    for bs in a.batch_sizes:
        cfg = RunConfig().with_overrides(train={
            "epochs": 1_000_000, "max_minutes": a.seconds / 60, "batch_size": bs,
            "accelerator": "gpu", "devices": 1, "show_progress": False})
        run = Path(a.work) / f"run_bs{bs}"
        t0 = time.perf_counter()
        r = train(train_d, run, cfg)
        _emit(out, "train", batch_size=bs, gridsize=cfg.grouping.gridsize,
              patterns_per_s=round(r.patterns_per_second, 1), epochs=r.epochs_completed,
              fit_s=round(r.train_seconds, 1), wall_s=round(time.perf_counter() - t0, 1),
              n_patterns=train_d.n_patterns, probe=probe, run_dir=str(run), device=r.device,
              **_gpu())
    return 0


def scale_scene_on_gpu(m: int, *, seed: int = 7, block: int = 4096, device: str = "cuda"):
    """The ``benchmarks/scale.py`` scene with ``m`` patterns, simulated on the GPU, in memory.

    GRF object (grown with m at the standard scan density), XPP probe (disk if absent),
    64 px patterns, 1e6 photons, Poisson noise (torch's CUDA generator, seeded).
    """

    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    from scale import PATCH, PHOTONS, scene_geometry

    from ptychopinn.data.container import PtychoData
    from ptychopinn.physics.forward import forward_amplitude
    from ptychopinn.physics.patches import extract_patches

    g = scene_geometry(m, seed=seed, device=device)
    obj, probe, pos, scale = g["obj"], g["probe"], g["positions"], g["scale"]
    dev = torch.device(device)
    obj_t, probe_t = torch.from_numpy(obj).to(dev), torch.from_numpy(probe).to(dev)
    gen = torch.Generator(device=dev).manual_seed(seed)
    stack = np.empty((m, PATCH, PATCH), np.float32)
    with torch.no_grad():
        for s in range(0, m, block):
            p = extract_patches(obj_t, torch.from_numpy(pos[s:s + block]).to(dev), PATCH)
            amp = forward_amplitude(p, probe_t).double() * scale
            counts = torch.poisson(amp * amp, generator=gen)
            stack[s:s + block] = torch.sqrt(counts).float().cpu().numpy()
    return PtychoData(diffraction=stack, positions=pos, probe=(probe * scale).astype(np.complex64),
                      obj=obj, scan_index=np.zeros(m, np.int64),
                      metadata={"photons_per_pattern": PHOTONS, "object": "grf"})


def part_infer(out: TextIO, a: argparse.Namespace) -> int:
    import torch

    from ptychopinn.inference.predict import InferConfig, reconstruct
    from ptychopinn.training.bundle import load_bundle

    work = Path(a.work)
    runs = sorted(work.glob("run_bs*/model.zip"))
    if runs:
        bundle, trained = load_bundle(runs[0].parent), str(runs[0].parent)
    else:  # the train part did not run: a one-epoch model (quality is not the point)
        from ptychopinn.config import RunConfig
        from ptychopinn.training.api import train

        _, train_d, _, _ = _standard_scene(500)
        cfg = RunConfig().with_overrides(train={"epochs": 1, "show_progress": False})
        train(train_d, work / "run_infer", cfg)
        bundle, trained = load_bundle(work / "run_infer"), "1 epoch, 500 patterns"
    icfg = InferConfig(device="cuda", batch_size=a.batch_size, show_progress=False)
    for i, m in enumerate(a.sizes):
        t0 = time.perf_counter()
        data = scale_scene_on_gpu(m)
        t_build = time.perf_counter() - t0
        if i == 0:  # warm-up: CUDA context, cuDNN autotuning
            reconstruct(bundle, data, icfg)
        torch.cuda.reset_peak_memory_stats()
        rec = reconstruct(bundle, data, icfg)
        info = rec.info
        _emit(out, "infer", n_patterns=m, object_shape=list(rec.object.shape),
              reconstruct_s=round(info["seconds"], 3),
              patterns_per_s=round(info["patterns_per_second"], 1),
              network_s=round(info["network_seconds"], 3),
              stitch_s=round(info["stitch_seconds"], 3), read_s=round(info["read_seconds"], 3),
              grouping_s=round(info["grouping_seconds"], 3), in_memory=True,
              simulate_s=round(t_build, 1), batch_size=a.batch_size, device=info["device"],
              peak_gpu_mib=round(torch.cuda.max_memory_allocated() / 2**20),
              model=trained, **_gpu())
    return 0


def part_lsqml(out: TextIO, a: argparse.Namespace) -> int:
    from ptychopinn.evaluation import trajectory
    from ptychopinn.iterative import IterativeConfig, ptychi_version
    from ptychopinn.iterative.run import run_iterative_on_dataset

    data, _, test_d, probe = _standard_scene()
    every = max(1, a.epochs // 5)
    cfg = IterativeConfig(algorithm="lsqml", epochs=a.epochs, snapshot_every=every,
                          device="cuda")
    t0 = time.perf_counter()
    rec = run_iterative_on_dataset(test_d, Path(a.work) / "lsqml", cfg)
    total = time.perf_counter() - t0
    traj = trajectory(data.obj, Path(a.work) / "lsqml" / "snapshots.npz")
    wall = rec.info["wall_time_s"]
    _emit(out, "lsqml", device=rec.info["device"], epochs=a.epochs, n_patterns=test_d.n_patterns,
          wall_s=round(wall, 2), s_per_epoch=round(wall / a.epochs, 4),
          total_s=round(total, 1), probe=probe, ptychi=ptychi_version(),
          phase_ssim=[round(float(v), 4) for v in traj.values("phase", "ssim")],
          amp_ssim=[round(float(v), 4) for v in traj.values("amplitude", "ssim")],
          snapshot_epochs=traj.epochs.tolist(),
          snapshot_s=[round(float(s), 2) for s in traj.seconds], **_gpu())
    return 0


def part_ttq_summary(out: TextIO, a: argparse.Namespace) -> int:
    p = json.loads(Path(a.json).read_text())
    for name, r in p["pinn"].items():
        q = r["iterative"]["lsqml"]
        _emit(out, "time_to_quality", variant=name, train_s=round(r["train_s"], 1),
              epochs=r["epochs"], infer_s=round(r["infer_s"], 4),
              amp_ssim=round(r["amplitude"]["ssim"], 4), phase_ssim=round(r["phase"]["ssim"], 4),
              lsqml_time_to_phase_ssim_s=q["time_to_phase_ssim_s"], reached=q["reached"],
              reached_at_first_snapshot=q.get("reached_at_first_snapshot"),
              ratio=round(q["ratio"], 2), ratio_is_lower_bound=q["ratio_is_lower_bound"],
              ratio_amortised={k: round(v, 3) for k, v in q["ratio_amortised"].items()},
              device=r.get("device"))
    for alg, it in p["iterative"].items():
        t = it["trajectory"]
        _emit(out, "time_to_quality", iterative=alg, epochs=it["epochs"],
              wall_s=round(it["wall_s"], 2), device=it["device"],
              final_phase_ssim=t["phase"]["ssim"][-1], final_amp_ssim=t["amplitude"]["ssim"][-1])
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="part", required=True)
    s = sub.add_parser("tests")
    s.add_argument("work")
    s = sub.add_parser("train")
    s.add_argument("work")
    s.add_argument("--seconds", type=float, default=30.0, help="training budget per batch size")
    s.add_argument("--batch-sizes", type=lambda t: [int(v) for v in t.split(",")],
                   default=[8, 64])
    s = sub.add_parser("infer")
    s.add_argument("work")
    s.add_argument("--sizes", type=lambda t: [int(v) for v in t.split(",")],
                   default=[1000, 100_000])
    s.add_argument("--batch-size", type=int, default=256)
    s = sub.add_parser("lsqml")
    s.add_argument("work")
    s.add_argument("--epochs", type=int, default=50)
    s = sub.add_parser("ttq-summary")
    s.add_argument("json")
    a = p.parse_args(argv)
    # JSON lines keep the real stdout; anything else printed goes to stderr
    out = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    parts = {"tests": part_tests, "train": part_train, "infer": part_infer,
             "lsqml": part_lsqml, "ttq-summary": part_ttq_summary}
    try:
        return parts[a.part](out, a)
    finally:
        out.close()


if __name__ == "__main__":
    sys.exit(main())
