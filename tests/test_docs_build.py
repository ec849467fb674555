"""The documentation site builds in strict mode, and its API reference comes from the sources.

``mkdocs build --strict`` fails on any warning: a broken link, a page missing from the nav, a
docstring mkdocstrings cannot parse, a missing ``BENCHMARKS.md`` include. The build runs with
``torch`` and ``ptychopinn`` made unimportable, so the API reference is proven to come from
static analysis (importing torch would make the docs build slow and need a torch install).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# mkdocs's own entry point, with torch and ptychopinn blocked: ``import torch`` raises.
_BUILD = (
    "import runpy, sys\n"
    "sys.modules['torch'] = None\n"
    "sys.modules['ptychopinn'] = None\n"
    "sys.argv = ['mkdocs'] + sys.argv[1:]\n"
    "runpy.run_module('mkdocs', run_name='__main__', alter_sys=True)\n"
)


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="docs extra not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _BUILD, "build", "--strict", "--quiet", "-f",
         str(ROOT / "mkdocs.yml"), "-d", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    page = site / "api" / "physics" / "index.html"
    assert page.is_file(), sorted(p.name for p in (site / "api").iterdir())
    html = page.read_text(encoding="utf-8")
    assert 'id="ptychopinn.physics.forward"' in html
    assert 'id="ptychopinn.physics.forward.forward_amplitude"' in html
    assert "PtychoForward" in html
    # the hook renders Sphinx roles of the docstrings as plain code
    assert ":class:<code>" not in html and ":func:<code>" not in html

    for guide in ("install", "data", "commands", "python_api", "models", "benchmarks"):
        assert (site / "guide" / guide / "index.html").is_file(), guide
    bench = (site / "guide" / "benchmarks" / "index.html").read_text(encoding="utf-8")
    assert "<h2" in bench  # BENCHMARKS.md itself is included, not only the note
