"""JSON operators (4): parseJson, stringifyJson, pick, omit. [pure]

:func:`js_json` writes the exact text JavaScript's ``JSON.stringify`` writes (``hash`` digests that text, so
a hash here equals the plugin's hash of the same record).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from pipelines import js
from pipelines.errors import ConfigError
from pipelines.operators.base import record_operator
from pipelines.records import MISSING, Path, PathError, path

# ---------------------------------------------------------------------------------------------------------
# JSON text as JavaScript writes and reads it
# ---------------------------------------------------------------------------------------------------------

# A JSON string literal with non-ASCII kept as is, as JSON.stringify writes it (the C version when present).
_encode_str = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _is_array_index(key: str) -> bool:
    return key.isdigit() and (key == "0" or key[0] != "0") and int(key) < 4294967295 and key.isascii()


def _ordered_items(obj: dict) -> list[tuple[str, Any]]:
    """A JavaScript object's own keys in its order: integer-like keys ascending first, then insertion order."""
    items = [(k if type(k) is str else str(k), v) for k, v in obj.items()]
    if not any(_is_array_index(k) for k, _ in items):
        return items
    indexes = sorted((kv for kv in items if _is_array_index(kv[0])), key=lambda kv: int(kv[0]))
    return indexes + [kv for kv in items if not _is_array_index(kv[0])]


def _scalar(value: Any) -> str | None:
    t = type(value)
    if t is str:
        return _encode_str(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return js.number_text(value)
    if t is float:
        return js.number_text(value) if value == value and value not in (float("inf"), float("-inf")) else "null"
    return None


def js_json(value: Any, indent: int | None = None) -> str:
    """``JSON.stringify(value)`` (or ``JSON.stringify(value, null, indent)``) for JSON data."""
    text = _scalar(value)
    if text is not None:
        return text
    parts: list[str] = []
    _write(value, parts, indent, 0)
    return "".join(parts)


def _write(value: Any, out: list[str], indent: int | None, depth: int) -> None:
    text = _scalar(value)
    if text is not None:
        out.append(text)
        return
    t = type(value)
    if t is dict:
        items = [(k, v) for k, v in _ordered_items(value) if v is not MISSING]
        if not items:
            out.append("{}")
            return
        pad = "\n" + " " * (indent * (depth + 1)) if indent else ""
        sep = ": " if indent else ":"
        out.append("{")
        for i, (k, v) in enumerate(items):
            if i:
                out.append(",")
            out.append(pad)
            out.append(_encode_str(k))
            out.append(sep)
            _write(v, out, indent, depth + 1)
        if indent:
            out.append("\n" + " " * (indent * depth))
        out.append("}")
        return
    if t is list or t is tuple:
        if not value:
            out.append("[]")
            return
        pad = "\n" + " " * (indent * (depth + 1)) if indent else ""
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            out.append(pad)
            _write(None if v is MISSING else v, out, indent, depth + 1)
        if indent:
            out.append("\n" + " " * (indent * depth))
        out.append("]")
        return
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_text(text: str) -> Any:
    """``JSON.parse``: strict JSON (no NaN/Infinity); raises ValueError when the text is not JSON.

    Integers beyond 64 bits become floats, as in JavaScript.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses a few texts JSON.parse reads (lone surrogate escapes such as "\\ud800").
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


# ---------------------------------------------------------------------------------------------------------
# Operators
# ---------------------------------------------------------------------------------------------------------


def compile_path(args: dict, name: str, *, default: str | None = None) -> Path:
    """The compiled path in ``args[name]`` (or ``default``), a ConfigError naming the arg otherwise."""
    text = args.get(name, default)
    if text is None or text == "":
        text = default
    if not isinstance(text, str) or not text:
        raise ConfigError(f"'{name}' must be a field path like 'price' or 'customer.email'", field=name)
    try:
        return path(text)
    except PathError as exc:
        raise ConfigError(str(exc), field=name) from None


def single_key(p: Path) -> str | None:
    """The key when ``p`` names a top-level field (``price``), so a hot loop can index the record directly."""
    return p.parts[0] if len(p.parts) == 1 and isinstance(p.parts[0], str) else None


def compile_paths(args: dict, name: str) -> list[Path]:
    items = args.get(name)
    if not isinstance(items, list):
        raise ConfigError(f"'{name}' must be a list of field paths", field=name)
    out = []
    for i, text in enumerate(items):
        if not isinstance(text, str) or not text:
            raise ConfigError("must be a non-empty field path", field=f"{name}[{i}]")
        try:
            out.append(path(text))
        except PathError as exc:
            raise ConfigError(str(exc), field=f"{name}[{i}]") from None
    return out


_PATH = {"type": "string", "minLength": 1}


@record_operator(
    "parseJson",
    name="Parse JSON",
    category="json",
    description="Parse a JSON string field into a value; text that is not JSON is left as it is.",
    schema={
        "type": "object",
        "properties": {
            "source": {**_PATH, "description": "Path of the field holding JSON text."},
            "target": {**_PATH, "description": "Where to write the parsed value; defaults to source."},
        },
        "required": ["source"],
        "additionalProperties": False,
    },
)
def build_parse_json(args: dict, ctx: Any):
    source = compile_path(args, "source")
    target = compile_path(args, "target", default=source.text)
    get, put = source.get, target.set

    def parse_json(record: dict) -> dict:
        value = get(record)
        if type(value) is str:
            try:
                parsed = parse_json_text(value)
            except ValueError:
                return record
            put(record, parsed)
        return record

    return parse_json


@record_operator(
    "stringifyJson",
    name="Stringify JSON",
    category="json",
    description="Write a value as JSON text (compact, or indented by 2 with pretty); null or missing is left as it is.",
    schema={
        "type": "object",
        "properties": {
            "source": {**_PATH, "description": "Path of the value to write as JSON."},
            "target": {**_PATH, "description": "Where to write the JSON text; defaults to source."},
            "pretty": {
                "type": "boolean",
                "default": False,
                "description": "Indent by 2 spaces, one item per line.",
            },
        },
        "required": ["source"],
        "additionalProperties": False,
    },
)
def build_stringify_json(args: dict, ctx: Any):
    source = compile_path(args, "source")
    target = compile_path(args, "target", default=source.text)
    indent = 2 if args.get("pretty") else None
    get, put = source.get, target.set

    def stringify_json(record: dict) -> dict:
        value = get(record)
        if value is not None and value is not MISSING:
            put(record, js_json(value, indent))
        return record

    return stringify_json


@record_operator(
    "pick",
    name="Pick fields",
    category="json",
    description="Keep only the listed fields (nested paths allowed); every other field is dropped.",
    schema={
        "type": "object",
        "properties": {
            "fields": {
                "type": "array",
                "items": _PATH,
                "description": "Paths of the fields to keep, e.g. ['id', 'customer.email']; missing ones are skipped.",
            },
        },
        "required": ["fields"],
        "additionalProperties": False,
    },
)
def build_pick(args: dict, ctx: Any):
    paths = compile_paths(args, "fields")
    keys = [single_key(p) for p in paths]
    if None not in keys and len(set(keys)) == len(keys):

        def pick_top_level(record: dict) -> dict:
            return {k: record[k] for k in keys if k in record}

        return pick_top_level

    def pick(record: dict) -> dict:
        out: dict = {}
        for p in paths:
            value = p.get(record)
            if value is not MISSING:
                p.set(out, value)
        return out

    return pick


@record_operator(
    "omit",
    name="Omit fields",
    category="json",
    description="Remove the listed fields (nested paths allowed).",
    schema={
        "type": "object",
        "properties": {
            "fields": {
                "type": "array",
                "items": _PATH,
                "description": "Paths of the fields to remove, e.g. ['secret', 'meta.debug'].",
            },
        },
        "required": ["fields"],
        "additionalProperties": False,
    },
)
def build_omit(args: dict, ctx: Any):
    paths = compile_paths(args, "fields")

    def omit(record: dict) -> dict:
        for p in paths:
            p.delete(record)
        return record

    return omit
