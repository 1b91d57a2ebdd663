"""The two settings that bound file access, read lazily (the engine runs without Django too). [pure]

``DATAHUB_FILE_ROOTS``: the folders a worker may read or write files in, for ``path`` sources of the file
extractors and for FOLDER connections. ``DATAHUB_MAX_FILE_BYTES``: the largest file read (default 100 MiB).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024


def _setting(name: str, default: Any) -> Any:
    try:
        from django.conf import settings
    except ImportError:  # pragma: no cover - Django is a dependency, but the engine does not need it
        return default
    if not settings.configured:
        return default
    return getattr(settings, name, default)


def allowed_roots() -> list[Path]:
    """The folders of the setting ``DATAHUB_FILE_ROOTS``, resolved; [] without Django settings or without
    the setting."""
    roots = _setting("DATAHUB_FILE_ROOTS", None) or []
    if isinstance(roots, str | os.PathLike):
        roots = [roots]
    out = []
    for root in roots:
        text = os.fspath(root).strip()
        if text:
            out.append(Path(text).expanduser().resolve())
    return out


def max_file_bytes() -> int:
    """The largest file read (setting ``DATAHUB_MAX_FILE_BYTES``, default 100 MiB)."""
    value = _setting("DATAHUB_MAX_FILE_BYTES", None)
    return int(value) if value else DEFAULT_MAX_FILE_BYTES


def human_size(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB ({n} bytes)"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB ({n} bytes)"
    return f"{n} bytes"
