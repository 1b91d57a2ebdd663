"""The editor's palette: everything a step can be, listed from the registries."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines import registry, svg
from pipelines.definition import STEP_TYPES


@dataclass
class PaletteItem:
    label: str
    description: str
    type: str
    adapter: str = ""
    op: str = ""
    code: str = ""


@dataclass
class PaletteGroup:
    title: str
    type: str
    description: str
    sections: list[tuple[str, list[PaletteItem]]]
    empty: str = ""
    colour: str = "#64748b"


def palette(query: str = "") -> list[PaletteGroup]:
    """Everything a step can be, from the registries: step types, and per type its adapters or operators."""
    q = query.strip().lower()

    def hit(*texts: str) -> bool:
        return not q or any(q in (t or "").lower() for t in texts)

    order = {t: n for n, t in enumerate(STEP_TYPES)}
    groups = []
    for entry in sorted(registry.step_types, key=lambda e: (order.get(e.code, 99), e.code)):
        t = entry.code
        reg = registry.ADAPTER_REGISTRY_BY_STEP_TYPE.get(t)
        sections: list[tuple[str, list[PaletteItem]]] = []
        if t == "TRANSFORM":
            chain = PaletteItem("Operator chain", "An empty list of operators to fill in.", t)
            if hit(chain.label, t):
                sections.append(("", [chain]))
            by_cat: dict[str, list[PaletteItem]] = {}
            for op in registry.operators:
                if hit(op.code, op.name, op.category, op.description, t):
                    by_cat.setdefault(op.category.title(), []).append(
                        PaletteItem(op.name, op.description, t, op=op.code, code=op.code))
            sections.extend(sorted(by_cat.items()))
        elif reg is not None:
            by_cat = {}
            for adapter in reg:
                if hit(adapter.code, adapter.name, adapter.category, adapter.description, t):
                    by_cat.setdefault(adapter.category.title(), []).append(
                        PaletteItem(adapter.name, adapter.description, t, adapter=adapter.code, code=adapter.code))
            sections.extend(sorted(by_cat.items()))
        elif hit(t, entry.name, entry.description):
            sections.append(("", [PaletteItem(entry.name, entry.description, t, code=t)]))
        empty = ""
        if reg is not None and t != "TRANSFORM" and len(reg) == 0:
            empty = f"No {reg.kind}s are installed."
        if sections or (empty and not q):
            groups.append(PaletteGroup(entry.name, t, entry.description, sections, empty,
                                       svg.TYPE_COLOURS.get(t, "#64748b")))
    return groups
