"""No import circle, hidden or not: in runs/ (where there was one) and across the project's apps.

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


APPS = ("audit", "datahub_project", "gates", "pipelines", "runs")


def _runtime_nodes(tree: ast.AST):
    """Every node that runs at import or call time: what sits under ``if TYPE_CHECKING:`` is left out
    (annotations only; it never executes, so it closes no circle)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", getattr(child.test, "attr", "")) == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _imports_of(path: pathlib.Path, modules: set[str]) -> set[str]:
    """Every project module ``path`` imports, at its top or inside a function (an import in a function
    still closes a circle; it only postpones it). ``from package import submodule`` is an edge to the
    submodule (a package that imports its own modules to register them is no circle); a name that is not
    a module is an edge to the module that defines it."""
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def _circles(apps: tuple[str, ...]) -> list[str]:
    modules = {}
    for app in apps:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                modules[".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = path
    edges = {name: _imports_of(path, set(modules)) & modules.keys() - {name} for name, path in modules.items()}
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
    return circles


def test_runs_modules_import_one_way():
    """No runs module reaches itself through the imports of the runs modules it imports."""
    assert not _circles(("runs",))


def test_project_modules_import_one_way():
    """Nor does any module of the project's apps (issue 14: no import circle remains), across apps too."""
    circles = _circles(APPS)
    assert not circles, circles[:10]


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
