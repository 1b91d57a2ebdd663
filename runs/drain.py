"""Whether this worker process is draining, and by when its run must be handed back.

``manage.py worker`` calls :func:`install` in its main process before it forks the cluster; the value lives
in shared memory, so the worker processes forked from it (fork start method: django-q2 uses it on Linux)
see the deadline the main process sets when it is told to stop. Under plain ``qcluster``, in tests and in
the web process nothing is installed and :func:`deadline` is always None.

The deadline is wall-clock time (``time.time()``): the main process and the workers compare it on the same
machine.
"""

from __future__ import annotations

import multiprocessing
import time

_shared = None


def install():
    """Create the shared value (in the main process, before forking). Returns it."""
    global _shared
    _shared = multiprocessing.get_context("fork").Value("d", 0.0, lock=False)
    return _shared


def start(hand_back_at: float) -> None:
    """Tell every worker process forked after :func:`install`: hand your run back by ``hand_back_at``."""
    if _shared is not None:
        _shared.value = hand_back_at


def deadline() -> float | None:
    """When the run in this process must be handed back (``time.time()`` seconds), or None (not draining)."""
    if _shared is None:
        return None
    value = _shared.value
    return value or None


def draining() -> bool:
    return deadline() is not None


def seconds_left() -> float | None:
    at = deadline()
    return None if at is None else at - time.time()
