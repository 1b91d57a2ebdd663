"""Enrichment operators: lookup, enrich, coalesce, default. [pure]

Per-record and as the plugin's (research §2.7). The fifth enrichment operator, ``httpLookup``, calls
out over HTTP and lives in :mod:`pipelines.operators.http_lookup`.
"""

from __future__ import annotations

from typing import Any

from pipelines import js
from pipelines.errors import ConfigError
from pipelines.operators._common import field_path
from pipelines.operators.base import OperatorContext, record_operator
from pipelines.records import MISSING, Path, PathError, Record, deep_copy, path

CATEGORY = "enrichment"


# -- lookup, enrich, coalesce, default -----------------------------------------------------------


@record_operator(
    "lookup",
    name="Lookup",
    category=CATEGORY,
    description="Map a field's value through a dictionary and write the result (or a default).",
    schema={
        "type": "object",
        "properties": {
            "source": {"type": "string", "description": "Field path of the value to look up."},
            "map": {
                "type": "object",
                "description": "The dictionary: keys are the value as text (true, 42, 'US'), values are "
                "what to write.",
            },
            "target": {"type": "string", "description": "Field path to write the result to."},
            "default": {
                "description": "Written when the value is missing, null or not in the map (else null)."
            },
        },
        "required": ["source", "map", "target"],
        "additionalProperties": False,
    },
)
def lookup(args: dict, ctx: OperatorContext):
    source, target = field_path(args, "source"), field_path(args, "target")
    table = args.get("map")
    if not isinstance(table, dict):
        raise ConfigError("must be an object", field="map")
    default = args.get("default")

    def fn(record: Record) -> Record:
        value = source.get(record)
        hit = None
        if value is not MISSING and value is not None:
            hit = table.get(js.string(value))
        target.set(record, deep_copy(default if hit is None else hit))
        return record

    return fn


def _path_map(args: dict, name: str) -> list[tuple[Path, Any]]:
    value = args.get(name)
    if value is None:
        return []
    if not isinstance(value, dict):
        raise ConfigError("must be an object of {fieldPath: value}", field=name)
    out = []
    for key, v in value.items():
        try:
            out.append((path(key), v))
        except PathError as exc:
            raise ConfigError(str(exc), field=f"{name}.{key}") from None
    return out


@record_operator(
    "enrich",
    name="Enrich",
    category=CATEGORY,
    description="Fill missing or null fields from defaults, then overwrite fields from set.",
    schema={
        "type": "object",
        "properties": {
            "set": {
                "type": "object",
                "description": "Fields to write on every record, {fieldPath: value}; dotted paths create "
                "nested objects. Applied after defaults.",
            },
            "defaults": {
                "type": "object",
                "description": "Fields to write only where missing or null (false, 0 and '' are kept), "
                "{fieldPath: value}.",
            },
        },
        "additionalProperties": False,
    },
)
def enrich(args: dict, ctx: OperatorContext):
    defaults = _path_map(args, "defaults")
    overrides = _path_map(args, "set")

    def fn(record: Record) -> Record:
        for p, value in defaults:
            current = p.get(record)
            if current is MISSING or current is None:
                p.set(record, deep_copy(value))
        for p, value in overrides:
            p.set(record, deep_copy(value))
        return record

    return fn


@record_operator(
    "coalesce",
    name="Coalesce",
    category=CATEGORY,
    description="Write the first value among several fields that is not null, missing or empty.",
    schema={
        "type": "object",
        "properties": {
            "paths": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Field paths to try, in order.",
            },
            "target": {"type": "string", "description": "Field path to write the value to."},
            "default": {"description": "Written when every path is null, missing or '' (else null)."},
        },
        "required": ["paths", "target"],
        "additionalProperties": False,
    },
)
def coalesce(args: dict, ctx: OperatorContext):
    target = field_path(args, "target")
    texts = args.get("paths")
    if not isinstance(texts, list):
        raise ConfigError("must be a list of field paths", field="paths")
    try:
        paths = [path(t) for t in texts]
    except (PathError, TypeError) as exc:
        raise ConfigError(str(exc), field="paths") from None
    has_default = "default" in args
    default = args.get("default")

    def fn(record: Record) -> Record:
        for p in paths:
            value = p.get(record)
            if value is not MISSING and value is not None and value != "":
                target.set(record, deep_copy(value))
                return record
        target.set(record, deep_copy(default) if has_default else None)
        return record

    return fn


@record_operator(
    "default",
    name="Default value",
    category=CATEGORY,
    description="Set a field to a value where it is missing or null (an empty string is kept).",
    schema={
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Field path to fill."},
            "value": {"description": "The value to write where the field is missing or null."},
        },
        "required": ["path", "value"],
        "additionalProperties": False,
    },
)
def default(args: dict, ctx: OperatorContext):
    target = field_path(args, "path")
    value = args.get("value")

    def fn(record: Record) -> Record:
        current = target.get(record)
        if current is MISSING or current is None:
            target.set(record, deep_copy(value))
        return record

    return fn
