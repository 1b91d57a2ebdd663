"""Where a file extractor's bytes come from: inline text, a stored file or a path under an allowed root,
never more than the size limit."""

from __future__ import annotations

import codecs
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pipelines.errors import ConfigError, StepError
from pipelines.filestores.limits import allowed_roots, max_file_bytes
from pipelines.filestores.limits import human_size as _human

READ_CHUNK = 64 * 1024


def too_big(label: str, limit: int, size: int | None = None) -> ConfigError:
    what = f"is {size} bytes," if size is not None else "is"
    return ConfigError(f"{label} {what} larger than the limit of {_human(limit)} (setting DATAHUB_MAX_FILE_BYTES)")


# --- sources ----------------------------------------------------------------------------------------------


class CappedReader(io.RawIOBase):
    """Reads from ``raw`` and refuses to go past ``limit`` bytes (a file that grows, a storage that lies)."""

    def __init__(self, raw: IO[bytes], limit: int, label: str):
        self._raw = raw
        self._limit = limit
        self._label = label
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        if not data:
            return 0
        n = len(data)
        buffer[:n] = data
        self._count += n
        if self._count > self._limit:
            raise too_big(self._label, self._limit)
        return n

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


@dataclass
class Source:
    """One resolved file: where it is, and how to open it."""

    label: str  # for messages: "file 'products.csv'", "inline csvText"
    identity: str  # kept with a resumable checkpoint
    name: str  # a file name, for the extension
    size: int | None
    text: str | None = None  # inline text
    _open: Callable[[], IO[bytes]] | None = None

    def open_binary(self) -> IO[bytes]:
        """A buffered binary stream, capped at the size limit."""
        limit = max_file_bytes()
        if self.text is not None:
            return io.BytesIO(self.text.encode("utf-8"))
        raw = self._open()
        return io.BufferedReader(CappedReader(raw, limit, self.label), buffer_size=READ_CHUNK)

    def open_raw(self) -> IO[bytes]:
        """The underlying stream (size already checked); seekable for a disk file."""
        return self._open()

    def open_text(self, encoding: str) -> IO[str]:
        """Text with universal newlines left alone (the csv module wants ``newline=""``), BOM stripped."""
        if self.text is not None:
            return io.StringIO(self.text[1:] if self.text.startswith("\ufeff") else self.text, newline="")
        return io.TextIOWrapper(self.open_binary(), encoding=_bom_aware(encoding), errors="strict", newline="")


def _bom_aware(encoding: str) -> str:
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


INLINE_SOURCES = {"csv": ("csvText", "rows"), "json": ("jsonText",), "xml": ("xmlText",), "xlsx": ()}
FILE_SOURCES = ("fileId", "storagePath", "path")


def resolve_source(config: dict, ctx, kind: str) -> tuple[str, Source | None]:
    """Which source key the config uses and the resolved file (None for ``rows``)."""
    inline = INLINE_SOURCES[kind]
    keys = [k for k in (*inline, *FILE_SOURCES) if config.get(k) is not None]
    choices = ", ".join((*inline, *FILE_SOURCES))
    if not keys:
        raise ConfigError(f"no source: give one of {choices}", field=(inline or FILE_SOURCES)[0])
    if len(keys) > 1:
        raise ConfigError(f"give one source, not {' and '.join(keys)}", field=keys[1])
    key = keys[0]
    value = config[key]
    limit = max_file_bytes()
    if key == "rows":
        return key, None
    if key in inline:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string", field=key)
        size = len(value.encode("utf-8"))
        if size > limit:
            raise too_big(f"inline {key}", limit, size)
        return key, Source(label=f"inline {key}", identity=f"inline:{key}", name="", size=size, text=value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty string", field=key)
    if key == "path":
        return key, _disk_source(value, limit)
    return key, _storage_source(key, value, ctx, limit)


def _storage_source(key: str, name: str, ctx, limit: int) -> Source:
    storage = ctx.storage
    if storage is None:
        raise ConfigError(f"{key} names a file in storage, but this run has no file storage", field=key)
    clean = name.replace("\\", "/")
    if clean.startswith("/") or any(part == ".." for part in clean.split("/")):
        raise ConfigError(f"{key} must be a relative name inside the storage, without '..'", field=key)
    label = f"file '{name}'"
    try:
        exists = storage.exists(name)
    except Exception as exc:  # SuspiciousFileOperation, an unreachable remote storage
        if type(exc).__name__ == "SuspiciousFileOperation":
            raise ConfigError(f"{key} '{name}' is not a valid storage name", field=key) from None
        raise StepError(f"cannot reach the file storage for {label}: {exc}", retryable=True) from exc
    if not exists:
        raise ConfigError(f"file '{name}' not found in storage", field=key)
    try:
        size = storage.size(name)
    except (OSError, NotImplementedError):
        size = None
    if size is not None and size > limit:
        raise too_big(label, limit, size)

    def opener() -> IO[bytes]:
        try:
            return storage.open(name, "rb")
        except FileNotFoundError:
            raise ConfigError(f"file '{name}' not found in storage", field=key) from None
        except OSError as exc:
            raise StepError(f"cannot open {label}: {exc}", retryable=True) from exc

    return Source(label=label, identity=f"storage:{name}", name=name, size=size, _open=opener)


def _disk_source(raw: str, limit: int) -> Source:
    roots = allowed_roots()
    if not roots:
        raise ConfigError("path sources are off: no allowed folders are configured (setting DATAHUB_FILE_ROOTS)",
                          field="path")
    given = Path(raw).expanduser()
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    outside = False
    found: Path | None = None
    for candidate in candidates:
        resolved = candidate.resolve()  # follows symlinks: the real place is what is checked
        if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
            outside = True
            continue
        if resolved.is_file():
            found = resolved
            break
    if found is None:
        if outside:
            raise ConfigError("path is outside the allowed folders", field="path")
        raise ConfigError(f"file not found: {raw}", field="path")
    size = found.stat().st_size
    label = f"file '{raw}'"
    if size > limit:
        raise too_big(label, limit, size)

    def opener() -> IO[bytes]:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(found, flags)
        except FileNotFoundError:
            raise ConfigError(f"file not found: {raw}", field="path") from None
        except OSError as exc:
            raise StepError(f"cannot open {label}: {exc}", retryable=False) from exc
        return os.fdopen(fd, "rb")

    return Source(label=label, identity=f"path:{found}", name=found.name, size=size, _open=opener)


