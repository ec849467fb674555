"""The demo runs end to end (quick sizes) and its summary tells the equal-quality comparison."""

from __future__ import annotations

import pytest

from ptychopinn.cli import main
from ptychopinn.iterative import is_available


@pytest.mark.skipif(not is_available(), reason="pty-chi not installed")
def test_quick_demo_summary_has_every_method_and_the_time_to_quality(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    for name in ("PtychoPINN-General", "PtychoPINN-General+adapt", "PtychoPINN",
                 "PtychoPINN-Unrolled", "Baseline", "PtyChi-LSQML"):
        assert f"| {name} | phase |" in summary, name
        assert f"- **{name}**:" in summary, name
    # the demo starts with the shipped model, before any training
    assert summary.index("PtychoPINN-General**: shipped with the package") < summary.index(
        "PtychoPINN-Unrolled**: trained")
    # one sentence per network with LSQML's time to the same quality (or that it never got there)
    nets = [ln for ln in summary.splitlines() if ln.startswith("- **") and "PtyChi" not in ln]
    assert len(nets) == 5
    assert all("LSQML" in ln for ln in nets)
    assert (out / "time_to_quality.png").stat().st_size > 10_000
    assert (out / "compare" / "comparison.png").exists()
