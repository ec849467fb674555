"""Every name the benchmark and maintenance scripts import from the package exists (a renamed or
removed name breaks a script that no timed test runs)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("scripts/*.py")])


def package_imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) of every ``import ptychopinn...`` / ``from ptychopinn... import name``
    in ``path``, at any depth (imports inside functions count)."""
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ptychopinn"):
            out += [(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.startswith("ptychopinn")]
    return out


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_script_imports_resolve(path):
    missing = []
    for module, name in package_imports(path):
        mod = importlib.import_module(module)
        if name is not None and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{module}.{name}")
    assert missing == [], f"{path.name} imports names that do not exist: {missing}"


def test_the_check_sees_a_missing_name(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ptychopinn.models.registry import RECOMMENDED\n")
    assert package_imports(bad) == [("ptychopinn.models.registry", "RECOMMENDED")]
    assert not hasattr(importlib.import_module("ptychopinn.models.registry"), "RECOMMENDED")
