"""Links for list rows at the cost of one ``reverse()`` a page, not one a row.

Each ``reverse()`` costs tens of microseconds; a list page with a ``{% url %}`` or two per row spent most of
its rendering time there under load (bench/README.md, "Load"). :func:`link_maker` reverses once with
sentinel arguments and puts each row's values where the sentinels came out. It is for arguments that a
URL takes as they are (integers, codes and step keys of letters, digits, ``-``, ``_``, ``.``): anything
else is reversed as usual, so the link is always what ``reverse()`` gives.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.urls import reverse

_AS_IS = re.compile(r"[A-Za-z0-9_.-]+")  # characters reverse() never quotes
_SENTINELS = ("9876543210", "8765432109", "7654321098")


def link_maker(name: str, arity: int = 1) -> Callable[..., str]:
    """A function of ``arity`` arguments answering ``reverse(name, args=[...])``."""
    sentinels = _SENTINELS[:arity]
    pattern = reverse(name, args=list(sentinels))
    pieces = [pattern]
    for sentinel in sentinels:
        head, *rest = pieces[-1].split(sentinel)
        if len(rest) != 1:  # the sentinel shows up elsewhere too (or not at all): no shortcut
            return lambda *args: reverse(name, args=list(args))
        pieces[-1:] = [head, rest[0]]

    def link(*args) -> str:
        if not all(_AS_IS.fullmatch(str(a)) for a in args):
            return reverse(name, args=list(args))
        out = [pieces[0]]
        for value, piece in zip(args, pieces[1:], strict=True):
            out += [str(value), piece]
        return "".join(out)

    return link
