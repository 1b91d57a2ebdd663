"""What fills the registries, in one visible list. [pure]

``BUILTIN_MODULES`` are pipelines' own operators and adapters. Other apps add theirs through
``settings.DATAHUB_PLUGIN_MODULES`` (like INSTALLED_APPS), and installed packages through the entry-point
group ``datahub.plugins`` (each entry point names a module, imported for its registrations, or a
callable, called with no arguments). ``PipelinesConfig.ready()`` calls :func:`load_plugins`; engine
tests call it directly.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import entry_points

BUILTIN_MODULES: tuple[str, ...] = (
    "pipelines.operators",
    "pipelines.adapters",
)

ENTRY_POINT_GROUP = "datahub.plugins"

_loaded: set[str] = set()


def load_plugins(modules: Iterable[str] = (), *, entry_point_group: str | None = ENTRY_POINT_GROUP) -> None:
    """Import the built-ins, then ``modules``, then every installed entry point. Idempotent."""
    for name in (*BUILTIN_MODULES, *modules):
        if name not in _loaded:
            importlib.import_module(name)
            _loaded.add(name)
    if entry_point_group:
        for ep in entry_points(group=entry_point_group):
            key = f"entry-point:{ep.name}={ep.value}"
            if key in _loaded:
                continue
            loaded = ep.load()
            if callable(loaded):
                loaded()
            _loaded.add(key)
