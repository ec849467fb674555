"""``benchmarks/gpu_check.sh`` on a machine without a GPU: one line, exit 0, in seconds."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.sh"
NO_GPU = {"gpu_check": "skipped",
          "reason": "no GPU found (torch.cuda.is_available() is false or torch is not importable)"}


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, **env})


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the check would run")
def test_cpu_machine_says_no_gpu_and_exits_0(tmp_path):
    p = _run(tmp_path, GPU_CHECK_WORK=str(tmp_path / "work"))
    assert p.returncode == 0, p.stderr
    assert [json.loads(line) for line in p.stdout.splitlines()] == [NO_GPU]
    assert not (tmp_path / "work").exists()  # nothing was started


def test_python_without_torch_says_no_gpu_and_exits_0(tmp_path):
    fake = tmp_path / "python"  # a Python where `import torch` fails
    fake.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named torch' >&2\nexit 1\n")
    fake.chmod(0o755)
    p = _run(tmp_path, PYTHON=str(fake))
    assert p.returncode == 0
    assert [json.loads(line) for line in p.stdout.splitlines()] == [NO_GPU]
