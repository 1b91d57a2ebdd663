"""The shape of a pipeline as a graph: inputs per step, order, and what is wrong with it. [pure]

Without edges the steps run in list order, each fed by the one before (a chain). With edges, a step's
input is the concatenation of its predecessors' outputs *in edge order* (fan-in is a union, as in the
plugin); an edge with ``branch`` carries only that ROUTE branch; ``dependencyOnly`` orders without
passing records. Operators that read another step's output (multiJoin's ``rightDataPath``) add an
implicit dependency-only input, so the referenced step always finishes first.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.errors import Problem

if TYPE_CHECKING:
    from pipelines.definition import Definition, StepSpec

DEFAULT_BRANCH = "default"


@dataclass(frozen=True)
class Input:
    """One incoming edge of a step: records of ``source`` (only ``branch`` of it, if set)."""

    source: str
    branch: str | None = None
    dependency_only: bool = False


def inputs(definition: Definition) -> dict[str, list[Input]]:
    """Every step's inputs, in edge order. Steps are keyed in list order."""
    result: dict[str, list[Input]] = {s.key: [] for s in definition.steps}
    if definition.graph_mode:
        for e in definition.edges:
            if e.to_key in result and e.from_key in result:
                result[e.to_key].append(Input(e.from_key, e.branch, e.dependency_only))
    else:
        previous = None
        for s in definition.steps:
            if previous is not None:
                result[s.key].append(Input(previous))
            previous = s.key
    for s in definition.steps:
        for ref in references(s):
            if ref in result and all(i.source != ref for i in result[s.key]):
                result[s.key].append(Input(ref, dependency_only=True))
    return result


def references(step: StepSpec) -> list[str]:
    """Keys of other steps whose output ``step``'s operators read."""
    if step.type != "TRANSFORM":
        return []
    from pipelines.registry import operators

    refs: list[str] = []
    items = step.config.get("operators")
    if step.adapter_code is not None:
        items = [{"op": step.adapter_code, "args": dict(step.config)}]
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("op") not in operators:
            continue
        spec = operators.get(item["op"]).impl
        finder = getattr(spec, "references", None)
        if finder is not None:
            try:
                refs.extend(finder(item.get("args") or {}))
            except Exception:  # a malformed reference is reported by the operator's own checks
                continue
    return refs


def successors(definition: Definition) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {s.key: [] for s in definition.steps}
    for key, ins in inputs(definition).items():
        for i in ins:
            if key not in result[i.source]:
                result[i.source].append(key)
    return result


def descendants(definition: Definition, key: str) -> set[str]:
    """Every step that depends, directly or not, on ``key``."""
    succ = successors(definition)
    seen: set[str] = set()
    stack = list(succ.get(key, []))
    while stack:
        nxt = stack.pop()
        if nxt not in seen:
            seen.add(nxt)
            stack.extend(succ.get(nxt, []))
    return seen


def topological_order(definition: Definition) -> list[str]:
    """Kahn's order, ties broken by list position. Assumes no cycle (see ``problems``)."""
    position = {s.key: n for n, s in enumerate(definition.steps)}
    deps = {k: {i.source for i in v} for k, v in inputs(definition).items()}
    succ = successors(definition)
    ready = sorted((k for k, d in deps.items() if not d), key=position.get)
    queue = deque(ready)
    order: list[str] = []
    remaining = {k: len(d) for k, d in deps.items()}
    while queue:
        key = queue.popleft()
        order.append(key)
        for nxt in sorted(succ[key], key=position.get):
            remaining[nxt] -= 1
            if remaining[nxt] == 0:
                queue.append(nxt)
    return order


def problems(definition: Definition) -> list[Problem]:
    found: list[Problem] = []
    keys = {s.key: s for s in definition.steps}

    def edge_problem(index: int, message: str, step: str | None = None, code: str = "invalid_edge") -> None:
        found.append(Problem(message, step=step, field=f"edges[{index}]", code=code))

    seen_edges: set[tuple[str, str, str | None]] = set()
    for n, e in enumerate(definition.edges):
        for end, key in (("from", e.from_key), ("to", e.to_key)):
            if key not in keys:
                edge_problem(n, f"'{end}' names unknown step '{key}'", code="unknown_step")
        if e.from_key == e.to_key:
            edge_problem(n, f"step '{e.from_key}' cannot feed itself", e.from_key, "cycle")
        ident = (e.from_key, e.to_key, e.branch)
        if ident in seen_edges:
            edge_problem(n, f"duplicate edge {e.from_key} -> {e.to_key}", e.from_key)
        seen_edges.add(ident)
        source = keys.get(e.from_key)
        if e.branch is not None and source is not None:
            if source.type != "ROUTE":
                edge_problem(n, f"only ROUTE steps have branches; '{e.from_key}' is {source.type}", e.from_key)
            elif e.branch not in (*source.branches, DEFAULT_BRANCH):
                edge_problem(
                    n,
                    f"ROUTE '{e.from_key}' has no branch '{e.branch}' (branches: "
                    f"{', '.join([*source.branches, DEFAULT_BRANCH])})",
                    e.from_key,
                    "unknown_branch",
                )
    # Edge problems do not stop the checks below: a misspelt edge must not hide a cycle elsewhere
    # (``inputs`` leaves out edges whose ends are unknown).

    for s in definition.steps:
        if s.type != "ROUTE":
            continue
        names = s.branches
        dupes = sorted({b for b in names if names.count(b) > 1})
        for b in dupes:
            found.append(Problem(f"duplicate branch name '{b}'", step=s.key, field="config.branches"))
        if not definition.graph_mode:
            found.append(Problem(
                "a ROUTE step needs edges: a pipeline without edges runs its steps in list order and "
                "cannot send branches to different steps; add an edge per branch",
                step=s.key, field="edges", code="route_without_edges"))
            continue
        out = [e for e in definition.edges if e.from_key == s.key]
        if any(e.branch is None and not e.dependency_only for e in out):
            continue  # an edge without branch takes every branch
        wired = {e.branch for e in out}
        for b in names:
            if b not in wired:
                found.append(Problem(f"branch '{b}' has no edge; add an edge with \"branch\": \"{b}\"",
                                     step=s.key, field="config.branches", code="branch_without_edge"))

    for s in definition.steps:
        for ref in references(s):
            if ref not in keys:
                found.append(Problem(f"reads the output of unknown step '{ref}'", step=s.key,
                                     field="config.operators", code="unknown_step"))
            elif ref == s.key:
                found.append(Problem("an operator cannot read its own step's output", step=s.key,
                                     field="config.operators", code="cycle"))

    if definition.graph_mode and len(definition.steps) > 1:
        touched = {e.from_key for e in definition.edges} | {e.to_key for e in definition.edges}
        for s in definition.steps:
            if s.key not in touched and not references(s):
                found.append(Problem(
                    "this step has no edge; in a pipeline with edges every step must be connected",
                    step=s.key, field="edges", code="disconnected"))

    cycle = _find_cycle(definition)
    if cycle:
        found.append(Problem("cycle: " + " -> ".join(cycle), step=cycle[0], field="edges", code="cycle"))
    return found


def _find_cycle(definition: Definition) -> list[str]:
    deps = {k: [i.source for i in v] for k, v in inputs(definition).items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(key: str) -> list[str]:
        state[key] = 1
        stack.append(key)
        for dep in deps.get(key, []):
            if state.get(dep) == 1:
                start = stack.index(dep)
                return [*stack[start:], dep][::-1]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[key] = 2
        return []

    for key in deps:
        if key not in state:
            found = visit(key)
            if found:
                return found
    return []
