"""pty-chi worker start-up: a run in a fresh worker against one through a worker held open.

Every pty-chi run happens in a worker process (pty-chi changes torch's global state). Starting
one imports torch, pty-chi and torch's compiler stack; :class:`ptychopinn.iterative.PtychiWorker`
keeps one open across runs. This times ``--runs`` LSQML reconstructions of the standard
scene's test half (or a small scene with ``--small``) both ways, alternating, and prints one
JSON line per run and a markdown table (median call time, pty-chi's own loop time).

    python benchmarks/ptychi_worker.py --epochs 5 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from standard_scene import machine

from ptychopinn.iterative import IterativeConfig, PtychiWorker, run_iterative


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--small", action="store_true",
                   help="a 64-pattern 16 px scene instead of the standard scene's test half")
    a = p.parse_args()
    if a.small:
        from ptychopinn.data.simulate import SimulationConfig, simulate

        data = simulate(SimulationConfig(object_size=64, patch_size=16, n_positions=64, seed=3))
    else:
        from learning_curve import scene

        _, _, data = scene(1e6, 2000)
    args = (data.diffraction, data.positions, data.probe, data.obj.shape)
    cfg = IterativeConfig(epochs=a.epochs, num_threads=a.threads)
    print(json.dumps({"machine": machine(), "patterns": data.n_patterns,
                      "patch": data.diffraction.shape[-1], "epochs": a.epochs}), flush=True)
    rows: dict[str, list[tuple[float, float]]] = {"fresh worker": [], "held worker": []}
    with PtychiWorker(num_threads=a.threads) as held:
        run_iterative(*args, cfg, worker=held)  # its one start-up, not timed
        for i in range(a.runs):
            for name, worker in (("fresh worker", None), ("held worker", held)):
                t = time.perf_counter()
                res = run_iterative(*args, cfg, worker=worker)
                call = time.perf_counter() - t
                rows[name].append((call, res.wall_time_s))
                print(json.dumps({"run": i, "mode": name, "call_s": call,
                                  "ptychi_loop_s": res.wall_time_s}), flush=True)
    print("\n| mode | call (s, median) | pty-chi loop (s) | start-up + exchange (s) |")
    print("|---|---|---|---|")
    for name, v in rows.items():
        call = statistics.median(c for c, _ in v)
        loop = statistics.median(w for _, w in v)
        print(f"| {name} | {call:.2f} | {loop:.2f} | {call - loop:.2f} |")


if __name__ == "__main__":
    main()
