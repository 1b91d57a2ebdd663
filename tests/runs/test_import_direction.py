"""runs/ has no import circle, hidden or not.

A circle between modules (services -> store -> hooks -> services, as there was) works only in some import
orders, and function-local imports merely postpone it; the graph is read from the source, imports inside
functions included, so the test does not depend on which module a process happens to import first (and
needs no interpreter per module).
The direction within the app is services -> cdc -> store -> hooks -> launch -> models (see runs.services).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORE = ["runs/services.py", "runs/cdc.py", "runs/store.py", "runs/hooks.py", "runs/launch.py", "runs/resume.py"]


def _imports_of(path: pathlib.Path) -> set[str]:
    """Every runs module ``path`` imports, at its top or inside a function (an import in a function
    still closes a circle; it only postpones it)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("runs"):
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("runs")}
    return found


def test_runs_modules_import_one_way():
    """No runs module reaches itself through the imports of the runs modules it imports."""
    modules = {}
    for path in (ROOT / "runs").rglob("*.py"):
        if "migrations" not in path.parts:
            modules[".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = path
    edges = {name: _imports_of(path) & modules.keys() for name, path in modules.items()}
    circles = []
    for start in edges:
        seen, todo = set(), [(start, (start,))]
        while todo:
            name, trail = todo.pop()
            for nxt in edges[name]:
                if nxt == start:
                    circles.append(" -> ".join((*trail, start)))
                elif nxt not in seen:
                    seen.add(nxt)
                    todo.append((nxt, (*trail, nxt)))
    assert not circles, circles


@pytest.mark.parametrize("path", CORE)
def test_no_runs_import_hides_inside_a_function(path):
    """A function-local import of another runs module is how the circle was hidden; none is left."""
    tree = ast.parse((ROOT / path).read_text())
    hidden = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("runs"):
                    hidden.append(f"{path}:{node.lineno} from {node.module} import ...")
    assert not hidden, hidden
