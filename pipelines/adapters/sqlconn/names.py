"""Table and column names as the catalogue spells them, and the nearest one for a message. [pure]
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from pipelines.errors import ConfigError


def nearest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name`` (case-insensitive first), or None."""
    known = list(known)
    lowered = {k.lower(): k for k in known}
    if str(name).lower() in lowered:
        return lowered[str(name).lower()]
    close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def resolve_name(name: str, known: Iterable[str]) -> str | None:
    """``name`` as the catalogue spells it: an exact match, else the one case-insensitive match."""
    known = list(known)
    if name in known:
        return name
    folded = [k for k in known if k.lower() == str(name).lower()]
    return folded[0] if len(folded) == 1 else None


def _listing(names: Sequence[str], limit: int = 15) -> str:
    shown = ", ".join(names[:limit]) or "none"
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def unknown_name(kind: str, name: str, where: str, known: Sequence[str], field: str | None) -> ConfigError:
    text = f"{kind} '{name}' does not exist in {where}"
    hint = nearest(name, known)
    text += f"; did you mean '{hint}'?" if hint else f" ({kind}s: {_listing(list(known))})"
    return ConfigError(text, field=field)
