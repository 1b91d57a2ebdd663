"""Server-rendered SVG pictures: a pipeline's step graph and the dashboard's daily chart. [pure]

The graph is laid out in layers by topological depth (a step sits one column right of its deepest
input), steps within a layer in list order. Given step statuses (a run), nodes are coloured by status;
otherwise by step type. Every text is escaped here: keys and names come from users.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from html import escape
from typing import Any

from pipelines import graph
from pipelines.definition import parse
from pipelines.errors import DefinitionError

NODE_W = 176
NODE_H = 54
COL_GAP = 70
ROW_GAP = 22
PAD = 16

TYPE_COLOURS = {
    "TRIGGER": "#7c3aed",
    "EXTRACT": "#0284c7",
    "TRANSFORM": "#0d9488",
    "VALIDATE": "#ca8a04",
    "ENRICH": "#65a30d",
    "ROUTE": "#c026d3",
    "LOAD": "#2563eb",
    "EXPORT": "#4f46e5",
    "FEED": "#db2777",
    "SINK": "#475569",
    "GATE": "#ea580c",
}
STATUS_COLOURS = {  # (fill, stroke, text)
    "PENDING": ("#f1f5f9", "#94a3b8", "#334155"),
    "RUNNING": ("#dbeafe", "#2563eb", "#1e3a8a"),
    "PAUSED": ("#fef3c7", "#d97706", "#78350f"),
    "COMPLETED": ("#dcfce7", "#16a34a", "#14532d"),
    "FAILED": ("#fee2e2", "#dc2626", "#7f1d1d"),
    "SKIPPED": ("#f8fafc", "#cbd5e1", "#64748b"),
    "CANCELLED": ("#f5f5f4", "#78716c", "#44403c"),
}


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def layout(steps: Sequence[Mapping], inputs: Mapping[str, Sequence[str]]) -> dict[str, tuple[int, int]]:
    """(column, row) per step key: column = topological depth, rows in list order within a column."""
    keys = [s["key"] for s in steps]
    depth: dict[str, int] = {}

    def visit(key: str, trail: frozenset) -> int:
        if key in depth:
            return depth[key]
        if key in trail:  # a cycle (an invalid definition being shown): stop climbing
            return 0
        ins = [i for i in inputs.get(key, ()) if i in inputs]
        d = 0 if not ins else 1 + max(visit(i, trail | {key}) for i in ins)
        depth[key] = d
        return d

    for k in keys:
        visit(k, frozenset())
    rows: dict[int, int] = {}
    place = {}
    for k in keys:
        col = depth[k]
        place[k] = (col, rows.get(col, 0))
        rows[col] = rows.get(col, 0) + 1
    return place


def step_graph(
    steps: Sequence[Mapping],
    edges: Sequence[Mapping],
    *,
    statuses: Mapping[str, str] | None = None,
    counts: Mapping[str, str] | None = None,
    link: Callable[[str], str] | None = None,
    title: str = "Pipeline steps",
) -> str:
    """The SVG of a definition's steps (``[{key, type, adapterCode?, name?, disabled?}]``) and edges
    (``[{from, to, branch?, dependencyOnly?, implicit?}]``)."""
    inputs: dict[str, list[str]] = {s["key"]: [] for s in steps}
    for e in edges:
        if e.get("to") in inputs and e.get("from") in inputs:
            inputs[e["to"]].append(e["from"])
    place = layout(steps, inputs)
    if not steps:
        return ('<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="320" height="60" role="img" '
                'aria-label="No steps"><text x="16" y="34" class="graph-empty">No steps yet</text></svg>')
    cols = 1 + max(c for c, _ in place.values())
    rows_per_col: dict[int, int] = {}
    for c, r in place.values():
        rows_per_col[c] = max(rows_per_col.get(c, 0), r + 1)
    max_rows = max(rows_per_col.values())
    height = PAD * 2 + max_rows * NODE_H + (max_rows - 1) * ROW_GAP
    width = PAD * 2 + cols * NODE_W + (cols - 1) * COL_GAP

    def xy(key: str) -> tuple[float, float]:
        c, r = place[key]
        # centre short columns vertically against the tallest one
        offset = (max_rows - rows_per_col[c]) * (NODE_H + ROW_GAP) / 2
        return PAD + c * (NODE_W + COL_GAP), PAD + offset + r * (NODE_H + ROW_GAP)

    out = [
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" "
        "markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#94a3b8\"/>"
        "</marker></defs>",
    ]
    for e in edges:
        a, b = e.get("from"), e.get("to")
        if a not in place or b not in place:
            continue
        x1, y1 = xy(a)
        x2, y2 = xy(b)
        sx, sy = x1 + NODE_W, y1 + NODE_H / 2
        tx, ty = x2, y2 + NODE_H / 2
        if x2 <= x1:  # a back edge (only in a broken definition): loop under the nodes
            bend = max(y1, y2) + NODE_H + ROW_GAP
            d = f"M{sx},{sy} C{sx + 40},{bend} {tx - 40},{bend} {tx},{ty}"
        else:
            mid = (sx + tx) / 2
            d = f"M{sx},{sy} C{mid},{sy} {mid},{ty} {tx - 2},{ty}"
        cls = "edge"
        if e.get("dependencyOnly"):
            cls += " edge-dep"
        if e.get("implicit"):
            cls += " edge-implicit"
        label = f"{a} → {b}" + (f" [{e['branch']}]" if e.get("branch") else "")
        out.append(f'<path class="{cls}" d="{d}" marker-end="url(#arrow)"><title>{escape(label)}</title></path>')
        if e.get("branch"):
            lx, ly = (sx + tx) / 2, (sy + ty) / 2 - 6
            text = escape(_short(str(e["branch"]), 16))
            out.append(f'<text class="edge-label" x="{lx:.0f}" y="{ly:.0f}" text-anchor="middle">{text}</text>')
    for s in steps:
        key = s["key"]
        x, y = xy(key)
        status = (statuses or {}).get(key)
        kind = str(s.get("type", ""))
        accent = TYPE_COLOURS.get(kind, "#64748b")
        if status:
            fill, stroke, ink = STATUS_COLOURS.get(status, STATUS_COLOURS["PENDING"])
        else:
            fill, stroke, ink = "#ffffff", "#cbd5e1", "#0f172a"
        classes = "node" + (f" node-{status.lower()}" if status else "") + (" node-disabled" if s.get("disabled") else "")
        sub = kind.title() + (f" · {s['adapterCode']}" if s.get("adapterCode") else "")
        count = (counts or {}).get(key)
        if status:
            sub = status.title() + (f" · {_count_label(count)}" if count else "")
        tip = f"{key} ({kind}{', ' + s['adapterCode'] if s.get('adapterCode') else ''})" + (
            f": {status}" if status else "") + (f", {_count_label(count, full=True)} records" if count else "")
        node = [
            f'<g class="{classes}" transform="translate({x:.0f},{y:.0f})" data-step="{escape(key)}">',
            f"<title>{escape(tip)}</title>",
            f'<rect width="{NODE_W}" height="{NODE_H}" rx="9" fill="{fill}" stroke="{stroke}" stroke-width="1.5"'
            + (' stroke-dasharray="5 4"' if s.get("disabled") or status == "SKIPPED" else "") + "/>",
            f'<rect width="6" height="{NODE_H}" rx="3" fill="{accent}"/>',
            _node_text(_short(str(s.get("name") or key), 20), 22, "node-key", ink, 17),
            _node_text(_short(sub, 26), 41, "node-sub", ink, 21),
            "</g>",
        ]
        if link is not None:
            node = [f'<a href="{escape(link(key))}">', *node, "</a>"]
        out.extend(node)
    out.append("</svg>")
    return "".join(out)


def definition_graph(definition: Mapping, **kwargs) -> str:
    """:func:`step_graph` of a definition dict; without edges the list order is drawn as a chain."""
    steps = [s for s in definition.get("steps", []) if isinstance(s, Mapping) and isinstance(s.get("key"), str)]
    try:
        parsed = parse(dict(definition), check_plugins=False)
    except DefinitionError:
        parsed = None
    if parsed is not None:
        # pipelines.graph decides what feeds what: list order without edges, the edges otherwise, plus
        # the implicit inputs of operators that read another step's output (drawn dashed).
        edges = []
        for key, ins in graph.inputs(parsed).items():
            for i in ins:
                explicit = parsed.graph_mode and any(
                    e.from_key == i.source and e.to_key == key and e.branch == i.branch for e in parsed.edges)
                edges.append({"from": i.source, "to": key, "branch": i.branch, "dependencyOnly": i.dependency_only,
                              "implicit": not explicit and not i.dependency_only})
    else:
        edges = [e for e in definition.get("edges", []) if isinstance(e, Mapping)]
        if not edges:
            edges = [{"from": a["key"], "to": b["key"], "implicit": True}
                     for a, b in zip(steps, steps[1:], strict=False)]
    return step_graph(steps, edges, **kwargs)


def daily_chart(days: Sequence[date], runs: Sequence[int], failed: Sequence[int], records: Sequence[int]) -> str:
    """Bars of runs per day (failed ones in red on top) and a line of records per day."""
    width, height = 640, 170
    left, right, top, bottom = 36, 48, 14, 28
    n = max(1, len(days))
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / n
    bar = slot * 0.62
    max_runs = max([*runs, 1])
    max_records = max([*records, 1])
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Runs and records per day over the last {n} days">',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">{max_runs}</text>',
        f'<text class="tick" x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
        f'<text class="tick tick-records" x="{left + plot_w + 6}" y="{top + 4}">{_compact(max_records)}</text>',
    ]
    points = []
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        total, bad = runs[i], failed[i]
        h_total = plot_h * total / max_runs
        h_bad = plot_h * bad / max_runs
        tip = f"{day:%a %d %b}: {total} run{'s' if total != 1 else ''}, {bad} failed, {records[i]} records"
        out.append(f'<g class="day"><title>{escape(tip)}</title>')
        out.append(f'<rect class="bar-slot" x="{left + i * slot:.1f}" y="{top}" width="{slot:.1f}" height="{plot_h}"/>')
        if total:
            out.append(f'<rect class="bar-ok" x="{x:.1f}" y="{top + plot_h - h_total:.1f}" width="{bar:.1f}" '
                       f'height="{h_total - h_bad:.1f}" rx="2"/>')
        if bad:
            out.append(f'<rect class="bar-failed" x="{x:.1f}" y="{top + plot_h - h_bad:.1f}" width="{bar:.1f}" '
                       f'height="{h_bad:.1f}" rx="2"/>')
        out.append("</g>")
        if i % 2 == (n - 1) % 2:
            out.append(f'<text class="tick" x="{x + bar / 2:.1f}" y="{height - 10}" text-anchor="middle">'
                       f'{day.day}</text>')
        points.append((x + bar / 2, top + plot_h - plot_h * records[i] / max_records))
    if points:
        path = " ".join(f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(points))
        out.append(f'<path class="line-records" d="{path}"/>')
        out.extend(f'<circle class="dot-records" cx="{px:.1f}" cy="{py:.1f}" r="2.5"/>' for px, py in points)
    out.append("</svg>")
    return "".join(out)


def _node_text(text: str, y: int, cls: str, ink: str, fits: int) -> str:
    """A line of a node. Past ``fits`` characters it is squeezed to the node's width (textLength), so a long
    name or count never runs out of its box whatever the font."""
    squeeze = f' textLength="{NODE_W - 24}" lengthAdjust="spacingAndGlyphs"' if len(text) > fits else ""
    return f'<text x="16" y="{y}" class="{cls}" fill="{ink}"{squeeze}>{escape(text)}</text>'


def _count_label(count: Any, *, full: bool = False) -> str:
    """A step's records in and out: compact in its node (3M→30k), with separators in its tooltip."""
    if isinstance(count, tuple):
        n_in, n_out = count
        return f"{n_in:,} in, {n_out:,} out" if full else f"{_compact(n_in)}→{_compact(n_out)}"
    return str(count)


def _compact(n: int) -> str:
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + suffix
    return str(n)


def bar_list(items: Sequence[tuple[str, int]], *, label: str) -> str:
    """Horizontal bars, one per (name, count), longest first as given; names escaped."""
    width, row_h, name_w, num_w = 640, 24, 200, 70
    height = max(1, len(items)) * row_h + 8
    top = max([n for _, n in items] or [1]) or 1
    out = [f'<svg class="chart bars" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(label)}">']
    for i, (name, n) in enumerate(items):
        y = 4 + i * row_h
        w = (width - name_w - num_w) * n / top
        out.append(f'<g class="bar-row"><title>{escape(name)}: {n:,}</title>'
                   f'<text class="tick" x="{name_w - 8}" y="{y + 15}" text-anchor="end">{escape(_short(name, 30))}</text>'
                   f'<rect class="bar-failed" x="{name_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 8}" rx="2"/>'
                   f'<text class="tick" x="{name_w + w + 6:.1f}" y="{y + 15}">{n:,}</text></g>')
    out.append("</svg>")
    return "".join(out)
