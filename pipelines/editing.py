"""One change at a time to a definition dict: what the editor's buttons do. [pure]

Every function takes a definition (the JSON dict of :func:`pipelines.services.definition_of`) and returns
a changed deep copy; the input is never mutated. None of them validates: the editor saves the result with
``save_definition``, which checks the whole definition and freezes a revision, so every change a person
makes in the browser passes the same validation as the API and the CLI.

Two rules keep the graph connected while a person edits it step by step:

* The first edge added to a pipeline without edges first writes down the chain the steps already run
  in (list order), so adding one connection never disconnects the others.
* Removing a step that sits between others connects its predecessors to its successors.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

# Step fields the editor's step form owns; every other field of a step (plugin passthrough such as
# "throughput" or "description") is kept as it was.
STEP_FORM_FIELDS = ("key", "type", "adapterCode", "name", "config", "disabled", "retries", "retryDelayMs",
                    "timeoutMs", "continueOnError")

_KEY_CLEAN = re.compile(r"[^A-Za-z0-9_.-]+")


class EditError(ValueError):
    """A change that cannot apply at all (a step that is not there). Shown like a validation problem."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)


def _copy(definition: dict) -> dict:
    out = copy.deepcopy(definition)
    out.setdefault("steps", [])
    out.setdefault("edges", [])
    out.setdefault("context", {})
    return out


def step_keys(definition: dict) -> list[str]:
    return [s.get("key") for s in definition.get("steps", [])]


def find_step(definition: dict, key: str) -> dict:
    for step in definition.get("steps", []):
        if step.get("key") == key:
            return step
    raise EditError(f"there is no step '{key}'", field="key")


def unique_key(definition: dict, base: str) -> str:
    """``base`` made into a valid step key that no step of ``definition`` has yet."""
    base = _KEY_CLEAN.sub("-", base or "step").strip("-._").lower()[:90] or "step"
    if not base[0].isalnum():
        base = f"s{base}"
    taken = set(step_keys(definition))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def chain_edges(definition: dict) -> list[dict]:
    """The edges a pipeline without edges implicitly runs by: each step fed by the one before."""
    keys = step_keys(definition)
    return [{"from": a, "to": b} for a, b in zip(keys, keys[1:], strict=False)]


def _same_edge(a: dict, b: dict) -> bool:
    return (a.get("from"), a.get("to"), a.get("branch")) == (b.get("from"), b.get("to"), b.get("branch"))


def add_step(definition: dict, step: dict, *, connect_from: str | None = None, branch: str | None = None,
             connect_to: str | None = None) -> dict:
    """Append ``step``. With edges, ``connect_from`` adds the edge that feeds it and ``connect_to`` the one it
    feeds. A ROUTE step, or a ``connect_to``, turns a pipeline without edges into a graph (its list order
    written down as edges first), since only edges can send records somewhere else than the next step."""
    out = _copy(definition)
    graph = bool(out["edges"]) or step.get("type") == "ROUTE" or bool(connect_to)
    if graph and not out["edges"]:
        out["edges"] = chain_edges(out)
    out["steps"].append(copy.deepcopy(step))
    if graph and connect_from:
        find_step(out, connect_from)
        edge = {"from": connect_from, "to": step["key"]}
        if branch:
            edge["branch"] = branch
        out["edges"].append(edge)
    if graph and connect_to:
        find_step(out, connect_to)
        out["edges"].append({"from": step["key"], "to": connect_to})
    return out


def update_step(definition: dict, key: str, fields: dict) -> dict:
    """Replace the fields the step form owns with ``fields``; a new key renames the step in its edges."""
    out = _copy(definition)
    step = find_step(out, key)
    for name in STEP_FORM_FIELDS:
        step.pop(name, None)
    extra = dict(step)
    step.clear()
    for name in STEP_FORM_FIELDS:
        if name in fields:
            step[name] = copy.deepcopy(fields[name])
    step.update({k: v for k, v in extra.items() if k not in step})
    new_key = step.get("key", key)
    if new_key != key:
        for edge in out["edges"]:
            if edge.get("from") == key:
                edge["from"] = new_key
            if edge.get("to") == key:
                edge["to"] = new_key
    return out


def remove_step(definition: dict, key: str) -> dict:
    """Remove the step and its edges, connecting its predecessors to its successors."""
    out = _copy(definition)
    find_step(out, key)
    out["steps"] = [s for s in out["steps"] if s.get("key") != key]
    incoming = [e for e in out["edges"] if e.get("to") == key and e.get("from") != key]
    outgoing = [e for e in out["edges"] if e.get("from") == key and e.get("to") != key]
    kept = [e for e in out["edges"] if key not in (e.get("from"), e.get("to"))]
    for inc in incoming:
        for outg in outgoing:
            bridge = {"from": inc["from"], "to": outg["to"]}
            if inc.get("branch"):
                bridge["branch"] = inc["branch"]
            if inc.get("dependencyOnly") or outg.get("dependencyOnly"):
                bridge["dependencyOnly"] = True
            if not any(_same_edge(bridge, e) for e in kept):
                kept.append(bridge)
    out["edges"] = kept
    return out


def move_step(definition: dict, key: str, offset: int) -> dict:
    """Move the step ``offset`` places (negative: up). Without edges this changes the order it runs in."""
    out = _copy(definition)
    keys = step_keys(out)
    if key not in keys:
        raise EditError(f"there is no step '{key}'", field="key")
    i = keys.index(key)
    j = max(0, min(len(keys) - 1, i + offset))
    step = out["steps"].pop(i)
    out["steps"].insert(j, step)
    return out


def add_edge(definition: dict, from_key: str, to_key: str, *, branch: str | None = None,
             dependency_only: bool = False) -> dict:
    """Add an edge; the first one also writes down the list order the steps ran in until now."""
    out = _copy(definition)
    if not out["edges"]:
        out["edges"] = chain_edges(out)
    edge: dict[str, Any] = {"from": from_key, "to": to_key}
    if branch:
        edge["branch"] = branch
    if dependency_only:
        edge["dependencyOnly"] = True
    # The chain may already hold this very connection (a -> b without branch); adding a branch to it
    # replaces it rather than adding a second, overlapping edge.
    if branch:
        out["edges"] = [e for e in out["edges"]
                        if not (e.get("from") == from_key and e.get("to") == to_key and not e.get("branch"))]
    if not any(_same_edge(edge, e) for e in out["edges"]):
        out["edges"].append(edge)
    return out


def remove_edge(definition: dict, index: int) -> dict:
    out = _copy(definition)
    if not 0 <= index < len(out["edges"]):
        raise EditError(f"there is no edge number {index + 1}", field="edges")
    del out["edges"][index]
    return out


def use_list_order(definition: dict) -> dict:
    """Drop every edge: the steps run in list order again."""
    out = _copy(definition)
    out["edges"] = []
    return out


def set_settings(definition: dict, *, name: str | None = None, description: str | None = None,
                 context: dict | None = None) -> dict:
    out = _copy(definition)
    if name is not None:
        out["name"] = name
    if description is not None:
        if description:
            out["description"] = description
        else:
            out.pop("description", None)
    if context is not None:
        out["context"] = copy.deepcopy(context)
    return out


def set_parallel(definition: dict, enabled: bool, max_concurrent_steps: int | None = None,
                 error_policy: str | None = None) -> dict:
    out = _copy(definition)
    parallel = dict(out["context"].get("parallelExecution") or {})
    parallel["enabled"] = bool(enabled)
    if max_concurrent_steps is not None:
        parallel["maxConcurrentSteps"] = max_concurrent_steps
    if error_policy is not None:
        parallel["errorPolicy"] = error_policy
    out["context"]["parallelExecution"] = parallel
    return out


def duplicate(definition: dict, code: str, name: str | None = None) -> dict:
    out = _copy(definition)
    out["code"] = code
    out["name"] = name or f"Copy of {definition.get('name') or definition.get('code')}"
    return out


# --- lists inside a step's config (a TRANSFORM step's operators, a ROUTE step's branches) -------------

def list_add(items: Iterable[Any], item: Any) -> list:
    return [*items, copy.deepcopy(item)]


def list_remove(items: Iterable[Any], index: int) -> list:
    items = list(items)
    if 0 <= index < len(items):
        del items[index]
    return items


def list_move(items: Iterable[Any], index: int, offset: int) -> list:
    items = list(items)
    if not 0 <= index < len(items):
        return items
    j = max(0, min(len(items) - 1, index + offset))
    items.insert(j, items.pop(index))
    return items
