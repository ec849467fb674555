"""CPU efficiency pass (issue 13): training and inference patterns/s per model kind and setting.

For each model kind, one optimisation step (forward, Poisson loss, backward, Adam) and one
inference forward pass on a batch of groups of the standard geometry (64 px patterns, XPP probe,
1e6 photons), timed after a warm-up. Settings are measured interleaved (A B A B ...) and the
median is reported, so a busy machine slows all of them alike. Settings for the faithful CNN:
default, channels_last memory format, bfloat16 autocast, torch.compile (its compile time is
reported separately), and 1 vs 2 threads.

    python benchmarks/cpu_efficiency.py                   # every kind, default setting
    python benchmarks/cpu_efficiency.py --settings        # the faithful CNN's settings too
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext

import numpy as np
import torch
from standard_scene import XPP, machine

from ptychopinn.config import RunConfig
from ptychopinn.data.grouping import make_groups, relative_offsets
from ptychopinn.data.simulate import SimulationConfig, simulate
from ptychopinn.physics.noise import poisson_nll
from ptychopinn.training.api import build_model

KINDS = ("pinn", "unrolled")  # physinit and resnet: removed (#24), rows kept in BENCHMARKS


def batch(data, cfg: RunConfig, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(amplitudes (B, C, N, N) float32, offsets (B, C, 2)) of B training groups."""
    groups = make_groups(data.positions, cfg.grouping, np.random.default_rng(0))[:b]
    amp = np.asarray(data.diffraction, np.float32)[groups]
    off = relative_offsets(data.positions, groups).astype(np.float32)
    return torch.from_numpy(amp), torch.from_numpy(off)


def make_step(model, amp, off, *, bf16: bool, channels_last: bool):
    """Closures for one training step and one inference pass."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else nullcontext
    if channels_last:
        model.net.to(memory_format=torch.channels_last)

    def train_step():
        opt.zero_grad(set_to_none=True)
        with ctx():
            out = model(amp, off)
        loss = poisson_nll(out["pred_amplitude"].float() ** 2, amp**2)
        loss.backward()
        opt.step()

    def infer_step():
        with torch.inference_mode(), ctx():
            model.predict_patches(amp, off)

    return train_step, infer_step


def measure(fns: dict, reps: int) -> dict[str, float]:
    """Median seconds per call of each closure, interleaved over ``reps`` rounds."""
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8, help="groups per step")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--settings", action="store_true",
                   help="also channels_last / bf16 / compile / 2 threads for the faithful CNN")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    data = simulate(SimulationConfig(object="lines", probe=str(XPP) if XPP.exists() else "disk",
                                     n_positions=600, object_size=256, patch_size=64,
                                     photons=1e6, seed=7))
    print(json.dumps({"machine": machine(), "batch_groups": a.batch}), flush=True)
    fns, members = {}, {}
    for kind in KINDS:
        cfg = RunConfig.for_kind(kind)
        torch.manual_seed(0)
        model, _ = build_model(cfg, data)
        amp, off = batch(data, cfg, a.batch)
        members[kind] = amp.shape[0] * amp.shape[1]
        tr, inf = make_step(model, amp, off, bf16=False, channels_last=False)
        fns[f"{kind}/train"], fns[f"{kind}/infer"] = tr, inf
    if a.settings:
        cfg = RunConfig()
        for name, kw in (("channels_last", {"channels_last": True}), ("bf16", {"bf16": True})):
            torch.manual_seed(0)
            model, _ = build_model(cfg, data)
            amp, off = batch(data, cfg, a.batch)
            kw = {"bf16": False, "channels_last": False, **kw}
            fns[f"pinn[{name}]/train"], fns[f"pinn[{name}]/infer"] = make_step(model, amp, off,
                                                                               **kw)
            members[f"pinn[{name}]"] = members["pinn"]
    med = measure(fns, a.reps)
    rows = []
    for key, sec in med.items():
        label, what = key.split("/")
        kind = label.split("[")[0]
        row = {"model": label, "what": what, "s_per_step": sec,
               "patterns_per_s": members[label if label in members else kind] / sec}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if a.settings:
        # threads and torch.compile change process-wide state: measured last, on their own
        cfg = RunConfig()
        torch.manual_seed(0)
        model, _ = build_model(cfg, data)
        amp, off = batch(data, cfg, a.batch)
        tr, inf = make_step(model, amp, off, bf16=False, channels_last=False)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            m = measure({"train": tr, "infer": inf}, a.reps)
            for what, sec in m.items():
                print(json.dumps({"model": f"pinn[threads={threads}]", "what": what,
                                  "s_per_step": sec,
                                  "patterns_per_s": members["pinn"] / sec}), flush=True)
        torch.set_num_threads(a.threads)
        t0 = time.perf_counter()
        model.net = torch.compile(model.net)
        tr, inf = make_step(model, amp, off, bf16=False, channels_last=False)
        tr()
        inf()
        compile_s = time.perf_counter() - t0
        m = measure({"train": tr, "infer": inf}, a.reps)
        for what, sec in m.items():
            print(json.dumps({"model": "pinn[compile]", "what": what, "s_per_step": sec,
                              "patterns_per_s": members["pinn"] / sec,
                              "compile_s": compile_s}), flush=True)


if __name__ == "__main__":
    main()
