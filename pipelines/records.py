"""Records, batches and field paths. [pure]

A record is a ``dict`` of JSON values. A path is dotted (``customer.address.city``); a numeric segment or
``[n]`` indexes a list (``lines.0.sku``, ``lines[0].sku``). Paths are compiled once per operator, not once
per record, because the per-record cost is what a million-row run pays.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

import orjson

Record = dict[str, Any]
Batch = list[Record]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

_FORBIDDEN_SEGMENTS = frozenset({"__proto__", "constructor", "prototype", "__class__", "__dict__"})
_INDEX = re.compile(r"\[(\d+)\]")


class PathError(ValueError):
    pass


class Path:
    """A compiled field path. ``get`` never raises; ``set`` creates intermediate objects."""

    __slots__ = ("text", "parts", "_single")

    def __init__(self, text: str):
        if not isinstance(text, str) or not text.strip():
            raise PathError("a field path must be a non-empty string")
        self.text = text
        parts: list[str | int] = []
        for raw in _INDEX.sub(r".\1", text).split("."):
            if raw == "":
                raise PathError(f"field path '{text}' has an empty segment")
            if raw in _FORBIDDEN_SEGMENTS:
                raise PathError(f"field path '{text}' uses the forbidden segment '{raw}'")
            parts.append(int(raw) if raw.isdigit() else raw)
        self.parts = tuple(parts)
        self._single = parts[0] if len(parts) == 1 and isinstance(parts[0], str) else None

    def __repr__(self) -> str:
        return f"Path({self.text!r})"

    def get(self, record: Any, default: Any = MISSING) -> Any:
        if self._single is not None:
            if type(record) is dict:
                return record.get(self._single, default)
            return default
        current = record
        for part in self.parts:
            if type(current) is dict:
                if isinstance(part, int):
                    part = str(part)
                if part not in current:
                    return default
                current = current[part]
            elif type(current) is list and isinstance(part, int):
                if part >= len(current):
                    return default
                current = current[part]
            else:
                return default
        return current

    def has(self, record: Any) -> bool:
        return self.get(record) is not MISSING

    def set(self, record: Record, value: Any) -> None:
        """Write ``value``; writing MISSING is a no-op (the plugin's "writing undefined")."""
        if value is MISSING:
            return
        if self._single is not None:
            record[self._single] = value
            return
        current: Any = record
        last = len(self.parts) - 1
        for i, part in enumerate(self.parts):
            if i == last:
                if type(current) is list and isinstance(part, int):
                    while len(current) <= part:
                        current.append(None)
                    current[part] = value
                elif type(current) is dict:
                    current[str(part) if isinstance(part, int) else part] = value
                return
            key = str(part) if isinstance(part, int) and type(current) is dict else part
            if type(current) is dict:
                nxt = current.get(key)
                if type(nxt) not in (dict, list):
                    nxt = {}
                    current[key] = nxt
                current = nxt
            elif type(current) is list and isinstance(part, int):
                while len(current) <= part:
                    current.append(None)
                if type(current[part]) not in (dict, list):
                    current[part] = {}
                current = current[part]
            else:
                return

    def delete(self, record: Record) -> bool:
        if self._single is not None:
            return record.pop(self._single, MISSING) is not MISSING
        parent = Path.__new__(Path)
        parent.parts = self.parts[:-1]
        parent._single = None
        container = parent.get(record)
        part = self.parts[-1]
        if type(container) is dict:
            key = str(part) if isinstance(part, int) else part
            return container.pop(key, MISSING) is not MISSING
        if type(container) is list and isinstance(part, int) and part < len(container):
            del container[part]
            return True
        return False


@lru_cache(maxsize=4096)
def path(text: str) -> Path:
    """The compiled path for ``text`` (cached: operators share paths)."""
    return Path(text)


def get_path(record: Any, text: str, default: Any = MISSING) -> Any:
    return path(text).get(record, default)


def set_path(record: Record, text: str, value: Any) -> None:
    path(text).set(record, value)


def deep_copy(value: Any) -> Any:
    """A deep copy of JSON data; much faster than ``copy.deepcopy`` for dicts and lists of scalars."""
    t = type(value)
    if t is dict:
        return {k: (v if type(v) in _SCALARS else deep_copy(v)) for k, v in value.items()}
    if t is list:
        return [v if type(v) in _SCALARS else deep_copy(v) for v in value]
    return value


_SCALARS = frozenset({str, int, float, bool, type(None)})


def chunked(records: Iterable[Record], size: int) -> Iterator[Batch]:
    """Split an iterable of records into lists of at most ``size``."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    batch: Batch = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# orjson writes and reads only integers that fit in 64 bits, and a record may hold a larger exact int
# (Python arithmetic, a NUMERIC column). Such a value is written by the standard library instead. In the
# line format that ``loads`` reads back (spill files, durable step outputs), that text starts with an RS
# byte, so that the int comes back exact (orjson would read it as a float).
_STDLIB = b"\x1e"


def dumps(value: Any) -> bytes:
    """JSON bytes, non-str keys allowed; the one serializer used where records are written in bulk and
    read back with :func:`loads`."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
        return _STDLIB + _stdlib_dumps(value)


def loads(data: bytes | str) -> Any:
    if data[:1] in (_STDLIB, "\x1e"):
        return json.loads(data[1:])
    return orjson.loads(data)


def json_text(value: Any, *, indent: bool = False) -> str:
    """JSON text for people and other programs (exports, cells): as :func:`dumps`, without the marker."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)).decode()
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
        return _stdlib_dumps(value, indent=indent).decode()


def _stdlib_dumps(value: Any, *, indent: bool = False) -> bytes:
    return json.dumps(_finite(value), ensure_ascii=False, indent=2 if indent else None,
                      separators=None if indent else (",", ":"), default=str).encode()


def _finite(value: Any) -> Any:
    """NaN and infinities as null, as orjson writes them (the standard library would write NaN)."""
    t = type(value)
    if t is float:
        return value if value - value == 0 else None
    if t is dict:
        return {k: _finite(v) for k, v in value.items()}
    if t is list:
        return [_finite(v) for v in value]
    return value
