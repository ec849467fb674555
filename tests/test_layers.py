"""The package's import graph (SPEC §9): layers point one way and no module imports itself
back through others. Walks the syntax trees; imports inside functions count, imports under
``if TYPE_CHECKING:`` (annotations only) do not."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import ptychopinn

SRC = Path(ptychopinn.__file__).resolve().parent

#: SPEC §9, low to high; "files" holds the file utilities (atomic writes, magic bytes, hashes).
LAYERS = ("errors", "files", "physics", "data", "io", "models", "iterative", "training",
          "inference", "evaluation", "studies", "interop", "cli")
#: Layer of the top-level modules (the subpackages are their own layer).
MODULE_LAYERS = {"ptychopinn": "errors", "ptychopinn.errors": "errors",
                 "ptychopinn.files": "files", "ptychopinn.schema": "files",
                 "ptychopinn.viz": "data", "ptychopinn.config": "models",
                 "ptychopinn.demo": "cli", "ptychopinn.cli": "cli", "ptychopinn.cli_model": "cli"}


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from X import y`` counts X.y when y is a
    module, else X)."""
    modules = {_module_name(root, p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(node.test)
                       for stmt in node.body for n in ast.walk(stmt)}
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def layer(module: str) -> str:
    return MODULE_LAYERS.get(module) or module.split(".")[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if LAYERS.index(layer(b)) > LAYERS.index(layer(a)))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_every_module_has_a_layer():
    assert all(layer(m) in LAYERS for m in import_graph(SRC)), sorted(
        m for m in import_graph(SRC) if layer(m) not in LAYERS)


def test_no_import_points_up_a_layer():
    assert upward_imports(import_graph(SRC)) == []


def test_no_import_cycles():
    assert cycles(import_graph(SRC)) == []


def test_the_checks_fail_when_a_violation_is_added(tmp_path):
    """A copy of the package with one lazy upward import (physics -> training) and one cycle
    (data.container <-> data.simulate): both are reported."""
    root = tmp_path / "ptychopinn"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__", "*.zip"))
    with open(root / "physics" / "noise.py", "a") as f:
        f.write("\n\ndef _late():\n    from ptychopinn.training import api  # noqa\n")
    with open(root / "data" / "container.py", "a") as f:
        f.write("\n\ndef _back():\n    from ptychopinn.data import simulate  # noqa\n")
    graph = import_graph(root)
    assert upward_imports(graph) == ["ptychopinn.physics.noise -> ptychopinn.training.api"]
    planted = {"ptychopinn.data.container", "ptychopinn.data.simulate"}
    assert any(planted <= set(c) for c in cycles(graph))


def test_reading_a_config_does_not_import_torch(tmp_path):
    import subprocess
    import sys

    cfg = tmp_path / "run.yaml"
    cfg.write_text("model: {kind: unrolled}\ngrouping: {gridsize: 3, neighbor_count: 12}\n")
    code = ("import sys; from ptychopinn.config import load_config; "
            f"c = load_config({str(cfg)!r}); assert c.model.kind == 'unrolled'; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
