"""Smoke test of ``benchmarks/time_to_quality.py --quick`` and its refusals."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "time_to_quality.py"


def _module():
    name = "benchmarks_time_to_quality"
    if name not in sys.modules:  # registered first: dataclasses look their module up
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.mark.slow
def test_quick_run_writes_json_plot_and_a_row_per_variant(tmp_path):
    pytest.importorskip("ptychi")
    out = tmp_path / "ttq"
    p = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out), "--threads", "1",
         "--pinn", "faithful={}", "--pinn", 'gs1={"model": {"gridsize": 1}}'],
        capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    payload = json.loads((out / "time_to_quality.json").read_text())
    png = (out / "time_to_quality.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert list(payload["pinn"]) == ["faithful", "gs1"]
    assert payload["pinn"]["gs1"]["config"]["grouping"]["gridsize"] == 1  # mirrored
    assert payload["threads"] == 1 and payload["machine"]["torch_threads"] == 1
    traj = payload["iterative"]["lsqml"]["trajectory"]
    assert traj["epochs"] == [2, 4, 6]
    assert all(b > a for a, b in zip(traj["seconds"][:-1], traj["seconds"][1:], strict=True))
    for name, r in payload["pinn"].items():
        assert r["infer_s"] > 0 and r["train_s"] > 0, name
        q = r["iterative"]["lsqml"]
        assert set(q["ratio_amortised"]) == {"1", "10", "100"}
        t_used = q["time_to_phase_ssim_s"] if q["reached"] else q["run_seconds"]
        assert q["ratio"] == pytest.approx(t_used / r["infer_s"])
        assert q["ratio_amortised"]["1"] == pytest.approx(t_used / (r["infer_s"] + r["train_s"]))
    lines = p.stdout.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith("| PINN variant |"))
    assert lines[i + 1].startswith("|---") and lines[i + 4] == ""  # exactly two rows
    assert [ln.split("|")[1].strip() for ln in lines[i + 2:i + 4]] == ["faithful", "gs1"]
    assert (out / "time_to_quality.md").read_text().count("\n| gs1 |") == 1
    assert "Machine: " in p.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--pinn", "bad={"], "--pinn bad: not valid JSON"),
    (["--pinn", 'x={"modle": {}}'], "--pinn x: unknown section(s) ['modle']"),
    (["--pinn", "noequals"], "--pinn expects NAME=VALUE; got 'noequals'"),
    (["--snapshot-every", "0"], "--snapshot-every must be an integer from 1 to --lsqml-epochs"),
    (["--algorithms", "epie"], "--algorithms must include lsqml"),
])
def test_bad_options_refused_in_one_line(args, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert _module().main(["--quick", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("time_to_quality: error: ") and message in err
    assert err.count("\n") == 1 and not out.exists()


def test_amortised_ratio_and_common_region():
    import numpy as np

    mod = _module()
    assert mod.amortised(100.0, 1.0, 99.0) == {"1": 1.0, "10": pytest.approx(100 / 10.9),
                                              "100": pytest.approx(100 / 1.99)}
    a = np.zeros((20, 30))
    a[2:12, 5:25] = 1
    b = np.zeros((20, 30))
    b[6:18, 0:20] = 1
    rows, cols = mod.common_region([a, b])
    assert (rows.start, rows.stop, cols.start, cols.stop) == (6, 12, 5, 20)
