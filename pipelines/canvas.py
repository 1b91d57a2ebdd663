"""What the editor's canvas draws: the definition's steps as nodes with ports, its edges as connections, and
where each node sits (the same layered layout as the SVG graph). [pure]

The canvas (static/js/canvas.js, on the vendored Drawflow) keeps no state of its own: every action it
offers is one of the editor's ordinary requests (add or remove a connection, remove a step, add one from
the palette), so it changes the draft exactly as the list view, the DSL and the API do, and it is drawn
again from the draft after each change.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipelines import svg

COLUMN = 260  # px between the left edges of two columns: a 170 px node and its port labels
ROW = 110


def output_ports(step: Mapping) -> list[dict]:
    """A step's output ports, each the ``branch`` an edge from it carries. A ROUTE step has one per named
    branch, then ``default`` (records no branch took), then its main output (every record, no branch)."""
    if step.get("type") != "ROUTE":
        return [{"label": "", "branch": None}]
    names = [b.get("name") for b in (step.get("config") or {}).get("branches") or [] if isinstance(b, Mapping)]
    ports = [{"label": n, "branch": n} for n in names if isinstance(n, str) and n]
    return [*ports, {"label": "default", "branch": "default"}, {"label": "all records", "branch": None}]


def canvas_data(definition: Mapping) -> dict:
    steps = [s for s in definition.get("steps", []) if isinstance(s, Mapping) and isinstance(s.get("key"), str)]
    edges = [e for e in definition.get("edges") or [] if isinstance(e, Mapping)]
    if edges:
        drawn = [{"from": e.get("from"), "to": e.get("to"), "branch": e.get("branch"), "index": n,
                  "dependencyOnly": bool(e.get("dependencyOnly"))} for n, e in enumerate(edges)]
    else:  # list order: drawn, but not an edge of the definition (index None)
        drawn = [{"from": a["key"], "to": b["key"], "branch": None, "index": None, "dependencyOnly": False}
                 for a, b in zip(steps, steps[1:], strict=False)]
    inputs: dict[str, list[str]] = {s["key"]: [] for s in steps}
    for e in drawn:
        if e["to"] in inputs:
            inputs[e["to"]].append(e["from"])
    place = svg.layout(steps, inputs)
    nodes = []
    for s in steps:
        col, row = place[s["key"]]
        nodes.append({
            "key": s["key"], "name": s.get("name") or s["key"], "type": s.get("type", ""),
            "adapter": s.get("adapterCode") or "", "colour": svg.TYPE_COLOURS.get(s.get("type", ""), "#64748b"),
            "x": 20 + col * COLUMN, "y": 20 + row * ROW,
            "inputs": 0 if s.get("type") == "TRIGGER" else 1,
            "outputs": output_ports(s),
        })
    return {"nodes": nodes, "edges": drawn}
