"""What other apps show on the dashboard's top row: the one way in for them, filled from their
``AppConfig.ready``.

The dashboard is runs' page, but some of its figures belong to apps that build on runs (gates: how many
gates wait). runs must not import them (gates -> runs -> pipelines), so they register a :class:`Tile`
here and the dashboard shows what is registered, in the order registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Tile", "register_tile", "tiles"]


@dataclass(frozen=True)
class Tile:
    """One figure of the dashboard's top row: ``count(user)`` is asked each time the page is drawn, with the
    user looking (who may see only some pipelines' work)."""

    key: str  # the tile's HTML id
    label: str
    count: Callable[[Any], int]
    link: str
    link_text: str


_TILES: dict[str, Tile] = {}


def register_tile(tile: Tile) -> None:
    """Add ``tile``; registering the same key again replaces it (ready() may run more than once)."""
    _TILES[tile.key] = tile


def tiles(user) -> list[dict]:
    """The registered tiles with ``user``'s figures, for the template."""
    return [{"key": t.key, "label": t.label, "value": t.count(user), "link": t.link, "link_text": t.link_text}
            for t in _TILES.values()]
